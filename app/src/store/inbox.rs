//! The webhook inbox (`webhook_events`): events HubSpot sent, recorded durably before the
//! delivery is answered. The event's identity (id, type, object, time) is the key, so a
//! duplicate delivery is recorded once. The processor ([`crate::jobs::webhooks`]) reads them in
//! order and marks them processed; processed events are kept [`KEEP_EVENTS`] (for late
//! redeliveries), then deleted.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use super::{placeholders, Db, StoreResult};
use crate::domain::event::{Event, Recorded};

/// Processed events are kept this long (for dedupe of late redeliveries), then cleaned up.
pub const KEEP_EVENTS: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Default)]
pub struct WebhookStats {
    pub accepted: std::sync::atomic::AtomicU64,
    pub duplicates: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
    pub processed: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone)]
pub struct Inbox {
    db: Db,
    wake: Arc<tokio::sync::Notify>,
    pub stats: Arc<WebhookStats>,
}

impl Inbox {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Records events; returns (new, duplicates). An event `refuse` names a reason for (a
    /// portal not connected here) is recorded as processed, with the reason, and never applied.
    ///  Multi-row INSERTs (up to 500 events each,
    /// far under SQLite's and PostgreSQL's bound-parameter limits) in one write transaction:
    /// the database sees one statement per delivery, not one per event.
    pub async fn record(
        &self,
        events: &[(Event, serde_json::Value)],
        refuse: impl Fn(&Event) -> Option<String>,
    ) -> StoreResult<(usize, usize)> {
        const PER_STATEMENT: usize = 500;
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let mut new = 0;
        for chunk in events.chunks(PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * 10 + 1, 10)))
                .collect();
            let sql = format!(
                "INSERT INTO webhook_events (event_id, subscription_type, object_id, occurred_at, payload, received_at, expires_at, portal_id, refused, processed_at)
                 VALUES {}
                 ON CONFLICT (event_id, subscription_type, object_id, occurred_at) DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (e, payload) in chunk {
                query = query
                    .bind(e.event_id as i64)
                    .bind(e.subscription_type.clone())
                    .bind(e.object_id as i64)
                    .bind(e.occurred_at)
                    .bind(payload.to_string())
                    .bind(now)
                    .bind(now + KEEP_EVENTS.as_millis() as i64);
                let refused = refuse(e);
                query = query
                    .bind(e.portal_id.map(|p| p as i64))
                    .bind(refused.as_ref().map(|r| crate::mask::text(r)))
                    .bind(refused.map(|_| now));
            }
            new += query.execute(&mut *w.tx).await?.rows_affected() as usize;
        }
        w.commit().await?;
        self.wake.notify_one();
        Ok((new, events.len() - new))
    }

    /// Unprocessed events: (row id, subscription type, object id), oldest first.
    /// The oldest `limit` unprocessed events, passing over those of the portals in `resting`
    /// (`None` in it: the events without a portal), whose HubSpot is failing for now.
    pub async fn unprocessed(
        &self,
        limit: i64,
        resting: &[Option<u64>],
    ) -> StoreResult<Vec<Recorded>> {
        let portals: Vec<i64> = resting.iter().flatten().map(|p| *p as i64).collect();
        let mut sql = String::from(
            "SELECT id, subscription_type, object_id, portal_id, payload FROM webhook_events
             WHERE processed_at IS NULL",
        );
        if resting.contains(&None) {
            sql.push_str(" AND portal_id IS NOT NULL");
        }
        if !portals.is_empty() {
            let list = super::placeholders(2, portals.len());
            sql.push_str(&format!(
                " AND (portal_id IS NULL OR portal_id NOT IN ({list}))"
            ));
        }
        sql.push_str(" ORDER BY id LIMIT $1");
        let mut query = sqlx::query(&sql).bind(limit);
        for p in &portals {
            query = query.bind(*p);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| Recorded {
                id: r.get("id"),
                subscription_type: r.get("subscription_type"),
                object_id: r.get("object_id"),
                portal_id: r.get::<Option<i64>, _>("portal_id").map(|p| p as u64),
                payload: serde_json::from_str(r.get::<&str, _>("payload"))
                    .unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }

    /// Events refused since `since` (epoch ms), for status: (portal, count).
    pub async fn refused_since(&self, since: i64) -> StoreResult<Vec<(Option<u64>, i64)>> {
        Ok(sqlx::query(
            "SELECT portal_id, COUNT(*) AS n FROM webhook_events
             WHERE refused IS NOT NULL AND received_at >= $1 GROUP BY portal_id ORDER BY portal_id",
        )
        .bind(since)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| {
            (
                r.get::<Option<i64>, _>("portal_id").map(|p| p as u64),
                r.get("n"),
            )
        })
        .collect())
    }

    /// Marks events processed: one UPDATE per 500 ids, in one write transaction.
    pub async fn mark_processed(&self, ids: &[i64]) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE webhook_events SET processed_at = $1 WHERE id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *w.tx).await?;
        }
        w.commit().await
    }

    /// Deletes processed events past their expiry; returns how many.
    pub async fn cleanup(&self) -> StoreResult<u64> {
        let mut w = self.db.write().await?;
        let deleted = sqlx::query(
            "DELETE FROM webhook_events WHERE processed_at IS NOT NULL AND expires_at < $1",
        )
        .bind(self.db.now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(deleted)
    }

    /// Now on the store's clock.
    pub fn now_ms(&self) -> i64 {
        self.db.now_ms()
    }

    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}
