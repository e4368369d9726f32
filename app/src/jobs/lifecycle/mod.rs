//! Delivering lifecycle events, for the outbox worker ([`super::outbox::Worker`]): one batch of
//! a portal's due subjects (claimed with a lease, one upsert key), each subject's properties
//! derived from its whole stored history ([`crate::domain::lifecycle::adapters`]), sent as one
//! batch upsert (by email, or by the external id property), settled; then the portal's due
//! timeline occurrences, up to 500 in one `send/batch`.
//!
//! Before a portal's first batch, the custom properties the app writes are created there when
//! missing (the external id one with `hasUniqueValue`). With `HUBSPOT_SEND_LIVE=false` nothing
//! is created or sent: each payload is checked against the portal's definitions (the type of
//! each value, enumeration options, unknown properties) and recorded, with what HubSpot would
//! refuse, as `previewed`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

mod schema;
mod timeline;

use schema::Schema;

use crate::domain::lifecycle::adapters::merchant::company_properties;
use crate::domain::lifecycle::adapters::{fold, set_once};
use crate::domain::lifecycle::check::check;
use crate::domain::lifecycle::config::LifecycleConfig;
use crate::domain::lifecycle::Data;
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;
use crate::hubspot::limiter::Permit;
use crate::hubspot::{HubSpotClient, HubSpotError};
use crate::store::lifecycle::{Claimed, Keys, Lifecycle, Sent};
use crate::store::StoreResult;

/// The lifecycle side of the outbox worker.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Lifecycle,
    config: Arc<LifecycleConfig>,
    live: bool,
    schemas: Arc<Mutex<HashMap<Option<PortalId>, Schema>>>,
}

impl Delivery {
    pub fn new(store: Lifecycle, config: Arc<LifecycleConfig>, live: bool) -> Self {
        Self {
            store,
            config,
            live,
            schemas: Arc::default(),
        }
    }

    pub fn store(&self) -> &Lifecycle {
        &self.store
    }

    /// One round for `worker`: a batch for each portal with due work, each portal once.
    /// Returns whether any was settled (so more may be due).
    pub async fn round(&self, worker: &super::outbox::Worker) -> StoreResult<bool> {
        let mut after = None;
        let mut served = std::collections::HashSet::new();
        let mut settled = false;
        while let Some(portal) = self.store.next_portal_after(after).await? {
            if !served.insert(portal) || worker.stopping() {
                break;
            }
            after = Some(portal);
            let client = worker.client(portal).await;
            settled |= self.batch(worker.owner(), portal, client).await? > 0;
        }
        Ok(settled)
    }

    /// One batch of `portal`'s due subjects, then its due timeline occurrences. Returns how
    /// many subjects and occurrences were settled.
    pub async fn batch(
        &self,
        owner: &str,
        portal: Option<PortalId>,
        client: Result<Arc<HubSpotClient>, HubSpotError>,
    ) -> StoreResult<usize> {
        let client = match client {
            Ok(c) => c,
            Err(e @ HubSpotError::NotConnected(_)) => {
                let mut claims = Vec::new();
                if let Some(id_property) = self.store.due_key(portal).await? {
                    claims = self.store.claim(owner, portal, &id_property).await?;
                }
                let held: Vec<(&Claimed, Sent)> = claims
                    .iter()
                    .map(|c| {
                        (
                            c,
                            Sent::Held {
                                reason: e.to_string(),
                                wait: super::outbox::HOLD,
                            },
                        )
                    })
                    .collect();
                self.store.settle(owner, portal, &held).await?;
                return Ok(claims.len());
            }
            Err(e) => {
                tracing::warn!(error = %crate::mask::text(&e.to_string()), "lifecycle delivery: no client yet");
                return Ok(0);
            }
        };
        if client.paused() {
            return Ok(0);
        }
        let schema = match self.schema(portal, &client).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %crate::mask::text(&e.to_string()), "lifecycle delivery: the portal's properties could not be read or created");
                return Ok(0);
            }
        };
        // A budget slot only when subjects are due (the portal may be here for its timeline).
        let mut settled = 0;
        if let Some(id_property) = self.store.due_key(portal).await? {
            let permit = client.reserve().await;
            let claims = self.store.claim(owner, portal, &id_property).await?;
            settled = claims.len();
            // Empty when another worker took them: the slot goes unused.
            let mut outcomes = self
                .send(&client, permit, &id_property, &claims, &schema)
                .await;
            if let Err(e) = self.associate(&client, portal, &claims, &outcomes).await {
                // The records are in HubSpot, their edges not: sent again, edges and all.
                tracing::warn!(error = %crate::mask::text(&e), "lifecycle: associations failed; will retry");
                for o in &mut outcomes {
                    if matches!(o, Sent::Done { .. }) {
                        *o = Sent::Failed {
                            error: format!("associating: {e}"),
                            fatal: false,
                        };
                    }
                }
            }
            let pairs: Vec<(&Claimed, Sent)> = claims.iter().zip(outcomes).collect();
            self.store.settle(owner, portal, &pairs).await?;
        }
        if self.live {
            settled += self.timeline(portal, &client).await?;
        }
        Ok(settled)
    }

    /// What one claimed subject sends: its derived properties and its identity, less the
    /// set-once properties already delivered. `None` when it has no key yet.
    fn payload(
        &self,
        id_property: &str,
        c: &Claimed,
    ) -> Option<(String, BTreeMap<String, String>)> {
        if let Some(merchant) = Keys::merchant_of(&c.key) {
            let events = c.events.iter().map(|e| &e.event);
            let mut props = company_properties(merchant, events, &self.config);
            props.remove(id_property);
            return Some((merchant.to_string(), props));
        }
        let profile = fold(c.events.iter().map(|e| &e.event));
        let mut props = profile.properties(&self.config);
        for name in &c.sent_once {
            props.remove(name);
        }
        let email = profile.email.clone().or_else(|| c.email.clone());
        if let Some(email) = &email {
            props.insert("email".into(), email.clone());
        }
        if let Some(x) = &c.external_id {
            props.insert(self.config.external_id_property.clone(), x.clone());
        }
        let key = if id_property == "email" {
            email
        } else {
            c.external_id.clone()
        }?;
        props.remove(id_property);
        Some((key, props))
    }

    async fn send(
        &self,
        client: &HubSpotClient,
        permit: Permit<'_>,
        id_property: &str,
        claims: &[Claimed],
        schema: &Schema,
    ) -> Vec<Sent> {
        let payloads: Vec<Option<(String, BTreeMap<String, String>)>> = claims
            .iter()
            .map(|c| self.payload(id_property, c))
            .collect();
        let (object_type, definitions) = if claims.iter().all(|c| Keys::is_company(&c.key)) {
            (ObjectType::Companies, &schema.companies)
        } else {
            (ObjectType::Contacts, &schema.contacts)
        };
        if !self.live {
            return payloads
                .into_iter()
                .map(|p| match p {
                    Some((key, mut payload)) => {
                        let problems = check(&payload, definitions);
                        payload.insert(id_property.to_string(), key);
                        Sent::Previewed { payload, problems }
                    }
                    None => Sent::Failed {
                        error: format!("no {id_property} to key the contact by"),
                        fatal: true,
                    },
                })
                .collect();
        }
        let inputs: Vec<(String, BTreeMap<String, String>)> =
            payloads.iter().flatten().cloned().collect();
        let results = if inputs.is_empty() {
            Ok(Vec::new())
        } else {
            client
                .upsert_objects(Some(permit), object_type, id_property, &inputs)
                .await
        };
        let once = set_once(&self.config);
        match results {
            Ok(results) => {
                let mut results = results.into_iter();
                payloads
                    .into_iter()
                    .zip(claims)
                    .map(|(p, c)| match p {
                        None => Sent::Failed {
                            error: format!("no {id_property} to key the contact by"),
                            fatal: true,
                        },
                        Some((key, mut payload)) => match results.next() {
                            Some(Ok(done)) => {
                                let mut sent_once = c.sent_once.clone();
                                sent_once
                                    .extend(payload.keys().filter(|k| once.contains(*k)).cloned());
                                payload.insert(id_property.to_string(), key);
                                Sent::Done {
                                    hubspot_id: done.id,
                                    payload,
                                    sent_once,
                                }
                            }
                            Some(Err(refused)) => Sent::Failed {
                                error: format!("HubSpot refused it: {refused}"),
                                fatal: true,
                            },
                            None => Sent::Failed {
                                error: "HubSpot did not report this input".into(),
                                fatal: false,
                            },
                        },
                    })
                    .collect()
            }
            Err(e @ HubSpotError::NotConnected(_)) => claims
                .iter()
                .map(|_| Sent::Held {
                    reason: e.to_string(),
                    wait: super::outbox::HOLD,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %crate::mask::text(&e.to_string()), subjects = claims.len(), "lifecycle batch failed; will retry");
                claims
                    .iter()
                    .map(|_| Sent::Failed {
                        error: e.to_string(),
                        fatal: false,
                    })
                    .collect()
            }
        }
    }

    /// Associates the records just delivered with their counterparts already in HubSpot: a
    /// user's contact with the companies of the merchants it enabled exclusives for, a
    /// merchant's company with those users' contacts (whichever is delivered second makes the
    /// edge; the default association is idempotent).
    async fn associate(
        &self,
        client: &HubSpotClient,
        portal: Option<PortalId>,
        claims: &[Claimed],
        outcomes: &[Sent],
    ) -> Result<(), String> {
        let companies = claims.iter().all(|c| Keys::is_company(&c.key));
        let mut wanted: Vec<(String, String)> = Vec::new();
        for (c, o) in claims.iter().zip(outcomes) {
            let Sent::Done { hubspot_id, .. } = o else {
                continue;
            };
            for e in &c.events {
                if let Data::MerchantExclusiveEnabled { merchant_id, .. } = &e.event.data {
                    let other = if companies {
                        e.subject_key.clone()
                    } else {
                        Keys::company(merchant_id)
                    };
                    wanted.push((hubspot_id.clone(), other));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let others: Vec<String> = wanted
            .iter()
            .map(|(_, k)| k.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids = self
            .store
            .hubspot_ids(portal, &others)
            .await
            .map_err(|e| e.to_string())?;
        let pairs: std::collections::BTreeSet<(String, String)> = wanted
            .into_iter()
            .filter_map(|(this, other)| {
                let other = ids.get(&other)?.clone();
                Some(if companies {
                    (other, this)
                } else {
                    (this, other)
                })
            })
            .collect();
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        client
            .associate_default(ObjectType::Contacts, ObjectType::Companies, &pairs)
            .await
            .map_err(|e| e.to_string())
    }
}
