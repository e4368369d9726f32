//! Settling a batch ([`Outbox::settle`]): every claimed item's outcome recorded in one write
//! transaction, with the backoff of the items that go back to pending.

use std::time::Duration;

use super::{Item, Outbox};
use crate::domain::outbox::ItemState;
use crate::store::StoreResult;

impl Outbox {
    /// Records how each claimed item of one batch ended, in one write transaction and at one
    /// moment, with one jitter, so a failed batch comes due again whole (one claim, one call),
    /// not split across claims. Only the lease holder's rows change.
    pub async fn settle(&self, owner: &str, outcomes: &[Outcome<'_>]) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        let batch = Settle {
            now: self.db.now_ms(),
            jitter: rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2),
        };
        for outcome in outcomes {
            match outcome {
                Outcome::Sent { item, hubspot_id } => {
                    self.mark_sent(&mut w.tx, owner, item.id, hubspot_id)
                        .await?
                }
                Outcome::Failed {
                    item,
                    error,
                    fatal,
                    retry_after,
                } => {
                    self.mark_failed(&mut w.tx, owner, item, error, *fatal, *retry_after, batch)
                        .await?
                }
                Outcome::Held { item, reason, wait } => {
                    sqlx::query(
                        "UPDATE outbox SET next_attempt_at = $1, last_error = $2,
                             lease_owner = NULL, lease_until = NULL, updated_at = $3
                         WHERE id = $4 AND lease_owner = $5",
                    )
                    .bind(batch.now + wait.as_millis() as i64)
                    .bind(crate::mask::text(reason))
                    .bind(batch.now)
                    .bind(item.id)
                    .bind(owner)
                    .execute(&mut *w.tx)
                    .await?;
                }
            }
        }
        w.commit().await
    }

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
        .bind(self.db.now_ms())
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
        .bind(
            if dead {
                ItemState::Dead
            } else {
                ItemState::Pending
            }
            .as_str(),
        )
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
}

/// How one claimed item of a batch ended.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    Sent {
        item: &'a Item,
        hubspot_id: String,
    },
    /// Back to pending after a backoff (or `retry_after`), or dead when `fatal` or out of
    /// attempts.
    Failed {
        item: &'a Item,
        error: String,
        fatal: bool,
        retry_after: Option<Duration>,
    },
    /// Not sent, and not an attempt: its portal is not connected now (reauthorization
    /// required). It waits, pending, and is tried again after `wait`.
    Held {
        item: &'a Item,
        reason: String,
        wait: Duration,
    },
}

/// What the items of one batch share when settled.
#[derive(Debug, Clone, Copy)]
struct Settle {
    now: i64,
    jitter: f64,
}
