//! Taking work from the queue: what is due and when, which portal's queue goes next in the
//! worker's round, the leased claim of a batch, the release of dead workers' leases, and a
//! reconnected portal's waiting items.

use sqlx::Row;

use super::{Item, Outbox, BATCH, ITEM_COLUMNS};
use crate::domain::portal::PortalId;
use crate::store::StoreResult;

impl Outbox {
    /// A portal is connected again: its waiting items are due now. Returns how many.
    pub async fn resume(&self, portal: PortalId) -> StoreResult<u64> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let resumed = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1
             WHERE portal_id = $2 AND state = 'pending' AND next_attempt_at > $1
               AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(now)
        .bind(portal.0 as i64)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        self.wake.notify_one();
        Ok(resumed)
    }

    /// The next portal with due work after `after` in the round the worker makes: the single
    /// account's queue (`None` inside) first, then portals by hub id, then round again. `after`
    /// `None` starts a round. `None` outside: nothing is due anywhere.
    ///
    /// Each question is one index walk (`outbox_due_portal`), however long a portal's backlog.
    pub async fn next_portal_after(
        &self,
        after: Option<Option<PortalId>>,
    ) -> StoreResult<Option<Option<PortalId>>> {
        let now = self.db.now_ms();
        const DUE: &str = "state = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until < $1)";
        let due_here = |floor: Option<i64>| async move {
            match floor {
                None => {
                    let sql = format!(
                        "SELECT portal_id FROM outbox WHERE portal_id IS NULL AND {DUE} LIMIT 1"
                    );
                    sqlx::query(&sql)
                        .bind(now)
                        .fetch_optional(self.db.pool())
                        .await
                }
                Some(floor) => {
                    let sql = format!(
                        "SELECT portal_id FROM outbox WHERE portal_id > $2 AND {DUE}
                         ORDER BY portal_id LIMIT 1"
                    );
                    sqlx::query(&sql)
                        .bind(now)
                        .bind(floor)
                        .fetch_optional(self.db.pool())
                        .await
                }
            }
        };
        if after.is_none() && due_here(None).await?.is_some() {
            return Ok(Some(None));
        }
        let floor = after.flatten().map_or(-1, |p| p.0 as i64);
        if let Some(row) = due_here(Some(floor)).await? {
            let portal: Option<i64> = row.get("portal_id");
            return Ok(Some(portal.map(|p| PortalId(p as u64))));
        }
        // The round is over: start the next, unless this question already did.
        match after {
            None => Ok(None),
            Some(_) => Box::pin(self.next_portal_after(None)).await,
        }
    }

    /// [`claim_from`](Self::claim_from) the single account's queue.
    pub async fn claim(&self, owner: &str) -> StoreResult<Vec<Item>> {
        self.claim_from(owner, None).await
    }

    /// Claims, for `owner` and atomically, from `portal`'s queue, the due heads of up to
    /// [`BATCH`] emails (a head is the oldest pending item of its email, unclaimed) and, with
    /// each, the newer pending items of that email, which are folded into it when sent.
    /// Nothing newer than an unsettled item is ever claimed without it.
    pub async fn claim_from(
        &self,
        owner: &str,
        portal: Option<PortalId>,
    ) -> StoreResult<Vec<Item>> {
        let portal = portal.map(|p| p.0 as i64);
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let items = sqlx::query_as::<_, Item>(&format!(
            // The lease condition is repeated outside the subquery: on PostgreSQL a concurrent
            // claim of the same rows waits, then re-checks them and finds them leased, so it
            // skips them (SQLite runs one writer at a time anyway). A head being the oldest
            // pending item of its email, no item of that email is leased when it is claimed.
            "UPDATE outbox SET lease_owner = $1, lease_until = $2
             WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < $3)
               AND portal_id IS NOT DISTINCT FROM $5
               AND email IN (
                 SELECT h.email FROM outbox h
                 WHERE h.state = 'pending' AND h.next_attempt_at <= $3
                   AND h.portal_id IS NOT DISTINCT FROM $5
                   AND (h.lease_until IS NULL OR h.lease_until < $3)
                   AND NOT EXISTS (
                     SELECT 1 FROM outbox o
                     WHERE o.email = h.email AND o.portal_id IS NOT DISTINCT FROM $5
                       AND o.state = 'pending' AND o.id < h.id)
                 ORDER BY h.id LIMIT $4)
             RETURNING {ITEM_COLUMNS}"
        ))
        .bind(owner)
        .bind(now + self.config.lease.as_millis() as i64)
        .bind(now)
        .bind(BATCH)
        .bind(portal)
        .fetch_all(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(items)
    }

    /// Releases the leases of workers that are provably dead (same machine and PID namespace,
    /// process gone: [`crate::identity`]), so their items are sent now instead of when the
    /// lease expires. Returns how many items were released.
    pub async fn release_dead_leases(&self, me: &str) -> StoreResult<u64> {
        crate::store::leases::release_dead(&self.db, crate::store::leases::Leased::Outbox, me).await
    }
}
