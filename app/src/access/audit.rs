//! The audit, as the use cases record it: a caller, where they called from, an action, the
//! person it was about (hashed here, with the key ring's blind index, before the store sees
//! it), the HubSpot id and the outcome. Lookups and searches are audited while
//! `HUBSPOT_AUDIT_ENABLED` is on; admin, privacy, flag and user actions always are.

use std::sync::Arc;

use super::{Caller, Flags};
use crate::domain::access::Flag;
use crate::domain::portal::PortalId;
use crate::domain::privacy::{PersonKey, SharedSealer};
use crate::store::audit::{Audit, AuditEntry, Filter, Record};
use crate::store::StoreResult;

/// Where a request came from: the client's address (nginx's `X-Real-IP`) and user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What an audited action was about.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// A person, by email or phone: stored as its blind index.
    pub person: Option<PersonKey>,
    /// Not a person: `user bob`, `flag …`, `name query` (never a value that identifies one).
    pub thing: Option<String>,
    pub hubspot_id: Option<String>,
    pub portal: Option<PortalId>,
}

impl About {
    pub fn person(key: PersonKey) -> Self {
        Self {
            person: Some(key),
            ..Self::default()
        }
    }

    pub fn thing(what: impl Into<String>) -> Self {
        Self {
            thing: Some(what.into()),
            ..Self::default()
        }
    }

    pub fn in_portal(mut self, portal: Option<PortalId>) -> Self {
        self.portal = portal;
        self
    }

    pub fn with_hubspot_id(mut self, id: Option<String>) -> Self {
        self.hubspot_id = id;
        self
    }
}

/// Whether an action is a lookup or a search (under `HUBSPOT_AUDIT_ENABLED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lookup,
    Always,
}

#[derive(Debug, Clone)]
pub struct Auditor {
    store: Audit,
    sealer: Option<SharedSealer>,
    flags: Arc<Flags>,
}

impl Auditor {
    pub fn new(store: Audit, sealer: Option<SharedSealer>, flags: Arc<Flags>) -> Self {
        Self {
            store,
            sealer,
            flags,
        }
    }

    /// The blind indexes of a person under every key (for finding their entries).
    pub fn hashes(&self, person: &PersonKey) -> Vec<String> {
        self.hashes_of(&person.indexed())
    }

    /// [`hashes`](Self::hashes) of an already indexed value (`email:…`, `phone:…`).
    pub fn hashes_of(&self, indexed: &str) -> Vec<String> {
        self.sealer
            .as_ref()
            .map(|s| s.blind(indexed))
            .unwrap_or_default()
    }

    /// Records one action. A failure to record is logged, never fatal to the action.
    pub async fn record(
        &self,
        caller: &Caller,
        origin: &Origin,
        kind: Kind,
        action: &str,
        about: About,
        outcome: &str,
    ) {
        if kind == Kind::Lookup && !self.flags.is_on(Flag::HubspotAuditEnabled) {
            return;
        }
        let subject = match (&about.person, &about.thing) {
            (Some(p), _) => p.kind().to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "-".into(),
        };
        let record = Record {
            actor: caller.name.clone(),
            role: caller.role.as_str().into(),
            action: action.into(),
            subject,
            subject_hash: about
                .person
                .as_ref()
                .and_then(|p| self.hashes(p).into_iter().next()),
            hubspot_id: about.hubspot_id,
            portal_key: about.portal.map(|p| p.0 as i64),
            outcome: crate::mask::text(outcome),
            ip: origin.ip.clone(),
            user_agent: origin
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(300).collect()),
        };
        if let Err(e) = self.store.record(&record).await {
            tracing::warn!(error = %e, action, "could not write the audit log");
        }
    }

    pub async fn list(&self, filter: &Filter) -> StoreResult<Vec<AuditEntry>> {
        self.store.list(filter).await
    }

    pub fn store(&self) -> &Audit {
        &self.store
    }
}
