//! The contact cache: contacts as last read from HubSpot, by id, email and E.164 phone, fresh for
//! `CACHE_TTL` (24 h by default). Lookups answer from it, fall back to HubSpot, and when HubSpot
//! is unavailable serve what the cache has, marked stale, rather than nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::contacts::Contact;
use crate::db::{Db, StoreResult};
use crate::hubspot::search::ContactSearch;
use crate::hubspot::{HubSpotClient, HubSpotError};

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
        let Some(id) = object["id"].as_str() else {
            return Err(crate::db::StoreError::Data(
                "a contact without an id".into(),
            ));
        };
        let p = &object["properties"];
        let updated = object["updatedAt"]
            .as_str()
            .or_else(|| p["lastmodifieddate"].as_str());
        let mut w = self.db.write().await?;
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
        .bind(crate::clock::now_ms())
        .execute(&mut *w.tx)
        .await?;
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
        let fresh = crate::clock::now_ms() - newest < self.ttl.as_millis() as i64;
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

    /// Looks up contacts by an E.164 phone: the cache when fresh, else HubSpot's search (which
    /// refreshes the cache), else a stale cache entry marked `stale`.
    pub async fn lookup_phone(
        &self,
        client: Option<&HubSpotClient>,
        phone: &str,
    ) -> Result<PhoneLookup, HubSpotError> {
        let cached = self.by_phone(phone).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cache read failed");
            None
        });
        let answer = |source: &'static str, stale: bool, contacts: Vec<Contact>| PhoneLookup {
            phone: phone.to_string(),
            found: !contacts.is_empty(),
            source,
            stale,
            contacts,
        };
        let stale = match cached {
            Some((contacts, true)) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(answer("cache", false, contacts));
            }
            Some((contacts, false)) => Some(contacts),
            None => None,
        };
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let fallback = |err: HubSpotError| match stale {
            Some(contacts) => {
                self.stats.stale_served.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %crate::mask::text(&err.to_string()), "HubSpot unavailable; serving a stale cache entry");
                Ok(answer("cache", true, contacts))
            }
            None => Err(err),
        };
        let Some(client) = client else {
            return fallback(HubSpotError::Unreachable(
                "HubSpot integration is disabled".into(),
            ));
        };
        let request = ContactSearch::Phone(phone.to_string()).request(10);
        match client.search_contacts(&request).await {
            Ok(found) => {
                let results = found["results"].as_array().cloned().unwrap_or_default();
                for object in &results {
                    if let Err(e) = self.put(object).await {
                        tracing::warn!(error = %e, "cache write failed");
                    }
                }
                let contacts = results.iter().map(Contact::from_hubspot).collect();
                Ok(answer("hubspot", false, contacts))
            }
            Err(e) => fallback(e),
        }
    }
}

/// A phone lookup's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneLookup {
    /// The phone in E.164.
    pub phone: String,
    pub found: bool,
    /// `cache` or `hubspot`.
    pub source: &'static str,
    /// Served from the cache past its TTL because HubSpot could not be reached.
    pub stale: bool,
    pub contacts: Vec<Contact>,
}
