//! The webhook processor: for each contact HubSpot reported changed, read its current state
//! from the event's portal and refresh that portal's cache (or drop the entry when HubSpot no
//! longer has it). It reads the contact instead of applying the event, so duplicate and
//! out-of-order events are harmless. A HubSpot failure leaves that portal's events for later
//! and rests the portal for [`REST`]; the other portals' events go on meanwhile. It also
//! deletes expired events hourly.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Job, Next};
use crate::connections::Portals;
use crate::domain::portal::PortalId;
use crate::store::cache::Cache;
use crate::store::inbox::Inbox;

/// How often processed events past their keep time are deleted.
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);
/// How long a portal whose HubSpot failed waits before its events are tried again.
pub const REST: Duration = Duration::from_secs(5);

/// Why a processing round stopped: HubSpot (the events stay unprocessed, retried next round)
/// or the store.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("HubSpot: {0}")]
    HubSpot(#[from] crate::hubspot::HubSpotError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[derive(Debug, Clone)]
pub struct Processor {
    inbox: Inbox,
    cache: Cache,
    /// Each event is read back from its own portal.
    portals: Portals,
    /// When (on the store's clock) expired events were last deleted.
    cleaned_at: Option<i64>,
    /// Portals (`None`: events without one) whose HubSpot failed, until when (store clock).
    resting: HashMap<Option<u64>, i64>,
}

impl Processor {
    pub fn new(inbox: Inbox, cache: Cache, portals: Portals) -> Self {
        Self {
            inbox,
            cache,
            portals,
            cleaned_at: None,
            resting: HashMap::new(),
        }
    }

    /// One round: up to 100 events of the portals not resting, each distinct contact read
    /// once. A portal whose HubSpot fails keeps its events and rests for [`REST`]. Returns the
    /// events processed, and the first HubSpot failure if there was one.
    pub async fn process_once(
        &mut self,
    ) -> Result<(usize, Option<crate::hubspot::HubSpotError>), ProcessError> {
        let now = self.inbox.now_ms();
        self.resting.retain(|_, until| *until > now);
        let resting: Vec<Option<u64>> = self.resting.keys().copied().collect();
        let events = self.inbox.unprocessed(100, &resting).await?;
        let mut seen = std::collections::BTreeSet::new();
        let (mut done, mut failed) = (Vec::new(), None);
        for event in &events {
            if self.resting.contains_key(&event.portal_id) {
                continue; // failed earlier in this round: left for later
            }
            let key = (event.portal_id, event.object_id);
            if event.subscription_type.starts_with("contact.") && seen.insert(key) {
                if let Err(e) = self.apply(event.portal_id, event.object_id).await {
                    let ProcessError::HubSpot(e) = e else {
                        return Err(e);
                    };
                    self.resting
                        .insert(event.portal_id, now + REST.as_millis() as i64);
                    failed.get_or_insert(e);
                    continue;
                }
            }
            done.push(event.id);
        }
        let ids = done;
        self.inbox.mark_processed(&ids).await?;
        self.inbox
            .stats
            .processed
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok((ids.len(), failed))
    }

    /// Reads one changed contact from its portal into that portal's cache.
    async fn apply(&self, portal: Option<u64>, object_id: i64) -> Result<(), ProcessError> {
        let (kept_as, client) = self.portals.connection_for(portal.map(PortalId)).await?;
        let id = object_id.to_string();
        match client.contact_by_id(&id).await? {
            Some(object) => self.cache.put(kept_as, &object).await?,
            None => self.cache.remove(kept_as, &id).await?,
        }
        Ok(())
    }
}

impl Job for Processor {
    const NAME: &'static str = "webhook processor";

    async fn step(&mut self) -> Next {
        let now = self.inbox.now_ms();
        if self
            .cleaned_at
            .is_none_or(|at| now - at >= CLEANUP_EVERY.as_millis() as i64)
        {
            self.cleaned_at = Some(now);
            if let Err(e) = self.inbox.cleanup().await {
                tracing::warn!(error = %e, "webhook event cleanup failed");
            }
        }
        match self.process_once().await {
            Ok((n, failed)) => {
                if let Some(e) = failed {
                    tracing::warn!(error = %crate::mask::text(&e.to_string()), "webhook processing: HubSpot failed for a portal; its events wait, the others go on");
                }
                if n == 0 {
                    Next::After(Duration::from_secs(1))
                } else {
                    Next::Now
                }
            }
            Err(e) => {
                tracing::warn!(error = %crate::mask::text(&format!("{e:#}")), "webhook processing failed; retrying in 5 s");
                Next::After(Duration::from_secs(5))
            }
        }
    }

    fn waker(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.inbox.wake())
    }
}
