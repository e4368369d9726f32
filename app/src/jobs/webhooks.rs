//! The webhook processor: for each contact HubSpot reported changed, read its current state
//! from HubSpot and refresh the cache (or drop the entry when HubSpot no longer has it). It
//! reads the contact instead of applying the event, so duplicate and out-of-order events are
//! harmless. A HubSpot failure leaves the events for the next step. It also deletes expired
//! events hourly.

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
}

impl Processor {
    pub fn new(inbox: Inbox, cache: Cache, portals: Portals) -> Self {
        Self {
            inbox,
            cache,
            portals,
            cleaned_at: None,
        }
    }

    /// One round: up to 100 events, each distinct contact read once. Returns events processed.
    pub async fn process_once(&self) -> Result<usize, ProcessError> {
        let events = self.inbox.unprocessed(100).await?;
        let mut seen = std::collections::BTreeSet::new();
        for event in &events {
            let key = (event.portal_id, event.object_id);
            if !event.subscription_type.starts_with("contact.") || !seen.insert(key) {
                continue;
            }
            let (kept_as, client) = self
                .portals
                .connection_for(event.portal_id.map(PortalId))
                .await?;
            let id = event.object_id.to_string();
            match client.contact_by_id(&id).await? {
                Some(object) => self.cache.put(kept_as, &object).await?,
                None => self.cache.remove(kept_as, &id).await?,
            }
        }
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        self.inbox.mark_processed(&ids).await?;
        self.inbox
            .stats
            .processed
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok(ids.len())
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
            Ok(0) => Next::After(Duration::from_secs(1)),
            Ok(_) => Next::Now,
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
