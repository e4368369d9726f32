//! The durable outbox (the `outbox` table): contact writes are stored first and answered 202,
//! then sent to HubSpot by the worker ([`crate::jobs::outbox`]) in batches of up to 100 (batch
//! upsert by email). This module is the queue's SQL; the rules it keeps are
//! [`crate::domain::outbox`].
//!
//! - **Order per contact** ([`crate::domain::outbox`]): once HubSpot has acknowledged a write
//!   to a contact, no older write to it is sent afterwards. Only the oldest unsettled item of an email is
//!   claimed, with the newer ones folded into it; a replayed dead item never overwrites a newer
//!   value.
//! - **Coalescing**: a write for an email whose newest item is pending and unclaimed is merged
//!   into it (later values win), so a burst of updates to one contact is one HubSpot write.
//! - **Leases**: a worker claims due items by setting `lease_owner`/`lease_until` in one
//!   statement; two processes on one database never hold the same item. A worker that dies
//!   leaves leases that expire, and the items are claimed again (at-least-once; the upsert by
//!   email is idempotent, so a resend never makes a duplicate contact). A worker on the same
//!   machine and PID namespace that can prove the holder dead ([`crate::identity`]) releases
//!   its leases at once.
//! - **Budget first**: the worker takes a slot of HubSpot's budget *before* it claims, so under
//!   a tight budget each call carries a full batch of what arrived while it waited.
//! - **Retries**: a failed batch goes back with exponential backoff; after `max_attempts` an item
//!   is `dead`, listed and replayable (`POST /api/outbox/{id}/retry`). An input HubSpot refuses
//!   outright (a validation error) is dead at once: resending cannot fix it. A replay queues
//!   the dead write again as the newest one, less what later writes set ([`order::replay`]);
//!   the dead row stays, as `replayed`, pointing at the new item.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use super::{Db, StoreError, StoreResult};

mod claim;
mod replay;
mod settle;

use crate::domain::contact::{ContactInput, ContactRequest};
use crate::domain::outbox::{self as order, ItemState, Properties};
use crate::domain::portal::PortalId;
pub use settle::Outcome;

pub const BATCH: i64 = 100;

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub max_attempts: i64,
    pub lease: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            lease: Duration::from_secs(60),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Item {
    pub id: i64,
    pub email: String,
    /// The portal it is written to (`None`: the single private-app account).
    pub portal_id: Option<i64>,
    #[serde(skip)]
    pub properties: String,
    #[sqlx(try_from = "String")]
    pub state: ItemState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub hubspot_id: Option<String>,
    pub replayed_as: Option<i64>,
}

const ITEM_COLUMNS: &str =
    "id, email, portal_id, properties, state, attempts, next_attempt_at, last_error, hubspot_id, replayed_as";

/// What replaying a dead item did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// The new item that carries the replay; `None` when later writes had set every property.
    pub queued_as: Option<i64>,
    /// Properties sent again.
    pub kept: Vec<String>,
    /// Properties left out because a later write to the contact set them.
    pub superseded: Vec<String>,
}

/// Items by state (`leased`: pending items a worker is sending now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Depth {
    pub pending: i64,
    pub leased: i64,
    pub sent: i64,
    pub dead: i64,
    pub replayed: i64,
}

/// The stored form of a contact write: the request fields, validated and normalized.
fn stored(input: &ContactInput) -> BTreeMap<String, String> {
    input
        .properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A stored write back as a contact input (the inverse of [`stored`]).
pub fn restore(email: &str, p: &Properties) -> Result<ContactInput, String> {
    let get = |k: &str| p.get(k).cloned();
    ContactInput::try_from(ContactRequest {
        email: email.to_string(),
        firstname: get("firstname"),
        lastname: get("lastname"),
        phone: get("phone"),
        company: get("company"),
    })
}

#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
    config: OutboxConfig,
    wake: Arc<tokio::sync::Notify>,
}

impl Outbox {
    pub fn new(db: Db, config: OutboxConfig) -> Self {
        Self {
            db,
            config,
            wake: Arc::default(),
        }
    }

    /// Stores `contacts` in one transaction. A contact whose newest item is still pending and
    /// unclaimed is merged into it (its values over the item's); otherwise it gets a new item,
    /// which waits behind the older ones of its email. Returns the item id each contact landed
    /// in.
    pub async fn enqueue(&self, contacts: &[ContactInput]) -> StoreResult<Vec<i64>> {
        self.enqueue_to(None, contacts).await
    }

    /// [`enqueue`](Self::enqueue) to `portal`'s queue: order and coalescing hold per portal.
    pub async fn enqueue_to(
        &self,
        portal: Option<PortalId>,
        contacts: &[ContactInput],
    ) -> StoreResult<Vec<i64>> {
        let portal = portal.map(|p| p.0 as i64);
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let mut ids = Vec::with_capacity(contacts.len());
        for c in contacts {
            let email = c.email.as_str();
            let properties = stored(c);
            let newest = sqlx::query(
                "SELECT id, properties, lease_until FROM outbox
                 WHERE email = $1 AND portal_id IS NOT DISTINCT FROM $2 AND state = 'pending'
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(email)
            .bind(portal)
            .fetch_optional(&mut *w.tx)
            .await?;
            let unclaimed = newest.filter(|row| {
                row.get::<Option<i64>, _>("lease_until")
                    .is_none_or(|until| until < now)
            });
            let mut merged_into = None;
            if let Some(row) = unclaimed {
                let id: i64 = row.get("id");
                let mut merged =
                    order::parse(id, row.get::<&str, _>("properties")).map_err(StoreError::Data)?;
                merged.extend(properties.clone());
                // The lease is checked again: on PostgreSQL a worker may have claimed the item
                // since the read, and then this write must be an item of its own.
                let done = sqlx::query(
                    "UPDATE outbox SET properties = $1, updated_at = $2
                     WHERE id = $3 AND state = 'pending' AND (lease_until IS NULL OR lease_until < $2)",
                )
                .bind(serde_json::to_string(&merged)?)
                .bind(now)
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                if done.rows_affected() == 1 {
                    merged_into = Some(id);
                }
            }
            let id = match merged_into {
                Some(id) => id,
                None => {
                    self.insert(&mut w.tx, portal, email, &properties, now)
                        .await?
                }
            };
            ids.push(id);
        }
        w.commit().await?;
        self.wake.notify_one();
        Ok(ids)
    }

    async fn insert(
        &self,
        tx: &mut sqlx::AnyConnection,
        portal: Option<i64>,
        email: &str,
        properties: &Properties,
        now: i64,
    ) -> StoreResult<i64> {
        Ok(sqlx::query(
            "INSERT INTO outbox (email, properties, state, attempts, next_attempt_at, created_at, updated_at, portal_id)
             VALUES ($1, $2, 'pending', 0, $3, $3, $3, $4) RETURNING id",
        )
        .bind(email)
        .bind(serde_json::to_string(properties)?)
        .bind(now)
        .bind(portal)
        .fetch_one(&mut *tx)
        .await?
        .get("id"))
    }

    /// When the next unclaimed pending item comes due (epoch ms on the store's clock), if any:
    /// how long an idle worker may sleep.
    pub async fn next_due(&self) -> StoreResult<Option<i64>> {
        let now = self.db.now_ms();
        Ok(sqlx::query(
            "SELECT MIN(next_attempt_at) AS at FROM outbox
             WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(now)
        .fetch_one(self.db.pool())
        .await?
        .get::<Option<i64>, _>("at"))
    }

    /// Whether any item is due and unclaimed now (a read: the worker asks before it takes a
    /// slot of HubSpot's budget).
    pub async fn has_due(&self) -> StoreResult<bool> {
        let now = self.db.now_ms();
        Ok(sqlx::query(
            "SELECT 1 FROM outbox
             WHERE state = 'pending' AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until < $1)
             LIMIT 1",
        )
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?
        .is_some())
    }

    pub async fn depth(&self) -> StoreResult<Depth> {
        let now = self.db.now_ms();
        let row = sqlx::query(
            "SELECT
                 COALESCE(SUM(CASE WHEN state = 'pending' AND (lease_until IS NULL OR lease_until < $1) THEN 1 ELSE 0 END), 0) AS pending,
                 COALESCE(SUM(CASE WHEN state = 'pending' AND lease_until >= $1 THEN 1 ELSE 0 END), 0) AS leased,
                 COALESCE(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
                 COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) AS dead,
                 COALESCE(SUM(CASE WHEN state = 'replayed' THEN 1 ELSE 0 END), 0) AS replayed
             FROM outbox",
        )
        .bind(now)
        .fetch_one(self.db.pool())
        .await?;
        Ok(Depth {
            pending: row.get("pending"),
            leased: row.get("leased"),
            sent: row.get("sent"),
            dead: row.get("dead"),
            replayed: row.get("replayed"),
        })
    }

    /// How many writes are waiting (pending or being sent), and when the oldest of them was
    /// queued (epoch ms; `None` when nothing waits): one query on the `state` index, for the
    /// figures' sampler (where [`depth`](Self::depth) would scan every sent row too).
    pub async fn waiting(&self) -> StoreResult<(i64, Option<i64>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE state = 'pending'",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok((row.get("n"), row.get("oldest")))
    }

    /// Items in `state`, newest first.
    pub async fn list(&self, state: ItemState, limit: i64) -> StoreResult<Vec<Item>> {
        Ok(sqlx::query_as::<_, Item>(&format!(
            "SELECT {ITEM_COLUMNS} FROM outbox WHERE state = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(state.as_str())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Now on the store's clock.
    pub fn now_ms(&self) -> i64 {
        self.db.now_ms()
    }

    /// Notified on every enqueue and replay: the worker's waker.
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}
