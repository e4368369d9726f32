//! The contact cache (`contact_cache`): contacts as last read from HubSpot, by id, email and
//! E.164 phone, fresh for `CACHE_TTL` (24 h by default) on the store's clock. A write never
//! replaces a newer version of a contact (events and reads arrive out of order). The lookup
//! that reads through it is [`crate::lookup`].

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;

use super::{Db, StoreError, StoreResult};
use crate::domain::contact::Contact;

#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale_served: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct Cache {
    db: Db,
    ttl: Duration,
    stats: std::sync::Arc<CacheStats>,
}

impl Cache {
    pub fn new(db: Db, ttl: Duration) -> Self {
        Self {
            db,
            ttl,
            stats: Default::default(),
        }
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Stores a HubSpot contact object, unless the cache holds a newer version of it (events
    /// and reads may arrive out of order).
    pub async fn put(&self, object: &Value) -> StoreResult<()> {
        self.put_all(std::slice::from_ref(object)).await
    }

    /// [`put`](Self::put) for many objects (a sync page), in one write transaction.
    pub async fn put_all(&self, objects: &[Value]) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        for object in objects {
            let Some(id) = object["id"].as_str() else {
                return Err(StoreError::Data("a contact without an id".into()));
            };
            let p = &object["properties"];
            let updated = object["updatedAt"]
                .as_str()
                .or_else(|| p["lastmodifieddate"].as_str());
            sqlx::query(
                "INSERT INTO contact_cache (hubspot_id, email, phone, contact, hs_updated_at, fetched_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (hubspot_id) DO UPDATE SET
                     email = excluded.email, phone = excluded.phone, contact = excluded.contact,
                     hs_updated_at = excluded.hs_updated_at, fetched_at = excluded.fetched_at
                 WHERE contact_cache.hs_updated_at IS NULL OR excluded.hs_updated_at IS NULL
                    OR excluded.hs_updated_at >= contact_cache.hs_updated_at",
            )
            .bind(id)
            .bind(p["email"].as_str().map(str::to_lowercase))
            .bind(p["phone"].as_str())
            .bind(serde_json::to_string(&Contact::from_hubspot(object))?)
            .bind(updated)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await
    }

    pub async fn remove(&self, id: &str) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query("DELETE FROM contact_cache WHERE hubspot_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Cached contacts with this E.164 phone, and whether the freshest is within the TTL.
    pub async fn by_phone(&self, phone: &str) -> StoreResult<Option<(Vec<Contact>, bool)>> {
        let rows = sqlx::query("SELECT contact, fetched_at FROM contact_cache WHERE phone = $1 ORDER BY fetched_at DESC")
            .bind(phone)
            .fetch_all(self.db.pool())
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let newest: i64 = rows[0].get("fetched_at");
        let fresh = self.db.now_ms() - newest < self.ttl.as_millis() as i64;
        let contacts = rows
            .iter()
            .filter_map(|r| serde_json::from_str(r.get::<&str, _>("contact")).ok())
            .collect();
        Ok(Some((contacts, fresh)))
    }

    pub async fn len(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM contact_cache")
            .fetch_one(self.db.pool())
            .await?
            .get("n"))
    }
}
