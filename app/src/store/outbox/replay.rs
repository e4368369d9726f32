//! Replay of a dead write ([`Outbox::replay`]): queued again as the newest write to its contact,
//! less what later writes set ([`order::replay`]).

use sqlx::Row;

use super::{Item, Outbox, Replayed, ITEM_COLUMNS};
use crate::domain::outbox::{self as order, Properties};
use crate::store::{StoreError, StoreResult};

impl Outbox {
    /// Replays a dead item: its write is queued again as the newest write to its contact, less
    /// the properties a later accepted write (sent, in flight or pending) has set, so a replay
    /// never overwrites a newer value. The dead row becomes `replayed`. `None` if `id` is not a
    /// dead item.
    pub async fn replay(&self, id: i64) -> StoreResult<Option<Replayed>> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let Some(dead) = sqlx::query_as::<_, Item>(&format!(
            "SELECT {ITEM_COLUMNS} FROM outbox WHERE id = $1 AND state = 'dead'"
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        else {
            return Ok(None);
        };
        let properties = order::parse(dead.id, &dead.properties).map_err(StoreError::Data)?;
        // A later row that cannot be read sets no known property; it goes dead when claimed.
        let later = sqlx::query(
            "SELECT id, properties FROM outbox
             WHERE email = $1 AND portal_id IS NOT DISTINCT FROM $3 AND id > $2
               AND state IN ('pending', 'sent')",
        )
        .bind(&dead.email)
        .bind(dead.id)
        .bind(dead.portal_id)
        .fetch_all(&mut *w.tx)
        .await?;
        let later_keys: std::collections::BTreeSet<String> = later
            .iter()
            .filter_map(|row| order::parse(row.get("id"), row.get::<&str, _>("properties")).ok())
            .flat_map(Properties::into_keys)
            .collect();
        let kept = order::replay(&properties, later_keys.iter().map(String::as_str));
        let superseded = properties
            .keys()
            .filter(|k| !kept.contains_key(*k))
            .cloned()
            .collect();
        // A contact with no property left is still a write (it creates the contact if it is
        // missing), unless a later write exists: that one creates it too.
        let queued_as = if kept.is_empty() && !later.is_empty() {
            None
        } else {
            Some(
                self.insert(&mut w.tx, dead.portal_id, &dead.email, &kept, now)
                    .await?,
            )
        };
        sqlx::query(
            "UPDATE outbox SET state = 'replayed', replayed_as = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(queued_as)
        .bind(now)
        .bind(dead.id)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        self.wake.notify_one();
        Ok(Some(Replayed {
            queued_as,
            kept: kept.into_keys().collect(),
            superseded,
        }))
    }
}
