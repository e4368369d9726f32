//! The timeline side of `lifecycle_events`: occurrences due in HubSpot's timeline (their
//! subject's contact delivered first), and marking them sent.

use sqlx::Row;

use super::{stored_event, Lifecycle, StoredEvent};
use crate::domain::portal::PortalId;
use crate::store::{placeholders, portal_key, StoreResult};

/// One due timeline occurrence: its event and the subject's contact.
#[derive(Debug, Clone)]
pub struct TimelineItem {
    pub seq: i64,
    pub event: StoredEvent,
    pub contact_id: String,
}

impl Lifecycle {
    /// Up to `limit` due timeline occurrences of `portal` whose subject's contact exists in
    /// HubSpot (sent at least once), oldest first.
    pub async fn timeline_due(
        &self,
        portal: Option<PortalId>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineItem>> {
        let rows = sqlx::query(
            "SELECT e.seq, e.event_id, e.event_type, e.occurred_at, e.subject, e.body, e.received_at,
                    e.timeline, s.hubspot_id
             FROM lifecycle_events e JOIN lifecycle_subjects s
               ON s.portal_key = e.portal_key AND s.subject = e.subject
             WHERE e.timeline = 1 AND e.portal_key = $1 AND s.hubspot_id IS NOT NULL
               AND s.sent_seq >= e.seq
             ORDER BY e.seq LIMIT $2",
        )
        .bind(portal_key(portal))
        .bind(limit as i64)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineItem {
                    seq: r.get("seq"),
                    event: stored_event(portal, r)?,
                    contact_id: r.get("hubspot_id"),
                })
            })
            .collect()
    }

    /// Marks timeline occurrences sent.
    pub async fn timeline_sent(&self, seqs: &[i64]) -> StoreResult<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut w = self.db.write().await?;
        let sql = format!(
            "UPDATE lifecycle_events SET timeline = 2 WHERE seq IN ({})",
            placeholders(1, seqs.len())
        );
        let mut q = sqlx::query(&sql);
        for s in seqs {
            q = q.bind(*s);
        }
        q.execute(&mut *w.tx).await?;
        w.commit().await
    }
}
