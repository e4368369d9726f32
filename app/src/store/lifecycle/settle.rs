//! Settling a delivery: each claimed subject's outcome recorded in one write transaction,
//! only where the lease is still the settler's. The subjects HubSpot took are settled together,
//! a few statements per batch instead of one each (the write lock is held that much less).

use super::{Claimed, Lifecycle, Sent};
use crate::domain::portal::PortalId;
use crate::store::{placeholders, portal_key, StoreResult, WriteTx};

/// Attempts before a subject is dead (until its next event).
const MAX_ATTEMPTS: i64 = 8;

/// Rows per statement (see `accept`'s `ROWS`: 5 parameters a row here).
const ROWS: usize = 32;

impl Lifecycle {
    /// Records each claimed subject's outcome in one transaction (only the lease holder's).
    pub async fn settle(
        &self,
        owner: &str,
        portal: Option<PortalId>,
        outcomes: &[(&Claimed, Sent)],
    ) -> StoreResult<()> {
        let key = portal_key(portal);
        let now = self.db.now_ms();
        let jitter: f64 = rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2);
        let mut w = self.db.write().await?;
        let done: Vec<(&Claimed, &Sent)> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Sent::Done { .. }))
            .map(|(c, o)| (*c, o))
            .collect();
        for chunk in done.chunks(ROWS) {
            settle_sent(&mut w, owner, key, now, chunk).await?;
        }
        for (c, outcome) in outcomes {
            let through = c.through();
            let q = match outcome {
                Sent::Done { .. } => continue, // settled together below
                Sent::Previewed { payload, problems } => sqlx::query(
                    "UPDATE lifecycle_subjects SET
                        state = CASE WHEN last_seq <= $1 THEN 'previewed' ELSE 'pending' END,
                        hubspot_id = COALESCE(hubspot_id, $2), last_payload = $3, problems = $4,
                        attempts = 0, next_attempt_at = $5, last_error = NULL,
                        lease_owner = NULL, lease_until = NULL
                     WHERE portal_key = $6 AND subject = $7 AND lease_owner = $8",
                )
                .bind(through)
                .bind(None::<String>)
                .bind(serde_json::to_string(payload)?)
                .bind(serde_json::to_string(problems)?),
                Sent::Failed { error, fatal } => {
                    let attempts = c.attempts + 1;
                    let dead = *fatal || attempts >= MAX_ATTEMPTS;
                    let backoff = (1_000f64 * 2f64.powi(attempts.min(20) as i32) * jitter)
                        .min(300_000.0) as i64;
                    sqlx::query(
                        "UPDATE lifecycle_subjects SET state = $1, attempts = $2, last_error = $3,
                            problems = NULL, next_attempt_at = $4,
                            lease_owner = NULL, lease_until = NULL
                         WHERE portal_key = $5 AND subject = $6 AND lease_owner = $7",
                    )
                    .bind(if dead { "dead" } else { "pending" })
                    .bind(attempts)
                    .bind(crate::mask::text(error))
                    .bind(now + backoff)
                    .bind(key)
                    .bind(c.key.clone())
                    .bind(owner)
                    .execute(&mut *w.tx)
                    .await?;
                    continue;
                }
                Sent::Held { reason, wait } => {
                    sqlx::query(
                        "UPDATE lifecycle_subjects SET last_error = $1, next_attempt_at = $2,
                            lease_owner = NULL, lease_until = NULL
                         WHERE portal_key = $3 AND subject = $4 AND lease_owner = $5",
                    )
                    .bind(crate::mask::text(reason))
                    .bind(now + wait.as_millis() as i64)
                    .bind(key)
                    .bind(c.key.clone())
                    .bind(owner)
                    .execute(&mut *w.tx)
                    .await?;
                    continue;
                }
            };
            q.bind(now)
                .bind(key)
                .bind(c.key.clone())
                .bind(owner)
                .execute(&mut *w.tx)
                .await?;
        }
        w.commit().await
    }
}

/// Settles subjects HubSpot took, in one statement: each `sent` (or due again, when an event
/// came after the ones read), with its contact id, payload and set-once properties.
async fn settle_sent(
    w: &mut WriteTx,
    owner: &str,
    key: i64,
    now: i64,
    done: &[(&Claimed, &Sent)],
) -> StoreResult<()> {
    let rows: Vec<String> = (0..done.len())
        .map(|i| format!("({})", placeholders(4 + i * 5, 5)))
        .collect();
    let sql = format!(
        "WITH v (subject, through, hubspot_id, payload, once) AS (VALUES {})
         UPDATE lifecycle_subjects SET
            sent_seq = CASE WHEN v.through > lifecycle_subjects.sent_seq
                            THEN v.through ELSE lifecycle_subjects.sent_seq END,
            state = CASE WHEN lifecycle_subjects.last_seq <= v.through THEN 'sent' ELSE 'pending' END,
            hubspot_id = v.hubspot_id, last_payload = v.payload, sent_once = v.once,
            problems = NULL, attempts = 0, next_attempt_at = $1, last_error = NULL,
            lease_owner = NULL, lease_until = NULL
         FROM v
         WHERE lifecycle_subjects.portal_key = $2 AND lifecycle_subjects.subject = v.subject
           AND lifecycle_subjects.lease_owner = $3",
        rows.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(now).bind(key).bind(owner);
    for (c, outcome) in done {
        let Sent::Done {
            hubspot_id,
            payload,
            sent_once,
        } = outcome
        else {
            continue;
        };
        q = q
            .bind(c.key.clone())
            .bind(c.through())
            .bind(hubspot_id.clone())
            .bind(serde_json::to_string(payload)?)
            .bind(serde_json::to_string(sent_once)?);
    }
    q.execute(&mut *w.tx).await?;
    Ok(())
}
