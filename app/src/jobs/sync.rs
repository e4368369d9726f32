//! Incremental pull sync of one portal's CRM records, generic over object type.
//!
//! The first run lists every record (`GET /crm/objects/2026-03/{type}`, paged). Later runs
//! search for records modified since the cursor (the type's last-modified property:
//! `lastmodifieddate` for contacts, `hs_lastmodifieddate` for the others, ascending) minus an
//! overlap window for HubSpot's search lag, up to the moment the run started. Search pages stop
//! at 10,000 results, so a run restarts its search from the last timestamp it saw; when more
//! than 10,000 records share one timestamp, it walks that timestamp by `hs_object_id`. Every
//! page is committed with the position it reached, so a run killed at any point resumes from
//! its last committed page. Taking the run, committing pages and taking over a stuck or
//! abandoned run are the store's ([`crate::store::sync`]); this module is the walk.
//!
//! Each run ends with HubSpot's archived listing of the type, archiving here what HubSpot
//! deleted or merged away (deletion webhooks do it at once; the sweep catches lost ones).
//!
//! Records go to [`Objects`] (contacts also to the lookup cache). Their associations are read
//! in batches of up to 1,000 records marked as due (see [`Objects::edges_due`]): during the run
//! whenever 1,000 are due, and at its end, so a run cut between a page and its edges leaves the
//! marks for the next run.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::domain::currency::Rates;
use crate::domain::mapping::MappingSet;
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;
use crate::domain::sync::{parse_timestamp, Position};
use crate::hubspot::objects::ASSOCIATION_INPUTS;
use crate::hubspot::HubSpotClient;
use crate::store::cache::Cache;
use crate::store::mappings::Mappings;
use crate::store::objects::Objects;
use crate::store::sync::{Begin, Status, SyncState};
use crate::store::StoreResult;

mod every_type;
mod mapped;
mod upkeep;

/// Search pages can reach this many results, no further.
pub const SEARCH_CAP: usize = 10_000;
pub const PAGE: usize = 200;

/// The pull sync of one object type: the walk here, its state in [`SyncState`].
#[derive(Debug, Clone)]
pub struct Sync {
    state: SyncState,
    cache: Cache,
    objects: Objects,
    pub overlap: Duration,
    /// The types synced (`HUBSPOT_SYNC_OBJECTS`), in order: what [`run_all`](Self::run_all)
    /// runs, and which associations each type reads.
    types: Vec<ObjectType>,
    /// Each portal's mappings (set through the API), and the defaults (`MAPPINGS_FILE`).
    mappings: Mappings,
    defaults: Arc<Vec<MappingSet>>,
    /// The mappings of this portal and type, loaded by [`prepared`](Self::prepared).
    mapping: Arc<MappingSet>,
    /// The portal's currencies (deals only), loaded by [`prepared_with`](Self::prepared_with).
    rates: Arc<Option<Rates>>,
    /// Runs this process finished, of every portal and type (the figures).
    pub runs: Arc<super::figures::RunCounts>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("a sync of {0} is already running (started {1} ms ago)")]
    Running(String, i64),
    #[error("sync of {0} is disabled")]
    Disabled(String),
    #[error("HubSpot: {0}")]
    HubSpot(#[from] crate::hubspot::HubSpotError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Sync {
    /// The sync of `types` (the first one's state is `state`'s type).
    pub fn new(
        state: SyncState,
        cache: Cache,
        objects: Objects,
        overlap: Duration,
        types: Vec<ObjectType>,
        (mappings, defaults): (Mappings, Vec<MappingSet>),
    ) -> Self {
        Self {
            state,
            cache,
            objects,
            overlap,
            types,
            mappings,
            defaults: Arc::new(defaults),
            mapping: Arc::default(),
            rates: Arc::default(),
            runs: Arc::default(),
        }
    }

    pub fn types(&self) -> &[ObjectType] {
        &self.types
    }

    /// The same portal's sync of another object type.
    pub fn for_type(&self, object_type: ObjectType) -> Self {
        Self {
            state: self.state.for_type(object_type),
            ..self.clone()
        }
    }

    fn object_type(&self) -> ObjectType {
        self.state.object_type()
    }

    pub async fn status(&self) -> StoreResult<Status> {
        self.state.status().await
    }

    /// The same sync for another portal (`None`: the private-app account).
    pub fn for_portal(&self, portal: Option<PortalId>) -> Self {
        Self {
            state: self.state.for_portal(portal),
            ..self.clone()
        }
    }

    async fn begin(&self) -> Result<(Position, i64), SyncError> {
        let kind = self.state.object_type().to_string();
        match self.state.begin(self.overlap).await? {
            Begin::Taken { position, until } => Ok((position, until)),
            Begin::Running { for_ms } => Err(SyncError::Running(kind, for_ms)),
            Begin::Disabled => Err(SyncError::Disabled(kind)),
        }
    }

    /// One run, to the end. Returns how many contacts it stored.
    pub async fn run(&self, client: &HubSpotClient) -> Result<usize, SyncError> {
        let (position, until) = self.begin().await?;
        let this = match self.prepared_with(client).await {
            Ok(this) => this,
            Err(e) => {
                self.runs.count(false);
                self.state.fail(&e.to_string()).await?;
                return Err(e);
            }
        };
        this.run_taken(client, position, until).await
    }

    async fn run_taken(
        &self,
        client: &HubSpotClient,
        position: Position,
        until: i64,
    ) -> Result<usize, SyncError> {
        let object_type = self.object_type().as_str();
        let walked = match self.walk(client, position, until).await {
            Ok(done) => match self.read_edges(client, 1).await {
                Ok(()) => self.sweep_archived(client).await.map(|_| done),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.runs.count(walked.is_ok());
        match walked {
            Ok((cursor, synced)) => {
                self.state.finish(cursor).await?;
                tracing::info!(object_type, synced, "sync finished");
                Ok(synced)
            }
            Err(e) => {
                let message = format!("{e:#}");
                self.state.fail(&message).await?;
                tracing::warn!(object_type, error = %crate::mask::text(&message), "sync failed; the next run resumes from the last page");
                Err(e)
            }
        }
    }

    /// The properties a read asks for: the type's, its last-modified property, and the mapped
    /// ones (listings name them in chunks HubSpot accepts).
    pub fn properties(&self) -> Vec<&str> {
        let t = self.object_type();
        let mut names = t.default_properties().to_vec();
        names.push(t.last_modified_property());
        for p in self.mapping.hubspot_properties() {
            if !names.contains(&p) {
                names.push(p);
            }
        }
        names
    }

    /// Stores records read from HubSpot (contacts also in the cache) with their mapped fields;
    /// returns the latest last-modified time among them.
    pub async fn store(&self, results: &[Value]) -> StoreResult<i64> {
        let portal = self.state.portal();
        if self.object_type() == ObjectType::Contacts {
            self.cache.put_all(portal, results).await?;
        }
        self.objects
            .put_page(
                portal,
                self.object_type(),
                results,
                &self.mapping,
                self.rates.as_ref().as_ref(),
            )
            .await?;
        let modified = self.object_type().last_modified_property();
        let mut max_seen = 0;
        for object in results {
            if let Some(ts) = parse_timestamp(&object["properties"][modified])
                .or_else(|| parse_timestamp(&object["updatedAt"]))
            {
                max_seen = max_seen.max(ts);
            }
        }
        Ok(max_seen)
    }

    /// Stores a page and commits the position it reached; reads associations once 1,000
    /// records wait for theirs.
    async fn commit(
        &self,
        client: &HubSpotClient,
        position: &Position,
        page_len: usize,
    ) -> Result<(), SyncError> {
        self.state.commit(position, page_len).await?;
        self.read_edges(client, ASSOCIATION_INPUTS).await
    }

    async fn walk(
        &self,
        client: &HubSpotClient,
        mut position: Position,
        until: i64,
    ) -> Result<(i64, usize), SyncError> {
        let mut synced = 0;
        let mut prefetched: Option<crate::hubspot::Page> = None;
        loop {
            match position.clone() {
                Position::Listing { after, max_seen } => {
                    let properties = self.properties();
                    let properties = properties.as_slice();
                    let list = |after: Option<String>| async move {
                        client
                            .list_objects(self.object_type(), properties, after.as_deref(), false)
                            .await
                    };
                    let page = match prefetched.take() {
                        Some(page) => page,
                        None => list(after.clone()).await?,
                    };
                    // The next page is fetched while this one is stored: the budget, not the
                    // database, sets the pace. It is committed only once this one is.
                    let (seen, next) = match &page.next {
                        Some(next) => {
                            let (seen, next) =
                                tokio::join!(self.store(&page.results), list(Some(next.clone())));
                            (seen, Some(next))
                        }
                        None => (self.store(&page.results).await, None),
                    };
                    let seen = seen?.max(max_seen);
                    synced += page.results.len();
                    position = match page.next {
                        Some(next) => Position::Listing {
                            after: Some(next),
                            max_seen: seen,
                        },
                        // Listed everything as of the run's start: incremental from there.
                        None => {
                            self.commit(client, &position, page.results.len()).await?;
                            return Ok((until, synced));
                        }
                    };
                    self.commit(client, &position, page.results.len()).await?;
                    prefetched = next.transpose()?;
                }
                Position::Window {
                    from,
                    after,
                    max_seen,
                    first,
                } => {
                    let modified = self.object_type().last_modified_property();
                    let filters = json!([
                        {"propertyName": modified, "operator": "GTE", "value": from.to_string()},
                        {"propertyName": modified, "operator": "LTE", "value": until.to_string()},
                    ]);
                    let found = self.search(client, filters, modified, after).await?;
                    let results = found["results"].as_array().cloned().unwrap_or_default();
                    let seen = self.store(&results).await?.max(max_seen);
                    synced += results.len();
                    let ts_of = |o: Option<&Value>| {
                        o.and_then(|o| parse_timestamp(&o["properties"][modified]))
                    };
                    let first = first.or(ts_of(results.first()));
                    let last_ts = ts_of(results.last());
                    let next = found["paging"]["next"]["after"]
                        .as_str()
                        .and_then(|a| a.parse::<usize>().ok());
                    position = match (next, last_ts) {
                        (None, _) | (_, None) => {
                            self.commit(client, &position, results.len()).await?;
                            return Ok((seen, synced));
                        }
                        (Some(next), _) if next < SEARCH_CAP => Position::Window {
                            from,
                            after: next,
                            max_seen: seen,
                            first,
                        },
                        // At the cap: when all 10,000 share one timestamp, walk it by id;
                        // otherwise restart the search from the last timestamp seen.
                        (Some(_), Some(ts)) if first == Some(ts) => Position::SameTimestamp {
                            ts,
                            last_id: 0,
                            after: 0,
                            max_seen: seen,
                        },
                        (Some(_), Some(ts)) => Position::Window {
                            from: ts,
                            after: 0,
                            max_seen: seen,
                            first: None,
                        },
                    };
                    self.commit(client, &position, results.len()).await?;
                }
                Position::SameTimestamp {
                    ts,
                    last_id,
                    after,
                    max_seen,
                } => {
                    let filters = json!([
                        {"propertyName": self.object_type().last_modified_property(), "operator": "EQ", "value": ts.to_string()},
                        {"propertyName": "hs_object_id", "operator": "GT", "value": last_id.to_string()},
                    ]);
                    let found = self.search(client, filters, "hs_object_id", after).await?;
                    let results = found["results"].as_array().cloned().unwrap_or_default();
                    let seen = self.store(&results).await?.max(max_seen);
                    synced += results.len();
                    let last = results
                        .last()
                        .and_then(|o| o["id"].as_str())
                        .and_then(|i| i.parse::<u64>().ok());
                    let next = found["paging"]["next"]["after"]
                        .as_str()
                        .and_then(|a| a.parse::<usize>().ok());
                    position = match (next, last) {
                        // This timestamp is done: on to what was modified after it.
                        (None, _) | (_, None) => Position::Window {
                            from: ts + 1,
                            after: 0,
                            max_seen: seen,
                            first: None,
                        },
                        (Some(next), _) if next < SEARCH_CAP => Position::SameTimestamp {
                            ts,
                            last_id,
                            after: next,
                            max_seen: seen,
                        },
                        (Some(_), Some(id)) => Position::SameTimestamp {
                            ts,
                            last_id: id,
                            after: 0,
                            max_seen: seen,
                        },
                    };
                    self.commit(client, &position, results.len()).await?;
                }
            }
        }
    }

    async fn search(
        &self,
        client: &HubSpotClient,
        filters: Value,
        sort: &str,
        after: usize,
    ) -> Result<Value, SyncError> {
        let request =
            crate::hubspot::search::page(filters, sort, &self.properties(), PAGE as u32, after);
        Ok(client.search_objects(self.object_type(), &request).await?)
    }
}
