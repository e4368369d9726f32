//! The outbox's worker: take a budget slot, claim the due heads, send one batch upsert, settle
//! every item in one transaction (sent, rescheduled with backoff, or dead), and loop until
//! stopped. The store operations it uses are in the parent module.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::order::{self, Claimed};
use super::{restore, Item, Outbox};
use crate::clock::now_ms;
use crate::db::StoreResult;
use crate::hubspot::limiter::Permit;
use crate::hubspot::retry::RateLimitPolicy;
use crate::hubspot::{HubSpotClient, HubSpotError};

/// How often a worker looks for leases held by workers that died.
const DEAD_LEASE_CHECK: Duration = Duration::from_secs(1);

/// What the items of one batch share when settled: the moment and the jitter, so a failed
/// batch comes due again whole (one claim, one call), not split across claims.
#[derive(Debug, Clone, Copy)]
struct Settle {
    now: i64,
    jitter: f64,
}

impl Outbox {
    async fn mark_sent(
        &self,
        tx: &mut sqlx::AnyConnection,
        owner: &str,
        id: i64,
        hubspot_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'sent', hubspot_id = $1, lease_owner = NULL, lease_until = NULL,
                 attempts = attempts + 1, last_error = NULL, updated_at = $2
             WHERE id = $3 AND lease_owner = $4",
        )
        .bind(hubspot_id)
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// A failed attempt: back to pending after a backoff, or dead when `fatal` or out of
    /// attempts.
    #[allow(clippy::too_many_arguments)]
    async fn mark_failed(
        &self,
        tx: &mut sqlx::AnyConnection,
        owner: &str,
        item: &Item,
        error: &str,
        fatal: bool,
        retry_after: Option<Duration>,
        batch: Settle,
    ) -> StoreResult<()> {
        let attempts = item.attempts + 1;
        let dead = fatal || attempts >= self.config.max_attempts;
        let backoff = retry_after.unwrap_or_else(|| self.backoff(attempts, batch.jitter));
        sqlx::query(
            "UPDATE outbox SET state = $1, attempts = $2, next_attempt_at = $3, last_error = $4,
                 lease_owner = NULL, lease_until = NULL, updated_at = $5
             WHERE id = $6 AND lease_owner = $7",
        )
        .bind(if dead { "dead" } else { "pending" })
        .bind(attempts)
        .bind(batch.now + backoff.as_millis() as i64)
        .bind(crate::mask::text(error))
        .bind(batch.now)
        .bind(item.id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// 1 s, 2 s, 4 s … up to the maximum, times a ±20 % jitter drawn once per batch: retries of
    /// different batches spread out, and a batch stays whole (its items come due together).
    fn backoff(&self, attempts: i64, jitter: f64) -> Duration {
        let exp =
            self.config.base_backoff * 2u32.saturating_pow((attempts - 1).clamp(0, 20) as u32);
        exp.min(self.config.max_backoff).mul_f64(jitter)
    }

    /// One step of the worker: when something is due, take a slot of HubSpot's budget, claim,
    /// send the claimed items as one batch and record the outcome. Returns how many items were
    /// settled (sent or failed); 0 when nothing was due.
    pub async fn try_once(&self, client: &HubSpotClient, owner: &str) -> StoreResult<usize> {
        if !self.has_due().await? {
            return Ok(0);
        }
        let permit = client.reserve().await;
        let items = self.claim(owner).await?;
        if items.is_empty() {
            return Ok(0); // another worker took them; the slot goes unused
        }
        self.send(client, owner, &items, Some(permit)).await?;
        Ok(items.len())
    }

    /// Sends claimed `items` (one input per email, folded oldest first) and settles every item
    /// by the outcome, in one write transaction.
    pub async fn send(
        &self,
        client: &HubSpotClient,
        owner: &str,
        items: &[Item],
        permit: Option<Permit<'_>>,
    ) -> StoreResult<()> {
        let by_id: BTreeMap<i64, &Item> = items.iter().map(|i| (i.id, i)).collect();
        let claimed: Vec<Claimed<'_>> = items
            .iter()
            .map(|i| Claimed {
                id: i.id,
                email: &i.email,
                properties: &i.properties,
            })
            .collect();
        let mut inputs = Vec::new();
        let mut groups: Vec<Vec<&Item>> = Vec::new();
        let mut unusable = Vec::new();
        for folded in order::fold(&claimed) {
            let group: Vec<&Item> = folded.ids.iter().map(|id| by_id[id]).collect();
            match folded.properties.and_then(|p| restore(&folded.email, &p)) {
                Ok(input) => {
                    inputs.push(input);
                    groups.push(group);
                }
                Err(e) => unusable.extend(group.into_iter().map(|item| (item, e.clone()))),
            }
        }
        let sent = if inputs.is_empty() {
            None
        } else {
            Some(client.upsert_contacts_with(permit, &inputs).await)
        };
        // Every outcome of the batch in one write transaction, at one moment.
        let mut w = self.db.write().await?;
        let batch = Settle {
            now: now_ms(),
            jitter: rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2),
        };
        let tx = &mut *w.tx;
        for (item, e) in unusable {
            self.mark_failed(tx, owner, item, &e, true, None, batch)
                .await?;
        }
        match sent {
            None => {}
            Some(Ok(results)) => {
                for (result, group) in results.into_iter().zip(groups) {
                    for item in group {
                        match &result {
                            Ok(done) => self.mark_sent(tx, owner, item.id, &done.id).await?,
                            Err(refused) => {
                                self.mark_failed(
                                    tx,
                                    owner,
                                    item,
                                    &format!("HubSpot refused it: {refused}"),
                                    true,
                                    None,
                                    batch,
                                )
                                .await?
                            }
                        }
                    }
                }
            }
            Some(Err(e)) => {
                // A 429 that reaches here outlived the client's own retries (a DAILY limit, or a
                // storm longer than HUBSPOT_TIMEOUT): wait until the window it names has room.
                let retry_after = match &e {
                    HubSpotError::Api { status: 429, body } => {
                        Some(RateLimitPolicy::of(body.policy_name.as_deref()).wait())
                    }
                    _ => None,
                };
                tracing::warn!(error = %crate::mask::text(&e.to_string()), items = items.len(), "outbox batch failed; will retry");
                for item in groups.into_iter().flatten() {
                    self.mark_failed(tx, owner, item, &e.to_string(), false, retry_after, batch)
                        .await?;
                }
            }
        }
        w.commit().await?;
        Ok(())
    }

    /// Runs the worker until `stop` resolves: sends while there is work, otherwise sleeps until
    /// woken by an enqueue or the next due time (at most 1 s). A batch in flight is finished;
    /// nothing is left claimed by a clean stop.
    pub async fn run(
        self,
        client: Arc<HubSpotClient>,
        owner: String,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut stop = stop;
        let mut last_check: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            if last_check.is_none_or(|at| at.elapsed() >= DEAD_LEASE_CHECK) {
                last_check = Some(tokio::time::Instant::now());
                if let Err(e) = self.release_dead_leases(&owner).await {
                    tracing::warn!(error = %e, "outbox worker: could not check for dead workers' leases");
                }
            }
            match self.try_once(&client, &owner).await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "outbox worker: database error; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
