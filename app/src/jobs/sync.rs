//! Incremental pull sync of contacts into the local contact cache.
//!
//! The first run lists every contact (`GET /crm/objects/2026-03/contacts`, paged). Later runs search
//! for contacts modified since the cursor (`lastmodifieddate`, ascending) minus an overlap window
//! for HubSpot's search lag, up to the moment the run started. Search pages stop at 10,000
//! results, so a run restarts its search from the last timestamp it saw; when more than 10,000
//! contacts share one timestamp, it walks that timestamp by `hs_object_id`. Every page is
//! committed with the position it reached, so a run killed at any point resumes from its last
//! committed page. Taking the run, committing pages and taking over a stuck or abandoned run
//! are the store's ([`crate::store::sync`]); this module is the walk.

use std::time::Duration;

use serde_json::{json, Value};

use crate::domain::portal::PortalId;
use crate::domain::sync::Position;
use crate::hubspot::HubSpotClient;
use crate::store::cache::Cache;
use crate::store::sync::{Begin, Status, SyncState};
use crate::store::StoreResult;

/// Search pages can reach this many results, no further.
pub const SEARCH_CAP: usize = 10_000;
pub const PAGE: usize = 200;

/// The pull sync of contacts: the walk here, its state in [`SyncState`].
#[derive(Debug, Clone)]
pub struct Sync {
    state: SyncState,
    cache: Cache,
    pub overlap: Duration,
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

fn parse_ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    s.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis())
    })
}

impl Sync {
    pub fn new(state: SyncState, cache: Cache, overlap: Duration) -> Self {
        Self {
            state,
            cache,
            overlap,
        }
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
        match self.walk(client, position, until).await {
            Ok((cursor, synced)) => {
                self.state.finish(cursor).await?;
                tracing::info!(synced, "contact sync finished");
                Ok(synced)
            }
            Err(e) => {
                let message = format!("{e:#}");
                self.state.fail(&message).await?;
                tracing::warn!(error = %crate::mask::text(&message), "contact sync failed; the next run resumes from the last page");
                Err(e)
            }
        }
    }

    async fn store(&self, results: &[Value]) -> StoreResult<i64> {
        self.cache.put_all(self.state.portal(), results).await?;
        let mut max_seen = 0;
        for object in results {
            if let Some(ts) = parse_ts(&object["properties"]["lastmodifieddate"])
                .or_else(|| parse_ts(&object["updatedAt"]))
            {
                max_seen = max_seen.max(ts);
            }
        }
        Ok(max_seen)
    }

    async fn walk(
        &self,
        client: &HubSpotClient,
        mut position: Position,
        until: i64,
    ) -> Result<(i64, usize), SyncError> {
        let mut synced = 0;
        loop {
            match position.clone() {
                Position::Listing { after, max_seen } => {
                    let page = client.list_contacts(after.as_deref()).await?;
                    let seen = self.store(&page.results).await?.max(max_seen);
                    synced += page.results.len();
                    position = match page.next {
                        Some(next) => Position::Listing {
                            after: Some(next),
                            max_seen: seen,
                        },
                        // Listed everything as of the run's start: incremental from there.
                        None => {
                            self.state.commit(&position, page.results.len()).await?;
                            return Ok((until, synced));
                        }
                    };
                    self.state.commit(&position, page.results.len()).await?;
                }
                Position::Window {
                    from,
                    after,
                    max_seen,
                    first,
                } => {
                    let filters = json!([
                        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": from.to_string()},
                        {"propertyName": "lastmodifieddate", "operator": "LTE", "value": until.to_string()},
                    ]);
                    let found = self
                        .search(client, filters, "lastmodifieddate", after)
                        .await?;
                    let results = found["results"].as_array().cloned().unwrap_or_default();
                    let seen = self.store(&results).await?.max(max_seen);
                    synced += results.len();
                    let ts_of = |o: Option<&Value>| {
                        o.and_then(|o| parse_ts(&o["properties"]["lastmodifieddate"]))
                    };
                    let first = first.or(ts_of(results.first()));
                    let last_ts = ts_of(results.last());
                    let next = found["paging"]["next"]["after"]
                        .as_str()
                        .and_then(|a| a.parse::<usize>().ok());
                    position = match (next, last_ts) {
                        (None, _) | (_, None) => {
                            self.state.commit(&position, results.len()).await?;
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
                    self.state.commit(&position, results.len()).await?;
                }
                Position::SameTimestamp {
                    ts,
                    last_id,
                    after,
                    max_seen,
                } => {
                    let filters = json!([
                        {"propertyName": "lastmodifieddate", "operator": "EQ", "value": ts.to_string()},
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
                    self.state.commit(&position, results.len()).await?;
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
        let request = crate::hubspot::search::page(filters, sort, PAGE as u32, after);
        Ok(client.search_contacts(&request).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_as_ms_or_rfc3339() {
        assert_eq!(parse_ts(&json!("1706745600000")), Some(1_706_745_600_000));
        assert_eq!(
            parse_ts(&json!("2024-02-01T00:00:00.000Z")),
            Some(1_706_745_600_000)
        );
        assert_eq!(parse_ts(&json!(null)), None);
    }
}
