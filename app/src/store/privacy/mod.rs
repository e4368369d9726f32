//! What the app holds about one person across its tables, for a privacy export, and its
//! erasure in one transaction; and the queue of HubSpot GDPR deletes an erasure asks for
//! (`privacy_deletes`, sent by [`crate::jobs::privacy`]).
//!
//! The person arrives as emails (lower case) and HubSpot contact ids per portal, found by the
//! caller (the cache is searched by blind index); this module finds the rest: outbox writes,
//! lifecycle subjects and their events, synced contact records, and removes them.

use serde_json::{json, Value};
use sqlx::Row;

use super::{placeholders, Db, StoreResult};

mod deletes;
use crate::domain::privacy::SharedSealer;

/// A contact in a portal (`portal_key`, HubSpot id).
pub type ContactRef = (i64, String);

/// Rows about a person, as stored (personal data: only for the export's answer).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Held {
    pub outbox: Vec<Value>,
    pub lifecycle_subjects: Vec<Value>,
    pub lifecycle_events: Vec<Value>,
    pub records: Vec<Value>,
}

impl Held {
    /// The HubSpot contact ids these rows name.
    pub fn contact_ids(&self) -> Vec<ContactRef> {
        let mut ids = Vec::new();
        for row in self.lifecycle_subjects.iter().chain(&self.records) {
            if let (Some(p), Some(id)) = (row["portal"].as_i64(), row["hubspot_id"].as_str()) {
                ids.push((p, id.to_string()));
            }
        }
        ids
    }
}

/// What an erasure removes.
#[derive(Debug, Clone, Default)]
pub struct Erasure {
    pub emails: Vec<String>,
    pub contacts: Vec<ContactRef>,
    pub history_ids: Vec<i64>,
    /// The person's blind indexes (the audit's entries about them are re-pointed).
    pub hashes: Vec<String>,
    pub reference: String,
    /// HubSpot GDPR deletes to queue: by id, or by email (sealed here) in a portal.
    pub hubspot_by_id: Vec<ContactRef>,
    pub hubspot_by_email: Vec<(i64, String)>,
}

/// How many rows an erasure removed, per kind.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub cache: u64,
    pub outbox: u64,
    pub lifecycle_events: u64,
    pub lifecycle_subjects: u64,
    pub records: u64,
    pub search_history: u64,
    /// Audit entries re-pointed at the erasure's reference (kept: they prove access happened).
    pub audit_entries_unlinked: u64,
    pub hubspot_deletes_queued: u64,
}

#[derive(Debug, Clone)]
pub struct PrivacyStore {
    db: Db,
    sealer: Option<SharedSealer>,
}

fn in_list(first: usize, n: usize) -> String {
    placeholders(first, n.max(1))
}

impl PrivacyStore {
    pub fn new(db: Db, sealer: Option<SharedSealer>) -> Self {
        Self { db, sealer }
    }

    /// The outbox writes, lifecycle subjects and events, and synced contact records of these
    /// emails and contacts.
    pub async fn find(&self, emails: &[String], contacts: &[ContactRef]) -> StoreResult<Held> {
        let mut held = Held::default();
        let pool = self.db.pool();
        if !emails.is_empty() {
            let sql = format!(
                "SELECT id, portal_id, email, properties, state, hubspot_id, created_at FROM outbox
                 WHERE email IN ({}) ORDER BY id",
                in_list(1, emails.len())
            );
            let mut q = sqlx::query(&sql);
            for e in emails {
                q = q.bind(e);
            }
            for r in q.fetch_all(pool).await? {
                held.outbox.push(json!({
                    "id": r.get::<i64, _>("id"),
                    "portal": r.get::<Option<i64>, _>("portal_id"),
                    "email": r.get::<String, _>("email"),
                    "properties": serde_json::from_str::<Value>(r.get::<&str, _>("properties")).unwrap_or(Value::Null),
                    "state": r.get::<String, _>("state"),
                    "hubspot_id": r.get::<Option<String>, _>("hubspot_id"),
                    "created_at": r.get::<i64, _>("created_at"),
                }));
            }
        }
        let mut subject_rows = Vec::new();
        if !emails.is_empty() {
            let sql = format!(
                "SELECT portal_key, subject, external_id, email, hubspot_id, state, last_payload
                 FROM lifecycle_subjects WHERE email IN ({})",
                in_list(1, emails.len())
            );
            let mut q = sqlx::query(&sql);
            for e in emails {
                q = q.bind(e);
            }
            subject_rows.extend(q.fetch_all(pool).await?);
        }
        for (portal, id) in contacts {
            subject_rows.extend(
                sqlx::query(
                    "SELECT portal_key, subject, external_id, email, hubspot_id, state, last_payload
                     FROM lifecycle_subjects WHERE portal_key = $1 AND hubspot_id = $2",
                )
                .bind(portal)
                .bind(id)
                .fetch_all(pool)
                .await?,
            );
        }
        for r in subject_rows {
            let portal: i64 = r.get("portal_key");
            let subject: String = r.get("subject");
            if held
                .lifecycle_subjects
                .iter()
                .any(|s| s["portal"] == portal && s["subject"] == subject.as_str())
            {
                continue;
            }
            for e in sqlx::query(
                "SELECT event_id, event_type, occurred_at, body FROM lifecycle_events
                 WHERE portal_key = $1 AND subject = $2 ORDER BY seq",
            )
            .bind(portal)
            .bind(&subject)
            .fetch_all(pool)
            .await?
            {
                held.lifecycle_events.push(json!({
                    "portal": portal,
                    "event_id": e.get::<String, _>("event_id"),
                    "event_type": e.get::<String, _>("event_type"),
                    "occurred_at": e.get::<i64, _>("occurred_at"),
                    "body": serde_json::from_str::<Value>(e.get::<&str, _>("body")).unwrap_or(Value::Null),
                }));
            }
            held.lifecycle_subjects.push(json!({
                "portal": portal,
                "subject": subject,
                "external_id": r.get::<Option<String>, _>("external_id"),
                "email": r.get::<Option<String>, _>("email"),
                "hubspot_id": r.get::<Option<String>, _>("hubspot_id"),
                "state": r.get::<String, _>("state"),
                "last_payload": r.get::<Option<String>, _>("last_payload")
                    .and_then(|p| serde_json::from_str::<Value>(&p).ok()),
            }));
        }
        let mut ids: Vec<ContactRef> = contacts.to_vec();
        ids.extend(held.contact_ids());
        // A synced contact whose id is not known yet is found by its email.
        for email in emails {
            for r in sqlx::query(
                "SELECT portal_key, hubspot_id, properties FROM crm_objects
                 WHERE object_type = 'contacts' AND properties LIKE $1",
            )
            .bind(format!("%{}%", email.replace(['%', '_'], "")))
            .fetch_all(pool)
            .await?
            {
                let props: Value = serde_json::from_str(r.get::<&str, _>("properties"))?;
                if props["email"].as_str().map(str::to_lowercase).as_deref() == Some(email) {
                    ids.push((r.get("portal_key"), r.get("hubspot_id")));
                }
            }
        }
        ids.sort();
        ids.dedup();
        for (portal, id) in &ids {
            if let Some(r) = sqlx::query(
                "SELECT properties, fields, app_fields, archived_at FROM crm_objects
                 WHERE portal_key = $1 AND object_type = 'contacts' AND hubspot_id = $2",
            )
            .bind(portal)
            .bind(id)
            .fetch_optional(pool)
            .await?
            {
                held.records.push(json!({
                    "portal": portal,
                    "hubspot_id": id,
                    "properties": serde_json::from_str::<Value>(r.get::<&str, _>("properties")).unwrap_or(Value::Null),
                    "fields": serde_json::from_str::<Value>(r.get::<&str, _>("fields")).unwrap_or(Value::Null),
                    "app_fields": serde_json::from_str::<Value>(r.get::<&str, _>("app_fields")).unwrap_or(Value::Null),
                    "archived_at": r.get::<Option<i64>, _>("archived_at"),
                }));
            }
        }
        Ok(held)
    }

    /// Removes everything `e` names, re-points the audit, and queues the HubSpot deletes, in
    /// one transaction: a crash leaves all of it or none.
    pub async fn erase(
        &self,
        e: &Erasure,
        held: &Held,
        audit: &super::audit::Audit,
    ) -> StoreResult<Erased> {
        let now = self.db.now_ms();
        let mut out = Erased::default();
        let mut w = self.db.write().await?;
        let tx = &mut *w.tx;
        for (portal, id) in &e.contacts {
            // Kept so that nothing in flight (a webhook, a sync page, a lookup) brings them back.
            sqlx::query(
                "INSERT INTO privacy_erased (portal_key, hubspot_id, reference, erased_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (portal_key, hubspot_id) DO NOTHING",
            )
            .bind(portal)
            .bind(id)
            .bind(&e.reference)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            out.cache += sqlx::query(
                "DELETE FROM portal_contacts WHERE portal_key = $1 AND hubspot_id = $2",
            )
            .bind(portal)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            out.records += sqlx::query(
                "DELETE FROM crm_objects WHERE portal_key = $1 AND object_type = 'contacts' AND hubspot_id = $2",
            )
            .bind(portal)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            for sql in [
                "DELETE FROM crm_fields WHERE portal_key = $1 AND object_type = 'contacts' AND hubspot_id = $2",
                "DELETE FROM crm_associations WHERE portal_key = $1 AND ((from_type = 'contacts' AND from_id = $2) OR (to_type = 'contacts' AND to_id = $2))",
                "DELETE FROM object_writes WHERE portal_key = $1 AND object_type = 'contacts' AND object_id = $2",
            ] {
                sqlx::query(sql).bind(portal).bind(id).execute(&mut *tx).await?;
            }
        }
        if !e.emails.is_empty() {
            let sql = format!(
                "DELETE FROM outbox WHERE email IN ({})",
                in_list(1, e.emails.len())
            );
            let mut q = sqlx::query(&sql);
            for m in &e.emails {
                q = q.bind(m);
            }
            out.outbox += q.execute(&mut *tx).await?.rows_affected();
        }
        for s in &held.lifecycle_subjects {
            let (portal, subject) = (s["portal"].as_i64(), s["subject"].as_str());
            out.lifecycle_events +=
                sqlx::query("DELETE FROM lifecycle_events WHERE portal_key = $1 AND subject = $2")
                    .bind(portal)
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            out.lifecycle_subjects += sqlx::query(
                "DELETE FROM lifecycle_subjects WHERE portal_key = $1 AND subject = $2",
            )
            .bind(portal)
            .bind(subject)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if !e.history_ids.is_empty() {
            let sql = format!(
                "DELETE FROM search_history WHERE id IN ({})",
                in_list(1, e.history_ids.len())
            );
            let mut q = sqlx::query(&sql);
            for id in &e.history_ids {
                q = q.bind(id);
            }
            out.search_history += q.execute(&mut *tx).await?.rows_affected();
        }
        out.audit_entries_unlinked = audit
            .erase(tx, &e.hashes, &e.contacts, &e.reference)
            .await?;
        let queue = |portal: &i64, id: Option<&str>, email: Option<String>| {
            sqlx::query(
                "INSERT INTO privacy_deletes (portal_key, hubspot_id, email_sealed, reference, state,
                     next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)",
            )
            .bind(*portal)
            .bind(id.map(str::to_string))
            .bind(email)
            .bind(e.reference.clone())
            .bind(now)
        };
        for (portal, id) in &e.hubspot_by_id {
            queue(portal, Some(id), None).execute(&mut *tx).await?;
            out.hubspot_deletes_queued += 1;
        }
        for (portal, email) in &e.hubspot_by_email {
            let Some(sealer) = &self.sealer else { continue };
            let sealed = sealer.seal(email, &format!("privacy_deletes:{portal}:{}", e.reference));
            queue(portal, None, Some(sealed)).execute(&mut *tx).await?;
            out.hubspot_deletes_queued += 1;
        }
        w.commit().await?;
        Ok(out)
    }
}
