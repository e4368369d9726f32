//! The webhook processor: for each record HubSpot reported changed (contacts, and every type of
//! `SYNC_OBJECTS`), read its current state from the event's portal and store it (contacts also
//! in the lookup cache), or archive it locally when HubSpot no longer has it. It reads the record
//! instead of applying the event, so duplicate and out-of-order events are harmless. An
//! association change marks both records for an association read, done in the same round; a
//! merge re-points the merged records' edges to the survivor and archives them. A HubSpot
//! failure leaves that portal's events for later and rests the portal for [`REST`]; the other
//! portals' events go on meanwhile. A contact's `privacyDeletion` erases what is held about
//! them here ([`crate::privacy`]). It also deletes expired events hourly.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::sync::Sync;
use super::{Job, Next};
use crate::connections::Portals;
use crate::domain::event::Change;
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;
use crate::store::cache::Cache;
use crate::store::inbox::Inbox;
use crate::store::objects::Objects;

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

impl From<super::sync::SyncError> for ProcessError {
    fn from(e: super::sync::SyncError) -> Self {
        match e {
            super::sync::SyncError::HubSpot(e) => ProcessError::HubSpot(e),
            super::sync::SyncError::Store(e) => ProcessError::Store(e),
            other => ProcessError::Store(crate::store::StoreError::Data(other.to_string())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Processor {
    inbox: Inbox,
    cache: Cache,
    objects: Objects,
    /// The synced types (which events are stored) and the association reads.
    sync: Sync,
    /// Each event is read back from its own portal.
    portals: Portals,
    /// A `privacyDeletion` erases locally.
    privacy: crate::privacy::Privacy,
    /// When (on the store's clock) expired events were last deleted.
    cleaned_at: Option<i64>,
    /// Portals (`None`: events without one) whose HubSpot failed, until when (store clock).
    resting: HashMap<Option<u64>, i64>,
}

impl Processor {
    pub fn new(
        inbox: Inbox,
        cache: Cache,
        objects: Objects,
        sync: Sync,
        portals: Portals,
        privacy: crate::privacy::Privacy,
    ) -> Self {
        Self {
            privacy,
            inbox,
            cache,
            objects,
            sync,
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
            let change = event.change();
            if seen.insert((event.portal_id, format!("{change:?}"))) {
                if let Err(e) = self.apply(event.portal_id, change).await {
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

    /// Applies one event's change, reading from its portal.
    async fn apply(&self, portal: Option<u64>, change: Change) -> Result<(), ProcessError> {
        if change == Change::Ignored {
            return Ok(());
        }
        if let Change::PrivacyDeleted { id } = &change {
            // HubSpot has deleted the contact: nothing to read, everything here to erase.
            let (key, _) = self.portals.connection_for(portal.map(PortalId)).await?;
            let (reference, erased) = self
                .privacy
                .erase_contact(crate::store::portal_key(key), id)
                .await?;
            tracing::info!(reference, ?erased, "privacyDeletion: erased locally");
            return Ok(());
        }
        let (kept_as, client) = self.portals.connection_for(portal.map(PortalId)).await?;
        let sync = self.sync.for_portal(kept_as).with_portal_types().await?;
        let synced = |t: ObjectType| sync.types().contains(&t);
        let relevant = match &change {
            Change::Record { object_type, .. } | Change::Merge { object_type, .. } => {
                *object_type == ObjectType::Contacts || synced(*object_type)
            }
            Change::Association { from, to } => synced(from.0) || synced(to.0),
            Change::Ignored | Change::PrivacyDeleted { .. } => false,
        };
        if !relevant {
            return Ok(());
        }
        match change {
            Change::Record { object_type, id } => {
                self.refresh(kept_as, &client, object_type, &id).await
            }
            Change::Association { from, to } => {
                for (object_type, id) in [from, to] {
                    if synced(object_type)
                        && self
                            .objects
                            .mark_edges_due(kept_as, object_type, &id)
                            .await?
                    {
                        sync.for_type(object_type).read_edges(&client, 1).await?;
                    }
                }
                Ok(())
            }
            Change::Merge {
                object_type,
                primary,
                merged,
            } => {
                if object_type == ObjectType::Contacts {
                    for id in &merged {
                        self.cache.remove(kept_as, id).await?;
                    }
                }
                if synced(object_type) {
                    self.objects
                        .merge(kept_as, object_type, &primary, &merged)
                        .await?;
                }
                self.refresh(kept_as, &client, object_type, &primary).await
            }
            Change::Ignored | Change::PrivacyDeleted { .. } => Ok(()),
        }
    }

    /// Reads one record from its portal: stored (contacts also cached) with the portal's
    /// mapped fields, or archived here when HubSpot no longer has it; then its associations,
    /// when its type is synced.
    async fn refresh(
        &self,
        portal: Option<PortalId>,
        client: &crate::hubspot::HubSpotClient,
        object_type: ObjectType,
        id: &str,
    ) -> Result<(), ProcessError> {
        let sync = self
            .sync
            .for_portal(portal)
            .for_type(object_type)
            .prepared_with(client)
            .await?;
        let found = client
            .get_object(object_type, id, None, &sync.properties())
            .await?;
        if !sync.types().contains(&object_type) {
            // Contacts are cached whether or not they are synced.
            match &found {
                Some(object) => self.cache.put(portal, object).await?,
                None => self.cache.remove(portal, id).await?,
            }
            return Ok(());
        }
        match found {
            Some(object) => {
                sync.store(std::slice::from_ref(&object)).await?;
                sync.read_edges(client, 1).await?;
            }
            None => {
                if object_type == ObjectType::Contacts {
                    self.cache.remove(portal, id).await?;
                }
                self.objects.archive(portal, object_type, id).await?;
            }
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
