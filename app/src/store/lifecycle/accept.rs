//! Accepting a batch of events: one write transaction that resolves each event's subject,
//! inserts the new events (a repeat is a duplicate) and marks each touched subject due.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use super::{body, Accepted, Known, Lifecycle};
use crate::domain::lifecycle::{Event, EventType};
use crate::domain::portal::PortalId;
use crate::store::{placeholders, portal_key, StoreResult, WriteTx};

/// Rows per multi-row statement. SQLite's driver looks parameters up by name at each bind,
/// so a statement's cost grows with the square of its parameters: many small statements
/// beat one large one (measured with scripts/bench-events.sh: 32 rows of 9 parameters).
const ROWS: usize = 32;

impl Lifecycle {
    /// Stores `events` (validated) in one transaction; `on_timeline` says which types also go to
    /// HubSpot's timeline. Returns each event's outcome, in order.
    ///
    /// Rows are written in key order (events by id, subjects by key), so two processes storing
    /// overlapping batches on PostgreSQL wait for each other instead of deadlocking; a
    /// transaction PostgreSQL still aborts as a deadlock or serialization failure (against a
    /// claim, which locks in its own order) is run again, up to 3 times in all.
    pub async fn accept(
        &self,
        events: &[Event],
        on_timeline: impl Fn(EventType) -> bool,
    ) -> StoreResult<Vec<Accepted>> {
        let mut attempt = 1;
        loop {
            match self.accept_once(events, &on_timeline).await {
                Err(e) if e.is_transient() && attempt < 3 => attempt += 1,
                done => return done,
            }
        }
    }

    async fn accept_once(
        &self,
        events: &[Event],
        on_timeline: &impl Fn(EventType) -> bool,
    ) -> StoreResult<Vec<Accepted>> {
        let now = self.db.now_ms();
        let mut by_portal: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
        for e in events {
            by_portal
                .entry(portal_key(e.portal.map(PortalId)))
                .or_default()
                .push(e);
        }
        let mut inserted: std::collections::HashSet<(i64, String)> = Default::default();
        let mut w = self.db.write().await?;
        for (&portal, events) in &by_portal {
            let mut known = self.known(&mut w, portal, events).await?;
            // Resolve each event's subject, creating subjects in memory as the batch goes.
            let mut fresh: BTreeMap<String, Known> = BTreeMap::new();
            let mut rows: Vec<(&Event, String)> = Vec::with_capacity(events.len());
            let mut seen = std::collections::HashSet::new();
            for e in events {
                if !seen.insert(e.event_id.as_str()) {
                    continue; // the same event twice in one batch
                }
                let key = resolve(&mut known, &mut fresh, e);
                rows.push((e, key));
            }
            rows.sort_by(|a, b| a.0.event_id.cmp(&b.0.event_id));
            // Insert the events; RETURNING names the new ones.
            let mut last_seq: HashMap<String, i64> = HashMap::new();
            for chunk in rows.chunks(ROWS) {
                let mut sql = String::from(
                    "INSERT INTO lifecycle_events (portal_key, event_id, event_type, occurred_at, subject, body, received_at, timeline, merchant_id) VALUES ",
                );
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("({})", placeholders(i * 9 + 1, 9)));
                }
                sql.push_str(" ON CONFLICT (portal_key, event_id) DO NOTHING RETURNING seq, event_id, subject, merchant_id");
                let mut q = sqlx::query(&sql);
                for (e, key) in chunk {
                    q = q
                        .bind(portal)
                        .bind(e.event_id.clone())
                        .bind(e.event_type.as_str())
                        .bind(e.occurred_at)
                        .bind(key.clone())
                        .bind(body(e).to_string())
                        .bind(now)
                        .bind(if on_timeline(e.event_type) { 1i64 } else { 0 })
                        .bind(merchant_of(e));
                }
                for row in q.fetch_all(&mut *w.tx).await? {
                    let seq: i64 = row.get("seq");
                    let subject: String = row.get("subject");
                    inserted.insert((portal, row.get("event_id")));
                    let slot = last_seq.entry(subject).or_insert(seq);
                    *slot = (*slot).max(seq);
                    // A merchant's event is also its company's history.
                    if let Some(m) = row.get::<Option<String>, _>("merchant_id") {
                        let key = super::Keys::company(&m);
                        fresh.entry(key.clone()).or_insert(Known {
                            key: key.clone(),
                            external_id: Some(m),
                            email: None,
                        });
                        let slot = last_seq.entry(key).or_insert(seq);
                        *slot = (*slot).max(seq);
                    }
                }
            }
            // Mark each touched subject due (new ones created), its identity completed.
            let mut touched: Vec<(&String, i64)> = last_seq.iter().map(|(k, s)| (k, *s)).collect();
            touched.sort();
            for chunk in touched.chunks(ROWS) {
                let mut sql = String::from(
                    "INSERT INTO lifecycle_subjects (portal_key, subject, external_id, email, id_property, last_seq, next_attempt_at) VALUES ",
                );
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("({})", placeholders(i * 7 + 1, 7)));
                }
                sql.push_str(
                    " ON CONFLICT (portal_key, subject) DO UPDATE SET
                       external_id = COALESCE(lifecycle_subjects.external_id, excluded.external_id),
                       email = COALESCE(excluded.email, lifecycle_subjects.email),
                       last_seq = CASE WHEN excluded.last_seq > lifecycle_subjects.last_seq
                                       THEN excluded.last_seq ELSE lifecycle_subjects.last_seq END,
                       attempts = CASE WHEN lifecycle_subjects.state = 'pending'
                                       THEN lifecycle_subjects.attempts ELSE 0 END,
                       next_attempt_at = CASE WHEN lifecycle_subjects.state = 'pending'
                                       THEN lifecycle_subjects.next_attempt_at ELSE excluded.next_attempt_at END,
                       state = 'pending'",
                );
                let mut q = sqlx::query(&sql);
                for (key, seq) in chunk {
                    // Every touched subject was resolved (or, a merchant's, added) into `fresh`.
                    let k = fresh[*key].clone();
                    let id_property = self.keys.id_property(key).to_string();
                    q = q
                        .bind(portal)
                        .bind((*key).clone())
                        .bind(k.external_id)
                        .bind(k.email)
                        .bind(id_property)
                        .bind(*seq)
                        .bind(now);
                }
                q.execute(&mut *w.tx).await?;
            }
        }
        w.commit().await?;
        if !inserted.is_empty() {
            self.wake.notify_one();
        }
        // An event is accepted once: where it was inserted, at its first place in the batch.
        Ok(events
            .iter()
            .map(|e| Accepted {
                event_id: e.event_id.clone(),
                duplicate: !inserted
                    .remove(&(portal_key(e.portal.map(PortalId)), e.event_id.clone())),
            })
            .collect())
    }

    /// The stored subjects a batch's events may name, by external id and by email.
    async fn known(
        &self,
        w: &mut WriteTx,
        portal: i64,
        events: &[&Event],
    ) -> StoreResult<HashMap<String, Known>> {
        let ids: Vec<String> = events
            .iter()
            .filter_map(|e| e.subject.external_id.clone())
            .collect();
        let emails: Vec<String> = events
            .iter()
            .filter_map(|e| e.email().map(|m| m.as_str().to_string()))
            .collect();
        let mut out = HashMap::new();
        for (column, values) in [("external_id", &ids), ("email", &emails)] {
            for chunk in values.chunks(ROWS * 4) {
                let sql = format!(
                    "SELECT subject, external_id, email FROM lifecycle_subjects
                     WHERE portal_key = $1 AND subject NOT LIKE 'm:%' AND {column} IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(portal);
                for v in chunk {
                    q = q.bind(v.clone());
                }
                for row in q.fetch_all(&mut *w.tx).await? {
                    let k = Known {
                        key: row.get("subject"),
                        external_id: row.get("external_id"),
                        email: row.get("email"),
                    };
                    out.insert(k.key.clone(), k);
                }
            }
        }
        Ok(out)
    }
}

/// Which subject an event is about: a stored one with its external id, else with its email,
/// else one made by an earlier event of this batch, else a new one.
fn resolve(
    known: &mut HashMap<String, Known>,
    fresh: &mut BTreeMap<String, Known>,
    e: &Event,
) -> String {
    let email = e.email().map(|m| m.as_str().to_string());
    let ext = e.subject.external_id.clone();
    let all = || known.values().chain(fresh.values());
    let found = ext
        .as_ref()
        .and_then(|x| all().find(|k| k.external_id.as_ref() == Some(x)).cloned())
        .or_else(|| {
            email.as_ref().and_then(|m| {
                all()
                    .find(|k| {
                        k.email.as_ref() == Some(m)
                            // another product user with this email is not this subject
                            && (ext.is_none() || k.external_id.is_none())
                    })
                    .cloned()
            })
        });
    let mut k = found.unwrap_or_else(|| Known {
        key: match (&ext, &email) {
            (Some(x), _) => format!("u:{x}"),
            (None, Some(m)) => format!("e:{m}"),
            (None, None) => unreachable!("a validated event names its subject"),
        },
        external_id: None,
        email: None,
    });
    if k.external_id.is_none() {
        k.external_id = ext;
    }
    if email.is_some() {
        k.email = email;
    }
    known.remove(&k.key);
    fresh.insert(k.key.clone(), k.clone());
    k.key
}

/// The merchant a `merchant_exclusive_enabled` event is about.
fn merchant_of(e: &Event) -> Option<String> {
    match &e.data {
        crate::domain::lifecycle::Data::MerchantExclusiveEnabled { merchant_id, .. } => {
            Some(merchant_id.clone())
        }
        _ => None,
    }
}
