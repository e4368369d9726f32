//! Lifecycle events, the use case: [`Events::track`] (one event or a batch: validated, the
//! portal resolved, stored durably; HubSpot is never called here, so a producer never waits on
//! it or fails because of it) and [`Events::show`] (an event, the property changes it caused,
//! their delivery). `POST /api/events` and code running inside the app both come here.
//!
//! May import: `domain`, `store`, `connections`. Not `http`, not `hubspot` directly.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::connections::Portals;
use crate::domain::lifecycle::adapters::changes_of;
use crate::domain::lifecycle::config::LifecycleConfig;
use crate::domain::lifecycle::{self, Event, Invalid, MAX_BATCH};
use crate::domain::portal::PortalId;
use crate::store::lifecycle::{Accepted, Lifecycle};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("{0}")]
    Invalid(Invalid),
    #[error("portal {0} is not connected here")]
    UnknownPortal(u64),
    #[error("a batch holds 1 to {MAX_BATCH} events, got {0}")]
    BatchSize(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An event as `GET /api/events/{event_id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339.
    pub occurred_at: String,
    pub received_at: String,
    #[schema(value_type = Option<u64>)]
    pub portal: Option<u64>,
    /// The subject, its email masked.
    #[schema(value_type = Object)]
    pub subject: Value,
    #[schema(value_type = Object)]
    pub data: Value,
    /// The contact properties this event changed (its history before it, against its history
    /// up to it).
    pub changes: BTreeMap<String, String>,
    pub delivery: Delivery,
}

/// Where the event's changes stand.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// `pending`, `sent`, `previewed` (HUBSPOT_SEND_LIVE=false: checked, not sent), `dead`.
    pub state: String,
    /// The HubSpot contact, once it exists.
    pub hubspot_id: Option<String>,
    /// What the upsert key was: `email` or the external id property.
    pub id_property: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The last payload sent (or, previewed, that would have been sent).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// Previewed: what HubSpot would refuse.
    pub problems: Vec<String>,
    /// `none` (not for the timeline), `pending` or `sent`.
    pub timeline: String,
}

#[derive(Debug, Clone)]
pub struct Events {
    store: Lifecycle,
    config: Arc<LifecycleConfig>,
    portals: Portals,
    /// Events newly stored by this process (duplicates not counted), for the figures.
    stored: Arc<std::sync::atomic::AtomicU64>,
}

impl Events {
    pub fn new(store: Lifecycle, config: Arc<LifecycleConfig>, portals: Portals) -> Self {
        Self {
            store,
            config,
            portals,
            stored: Arc::default(),
        }
    }

    /// How many events this process has newly stored.
    pub fn stored(&self) -> u64 {
        self.stored.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn config(&self) -> &Arc<LifecycleConfig> {
        &self.config
    }

    /// Tracks one event from code running inside the app (same checks as the HTTP API).
    pub async fn track(&self, raw: &Value) -> Result<Accepted, TrackError> {
        let mut done = self.track_batch(std::slice::from_ref(raw)).await?;
        Ok(done.remove(0))
    }

    /// Validates every event (the first problem is the answer, nothing is stored), resolves
    /// their portals, and stores them in one transaction.
    pub async fn track_batch(&self, raws: &[Value]) -> Result<Vec<Accepted>, TrackError> {
        if raws.is_empty() || raws.len() > MAX_BATCH {
            return Err(TrackError::BatchSize(raws.len()));
        }
        let batch = raws.len() > 1;
        let mut events: Vec<Event> = Vec::with_capacity(raws.len());
        for (i, raw) in raws.iter().enumerate() {
            let e = lifecycle::parse(raw)
                .map_err(|e| TrackError::Invalid(if batch { e.at(i) } else { e }))?;
            events.push(e);
        }
        let mut resolved: BTreeMap<u64, Option<u64>> = BTreeMap::new();
        for e in &mut events {
            if let Some(p) = e.portal {
                let account = match resolved.get(&p) {
                    Some(a) => *a,
                    None => {
                        let a = self.account(p).await?;
                        resolved.insert(p, a);
                        a
                    }
                };
                e.portal = account;
            }
        }
        let config = self.config.clone();
        let accepted = self
            .store
            .accept(&events, |t| config.on_timeline(t))
            .await?;
        let new = accepted.iter().filter(|a| !a.duplicate).count() as u64;
        self.stored
            .fetch_add(new, std::sync::atomic::Ordering::Relaxed);
        Ok(accepted)
    }

    /// Where a named portal's events are kept: its own account, or the private-app one's
    /// (`None`) when that token serves it.
    async fn account(&self, portal: u64) -> Result<Option<u64>, TrackError> {
        match self.portals.connection_for(Some(PortalId(portal))).await {
            Ok((kept_as, _)) => Ok(kept_as.map(|p| p.0)),
            Err(crate::hubspot::HubSpotError::NotConnected(_)) => {
                Err(TrackError::UnknownPortal(portal))
            }
            // Known, but its client cannot be made now (HubSpot unreachable): kept under its id.
            Err(_) => match self.portals.is_known(PortalId(portal)).await? {
                true => Ok(Some(portal)),
                false => Err(TrackError::UnknownPortal(portal)),
            },
        }
    }

    /// One event with its changes and delivery; `None` when not stored here.
    pub async fn show(
        &self,
        portal: Option<u64>,
        event_id: &str,
    ) -> Result<Option<EventView>, TrackError> {
        let account = match portal {
            Some(p) => self.account(p).await?,
            None => None,
        }
        .map(PortalId);
        let Some(stored) = self.store.event(account, event_id).await? else {
            return Ok(None);
        };
        let history: Vec<Event> = self
            .store
            .history(account, &stored.subject_key)
            .await?
            .into_iter()
            .map(|s| s.event)
            .collect();
        let changes = changes_of(&history, event_id, &self.config);
        let subject = self.store.subject(account, &stored.subject_key).await?;
        let e = &stored.event;
        let delivery = match subject {
            Some(s) => Delivery {
                // In HubSpot once a delivery read it; else where its subject stands.
                state: if s.sent_seq >= stored.seq {
                    "sent".into()
                } else {
                    s.state.clone()
                },
                hubspot_id: s.hubspot_id,
                id_property: s.id_property,
                attempts: s.attempts,
                last_error: s.last_error,
                payload: s
                    .last_payload
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok())
                    .map(mask_payload),
                problems: s
                    .problems
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok())
                    .unwrap_or_default(),
                timeline: match stored.timeline {
                    0 => "none",
                    1 => "pending",
                    _ => "sent",
                }
                .into(),
            },
            None => Delivery {
                state: "pending".into(),
                hubspot_id: None,
                id_property: String::new(),
                attempts: 0,
                last_error: None,
                payload: None,
                problems: Vec::new(),
                timeline: "none".into(),
            },
        };
        let time = crate::domain::lifecycle::adapters::format_ms;
        Ok(Some(EventView {
            event_id: e.event_id.clone(),
            event_type: e.event_type.as_str().into(),
            occurred_at: time(e.occurred_at),
            received_at: time(stored.received_at),
            portal: e.portal,
            subject: serde_json::json!({
                "external_id": e.subject.external_id,
                "email": e.subject.email.as_ref().map(|m| crate::mask::email(m.as_str())),
            }),
            data: e.data.to_json(),
            changes,
            delivery,
        }))
    }
}

/// A payload as shown: emails and phones masked.
fn mask_payload(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        for (k, val) in m.iter_mut() {
            if let Some(s) = val.as_str() {
                if k == "email" {
                    *val = crate::mask::email(s).into();
                } else if k == "phone" || k == "mobilephone" {
                    *val = crate::mask::text(s).into();
                }
            }
        }
    }
    v
}
