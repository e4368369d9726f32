//! The contact cache (`portal_contacts`): contacts as last read from HubSpot, per portal, by
//! id, email and E.164 phone, fresh for `CACHE_TTL` (24 h by default) on the store's clock. A
//! portal's contacts are never seen through another portal. A write never replaces a newer
//! version of a contact (events and reads arrive out of order). The lookup that reads through
//! it is [`crate::lookup`].
//!
//! Encrypted at rest: the contact is sealed by the [`Sealer`] (bound to its portal and HubSpot
//! id), and found by the blind indexes of its phone and email, never by the values. Without a
//! sealer (no `TOKEN_ENCRYPTION_KEY`) nothing is cached. A contact erased here
//! (`privacy_erased`) is never cached again.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;

use super::{placeholders, portal_key, Db, StoreError, StoreResult};
use crate::domain::contact::{phone_key, Contact};
use crate::domain::portal::PortalId;
use crate::domain::privacy::{PersonKey, SharedSealer};

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
    sealer: Option<SharedSealer>,
}

/// A cached contact as the privacy tools see it: where it is and what it says.
#[derive(Debug, Clone)]
pub struct CachedPerson {
    pub portal_key: i64,
    pub hubspot_id: String,
    pub contact: Contact,
}

/// The sealing context of a cached contact: its row.
fn context(portal_key: i64, id: &str) -> String {
    format!("portal_contacts:{portal_key}:{id}")
}

impl Cache {
    pub fn new(db: Db, ttl: Duration, sealer: Option<SharedSealer>) -> Self {
        Self {
            db,
            ttl,
            stats: Default::default(),
            sealer,
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
        let Some(sealer) = &self.sealer else {
            return Ok(());
        };
        let now = self.db.now_ms();
        let key = portal_key(portal);
        let mut rows = Vec::with_capacity(objects.len());
        for object in objects {
            let Some(id) = object["id"].as_str() else {
                return Err(StoreError::Data("a contact without an id".into()));
            };
            let p = &object["properties"];
            let updated = object["updatedAt"]
                .as_str()
                .or_else(|| p["lastmodifieddate"].as_str());
            let index = |k: Option<PersonKey>| k.map(|k| sealer.blind(&k.indexed()).swap_remove(0));
            let email = p["email"]
                .as_str()
                .map(|e| PersonKey::Email(e.to_lowercase()));
            let phone = p["phone"]
                .as_str()
                .map(|ph| PersonKey::Phone(phone_key(ph)));
            let contact = serde_json::to_string(&Contact::from_hubspot(object))?;
            rows.push((
                id,
                index(email),
                index(phone),
                sealer.seal(&contact, &context(key, id)),
                updated,
            ));
        }
        let mut w = self.db.write().await?;
        for (id, email_hash, phone_hash, sealed, updated) in rows {
            sqlx::query(
                "INSERT INTO portal_contacts (portal_key, hubspot_id, email_hash, phone_hash, contact, hs_updated_at, fetched_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE NOT EXISTS (SELECT 1 FROM privacy_erased e WHERE e.portal_key = $1 AND e.hubspot_id = $2)
                 ON CONFLICT (portal_key, hubspot_id) DO UPDATE SET
                     email_hash = excluded.email_hash, phone_hash = excluded.phone_hash,
                     contact = excluded.contact, hs_updated_at = excluded.hs_updated_at,
                     fetched_at = excluded.fetched_at, email = NULL, phone = NULL
                 WHERE portal_contacts.hs_updated_at IS NULL OR excluded.hs_updated_at IS NULL
                    OR excluded.hs_updated_at >= portal_contacts.hs_updated_at",
            )
            .bind(key)
            .bind(id)
            .bind(email_hash)
            .bind(phone_hash)
            .bind(sealed)
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
        let Some(sealer) = &self.sealer else {
            return Ok(None);
        };
        let hashes = sealer.blind(&PersonKey::Phone(phone.to_string()).indexed());
        let sql = format!(
            "SELECT hubspot_id, contact, fetched_at FROM portal_contacts
             WHERE portal_key = $1 AND phone_hash IN ({}) ORDER BY fetched_at DESC",
            placeholders(2, hashes.len())
        );
        let key = portal_key(portal);
        let mut q = sqlx::query(&sql).bind(key);
        for h in &hashes {
            q = q.bind(h);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let newest: i64 = rows[0].get("fetched_at");
        let fresh = self.db.now_ms() - newest < self.ttl.as_millis() as i64;
        let contacts = rows
            .iter()
            .filter_map(|r| {
                let id: String = r.get("hubspot_id");
                let plain = sealer.open(r.get::<&str, _>("contact"), &context(key, &id))?;
                serde_json::from_str(&plain).ok()
            })
            .collect();
        Ok(Some((contacts, fresh)))
    }

    /// Every cached contact, in any portal, whose email or phone has one of these blind
    /// indexes (a privacy export or erasure).
    pub async fn people(&self, hashes: &[String]) -> StoreResult<Vec<CachedPerson>> {
        let Some(sealer) = &self.sealer else {
            return Ok(Vec::new());
        };
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(1, hashes.len());
        let sql = format!(
            "SELECT portal_key, hubspot_id, contact FROM portal_contacts
             WHERE email_hash IN ({list}) OR phone_hash IN ({list})"
        );
        let mut q = sqlx::query(&sql);
        for h in hashes {
            q = q.bind(h);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let key: i64 = r.get("portal_key");
                let id: String = r.get("hubspot_id");
                let plain = sealer.open(r.get::<&str, _>("contact"), &context(key, &id))?;
                Some(CachedPerson {
                    portal_key: key,
                    contact: serde_json::from_str(&plain).ok()?,
                    hubspot_id: id,
                })
            })
            .collect())
    }

    /// The cached contact `id` of a portal, opened.
    pub async fn by_id(&self, portal_key: i64, id: &str) -> StoreResult<Option<Contact>> {
        let Some(sealer) = &self.sealer else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT contact FROM portal_contacts WHERE portal_key = $1 AND hubspot_id = $2",
        )
        .bind(portal_key)
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.and_then(|r| {
            let plain = sealer.open(r.get::<&str, _>("contact"), &context(portal_key, id))?;
            serde_json::from_str(&plain).ok()
        }))
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
