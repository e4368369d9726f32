//! Subject leases held by workers that died ([`crate::store::leases`]).

use super::Lifecycle;
use crate::store::leases::{release_dead, Leased};
use crate::store::StoreResult;

impl Lifecycle {
    /// Releases the subject leases of workers provably dead; returns how many.
    pub async fn release_dead_leases(&self, me: &str) -> StoreResult<u64> {
        release_dead(&self.db, Leased::LifecycleSubjects, me).await
    }
}
