//! `lifecycle_events` and `lifecycle_subjects`: the product's lifecycle events, stored once
//! per `(portal, event_id)`, and per subject the delivery of the properties its history
//! derives ([`crate::domain::lifecycle::adapters`]).
//!
//! - **Accepting** a batch is one write transaction: subjects resolved (by external id, then
//!   by email; an email-only subject that later gets its external id keeps its row and its
//!   upsert key), new events inserted (`ON CONFLICT DO NOTHING`: a repeat is reported as a
//!   duplicate and changes nothing), each touched subject marked due (`last_seq`).
//! - **Delivering** ([`delivery`]) claims due subjects with a lease, as the contacts outbox
//!   does; what is sent is derived from every stored event at send time, and settling records
//!   the newest event read (`sent_seq`), so an event stored during a send makes its subject
//!   due again: no event is ever left out, and a resend sends the same values.

mod accept;
mod delivery;
mod leases;
mod settle;
mod timeline;

use serde_json::{json, Value};
use sqlx::Row;

use super::{portal_key, Db, StoreResult};
use crate::domain::contact::Email;
use crate::domain::lifecycle::{Data, Event, EventType, Subject};
use crate::domain::portal::PortalId;

pub use delivery::{Claimed, LifecycleDepth, Sent};
pub use timeline::TimelineItem;

/// What became of one accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub event_id: String,
    /// Stored before (same portal and `event_id`): nothing changed.
    pub duplicate: bool,
}

/// A stored event with where it stands.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: Event,
    pub subject_key: String,
    pub received_at: i64,
    /// 0: not for the timeline, 1: due there, 2: sent there.
    pub timeline: i64,
}

/// A subject's row, as [`Lifecycle::subject`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    pub key: String,
    pub id_property: String,
    pub state: String,
    pub sent_seq: i64,
    pub last_seq: i64,
    pub hubspot_id: Option<String>,
    pub last_error: Option<String>,
    pub last_payload: Option<String>,
    pub problems: Option<String>,
    pub attempts: i64,
}

#[derive(Debug, Clone)]
pub struct Lifecycle {
    db: Db,
    wake: std::sync::Arc<tokio::sync::Notify>,
    keys: Keys,
    /// How long a claim is held (`OUTBOX_LEASE`, as the contact writes').
    lease: std::time::Duration,
}

/// What keys a subject's HubSpot record, by the prefix of its key: `u:` the user's external
/// id property, `e:` email, `m:` the merchant id property (a company).
#[derive(Debug, Clone)]
pub struct Keys {
    pub external_id_property: String,
    pub merchant_id_property: String,
}

impl Keys {
    pub fn id_property<'a>(&'a self, subject: &str) -> &'a str {
        match subject.split_once(':').map(|(p, _)| p) {
            Some("u") => &self.external_id_property,
            Some("m") => &self.merchant_id_property,
            _ => "email",
        }
    }

    /// Whether the subject is a merchant's company.
    pub fn is_company(subject: &str) -> bool {
        Self::merchant_of(subject).is_some()
    }

    /// The subject key of a merchant's company.
    pub fn company(merchant_id: &str) -> String {
        format!("m:{merchant_id}")
    }

    /// The merchant id of a company's subject key; `None` for a user.
    pub fn merchant_of(subject: &str) -> Option<&str> {
        subject.strip_prefix("m:")
    }
}

/// A subject as resolved while accepting.
#[derive(Debug, Clone)]
struct Known {
    key: String,
    external_id: Option<String>,
    email: Option<String>,
}

impl Lifecycle {
    pub fn new(db: Db, keys: Keys) -> Self {
        Self {
            db,
            wake: Default::default(),
            keys,
            lease: std::time::Duration::from_secs(60),
        }
    }

    /// Claims held this long (longer than a call to HubSpot may take).
    pub fn with_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Shared with the outbox worker: notified when events are accepted.
    pub fn with_wake(mut self, wake: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.wake = wake;
        self
    }

    pub fn now_ms(&self) -> i64 {
        self.db.now_ms()
    }

    /// One event by id, with where it stands.
    pub async fn event(
        &self,
        portal: Option<PortalId>,
        event_id: &str,
    ) -> StoreResult<Option<StoredEvent>> {
        let row = sqlx::query(
            "SELECT seq, event_id, event_type, occurred_at, subject, body, received_at, timeline
             FROM lifecycle_events WHERE portal_key = $1 AND event_id = $2",
        )
        .bind(portal_key(portal))
        .bind(event_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| stored_event(portal, &r)).transpose()
    }

    /// Every stored event of a subject.
    pub async fn history(
        &self,
        portal: Option<PortalId>,
        subject: &str,
    ) -> StoreResult<Vec<StoredEvent>> {
        sqlx::query(
            "SELECT seq, event_id, event_type, occurred_at, subject, body, received_at, timeline
             FROM lifecycle_events WHERE portal_key = $1 AND subject = $2 ORDER BY seq",
        )
        .bind(portal_key(portal))
        .bind(subject)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| stored_event(portal, r))
        .collect()
    }

    /// A subject's delivery row.
    pub async fn subject(
        &self,
        portal: Option<PortalId>,
        subject: &str,
    ) -> StoreResult<Option<SubjectRow>> {
        let row = sqlx::query(
            "SELECT subject, id_property, state, sent_seq, last_seq, hubspot_id, last_error, last_payload, problems, attempts
             FROM lifecycle_subjects WHERE portal_key = $1 AND subject = $2",
        )
        .bind(portal_key(portal))
        .bind(subject)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|r| SubjectRow {
            key: r.get("subject"),
            id_property: r.get("id_property"),
            state: r.get("state"),
            sent_seq: r.get("sent_seq"),
            last_seq: r.get("last_seq"),
            hubspot_id: r.get("hubspot_id"),
            last_error: r.get("last_error"),
            last_payload: r.get("last_payload"),
            problems: r.get("problems"),
            attempts: r.get("attempts"),
        }))
    }
}

fn body(e: &Event) -> Value {
    json!({
        "subject": {
            "external_id": e.subject.external_id,
            "email": e.subject.email.as_ref().map(Email::as_str),
            "phone": e.subject.phone,
        },
        "data": e.data.to_json(),
    })
}

fn stored_event(portal: Option<PortalId>, r: &sqlx::any::AnyRow) -> StoreResult<StoredEvent> {
    let body: Value = serde_json::from_str(r.get::<&str, _>("body"))?;
    let raw_type: String = r.get("event_type");
    let event_type: EventType = raw_type
        .parse()
        .map_err(|e: String| super::StoreError::Data(e))?;
    let s = &body["subject"];
    let text = |v: &Value| v.as_str().map(str::to_string);
    let event = Event {
        event_id: r.get("event_id"),
        event_type,
        occurred_at: r.get("occurred_at"),
        portal: portal.map(|p| p.0),
        subject: Subject {
            external_id: text(&s["external_id"]),
            email: s["email"].as_str().and_then(|m| Email::parse(m).ok()),
            phone: text(&s["phone"]),
        },
        data: Data::from_stored(event_type, &body["data"])
            .map_err(|e| super::StoreError::Data(e.to_string()))?,
    };
    Ok(StoredEvent {
        seq: r.get("seq"),
        event,
        subject_key: r.get("subject"),
        received_at: r.get("received_at"),
        timeline: r.get("timeline"),
    })
}
