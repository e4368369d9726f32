//! HubSpot webhooks: `POST /webhooks/hubspot`.
//!
//! The request is verified (v3 by default: HMAC-SHA256 over method, URI, body and timestamp,
//! base64, within 5 minutes; v1/v2 when configured), its events are recorded durably (the event
//! id is the primary key, so a duplicate delivery is recorded once), and it is answered at once.
//! A processor then refreshes the contact cache from HubSpot for each changed contact: it reads
//! the contact's current state instead of applying the event, so duplicates and out-of-order
//! events are harmless.

mod signature;

pub use signature::{public_uri, verify, Rejected, Version, MAX_AGE};

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::Row;

use crate::db::{Db, StoreResult};

/// HubSpot sends at most 100 events per request; this is ample for that.
pub const MAX_BODY: usize = 256 * 1024;
/// Processed events are kept this long (for dedupe of late redeliveries), then cleaned up.
pub const KEEP_EVENTS: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a processing round stopped: HubSpot (the events stay unprocessed, retried next round)
/// or the store.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("HubSpot: {0}")]
    HubSpot(#[from] crate::hubspot::HubSpotError),
    #[error(transparent)]
    Store(#[from] crate::db::StoreError),
}

/// One event as HubSpot sends it (the fields this service uses; others are kept in `payload`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: u64,
    pub subscription_type: String,
    pub object_id: u64,
    pub occurred_at: i64,
}

/// Parses a delivery: a non-empty JSON array of events, at most 100.
pub fn parse(body: &[u8]) -> Result<Vec<(Event, serde_json::Value)>, String> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| format!("body: not a JSON array of events: {e}"))?;
    if values.is_empty() || values.len() > 100 {
        return Err("body: HubSpot sends 1 to 100 events per request".into());
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<Event>(v.clone())
                .map(|e| (e, v))
                .map_err(|e| format!("[{i}]: {e}"))
        })
        .collect()
}

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

    /// Processes recorded events until `stop`: each changed contact is re-read from HubSpot and
    /// the cache refreshed (or the entry dropped when HubSpot no longer has it). A HubSpot
    /// failure leaves the events for the next round. Also deletes expired events hourly.
    pub async fn run(
        self,
        cache: crate::cache::Cache,
        client: Arc<crate::hubspot::HubSpotClient>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut last_cleanup = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if *stop.borrow() {
                return;
            }
            if last_cleanup.elapsed() >= Duration::from_secs(3600) {
                last_cleanup = std::time::Instant::now();
                if let Err(e) = self.cleanup().await {
                    tracing::warn!(error = %e, "webhook event cleanup failed");
                }
            }
            let pause = match self.process_once(&cache, &client).await {
                Ok(0) => Duration::from_secs(1),
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %crate::mask::text(&format!("{e:#}")), "webhook processing failed; retrying in 5 s");
                    Duration::from_secs(5)
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// One round: up to 100 events, each distinct contact read once. Returns events processed.
    pub async fn process_once(
        &self,
        cache: &crate::cache::Cache,
        client: &crate::hubspot::HubSpotClient,
    ) -> Result<usize, ProcessError> {
        let events = self.unprocessed(100).await?;
        let mut seen = std::collections::BTreeSet::new();
        for (_, kind, object_id) in &events {
            if !kind.starts_with("contact.") || !seen.insert(*object_id) {
                continue;
            }
            let id = object_id.to_string();
            match client.contact_by_id(&id).await? {
                Some(object) => cache.put(&object).await?,
                None => cache.remove(&id).await?,
            }
        }
        let ids: Vec<i64> = events.iter().map(|e| e.0).collect();
        self.mark_processed(&ids).await?;
        self.stats
            .processed
            .fetch_add(ids.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(ids.len())
    }

    /// Records events; returns (new, duplicates). Multi-row INSERTs (up to 500 events each,
    /// far under SQLite's and PostgreSQL's bound-parameter limits) in one write transaction:
    /// the database sees one statement per delivery, not one per event.
    pub async fn record(
        &self,
        events: &[(Event, serde_json::Value)],
    ) -> StoreResult<(usize, usize)> {
        const PER_STATEMENT: usize = 500;
        let now = crate::clock::now_ms();
        let mut w = self.db.write().await?;
        let mut new = 0;
        for chunk in events.chunks(PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", crate::db::placeholders(i * 7 + 1, 7)))
                .collect();
            let sql = format!(
                "INSERT INTO webhook_events (event_id, subscription_type, object_id, occurred_at, payload, received_at, expires_at)
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
            }
            new += query.execute(&mut *w.tx).await?.rows_affected() as usize;
        }
        w.commit().await?;
        self.wake.notify_one();
        Ok((new, events.len() - new))
    }

    /// Unprocessed events: (row id, subscription type, object id), oldest first.
    pub async fn unprocessed(&self, limit: i64) -> StoreResult<Vec<(i64, String, i64)>> {
        let rows = sqlx::query(
            "SELECT id, subscription_type, object_id FROM webhook_events
             WHERE processed_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("id"), r.get("subscription_type"), r.get("object_id")))
            .collect())
    }

    /// Marks events processed: one UPDATE per 500 ids, in one write transaction.
    pub async fn mark_processed(&self, ids: &[i64]) -> StoreResult<()> {
        let now = crate::clock::now_ms();
        let mut w = self.db.write().await?;
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE webhook_events SET processed_at = $1 WHERE id IN ({})",
                crate::db::placeholders(2, chunk.len())
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
        .bind(crate::clock::now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(deleted)
    }

    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_deliveries_are_named() {
        assert!(parse(b"{")
            .unwrap_err()
            .starts_with("body: not a JSON array"));
        assert!(parse(b"[]").unwrap_err().contains("1 to 100"));
        assert!(parse(br#"[{"eventId": 1}]"#)
            .unwrap_err()
            .starts_with("[0]: missing field"));
    }
}
