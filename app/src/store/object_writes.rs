//! `object_writes`: local changes of app-owned properties on their way to HubSpot. Accepting a
//! change stores the app's value on the record (`crm_objects.app_fields`, which a sync never
//! overwrites) and queues the write, in one transaction.
//!
//! Order per record: only a record's oldest pending write (its head) is claimable, and it is
//! claimed together with every newer pending write of the record, merged newer on top; while
//! those are leased (in flight) nothing else of the record is. So a newer write never reaches
//! HubSpot before an older one, and a retrying older write carries the newer values with it.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::{portal_key, Db, StoreError, StoreResult};
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;

/// One record's claimed writes, merged.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    pub object_id: String,
    /// The writes merged (oldest first).
    pub ids: Vec<i64>,
    /// HubSpot property → value, newer writes on top.
    pub properties: BTreeMap<String, String>,
    /// The most attempts any of them has had.
    pub attempts: i64,
}

/// A claimed batch: one portal, one type, up to 100 records.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub portal: Option<PortalId>,
    pub object_type: ObjectType,
    pub records: Vec<RecordWrite>,
}

/// The queue's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WriteDepth {
    pub pending: i64,
    pub sent: i64,
    pub dead: i64,
}

#[derive(Debug, Clone)]
pub struct ObjectWrites {
    db: Db,
    wake: std::sync::Arc<tokio::sync::Notify>,
}

/// Records per batch update (HubSpot's batch limit).
pub const BATCH: usize = 100;

impl ObjectWrites {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Default::default(),
        }
    }

    /// Notified on every accepted change (the writer waits on it).
    pub fn wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    pub fn now_ms(&self) -> i64 {
        self.db.now_ms()
    }

    /// Accepts a local change: `fields` (local names) become the record's app values and
    /// `properties` (their HubSpot names) a queued write. Returns the write's id; `None` when
    /// the record is not stored here (or is archived).
    pub async fn accept(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        object_id: &str,
        fields: &BTreeMap<String, String>,
        properties: &BTreeMap<String, String>,
    ) -> StoreResult<Option<i64>> {
        let key = portal_key(portal);
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let row = sqlx::query(
            "SELECT fields, app_fields FROM crm_objects
             WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3 AND archived_at IS NULL",
        )
        .bind(key)
        .bind(object_type.as_str())
        .bind(object_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut shown: BTreeMap<String, String> = serde_json::from_str(row.get("fields"))?;
        let mut app: BTreeMap<String, String> = serde_json::from_str(row.get("app_fields"))?;
        for (k, v) in fields {
            shown.insert(k.clone(), v.clone());
            app.insert(k.clone(), v.clone());
        }
        sqlx::query(
            "UPDATE crm_objects SET fields = $4, app_fields = $5
             WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3",
        )
        .bind(key)
        .bind(object_type.as_str())
        .bind(object_id)
        .bind(serde_json::to_string(&shown)?)
        .bind(serde_json::to_string(&app)?)
        .execute(&mut *w.tx)
        .await?;
        for (field, value) in fields {
            sqlx::query(
                "DELETE FROM crm_fields WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3 AND field = $4",
            )
            .bind(key)
            .bind(object_type.as_str())
            .bind(object_id)
            .bind(field)
            .execute(&mut *w.tx)
            .await?;
            sqlx::query(
                "INSERT INTO crm_fields (portal_key, object_type, hubspot_id, field, value) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key)
            .bind(object_type.as_str())
            .bind(object_id)
            .bind(field)
            .bind(value)
            .execute(&mut *w.tx)
            .await?;
        }
        let id: i64 = sqlx::query(
            "INSERT INTO object_writes (portal_key, object_type, object_id, properties, state, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) RETURNING id",
        )
        .bind(key)
        .bind(object_type.as_str())
        .bind(object_id)
        .bind(serde_json::to_string(properties)?)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?
        .get("id");
        w.commit().await?;
        self.wake.notify_waiters();
        Ok(Some(id))
    }

    /// Claims the due heads of one portal's type (the oldest due head decides which), up to
    /// [`BATCH`] records, each with all its pending writes; leased to `owner` for `lease_ms`.
    pub async fn claim(&self, owner: &str, lease_ms: i64) -> StoreResult<Option<Claim>> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let heads = sqlx::query(
            "SELECT w.portal_key, w.object_type, w.object_id FROM object_writes w
             WHERE w.state = 'pending' AND w.next_attempt_at <= $1
               AND (w.lease_until IS NULL OR w.lease_until < $1)
               AND NOT EXISTS (SELECT 1 FROM object_writes o
                   WHERE o.portal_key = w.portal_key AND o.object_type = w.object_type
                     AND o.object_id = w.object_id AND o.state = 'pending' AND o.id < w.id)
             ORDER BY w.id LIMIT 1000",
        )
        .bind(now)
        .fetch_all(&mut *w.tx)
        .await?;
        let Some(first) = heads.first() else {
            return Ok(None);
        };
        let (key, kind): (i64, String) = (first.get("portal_key"), first.get("object_type"));
        let object_type: ObjectType = kind
            .parse()
            .map_err(|e: crate::domain::object::UnknownType| StoreError::Data(e.to_string()))?;
        let ids: Vec<String> = heads
            .iter()
            .filter(|r| {
                r.get::<i64, _>("portal_key") == key && r.get::<String, _>("object_type") == kind
            })
            .map(|r| r.get("object_id"))
            .take(BATCH)
            .collect();
        let mut records = Vec::with_capacity(ids.len());
        for object_id in ids {
            let rows = sqlx::query(
                "SELECT id, properties, attempts FROM object_writes
                 WHERE portal_key = $1 AND object_type = $2 AND object_id = $3 AND state = 'pending'
                 ORDER BY id",
            )
            .bind(key)
            .bind(&kind)
            .bind(&object_id)
            .fetch_all(&mut *w.tx)
            .await?;
            let mut record = RecordWrite {
                object_id,
                ids: Vec::new(),
                properties: BTreeMap::new(),
                attempts: 0,
            };
            for r in &rows {
                let props: BTreeMap<String, String> =
                    serde_json::from_str(r.get::<&str, _>("properties"))?;
                record.properties.extend(props);
                record.ids.push(r.get("id"));
                record.attempts = record.attempts.max(r.get("attempts"));
            }
            for id in &record.ids {
                sqlx::query(
                    "UPDATE object_writes SET lease_owner = $2, lease_until = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(owner)
                .bind(now + lease_ms)
                .execute(&mut *w.tx)
                .await?;
            }
            records.push(record);
        }
        w.commit().await?;
        Ok(Some(Claim {
            portal: (key != 0).then_some(PortalId(key as u64)),
            object_type,
            records,
        }))
    }

    /// Settles a claimed record's writes: sent, or failed (retried after `retry_in_ms`, or
    /// dead once `dead`).
    pub async fn settle(
        &self,
        record: &RecordWrite,
        outcome: Result<(), (String, i64, bool)>,
    ) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        for id in &record.ids {
            match &outcome {
                Ok(()) => sqlx::query(
                    "UPDATE object_writes SET state = 'sent', sent_at = $2, lease_owner = NULL, lease_until = NULL,
                         attempts = attempts + 1 WHERE id = $1",
                )
                .bind(id)
                .bind(now),
                Err((error, retry_in_ms, dead)) => sqlx::query(
                    "UPDATE object_writes SET state = $2, attempts = attempts + 1, next_attempt_at = $3,
                         last_error = $4, lease_owner = NULL, lease_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(if *dead { "dead" } else { "pending" })
                .bind(now + retry_in_ms)
                .bind(crate::mask::text(error)),
            }
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await
    }

    /// When the next pending write is due (epoch ms), if any.
    pub async fn next_due(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at
                        THEN lease_until ELSE next_attempt_at END) AS due
             FROM object_writes WHERE state = 'pending'",
        )
        .fetch_one(self.db.pool())
        .await?
        .get("due"))
    }

    pub async fn depth(&self) -> StoreResult<WriteDepth> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM object_writes GROUP BY state")
            .fetch_all(self.db.pool())
            .await?;
        let mut d = WriteDepth::default();
        for r in rows {
            let n: i64 = r.get("n");
            match r.get::<&str, _>("state") {
                "pending" => d.pending = n,
                "sent" => d.sent = n,
                "dead" => d.dead = n,
                _ => {}
            }
        }
        Ok(d)
    }

    /// One write's state: `pending`, `sent` or `dead`, with its last error.
    pub async fn state_of(&self, id: i64) -> StoreResult<Option<(String, Option<String>)>> {
        let row = sqlx::query("SELECT state, last_error FROM object_writes WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| (r.get("state"), r.get("last_error"))))
    }
}
