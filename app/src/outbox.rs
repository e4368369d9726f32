//! The durable outbox: contact writes are stored first and answered 202, then sent to HubSpot by
//! a worker in batches of up to 100 (batch upsert by email).
//!
//! - **Coalescing**: a write for an email that already has a pending, unclaimed item is merged
//!   into it (later values win), so a burst of updates to one contact is one HubSpot write.
//! - **Leases**: a worker claims due items by setting `lease_owner`/`lease_until` in one
//!   statement; two processes on one database never hold the same item. A worker that dies
//!   leaves leases that expire, and the items are claimed again (at-least-once; the upsert by
//!   email is idempotent, so a resend never makes a duplicate contact).
//! - **Retries**: a failed batch goes back with exponential backoff; after `max_attempts` an item
//!   is `dead`, listed and replayable (`POST /api/outbox/{id}/retry`). An input HubSpot refuses
//!   outright (a validation error) is dead at once: resending cannot fix it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::contacts::{ContactInput, ContactRequest};
use crate::db::Db;
use crate::hubspot::{HubSpotClient, HubSpotError};

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
    #[serde(skip)]
    pub properties: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub hubspot_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Depth {
    pub pending: i64,
    pub leased: i64,
    pub sent: i64,
    pub dead: i64,
}

/// What the items of one batch share when settled: the moment and the jitter, so a failed
/// batch comes due again whole (one claim, one call), not split across claims.
#[derive(Debug, Clone, Copy)]
struct Settle {
    now: i64,
    jitter: f64,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The stored form of a contact write: the request fields, validated and normalized.
fn stored(input: &ContactInput) -> BTreeMap<String, String> {
    input
        .properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn restore(email: &str, properties: &str) -> Result<ContactInput, String> {
    let p: BTreeMap<String, String> =
        serde_json::from_str(properties).map_err(|e| format!("stored properties: {e}"))?;
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

    /// Stores `contacts` (coalescing with pending writes to the same email) in one transaction.
    /// Returns the item id each contact landed in.
    pub async fn enqueue(&self, contacts: &[ContactInput]) -> anyhow::Result<Vec<i64>> {
        let now = now_ms();
        let mut w = self.db.write().await?;
        let mut ids = Vec::with_capacity(contacts.len());
        for c in contacts {
            let email = c.email.as_str();
            let existing = sqlx::query(
                "SELECT id, properties FROM outbox
                 WHERE email = $1 AND state = 'pending' AND (lease_until IS NULL OR lease_until < $2)
                 ORDER BY id LIMIT 1",
            )
            .bind(email)
            .bind(now)
            .fetch_optional(&mut *w.tx)
            .await?;
            let id = match existing {
                Some(row) => {
                    let id: i64 = row.get("id");
                    let mut merged: BTreeMap<String, String> =
                        serde_json::from_str(row.get::<&str, _>("properties")).unwrap_or_default();
                    merged.extend(stored(c));
                    sqlx::query("UPDATE outbox SET properties = $1, updated_at = $2 WHERE id = $3")
                        .bind(serde_json::to_string(&merged)?)
                        .bind(now)
                        .bind(id)
                        .execute(&mut *w.tx)
                        .await?;
                    id
                }
                None => sqlx::query(
                    "INSERT INTO outbox (email, properties, state, attempts, next_attempt_at, created_at, updated_at)
                     VALUES ($1, $2, 'pending', 0, $3, $3, $3) RETURNING id",
                )
                .bind(email)
                .bind(serde_json::to_string(&stored(c))?)
                .bind(now)
                .fetch_one(&mut *w.tx)
                .await?
                .get("id"),
            };
            ids.push(id);
        }
        w.commit().await?;
        self.wake.notify_one();
        Ok(ids)
    }

    /// Claims up to [`BATCH`] due items for `owner`, atomically.
    pub async fn claim(&self, owner: &str) -> anyhow::Result<Vec<Item>> {
        let now = now_ms();
        let mut w = self.db.write().await?;
        let items = sqlx::query_as::<_, Item>(
            // The conditions are repeated outside the subquery: on PostgreSQL a concurrent claim
            // of the same rows waits, then re-checks them and finds them leased, so it skips
            // them (SQLite runs one writer at a time anyway).
            "UPDATE outbox SET lease_owner = $1, lease_until = $2
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE state = 'pending' AND next_attempt_at <= $3
                   AND (lease_until IS NULL OR lease_until < $3)
                 ORDER BY id LIMIT $4)
               AND state = 'pending' AND (lease_until IS NULL OR lease_until < $3)
             RETURNING id, email, properties, state, attempts, next_attempt_at, last_error, hubspot_id",
        )
        .bind(owner)
        .bind(now + self.config.lease.as_millis() as i64)
        .bind(now)
        .bind(BATCH)
        .fetch_all(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(items)
    }

    async fn mark_sent(
        &self,
        tx: &mut sqlx::AnyConnection,
        owner: &str,
        id: i64,
        hubspot_id: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'sent', hubspot_id = $1, lease_owner = NULL, lease_until = NULL,
                 attempts = attempts + 1, last_error = NULL, updated_at = $2
             WHERE id = $3 AND lease_owner = $4",
        )
        .bind(hubspot_id)
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// A failed attempt: back to pending after a backoff, or dead when `fatal` or out of
    /// attempts.
    #[allow(clippy::too_many_arguments)]
    async fn mark_failed(
        &self,
        tx: &mut sqlx::AnyConnection,
        owner: &str,
        item: &Item,
        error: &str,
        fatal: bool,
        retry_after: Option<Duration>,
        batch: Settle,
    ) -> anyhow::Result<()> {
        let attempts = item.attempts + 1;
        let dead = fatal || attempts >= self.config.max_attempts;
        let backoff = retry_after.unwrap_or_else(|| self.backoff(attempts, batch.jitter));
        sqlx::query(
            "UPDATE outbox SET state = $1, attempts = $2, next_attempt_at = $3, last_error = $4,
                 lease_owner = NULL, lease_until = NULL, updated_at = $5
             WHERE id = $6 AND lease_owner = $7",
        )
        .bind(if dead { "dead" } else { "pending" })
        .bind(attempts)
        .bind(batch.now + backoff.as_millis() as i64)
        .bind(crate::mask::text(error))
        .bind(batch.now)
        .bind(item.id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// 1 s, 2 s, 4 s … up to the maximum, times a ±20 % jitter drawn once per batch: retries of
    /// different batches spread out, and a batch stays whole (its items come due together).
    fn backoff(&self, attempts: i64, jitter: f64) -> Duration {
        let exp =
            self.config.base_backoff * 2u32.saturating_pow((attempts - 1).clamp(0, 20) as u32);
        exp.min(self.config.max_backoff).mul_f64(jitter)
    }

    /// One step of the worker: claim due items, send them as one batch, record the outcome.
    /// Returns how many items were settled (sent or failed); 0 when nothing was due.
    pub async fn try_once(&self, client: &HubSpotClient, owner: &str) -> anyhow::Result<usize> {
        let items = self.claim(owner).await?;
        if items.is_empty() {
            return Ok(0);
        }
        // Several items for one email (a lease expired while more arrived): one input, merged
        // in order, and every item settled by its outcome.
        let mut by_email: BTreeMap<String, (BTreeMap<String, String>, Vec<&Item>)> =
            BTreeMap::new();
        for item in &items {
            let entry = by_email.entry(item.email.clone()).or_default();
            entry.0.extend(
                serde_json::from_str::<BTreeMap<String, String>>(&item.properties)
                    .unwrap_or_default(),
            );
            entry.1.push(item);
        }
        let mut inputs = Vec::new();
        let mut groups = Vec::new();
        let mut unusable = Vec::new();
        for (email, (properties, group)) in &by_email {
            match restore(email, &serde_json::to_string(properties)?) {
                Ok(input) => {
                    inputs.push(input);
                    groups.push(group.clone());
                }
                Err(e) => unusable.extend(group.iter().map(|item| (*item, e.clone()))),
            }
        }
        let sent = if inputs.is_empty() {
            None
        } else {
            Some(client.upsert_contacts(&inputs).await)
        };
        // Every outcome of the batch in one write transaction, at one moment.
        let mut w = self.db.write().await?;
        let batch = Settle {
            now: now_ms(),
            jitter: rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2),
        };
        let tx = &mut *w.tx;
        for (item, e) in unusable {
            self.mark_failed(tx, owner, item, &e, true, None, batch)
                .await?;
        }
        match sent {
            None => {}
            Some(Ok(results)) => {
                for (result, group) in results.into_iter().zip(groups) {
                    for item in group {
                        match &result {
                            Ok(done) => self.mark_sent(tx, owner, item.id, &done.id).await?,
                            Err(refused) => {
                                self.mark_failed(
                                    tx,
                                    owner,
                                    item,
                                    &format!("HubSpot refused it: {refused}"),
                                    true,
                                    None,
                                    batch,
                                )
                                .await?
                            }
                        }
                    }
                }
            }
            Some(Err(e)) => {
                // A 429 that reaches here outlived the client's own retries (a DAILY limit, or a
                // storm longer than HUBSPOT_TIMEOUT): wait for the window it names to empty.
                let retry_after = match &e {
                    HubSpotError::Api { status: 429, body } => {
                        Some(rate_limit_wait(body.policy_name.as_deref()))
                    }
                    _ => None,
                };
                tracing::warn!(error = %crate::mask::text(&e.to_string()), items = items.len(), "outbox batch failed; will retry");
                for group in groups {
                    for item in group {
                        self.mark_failed(
                            tx,
                            owner,
                            item,
                            &e.to_string(),
                            false,
                            retry_after,
                            batch,
                        )
                        .await?;
                    }
                }
            }
        }
        w.commit().await?;
        Ok(items.len())
    }

    /// Runs the worker until `stop` resolves: sends while there is work, otherwise sleeps until
    /// woken by an enqueue or the next due time (at most 1 s). A batch in flight is finished;
    /// nothing is left claimed by a clean stop.
    pub async fn run(
        self,
        client: Arc<HubSpotClient>,
        owner: String,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut stop = stop;
        loop {
            if *stop.borrow() {
                return;
            }
            match self.try_once(&client, &owner).await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "outbox worker: database error; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    pub async fn depth(&self) -> anyhow::Result<Depth> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT
                 COALESCE(SUM(CASE WHEN state = 'pending' AND (lease_until IS NULL OR lease_until < $1) THEN 1 ELSE 0 END), 0) AS pending,
                 COALESCE(SUM(CASE WHEN state = 'pending' AND lease_until >= $1 THEN 1 ELSE 0 END), 0) AS leased,
                 COALESCE(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
                 COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) AS dead
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
        })
    }

    /// Items in `state`, newest first.
    pub async fn list(&self, state: &str, limit: i64) -> anyhow::Result<Vec<Item>> {
        Ok(sqlx::query_as::<_, Item>(
            "SELECT id, email, properties, state, attempts, next_attempt_at, last_error, hubspot_id
             FROM outbox WHERE state = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(state)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Puts a dead item back in the queue with fresh attempts. `false` if it is not dead.
    pub async fn retry(&self, id: i64) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1
             WHERE id = $2 AND state = 'dead'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.db.pool())
        .await?;
        self.wake.notify_one();
        Ok(done.rows_affected() == 1)
    }
}

/// The JSON an item is shown as (masked email: the outbox listing is an operator view).
pub fn present(item: &Item) -> Value {
    serde_json::json!({
        "id": item.id,
        "email": crate::mask::email(&item.email),
        "state": item.state,
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at,
        "last_error": item.last_error,
        "hubspot_id": item.hubspot_id,
    })
}

/// How long a batch waits after HubSpot's rate limit outlasted the client's retries: until the
/// window the 429 names is empty again (a rolling ten-second window unless it says otherwise;
/// a DAILY limit is retried each minute, so the first minute of the new day is used).
fn rate_limit_wait(policy: Option<&str>) -> Duration {
    match policy {
        Some("DAILY") => Duration::from_secs(60),
        Some("SECONDLY") => Duration::from_secs(1),
        _ => Duration::from_secs(10),
    }
}
