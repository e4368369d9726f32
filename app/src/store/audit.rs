//! The audit log (`audit_log`): who did what to whom, from where, and how it went. Rows are only
//! inserted; nothing but the retention [`cleanup`](Audit::cleanup) deletes them, and an erasure
//! ([`erase`](Audit::erase)) replaces the erased person's subject hash (and HubSpot ids) with
//! the erasure's reference, so the log still proves access happened without pointing at them.
//!
//! The store never sees a subject in clear: the caller passes its blind index.

use serde::Serialize;
use sqlx::Row;

use super::{placeholders, Db, StoreResult};

/// One entry to record.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub actor: String,
    pub role: String,
    pub action: String,
    /// What kind of thing the subject is, never the thing: `phone`, `email`, `name query`,
    /// `user bob`, `flag HUBSPOT_CACHE_ENABLED`, or `-`.
    pub subject: String,
    /// The subject's blind index, when it is a person.
    pub subject_hash: Option<String>,
    pub hubspot_id: Option<String>,
    pub portal_key: Option<i64>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An entry as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// The user (`admin` is the bootstrap `ADMIN_TOKEN`; `hubspot` a HubSpot webhook).
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub subject: String,
    /// The subject's keyed hash (`b1.<key id>.<hex>`), or an erasure's reference.
    pub subject_hash: Option<String>,
    pub hubspot_id: Option<String>,
    pub portal: Option<i64>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    /// Entries whose action starts with this.
    pub action: Option<String>,
    /// Entries about any of these blind indexes.
    pub subject_hashes: Vec<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Entries older than this id (the next page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct Audit {
    db: Db,
}

impl Audit {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The store's clock (the retention counts on it).
    pub fn now_ms(&self) -> i64 {
        self.db.now_ms()
    }

    pub async fn record(&self, r: &Record) -> StoreResult<()> {
        let now = self.db.now_ms();
        let at = chrono::DateTime::from_timestamp_millis(now)
            .unwrap_or_default()
            .to_rfc3339();
        let mut w = self.db.write().await?;
        sqlx::query(
            "INSERT INTO audit_log (at, at_ms, actor, role, action, subject, subject_hash, hubspot_id,
                 portal_key, outcome, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(at)
        .bind(now)
        .bind(&r.actor)
        .bind(&r.role)
        .bind(&r.action)
        .bind(&r.subject)
        .bind(&r.subject_hash)
        .bind(&r.hubspot_id)
        .bind(r.portal_key)
        .bind(&r.outcome)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn list(&self, f: &Filter) -> StoreResult<Vec<AuditEntry>> {
        let mut sql = String::from(
            "SELECT id, at, actor, role, action, subject, subject_hash, hubspot_id, portal_key,
                    outcome, ip, user_agent FROM audit_log WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if f.actor.is_some() {
            sql += &format!(" AND actor = {}", next());
        }
        if f.action.is_some() {
            sql += &format!(
                " AND substr(action, 1, {}) = {}",
                f.action.as_ref().map_or(0, |a| a.len()),
                next()
            );
        }
        if f.since_ms.is_some() {
            sql += &format!(" AND at_ms >= {}", next());
        }
        if f.until_ms.is_some() {
            sql += &format!(" AND at_ms < {}", next());
        }
        if f.before_id.is_some() {
            sql += &format!(" AND id < {}", next());
        }
        if !f.subject_hashes.is_empty() {
            let first = n + 1;
            sql += &format!(
                " AND subject_hash IN ({})",
                placeholders(first, f.subject_hashes.len())
            );
        }
        sql += &format!(" ORDER BY id DESC LIMIT {}", f.limit.clamp(1, 1000));
        let mut q = sqlx::query(&sql);
        if let Some(a) = &f.actor {
            q = q.bind(a);
        }
        if let Some(a) = &f.action {
            q = q.bind(a);
        }
        for v in [f.since_ms, f.until_ms, f.before_id].into_iter().flatten() {
            q = q.bind(v);
        }
        for h in &f.subject_hashes {
            q = q.bind(h);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get("id"),
                at: r.get("at"),
                actor: r.get("actor"),
                role: r.get("role"),
                action: r.get("action"),
                subject: r.get("subject"),
                subject_hash: r.get("subject_hash"),
                hubspot_id: r.get("hubspot_id"),
                portal: r.get("portal_key"),
                outcome: r.get("outcome"),
                ip: r.get("ip"),
                user_agent: r.get("user_agent"),
            })
            .collect())
    }

    /// Deletes entries older than `before_ms` (the retention); returns how many.
    pub async fn cleanup(&self, before_ms: i64) -> StoreResult<u64> {
        let before = chrono::DateTime::from_timestamp_millis(before_ms)
            .unwrap_or_default()
            .to_rfc3339();
        let mut w = self.db.write().await?;
        let n =
            sqlx::query("DELETE FROM audit_log WHERE at_ms < $1 OR (at_ms IS NULL AND at < $2)")
                .bind(before_ms)
                .bind(before)
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
        w.commit().await?;
        Ok(n)
    }

    /// Points the entries about a person (any of `hashes`, or any of their HubSpot ids in
    /// `portal_key`) at the erasure `reference` instead; returns how many.
    pub async fn erase(
        &self,
        tx: &mut sqlx::AnyConnection,
        hashes: &[String],
        hubspot_ids: &[(i64, String)],
        reference: &str,
    ) -> StoreResult<u64> {
        let mut n = 0;
        if !hashes.is_empty() {
            let sql = format!(
                "UPDATE audit_log SET subject_hash = $1, hubspot_id = NULL WHERE subject_hash IN ({})",
                placeholders(2, hashes.len())
            );
            let mut q = sqlx::query(&sql).bind(reference);
            for h in hashes {
                q = q.bind(h);
            }
            n += q.execute(&mut *tx).await?.rows_affected();
        }
        for (portal, id) in hubspot_ids {
            n += sqlx::query(
                "UPDATE audit_log SET subject_hash = $1, hubspot_id = NULL
                 WHERE portal_key = $2 AND hubspot_id = $3",
            )
            .bind(reference)
            .bind(portal)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        Ok(n)
    }
}
