//! The delivery side of `lifecycle_subjects` and the timeline side of `lifecycle_events`:
//! leased claims of due subjects (up to 100 of one upsert key), their histories, settling
//! each subject's outcome; due timeline occurrences and their settling; the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use super::{stored_event, Keys, Lifecycle, StoredEvent};
use crate::domain::portal::PortalId;
use crate::store::{placeholders, portal_key, StoreResult};

/// Subjects per claim (HubSpot's batch limit).
pub const BATCH: i64 = 100;

/// A claimed subject with its history.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub key: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub hubspot_id: Option<String>,
    pub sent_once: BTreeSet<String>,
    pub attempts: i64,
    pub events: Vec<StoredEvent>,
}

impl Claimed {
    /// The newest event this claim read.
    pub fn through(&self) -> i64 {
        self.events.iter().map(|e| e.seq).max().unwrap_or(0)
    }
}

/// How a subject's delivery ended.
#[derive(Debug, Clone)]
pub enum Sent {
    /// In HubSpot: the contact's id, the payload, the set-once properties now delivered.
    Done {
        hubspot_id: String,
        payload: BTreeMap<String, String>,
        sent_once: BTreeSet<String>,
    },
    /// A dry run: checked, not sent; `problems` is what HubSpot would refuse.
    Previewed {
        payload: BTreeMap<String, String>,
        problems: Vec<String>,
    },
    /// Failed: retried with backoff, or dead when `fatal` or out of attempts.
    Failed { error: String, fatal: bool },
    /// Not sent, no attempt counted (the portal is not connected): again after `wait`.
    Held { reason: String, wait: Duration },
}

/// The figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LifecycleDepth {
    pub events: i64,
    pub subjects_pending: i64,
    pub subjects_sent: i64,
    pub subjects_dead: i64,
    pub subjects_previewed: i64,
    pub timeline_due: i64,
}

impl Lifecycle {
    /// The next portal (after `after`, in hub id order, the private-app account first) with due
    /// subjects or due timeline occurrences. `None`: none anywhere.
    pub async fn next_portal_after(
        &self,
        after: Option<Option<PortalId>>,
    ) -> StoreResult<Option<Option<PortalId>>> {
        let now = self.db.now_ms();
        let floor = match after {
            None => -1,
            Some(p) => portal_key(p),
        };
        let row = sqlx::query(
            "SELECT MIN(p) AS p FROM (
               SELECT MIN(portal_key) AS p FROM lifecycle_subjects
                WHERE state = 'pending' AND portal_key > $1 AND next_attempt_at <= $2
                  AND (lease_until IS NULL OR lease_until < $2)
               UNION ALL
               SELECT MIN(e.portal_key) AS p FROM lifecycle_events e
                 JOIN lifecycle_subjects s ON s.portal_key = e.portal_key AND s.subject = e.subject
                WHERE e.timeline = 1 AND e.portal_key > $1
                  AND s.hubspot_id IS NOT NULL AND s.sent_seq >= e.seq) t",
        )
        .bind(floor)
        .bind(now)
        .fetch_one(self.db.pool())
        .await?;
        match row.get::<Option<i64>, _>("p") {
            Some(p) => Ok(Some((p != 0).then_some(PortalId(p as u64)))),
            None if after.is_some() => Box::pin(self.next_portal_after(None)).await,
            None => Ok(None),
        }
    }

    /// The upsert key of `portal`'s subject due longest, unclaimed; `None` when none is due
    /// (so no budget slot is taken for nothing).
    pub async fn due_key(&self, portal: Option<PortalId>) -> StoreResult<Option<String>> {
        Ok(sqlx::query(
            "SELECT id_property FROM lifecycle_subjects
             WHERE state = 'pending' AND portal_key = $1 AND next_attempt_at <= $2
               AND (lease_until IS NULL OR lease_until < $2)
             ORDER BY next_attempt_at LIMIT 1",
        )
        .bind(portal_key(portal))
        .bind(self.db.now_ms())
        .fetch_optional(self.db.pool())
        .await?
        .map(|r| r.get("id_property")))
    }

    /// Claims up to [`BATCH`] due subjects of `portal` keyed by `id_property` (see
    /// [`due_key`](Self::due_key)), with their histories.
    pub async fn claim(
        &self,
        owner: &str,
        portal: Option<PortalId>,
        id_property: &str,
    ) -> StoreResult<Vec<Claimed>> {
        let key = portal_key(portal);
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        // The lease condition is repeated outside the subquery (PostgreSQL re-checks it on a
        // row another claim took meanwhile, and skips it).
        let rows = sqlx::query(
            "UPDATE lifecycle_subjects SET lease_owner = $1, lease_until = $2
             WHERE portal_key = $3 AND state = 'pending' AND (lease_until IS NULL OR lease_until < $4)
               AND subject IN (
                 SELECT subject FROM lifecycle_subjects
                 WHERE state = 'pending' AND portal_key = $3 AND next_attempt_at <= $4
                   AND id_property = $5 AND (lease_until IS NULL OR lease_until < $4)
                 ORDER BY next_attempt_at LIMIT $6)
             RETURNING subject, external_id, email, hubspot_id, sent_once, attempts",
        )
        .bind(owner)
        .bind(now + self.lease.as_millis() as i64)
        .bind(key)
        .bind(now)
        .bind(id_property)
        .bind(BATCH)
        .fetch_all(&mut *w.tx)
        .await?;
        w.commit().await?;
        let mut claims: Vec<Claimed> = rows
            .iter()
            .map(|r| {
                Ok(Claimed {
                    key: r.get("subject"),
                    external_id: r.get("external_id"),
                    email: r.get("email"),
                    hubspot_id: r.get("hubspot_id"),
                    sent_once: serde_json::from_str(r.get::<&str, _>("sent_once"))?,
                    attempts: r.get("attempts"),
                    events: Vec::new(),
                })
            })
            .collect::<StoreResult<_>>()?;
        if claims.is_empty() {
            return Ok(claims);
        }
        // Their histories, read after the claim: whatever is stored now is in this delivery.
        // A user's are its events; a merchant's company's, the events naming the merchant.
        let companies = claims.iter().all(|c| Keys::is_company(&c.key));
        let column = if companies { "merchant_id" } else { "subject" };
        let sql = format!(
            "SELECT seq, event_id, event_type, occurred_at, subject, body, received_at, timeline, merchant_id
             FROM lifecycle_events WHERE portal_key = $1 AND {column} IN ({})",
            placeholders(2, claims.len())
        );
        let mut q = sqlx::query(&sql).bind(key);
        for c in &claims {
            q = q.bind(Keys::merchant_of(&c.key).unwrap_or(&c.key).to_string());
        }
        let mut by_subject: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
        for r in q.fetch_all(self.db.pool()).await? {
            let e = stored_event(portal, &r)?;
            let owner = if companies {
                Keys::company(r.get::<&str, _>("merchant_id"))
            } else {
                e.subject_key.clone()
            };
            by_subject.entry(owner).or_default().push(e);
        }
        for c in &mut claims {
            c.events = by_subject.remove(&c.key).unwrap_or_default();
        }
        Ok(claims)
    }

    /// The HubSpot ids of those of `subjects` delivered at least once.
    pub async fn hubspot_ids(
        &self,
        portal: Option<PortalId>,
        subjects: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for chunk in subjects.chunks(500) {
            let sql = format!(
                "SELECT subject, hubspot_id FROM lifecycle_subjects
                 WHERE portal_key = $1 AND hubspot_id IS NOT NULL AND subject IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(portal_key(portal));
            for s in chunk {
                q = q.bind(s.clone());
            }
            for r in q.fetch_all(self.db.pool()).await? {
                out.insert(r.get("subject"), r.get("hubspot_id"));
            }
        }
        Ok(out)
    }

    /// Sending live again after a dry run: every previewed subject is due.
    pub async fn resume_previewed(&self) -> StoreResult<u64> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let n = sqlx::query(
            "UPDATE lifecycle_subjects SET state = 'pending', next_attempt_at = $1 WHERE state = 'previewed'",
        )
        .bind(now)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n)
    }

    /// The figures.
    pub async fn depth(&self) -> StoreResult<LifecycleDepth> {
        let mut d = LifecycleDepth::default();
        for r in sqlx::query("SELECT state, COUNT(*) AS n FROM lifecycle_subjects GROUP BY state")
            .fetch_all(self.db.pool())
            .await?
        {
            let n: i64 = r.get("n");
            match r.get::<&str, _>("state") {
                "pending" => d.subjects_pending = n,
                "sent" => d.subjects_sent = n,
                "dead" => d.subjects_dead = n,
                "previewed" => d.subjects_previewed = n,
                _ => {}
            }
        }
        d.events = sqlx::query("SELECT COUNT(*) AS n FROM lifecycle_events")
            .fetch_one(self.db.pool())
            .await?
            .get("n");
        d.timeline_due =
            sqlx::query("SELECT COUNT(*) AS n FROM lifecycle_events WHERE timeline = 1")
                .fetch_one(self.db.pool())
                .await?
                .get("n");
        Ok(d)
    }
}
