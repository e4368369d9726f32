//! The queue of HubSpot GDPR deletes (`privacy_deletes`): leased claims, settling (the sealed
//! email cleared once HubSpot has it; retried after a pause, dead after 8 attempts).

use sqlx::Row;

use super::PrivacyStore;
use crate::store::StoreResult;

impl PrivacyStore {
    /// Claims up to `n` due HubSpot deletes for `owner` for `lease_ms`: (id, portal, key,
    /// by_email, reference).
    pub async fn claim_deletes(
        &self,
        owner: &str,
        lease_ms: i64,
        n: i64,
    ) -> StoreResult<Vec<(i64, i64, String, bool, String)>> {
        let now = self.db.now_ms();
        let until = now + lease_ms;
        let mut w = self.db.write().await?;
        let rows = sqlx::query(
            "UPDATE privacy_deletes SET lease_owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM privacy_deletes WHERE state = 'pending'
                 AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
                 ORDER BY id LIMIT $4)
             RETURNING id, portal_key, hubspot_id, email_sealed, reference",
        )
        .bind(owner)
        .bind(until)
        .bind(now)
        .bind(n)
        .fetch_all(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let portal: i64 = r.get("portal_key");
                let reference: String = r.get("reference");
                let id: i64 = r.get("id");
                match (
                    r.get::<Option<String>, _>("hubspot_id"),
                    r.get::<Option<String>, _>("email_sealed"),
                ) {
                    (Some(hs), _) => Some((id, portal, hs, false, reference)),
                    (None, Some(sealed)) => {
                        let email = self
                            .sealer
                            .as_ref()?
                            .open(&sealed, &format!("privacy_deletes:{portal}:{reference}"))?;
                        Some((id, portal, email, true, reference))
                    }
                    _ => None,
                }
            })
            .collect())
    }

    /// Settles a claimed delete: sent (the sealed email cleared), or retried after `retry_in`
    /// ms, dead after 8 attempts.
    pub async fn settle_delete(
        &self,
        id: i64,
        error: Option<&str>,
        retry_in: i64,
    ) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        match error {
            None => {
                sqlx::query(
                    "UPDATE privacy_deletes SET state = 'sent', email_sealed = NULL, lease_owner = NULL,
                         lease_until = NULL, last_error = NULL, attempts = attempts + 1, updated_at = $1
                     WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
            }
            Some(err) => {
                sqlx::query(
                    "UPDATE privacy_deletes SET attempts = attempts + 1, lease_owner = NULL, lease_until = NULL,
                         last_error = $1, next_attempt_at = $2, updated_at = $3,
                         state = CASE WHEN attempts + 1 >= 8 THEN 'dead' ELSE 'pending' END
                     WHERE id = $4",
                )
                .bind(err)
                .bind(now + retry_in)
                .bind(now)
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        w.commit().await
    }
}
