//! Incremental pull sync of contacts into the local contact cache.
//!
//! The first run lists every contact (`GET /crm/v3/objects/contacts`, paged). Later runs search
//! for contacts modified since the cursor (`lastmodifieddate`, ascending) minus an overlap window
//! for HubSpot's search lag, up to the moment the run started. Search pages stop at 10,000
//! results, so a run restarts its search from the last timestamp it saw; when more than 10,000
//! contacts share one timestamp, it walks that timestamp by `hs_object_id`. Every page is
//! committed with the position it reached, so a run killed at any point resumes from its last
//! committed page. A run that has been `syncing` with no progress for an hour is stuck: it is
//! reset and the next run starts from the last committed position.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;

use crate::cache::Cache;
use crate::clock::now_ms;
use crate::db::{Db, StoreError, StoreResult};
use crate::hubspot::HubSpotClient;

/// Search pages can reach this many results, no further.
pub const SEARCH_CAP: usize = 10_000;
pub const PAGE: usize = 200;
/// A run syncing this long is stuck, even if it still commits pages: it is reset.
pub const STUCK_AFTER: Duration = Duration::from_secs(3600);
/// A run that committed nothing for this long lost its process (a page takes seconds): the
/// next run takes over from its last committed page.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// Where a run is. Stored as JSON in `sync_state.position` after every page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Position {
    /// First run: the full listing, at this paging cursor.
    Listing {
        after: Option<String>,
        max_seen: i64,
    },
    /// Searching `from <= lastmodifieddate <= until`, at offset `after`; `first` is the
    /// timestamp of the window's first result.
    Window {
        from: i64,
        after: usize,
        max_seen: i64,
        first: Option<i64>,
    },
    /// More than 10,000 contacts at `ts`: walking them by id, past `last_id`.
    SameTimestamp {
        ts: i64,
        last_id: u64,
        after: usize,
        max_seen: i64,
    },
}

/// Where the pull sync is (times are epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub object_type: String,
    pub status: String,
    pub cursor: Option<i64>,
    pub error_count: i64,
    pub last_error: Option<String>,
    pub last_success: Option<i64>,
    pub started_at: Option<i64>,
    pub synced_last_run: i64,
}

#[derive(Debug, Clone)]
pub struct Sync {
    db: Db,
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
    Store(#[from] crate::db::StoreError),
}

const TYPE: &str = "contacts";

fn parse_ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    s.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis())
    })
}

impl Sync {
    pub fn new(db: Db, cache: Cache, overlap: Duration) -> Self {
        Self { db, cache, overlap }
    }

    pub async fn status(&self) -> StoreResult<Status> {
        self.ensure_row().await?;
        let r = sqlx::query(
            "SELECT status, cursor_ms, error_count, last_error, last_success, started_at, synced_last_run
             FROM sync_state WHERE object_type = $1",
        )
        .bind(TYPE)
        .fetch_one(self.db.pool())
        .await?;
        Ok(Status {
            object_type: TYPE.into(),
            status: r.get("status"),
            cursor: r.get("cursor_ms"),
            error_count: r.get("error_count"),
            last_error: r.get("last_error"),
            last_success: r.get("last_success"),
            started_at: r.get("started_at"),
            synced_last_run: r.get("synced_last_run"),
        })
    }

    async fn ensure_row(&self) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "INSERT INTO sync_state (object_type, status, error_count, synced_last_run, updated_at)
             VALUES ($1, 'idle', 0, 0, $2) ON CONFLICT (object_type) DO NOTHING",
        )
        .bind(TYPE)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Takes the run: idle/error → syncing, or a `syncing` row with no progress for
    /// [`STUCK_AFTER`] (reset, resuming from its committed position).
    async fn begin(&self) -> Result<(Position, i64), SyncError> {
        self.ensure_row().await?;
        let now = now_ms();
        let mut w = self.db.write().await?;
        let taken = sqlx::query(
            "UPDATE sync_state SET
                 status = 'syncing', started_at = $1, updated_at = $1, synced_last_run = 0,
                 run_until = CASE WHEN position IS NULL THEN $1 ELSE run_until END,
                 last_error = CASE WHEN status = 'syncing'
                     THEN 'taken over: the previous run was stuck or its process was gone' ELSE last_error END
             WHERE object_type = $2
               AND (status IN ('idle', 'error')
                    OR (status = 'syncing' AND (started_at < $3 OR updated_at < $4)))",
        )
        .bind(now)
        .bind(TYPE)
        .bind(now - STUCK_AFTER.as_millis() as i64)
        .bind(now - ABANDONED_AFTER.as_millis() as i64)
        .execute(&mut *w.tx)
        .await
        .map_err(StoreError::from)?;
        let row = sqlx::query("SELECT status, started_at, position, cursor_ms, run_until FROM sync_state WHERE object_type = $1")
            .bind(TYPE)
            .fetch_one(&mut *w.tx)
            .await
            .map_err(StoreError::from)?;
        w.commit().await?;
        if taken.rows_affected() == 0 {
            let status: String = row.get("status");
            if status == "disabled" {
                return Err(SyncError::Disabled(TYPE.into()));
            }
            let started: Option<i64> = row.get("started_at");
            return Err(SyncError::Running(
                TYPE.into(),
                now - started.unwrap_or(now),
            ));
        }
        let until: i64 = row.get::<Option<i64>, _>("run_until").unwrap_or(now);
        let position = match row.get::<Option<String>, _>("position") {
            Some(p) => serde_json::from_str(&p).map_err(StoreError::from)?,
            None => match row.get::<Option<i64>, _>("cursor_ms") {
                None => Position::Listing {
                    after: None,
                    max_seen: 0,
                },
                Some(cursor) => Position::Window {
                    from: cursor - self.overlap.as_millis() as i64,
                    after: 0,
                    max_seen: cursor,
                    first: None,
                },
            },
        };
        Ok((position, until))
    }

    async fn commit(&self, position: &Position, synced: usize) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "UPDATE sync_state SET position = $1, updated_at = $2, synced_last_run = synced_last_run + $3
             WHERE object_type = $4",
        )
        .bind(serde_json::to_string(position)?)
        .bind(now_ms())
        .bind(synced as i64)
        .bind(TYPE)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    async fn finish(&self, cursor: i64) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "UPDATE sync_state SET status = 'idle', cursor_ms = $1, position = NULL, run_until = NULL,
                 error_count = 0, last_error = NULL, last_success = $2, updated_at = $2
             WHERE object_type = $3",
        )
        .bind(cursor)
        .bind(now_ms())
        .bind(TYPE)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// A failed run keeps its committed position; the next run resumes there.
    async fn fail(&self, error: &str) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "UPDATE sync_state SET status = 'error', error_count = error_count + 1, last_error = $1, updated_at = $2
             WHERE object_type = $3",
        )
        .bind(crate::mask::text(error))
        .bind(now_ms())
        .bind(TYPE)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// One run, to the end. Returns how many contacts it stored.
    pub async fn run(&self, client: &HubSpotClient) -> Result<usize, SyncError> {
        let (position, until) = self.begin().await?;
        match self.walk(client, position, until).await {
            Ok((cursor, synced)) => {
                self.finish(cursor).await?;
                tracing::info!(synced, "contact sync finished");
                Ok(synced)
            }
            Err(e) => {
                let message = format!("{e:#}");
                self.fail(&message).await?;
                tracing::warn!(error = %crate::mask::text(&message), "contact sync failed; the next run resumes from the last page");
                Err(e)
            }
        }
    }

    async fn store(&self, results: &[Value]) -> StoreResult<i64> {
        let mut max_seen = 0;
        for object in results {
            self.cache.put(object).await?;
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
                            self.commit(&position, page.results.len()).await?;
                            return Ok((until, synced));
                        }
                    };
                    self.commit(&position, page.results.len()).await?;
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
                            self.commit(&position, results.len()).await?;
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
                    self.commit(&position, results.len()).await?;
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
                    self.commit(&position, results.len()).await?;
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

/// The next time `schedule` (cron, with or without a seconds field) fires after now.
pub fn next_run(schedule: &cron::Schedule) -> Option<Duration> {
    let next = schedule.upcoming(chrono::Utc).next()?;
    (next - chrono::Utc::now()).to_std().ok()
}

/// Parses a cron expression: five fields (minute first) or six (seconds first).
pub fn parse_schedule(raw: &str) -> Result<cron::Schedule, String> {
    let fields = raw.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {raw}")
    } else {
        raw.to_string()
    };
    full.parse::<cron::Schedule>()
        .map_err(|e| format!("'{raw}' is not a cron schedule ({e}); write e.g. */30 * * * *"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_take_five_or_six_fields() {
        assert!(parse_schedule("*/30 * * * *").is_ok());
        assert!(parse_schedule("0 */30 * * * *").is_ok());
        let err = parse_schedule("every half hour").unwrap_err();
        assert!(err.contains("*/30 * * * *"), "{err}");
        let wait = next_run(&parse_schedule("*/30 * * * *").unwrap()).unwrap();
        assert!(wait <= Duration::from_secs(30 * 60));
    }

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
