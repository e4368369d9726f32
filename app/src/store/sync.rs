//! The pull sync's state (`portal_sync_state`, one row per portal and object type): whether a
//! run is going, the position it committed after its last page, the cursor of the last
//! finished run. Taking the run is one conditional UPDATE, so two processes never sync one
//! portal's type at once; a run that is stuck, or whose process is gone, is taken over from its
//! committed position.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use super::{portal_key, Db, StoreError, StoreResult};
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;
use crate::domain::sync::{Position, RunState};

/// A run syncing this long is stuck, even if it still commits pages: it is reset.
pub const STUCK_AFTER: Duration = Duration::from_secs(3600);
/// A run that committed nothing for this long lost its process (a page takes seconds): the
/// next run takes over from its last committed page.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// Where the pull sync is (times are epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// The portal synced; `null` for the private-app account.
    #[schema(value_type = Option<u64>)]
    pub portal_id: Option<PortalId>,
    pub object_type: String,
    pub status: RunState,
    pub cursor: Option<i64>,
    pub error_count: i64,
    pub last_error: Option<String>,
    pub last_success: Option<i64>,
    pub started_at: Option<i64>,
    pub synced_last_run: i64,
}

/// What asking for the run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The run is this caller's: walk from `position` up to `until` (epoch ms).
    Taken {
        position: Position,
        until: i64,
    },
    /// Another run is going, started this long ago.
    Running {
        for_ms: i64,
    },
    Disabled,
}

/// One portal's rows of the `portal_sync_state` table.
#[derive(Debug, Clone)]
pub struct SyncState {
    db: Db,
    /// `None`: the private-app account.
    portal: Option<PortalId>,
    object_type: ObjectType,
}

impl SyncState {
    /// The contacts row of `portal`; [`for_type`](Self::for_type) for another type's.
    pub fn new(db: Db, portal: Option<PortalId>) -> Self {
        Self {
            db,
            portal,
            object_type: ObjectType::Contacts,
        }
    }

    pub fn portal(&self) -> Option<PortalId> {
        self.portal
    }

    /// The same table, another portal's rows.
    pub fn for_portal(&self, portal: Option<PortalId>) -> Self {
        Self {
            portal,
            ..self.clone()
        }
    }

    /// The same portal's row of another object type.
    pub fn for_type(&self, object_type: ObjectType) -> Self {
        Self {
            object_type,
            ..self.clone()
        }
    }

    fn key(&self) -> i64 {
        portal_key(self.portal)
    }

    pub fn object_type(&self) -> ObjectType {
        self.object_type
    }

    /// Where the sync stands; a read only (status pages ask it for every portal): a portal never
    /// synced is idle, as its row will be when the first run creates it.
    pub async fn status(&self) -> StoreResult<Status> {
        let row = sqlx::query(
            "SELECT status, cursor_ms, error_count, last_error, last_success, started_at, synced_last_run
             FROM portal_sync_state WHERE portal_key = $1 AND object_type = $2",
        )
        .bind(self.key())
        .bind(self.object_type.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else {
            return Ok(Status {
                portal_id: self.portal,
                object_type: self.object_type.as_str().into(),
                status: RunState::Idle,
                cursor: None,
                error_count: 0,
                last_error: None,
                last_success: None,
                started_at: None,
                synced_last_run: 0,
            });
        };
        Ok(Status {
            portal_id: self.portal,
            object_type: self.object_type.as_str().into(),
            status: r
                .get::<&str, _>("status")
                .parse()
                .map_err(StoreError::Data)?,
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
            "INSERT INTO portal_sync_state (portal_key, object_type, status, error_count, synced_last_run, updated_at)
             VALUES ($3, $1, 'idle', 0, 0, $2) ON CONFLICT (portal_key, object_type) DO NOTHING",
        )
        .bind(self.object_type.as_str())
        .bind(self.db.now_ms())
        .bind(self.key())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Takes the run: idle/error → syncing, or a `syncing` row with no progress for
    /// [`STUCK_AFTER`] (reset, resuming from its committed position).
    pub async fn begin(&self, overlap: Duration) -> StoreResult<Begin> {
        self.ensure_row().await?;
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let taken = sqlx::query(
            "UPDATE portal_sync_state SET
                 status = 'syncing', started_at = $1, updated_at = $1, synced_last_run = 0,
                 run_until = CASE WHEN position IS NULL THEN $1 ELSE run_until END,
                 last_error = CASE WHEN status = 'syncing'
                     THEN 'taken over: the previous run was stuck or its process was gone' ELSE last_error END
             WHERE object_type = $2 AND portal_key = $5
               AND (status IN ('idle', 'error')
                    OR (status = 'syncing' AND (started_at < $3 OR updated_at < $4)))",
        )
        .bind(now)
        .bind(self.object_type.as_str())
        .bind(now - STUCK_AFTER.as_millis() as i64)
        .bind(now - ABANDONED_AFTER.as_millis() as i64)
        .bind(self.key())
        .execute(&mut *w.tx)
        .await
        ?;
        let row = sqlx::query(
            "SELECT status, started_at, position, cursor_ms, run_until FROM portal_sync_state
             WHERE object_type = $1 AND portal_key = $2",
        )
        .bind(self.object_type.as_str())
        .bind(self.key())
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        if taken.rows_affected() == 0 {
            if row.get::<&str, _>("status").parse() == Ok(RunState::Disabled) {
                return Ok(Begin::Disabled);
            }
            let started: Option<i64> = row.get("started_at");
            return Ok(Begin::Running {
                for_ms: now - started.unwrap_or(now),
            });
        }
        let until: i64 = row.get::<Option<i64>, _>("run_until").unwrap_or(now);
        let position = match row.get::<Option<String>, _>("position") {
            Some(p) => serde_json::from_str(&p)?,
            None => match row.get::<Option<i64>, _>("cursor_ms") {
                None => Position::Listing {
                    after: None,
                    max_seen: 0,
                },
                Some(cursor) => Position::Window {
                    from: cursor - overlap.as_millis() as i64,
                    after: 0,
                    max_seen: cursor,
                    first: None,
                },
            },
        };
        Ok(Begin::Taken { position, until })
    }

    pub async fn commit(&self, position: &Position, synced: usize) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "UPDATE portal_sync_state SET position = $1, updated_at = $2, synced_last_run = synced_last_run + $3
             WHERE object_type = $4 AND portal_key = $5",
        )
        .bind(serde_json::to_string(position)?)
        .bind(self.db.now_ms())
        .bind(synced as i64)
        .bind(self.object_type.as_str())
        .bind(self.key())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn finish(&self, cursor: i64) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "UPDATE portal_sync_state SET status = 'idle', cursor_ms = $1, position = NULL, run_until = NULL,
                 error_count = 0, last_error = NULL, last_success = $2, updated_at = $2
             WHERE object_type = $3 AND portal_key = $4",
        )
        .bind(cursor)
        .bind(self.db.now_ms())
        .bind(self.object_type.as_str())
        .bind(self.key())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Makes the next run list every record again (its fields changed meaning: new mappings).
    /// Returns false while a run is going (its finish would set the cursor again).
    pub async fn relist(&self) -> StoreResult<bool> {
        self.ensure_row().await?;
        let mut w = self.db.write().await?;
        let done = sqlx::query(
            "UPDATE portal_sync_state SET cursor_ms = NULL, position = NULL, run_until = NULL, updated_at = $1
             WHERE object_type = $2 AND portal_key = $3 AND status <> 'syncing'",
        )
        .bind(self.db.now_ms())
        .bind(self.object_type.as_str())
        .bind(self.key())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done > 0)
    }

    /// The object types this portal chose to sync; `None`: the default (`SYNC_OBJECTS`).
    pub async fn objects(&self) -> StoreResult<Option<Vec<ObjectType>>> {
        let row = sqlx::query("SELECT objects FROM portal_sync_objects WHERE portal_key = $1")
            .bind(self.key())
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| {
            crate::domain::object::parse_list(r.get::<&str, _>("objects"))
                .map_err(|e| StoreError::Data(e.to_string()))
        })
        .transpose()
    }

    /// Sets the object types this portal syncs (`None`: back to the default).
    pub async fn set_objects(&self, objects: Option<&[ObjectType]>) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        match objects {
            Some(list) => {
                let text: Vec<&str> = list.iter().map(|t| t.as_str()).collect();
                sqlx::query(
                    "INSERT INTO portal_sync_objects (portal_key, objects, updated_at) VALUES ($1, $2, $3)
                     ON CONFLICT (portal_key) DO UPDATE SET objects = excluded.objects, updated_at = excluded.updated_at",
                )
                .bind(self.key())
                .bind(text.join(","))
                .bind(self.db.now_ms())
                .execute(&mut *w.tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM portal_sync_objects WHERE portal_key = $1")
                    .bind(self.key())
                    .execute(&mut *w.tx)
                    .await?;
            }
        }
        w.commit().await
    }

    /// A failed run keeps its committed position; the next run resumes there.
    pub async fn fail(&self, error: &str) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "UPDATE portal_sync_state SET status = 'error', error_count = error_count + 1, last_error = $1, updated_at = $2
             WHERE object_type = $3 AND portal_key = $4",
        )
        .bind(crate::mask::text(error))
        .bind(self.db.now_ms())
        .bind(self.object_type.as_str())
        .bind(self.key())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }
}
