//! Leases left by workers that died: released at once when their death can be proven
//! ([`crate::identity`]), checked every [`DEAD_LEASE_CHECK`].

use std::time::Duration;

use super::Worker;

/// How often a worker looks for leases held by workers that died.
const DEAD_LEASE_CHECK: Duration = Duration::from_secs(1);

impl Worker {
    /// Every [`DEAD_LEASE_CHECK`], releases the leases of workers that died.
    pub(super) async fn release_dead_leases(&mut self) {
        let now = self.outbox.now_ms();
        if self
            .checked_at
            .is_some_and(|at| now - at < DEAD_LEASE_CHECK.as_millis() as i64)
        {
            return;
        }
        self.checked_at = Some(now);
        if let Err(e) = self.outbox.release_dead_leases(&self.owner).await {
            tracing::warn!(error = %e, "outbox worker: could not check for dead workers' leases");
        }
        if let Some(delivery) = &self.lifecycle {
            if let Err(e) = delivery.store().release_dead_leases(&self.owner).await {
                tracing::warn!(error = %e, "outbox worker: could not check for dead workers' lifecycle leases");
            }
        }
    }
}
