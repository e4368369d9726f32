//! Leases on subjects held by workers that died: released at once when their death can be
//! proven ([`crate::identity`]), so their subjects go out now, not when the lease expires.

use sqlx::Row;

use super::Lifecycle;
use crate::store::StoreResult;

impl Lifecycle {
    /// Releases the subject leases of workers provably dead; returns how many.
    pub async fn release_dead_leases(&self, me: &str) -> StoreResult<u64> {
        let now = self.db.now_ms();
        let owners: Vec<String> = sqlx::query(
            "SELECT DISTINCT lease_owner FROM lifecycle_subjects
             WHERE state = 'pending' AND lease_until >= $1 AND lease_owner <> $2",
        )
        .bind(now)
        .bind(me)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|row| row.get("lease_owner"))
        .collect();
        let mut released = 0;
        for owner in owners
            .iter()
            .filter(|o| crate::identity::is_provably_dead(o))
        {
            let mut w = self.db.write().await?;
            released += sqlx::query(
                "UPDATE lifecycle_subjects SET lease_owner = NULL, lease_until = NULL
                 WHERE state = 'pending' AND lease_owner = $1",
            )
            .bind(owner)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            w.commit().await?;
            tracing::warn!(owner, "released the lifecycle leases of a worker that died");
        }
        Ok(released)
    }
}
