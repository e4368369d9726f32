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

mod timeline;

use crate::domain::lifecycle::adapters::{fold, set_once};
use crate::domain::lifecycle::check::check;
use crate::domain::lifecycle::config::{Fact, LifecycleConfig};
use crate::domain::mapping::Definition;
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;
use crate::hubspot::limiter::Permit;
use crate::hubspot::upsert::NewProperty;
use crate::hubspot::{HubSpotClient, HubSpotError};
use crate::store::lifecycle::{Claimed, Lifecycle, Sent};
use crate::store::StoreResult;

/// What the app knows of a portal's schema: its contact property definitions (after the
/// app's own were created, when live) and its timeline event definitions.
#[derive(Debug, Clone, Default)]
struct Schema {
    contacts: BTreeMap<String, Definition>,
    /// `pe{hubId}_` and the event definitions there, once the timeline was used.
    events: Option<(String, std::collections::BTreeSet<String>)>,
}

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

    /// The properties the app writes, as they must exist on a portal.
    fn needed(&self) -> Vec<NewProperty> {
        let mut out = vec![NewProperty {
            name: self.config.external_id_property.clone(),
            label: "Product user id".into(),
            kind: "string".into(),
            options: Vec::new(),
            unique: true,
        }];
        for fact in Fact::ALL {
            if let Some(name) = self.config.property(fact) {
                let (kind, options) = fact.kind(&self.config);
                out.push(NewProperty {
                    name: name.to_string(),
                    label: name.replace('_', " "),
                    kind: kind.into(),
                    options,
                    unique: false,
                });
            }
        }
        out
    }

    /// The portal's contact definitions, the app's properties created first when live.
    async fn schema(
        &self,
        portal: Option<PortalId>,
        client: &HubSpotClient,
    ) -> Result<Schema, HubSpotError> {
        if let Some(s) = self.schemas.lock().get(&portal) {
            return Ok(s.clone());
        }
        let mut contacts = client.property_definitions(ObjectType::Contacts).await?;
        if !self.live {
            // A dry run checks the app's own properties against what it would create.
            for p in self.needed() {
                contacts.entry(p.name.clone()).or_insert(Definition {
                    kind: p.kind,
                    read_only: false,
                    options: p.options,
                });
            }
        }
        if self.live {
            let missing: Vec<NewProperty> = self
                .needed()
                .into_iter()
                .filter(|p| !contacts.contains_key(&p.name))
                .collect();
            for p in &missing {
                client.create_property(ObjectType::Contacts, p).await?;
                tracing::info!(property = %p.name, "created a contact property for lifecycle events");
            }
            if !missing.is_empty() {
                contacts = client.property_definitions(ObjectType::Contacts).await?;
            }
        }
        let schema = Schema {
            contacts,
            events: None,
        };
        self.schemas.lock().insert(portal, schema.clone());
        Ok(schema)
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
                let (_, claims) = self.store.claim(owner, portal).await?;
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
        let permit = client.reserve().await;
        let (id_property, claims) = self.store.claim(owner, portal).await?;
        let mut settled = claims.len();
        if !claims.is_empty() {
            let outcomes = self
                .send(&client, permit, &id_property, &claims, &schema)
                .await;
            let pairs: Vec<(&Claimed, Sent)> = claims.iter().zip(outcomes).collect();
            self.store.settle(owner, portal, &pairs).await?;
        } else {
            drop(permit);
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
        if !self.live {
            return payloads
                .into_iter()
                .map(|p| match p {
                    Some((key, mut payload)) => {
                        let problems = check(&payload, &schema.contacts);
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
                .upsert_objects(Some(permit), ObjectType::Contacts, id_property, &inputs)
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
}
