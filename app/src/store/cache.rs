//! The contact cache (`portal_contacts`): contacts as last read from HubSpot, per portal, by
//! id, email and E.164 phone, fresh for `CACHE_TTL` (24 h by default) on the store's clock. A
//! portal's contacts are never seen through another portal. A write never replaces a newer
//! version of a contact (events and reads arrive out of order). The lookup that reads through
//! it is [`crate::lookup`].

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;

use super::{portal_key, Db, StoreError, StoreResult};
use crate::domain::contact::Contact;
use crate::domain::portal::PortalId;

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

    /// Stores a HubSpot contact object read from `portal` (`None`: the private-app account),
    /// unless the cache holds a newer version of it (events and reads may arrive out of order).
    pub async fn put(&self, portal: Option<PortalId>, object: &Value) -> StoreResult<()> {
        self.put_all(portal, std::slice::from_ref(object)).await
    }

    /// [`put`](Self::put) for many objects (a sync page), in one write transaction.
    pub async fn put_all(&self, portal: Option<PortalId>, objects: &[Value]) -> StoreResult<()> {
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
                "INSERT INTO portal_contacts (portal_key, hubspot_id, email, phone, contact, hs_updated_at, fetched_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (portal_key, hubspot_id) DO UPDATE SET
                     email = excluded.email, phone = excluded.phone, contact = excluded.contact,
                     hs_updated_at = excluded.hs_updated_at, fetched_at = excluded.fetched_at
                 WHERE portal_contacts.hs_updated_at IS NULL OR excluded.hs_updated_at IS NULL
                    OR excluded.hs_updated_at >= portal_contacts.hs_updated_at",
            )
            .bind(portal_key(portal))
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

    pub async fn remove(&self, portal: Option<PortalId>, id: &str) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query("DELETE FROM portal_contacts WHERE portal_key = $1 AND hubspot_id = $2")
            .bind(portal_key(portal))
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Cached contacts of `portal` with this E.164 phone, and whether the freshest is within
    /// the TTL.
    pub async fn by_phone(
        &self,
        portal: Option<PortalId>,
        phone: &str,
    ) -> StoreResult<Option<(Vec<Contact>, bool)>> {
        let rows = sqlx::query(
            "SELECT contact, fetched_at FROM portal_contacts WHERE portal_key = $1 AND phone = $2
             ORDER BY fetched_at DESC",
        )
        .bind(portal_key(portal))
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

    /// Cached contacts, of every portal.
    pub async fn len(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM portal_contacts")
            .fetch_one(self.db.pool())
            .await?
            .get("n"))
    }

    /// Cached contacts of one portal.
    pub async fn len_of(&self, portal: Option<PortalId>) -> StoreResult<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM portal_contacts WHERE portal_key = $1")
                .bind(portal_key(portal))
                .fetch_one(self.db.pool())
                .await?
                .get("n"),
        )
    }
}
