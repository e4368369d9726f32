//! GDPR access and erasure, a use case: everything the app holds about a person, found from
//! their email or phone ([`Privacy::export`]), and removed ([`Privacy::erase`]), optionally with
//! HubSpot's GDPR delete queued for each of their contacts (sent by [`crate::jobs::privacy`]).
//! HubSpot's `privacyDeletion` webhook erases locally too ([`Privacy::erase_contact`]).
//!
//! A person is found in the cache by the blind indexes of their email and phone, which gives
//! their HubSpot ids and their other identifier (a phone request finds the email, and back);
//! from those, the outbox, lifecycle events, synced records, search history and audit.
//!
//! May not import: `axum`, `sqlx`, `crate::http`.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::access::Auditor;
use crate::domain::contact::{phone_key, Contact};
use crate::domain::privacy::PersonKey;
use crate::store::audit::{AuditEntry, Filter};
use crate::store::cache::Cache;
use crate::store::history::{History, PastSearch};
use crate::store::privacy::{ContactRef, Erased, Erasure, Held, PrivacyStore};
use crate::store::StoreResult;

#[derive(Debug, Clone)]
pub struct Privacy {
    cache: Cache,
    history: History,
    store: PrivacyStore,
    auditor: Auditor,
}

/// A cached contact in an export.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CachedContact {
    pub portal: i64,
    pub hubspot_id: String,
    pub contact: Contact,
}

/// Everything held about a person.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub cache: Vec<CachedContact>,
    /// Contact writes on their way to HubSpot (or sent, dead).
    #[schema(value_type = Vec<Object>)]
    pub outbox: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub lifecycle_subjects: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub lifecycle_events: Vec<Value>,
    /// Synced contact records (with the portal's mapped fields).
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Value>,
    /// Audit entries about them (by hashed email or phone), but privacy requests themselves.
    pub audit: Vec<AuditEntry>,
    pub search_history: Vec<PastSearch>,
}

impl Export {
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
            && self.outbox.is_empty()
            && self.lifecycle_subjects.is_empty()
            && self.lifecycle_events.is_empty()
            && self.records.is_empty()
            && self.audit.is_empty()
            && self.search_history.is_empty()
    }
}

/// What was found, with what is needed to erase it.
struct Found {
    export: Export,
    held: Held,
    emails: Vec<String>,
    contacts: Vec<ContactRef>,
    hashes: Vec<String>,
    history_ids: Vec<i64>,
}

impl Privacy {
    pub fn new(cache: Cache, history: History, store: PrivacyStore, auditor: Auditor) -> Self {
        Self {
            cache,
            history,
            store,
            auditor,
        }
    }

    pub fn store(&self) -> &PrivacyStore {
        &self.store
    }

    async fn find(
        &self,
        keys: Vec<PersonKey>,
        mut contacts: Vec<ContactRef>,
    ) -> StoreResult<Found> {
        let mut keys: BTreeSet<String> = keys.iter().map(PersonKey::indexed).collect();
        let mut hashes: Vec<String> = Vec::new();
        let mut cache = Vec::new();
        // Twice: a phone finds a contact whose email finds more (and back).
        for _ in 0..2 {
            hashes = keys
                .iter()
                .flat_map(|k| self.auditor.hashes_of(k))
                .collect();
            cache = self.cache.people(&hashes).await?;
            for (portal, id) in &contacts {
                if cache
                    .iter()
                    .any(|p| p.portal_key == *portal && p.hubspot_id == *id)
                {
                    continue;
                }
                if let Some(contact) = self.cache.by_id(*portal, id).await? {
                    cache.push(crate::store::cache::CachedPerson {
                        portal_key: *portal,
                        hubspot_id: id.clone(),
                        contact,
                    });
                }
            }
            for p in &cache {
                if let Some(e) = &p.contact.email {
                    keys.insert(PersonKey::Email(e.to_lowercase()).indexed());
                }
                if let Some(ph) = &p.contact.phone {
                    keys.insert(PersonKey::Phone(phone_key(ph)).indexed());
                }
                contacts.push((p.portal_key, p.hubspot_id.clone()));
            }
            contacts.sort();
            contacts.dedup();
        }
        let emails: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("email:").map(str::to_string))
            .collect();
        let held = self.store.find(&emails, &contacts).await?;
        contacts.extend(held.contact_ids());
        contacts.sort();
        contacts.dedup();
        let ids: Vec<String> = contacts.iter().map(|(_, id)| id.clone()).collect();
        let history = self.history.about(&hashes, &ids).await?;
        let audit = if hashes.is_empty() {
            Vec::new()
        } else {
            self.auditor
                .list(&Filter {
                    subject_hashes: hashes.clone(),
                    limit: 1000,
                    ..Filter::default()
                })
                .await?
                .into_iter()
                // The requests about them are the privacy officer's record, not their data.
                .filter(|e| !e.action.starts_with("privacy"))
                .collect()
        };
        Ok(Found {
            export: Export {
                cache: cache
                    .into_iter()
                    .map(|p| CachedContact {
                        portal: p.portal_key,
                        hubspot_id: p.hubspot_id,
                        contact: p.contact,
                    })
                    .collect(),
                outbox: held.outbox.clone(),
                lifecycle_subjects: held.lifecycle_subjects.clone(),
                lifecycle_events: held.lifecycle_events.clone(),
                records: held.records.clone(),
                audit,
                search_history: history.iter().map(|(_, s)| s.clone()).collect(),
            },
            history_ids: history.iter().map(|(id, _)| *id).collect(),
            held,
            emails,
            contacts,
            hashes,
        })
    }

    /// Everything held about the person with this email or phone.
    pub async fn export(&self, person: &PersonKey) -> StoreResult<Export> {
        Ok(self.find(vec![person.clone()], Vec::new()).await?.export)
    }

    /// Erases the person locally; with `hubspot`, queues HubSpot's GDPR delete of each of
    /// their contacts (by email in `fallback_portal` when no contact id is known). Returns the
    /// erasure's reference and what was removed.
    pub async fn erase(
        &self,
        person: &PersonKey,
        hubspot: bool,
        fallback_portal: i64,
    ) -> StoreResult<(String, Erased)> {
        let found = self.find(vec![person.clone()], Vec::new()).await?;
        let reference = new_reference();
        let by_email = match (hubspot, found.contacts.is_empty(), person) {
            (true, true, PersonKey::Email(e)) => vec![(fallback_portal, e.clone())],
            _ => Vec::new(),
        };
        let erased = self.apply(found, &reference, hubspot, by_email).await?;
        Ok((reference, erased))
    }

    /// Erases locally what is held about HubSpot contact `id` of a portal (its
    /// `privacyDeletion` webhook: HubSpot has deleted it already).
    pub async fn erase_contact(&self, portal_key: i64, id: &str) -> StoreResult<(String, Erased)> {
        let found = self
            .find(Vec::new(), vec![(portal_key, id.to_string())])
            .await?;
        let reference = new_reference();
        let erased = self.apply(found, &reference, false, Vec::new()).await?;
        Ok((reference, erased))
    }

    async fn apply(
        &self,
        found: Found,
        reference: &str,
        hubspot: bool,
        by_email: Vec<(i64, String)>,
    ) -> StoreResult<Erased> {
        let erasure = Erasure {
            emails: found.emails,
            hubspot_by_id: if hubspot {
                found.contacts.clone()
            } else {
                Vec::new()
            },
            contacts: found.contacts,
            history_ids: found.history_ids,
            hashes: found.hashes,
            reference: reference.to_string(),
            hubspot_by_email: by_email,
        };
        self.store
            .erase(&erasure, &found.held, self.auditor.store())
            .await
    }
}

/// An erasure's reference: what the audit points at instead of the person.
fn new_reference() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("erased:{}", hex::encode(bytes))
}
