//! Leases held by workers that died, for every leased queue (`outbox`,
//! `lifecycle_subjects`): released at once when the holder can be proven dead (same machine
//! and PID namespace, process gone: [`crate::identity`]), instead of when the lease expires.

use sqlx::Row;

use super::{Db, StoreResult};

/// The leased queues: a table with `state`, `lease_owner` and `lease_until`.
#[derive(Debug, Clone, Copy)]
pub enum Leased {
    Outbox,
    LifecycleSubjects,
}

impl Leased {
    fn table(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::LifecycleSubjects => "lifecycle_subjects",
        }
    }
}

/// Releases the pending rows of `queue` leased by workers other than `me` that are provably
/// dead. Returns how many rows were released.
pub async fn release_dead(db: &Db, queue: Leased, me: &str) -> StoreResult<u64> {
    let table = queue.table();
    let now = db.now_ms();
    let owners: Vec<String> = sqlx::query(&format!(
        "SELECT DISTINCT lease_owner FROM {table}
         WHERE state = 'pending' AND lease_until >= $1 AND lease_owner <> $2"
    ))
    .bind(now)
    .bind(me)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| row.get("lease_owner"))
    .collect();
    let mut released = 0;
    for owner in owners
        .iter()
        .filter(|o| crate::identity::is_provably_dead(o))
    {
        let mut w = db.write().await?;
        released += sqlx::query(&format!(
            "UPDATE {table} SET lease_owner = NULL, lease_until = NULL
             WHERE state = 'pending' AND lease_owner = $1"
        ))
        .bind(owner)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        tracing::warn!(owner, table, "released the leases of a worker that died");
    }
    Ok(released)
}
