//! Connected portals (`hubspot_connections`). Tokens arrive here sealed (see [`crate::crypto`]) and leave sealed: this
//! module never sees a token in clear.
//!
//! The refresh lease (`refresh_owner`, `refresh_until`) lets one process at a time refresh a
//! portal's access token; the others wait for the row to change. Every write that depends on
//! what was read (storing a refresh, re-sealing under a new key) is conditional on it, so two
//! processes never overwrite each other.

use serde::Serialize;
use sqlx::Row;

use super::{Db, StoreError, StoreResult};
use crate::domain::portal::{ConnectionKind, ConnectionState, PortalId};

/// A connection as operators see it: everything but the tokens.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Connection {
    pub portal_id: PortalId,
    pub kind: ConnectionKind,
    pub state: ConnectionState,
    pub scopes: Vec<String>,
    /// When the access token expires (epoch ms); none for a private-app token.
    pub expires_at: Option<i64>,
    pub refreshed_at: Option<i64>,
    pub error_count: i64,
    pub last_error: Option<String>,
    /// Account details read at install (time zone, data hosting location, …).
    #[schema(value_type = Option<Object>)]
    pub account: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A portal's tokens, sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTokens {
    pub access: String,
    pub refresh: Option<String>,
    pub expires_at: Option<i64>,
    /// When the access token was issued (read back; a write sets it to now).
    pub refreshed_at: Option<i64>,
}

const COLUMNS: &str = "portal_id, kind, state, scopes, expires_at, refreshed_at, error_count, last_error, account, created_at, updated_at";

fn connection(r: &sqlx::any::AnyRow) -> StoreResult<Connection> {
    let kind = match r.get::<&str, _>("kind") {
        "oauth" => ConnectionKind::Oauth,
        "private_app" => ConnectionKind::PrivateApp,
        other => return Err(StoreError::Data(format!("connection kind '{other}'"))),
    };
    Ok(Connection {
        portal_id: PortalId(r.get::<i64, _>("portal_id") as u64),
        kind,
        state: r
            .get::<&str, _>("state")
            .parse()
            .map_err(StoreError::Data)?,
        scopes: r
            .get::<&str, _>("scopes")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        expires_at: r.get("expires_at"),
        refreshed_at: r.get("refreshed_at"),
        error_count: r.get("error_count"),
        last_error: r.get("last_error"),
        account: r
            .get::<Option<&str>, _>("account")
            .map(serde_json::from_str)
            .transpose()?,
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

/// The `hubspot_connections` table.
#[derive(Debug, Clone)]
pub struct Connections {
    db: Db,
}

impl Connections {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn now_ms(&self) -> i64 {
        self.db.now_ms()
    }

    /// Stores a portal's connection (a new install, or a reinstall: its tokens are replaced and
    /// it is connected again).
    pub async fn connect(
        &self,
        portal: PortalId,
        kind: ConnectionKind,
        scopes: &[String],
        tokens: &SealedTokens,
        account: Option<&serde_json::Value>,
    ) -> StoreResult<()> {
        let now = self.db.now_ms();
        let kind = match kind {
            ConnectionKind::Oauth => "oauth",
            ConnectionKind::PrivateApp => "private_app",
        };
        let mut w = self.db.write().await?;
        sqlx::query(
            "INSERT INTO hubspot_connections
                 (portal_id, kind, state, scopes, access_token, refresh_token, expires_at,
                  refreshed_at, account, error_count, created_at, updated_at)
             VALUES ($1, $2, 'connected', $3, $4, $5, $6, $7, $8, 0, $7, $7)
             ON CONFLICT (portal_id) DO UPDATE SET
                 kind = excluded.kind, state = 'connected', scopes = excluded.scopes,
                 access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                 expires_at = excluded.expires_at, refreshed_at = excluded.refreshed_at,
                 account = excluded.account, error_count = 0, last_error = NULL,
                 refresh_owner = NULL, refresh_until = NULL, updated_at = excluded.updated_at",
        )
        .bind(portal.0 as i64)
        .bind(kind)
        .bind(scopes.join(" "))
        .bind(&tokens.access)
        .bind(&tokens.refresh)
        .bind(tokens.expires_at)
        .bind(now)
        .bind(account.map(|a| a.to_string()))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn get(&self, portal: PortalId) -> StoreResult<Option<Connection>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM hubspot_connections WHERE portal_id = $1"
        ))
        .bind(portal.0 as i64)
        .fetch_optional(self.db.pool())
        .await?
        .as_ref()
        .map(connection)
        .transpose()
    }

    pub async fn list(&self) -> StoreResult<Vec<Connection>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM hubspot_connections ORDER BY portal_id"
        ))
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(connection)
        .collect()
    }

    /// A connected portal's sealed tokens.
    pub async fn tokens(&self, portal: PortalId) -> StoreResult<Option<SealedTokens>> {
        Ok(sqlx::query(
            "SELECT access_token, refresh_token, expires_at, refreshed_at FROM hubspot_connections
             WHERE portal_id = $1 AND state = 'connected' AND access_token IS NOT NULL",
        )
        .bind(portal.0 as i64)
        .fetch_optional(self.db.pool())
        .await?
        .map(|r| SealedTokens {
            access: r.get("access_token"),
            refresh: r.get("refresh_token"),
            expires_at: r.get("expires_at"),
            refreshed_at: r.get("refreshed_at"),
        }))
    }

    /// Takes the refresh lease of `portal` for `owner` until `until` (epoch ms), unless another
    /// process holds a lease that has not run out. Whether it was taken.
    pub async fn take_refresh(
        &self,
        portal: PortalId,
        owner: &str,
        until: i64,
    ) -> StoreResult<bool> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let taken = sqlx::query(
            "UPDATE hubspot_connections SET refresh_owner = $1, refresh_until = $2
             WHERE portal_id = $3 AND state = 'connected'
               AND (refresh_owner IS NULL OR refresh_until < $4)",
        )
        .bind(owner)
        .bind(until)
        .bind(portal.0 as i64)
        .bind(now)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(taken == 1)
    }

    /// Records a refresh done under `owner`'s lease, and ends the lease. A refresh token HubSpot
    /// rotated replaces the old one. Whether the lease was still `owner`'s.
    pub async fn refreshed(
        &self,
        portal: PortalId,
        owner: &str,
        tokens: &SealedTokens,
    ) -> StoreResult<bool> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let done = sqlx::query(
            "UPDATE hubspot_connections SET
                 access_token = $1, refresh_token = COALESCE($2, refresh_token), expires_at = $3,
                 refreshed_at = $4, updated_at = $4, error_count = 0, last_error = NULL,
                 refresh_owner = NULL, refresh_until = NULL
             WHERE portal_id = $5 AND refresh_owner = $6",
        )
        .bind(&tokens.access)
        .bind(&tokens.refresh)
        .bind(tokens.expires_at)
        .bind(now)
        .bind(portal.0 as i64)
        .bind(owner)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done == 1)
    }

    /// A refresh under `owner`'s lease failed: the lease ends, the error is counted, and with
    /// `state` the connection moves (to `reauthorization_required` on `invalid_grant`).
    pub async fn refresh_failed(
        &self,
        portal: PortalId,
        owner: &str,
        error: &str,
        state: Option<ConnectionState>,
    ) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        sqlx::query(
            "UPDATE hubspot_connections SET
                 state = COALESCE($1, state), error_count = error_count + 1, last_error = $2,
                 refresh_owner = NULL, refresh_until = NULL, updated_at = $3
             WHERE portal_id = $4 AND refresh_owner = $5",
        )
        .bind(state.map(ConnectionState::as_str))
        .bind(crate::mask::text(error))
        .bind(now)
        .bind(portal.0 as i64)
        .bind(owner)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Forgets a portal's tokens: it is `disconnected`. With `purge`, its local data goes too,
    /// in the same transaction: cached contacts, sync state, outbox items and webhook events.
    /// Returns its refresh token (sealed), so the caller can revoke it at HubSpot, and the rows
    /// purged; `None` when there was no such connection.
    pub async fn disconnect(
        &self,
        portal: PortalId,
        purge: bool,
    ) -> StoreResult<Option<(Option<String>, u64)>> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let Some(row) =
            sqlx::query("SELECT refresh_token FROM hubspot_connections WHERE portal_id = $1")
                .bind(portal.0 as i64)
                .fetch_optional(&mut *w.tx)
                .await?
        else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE hubspot_connections SET state = 'disconnected', access_token = NULL,
                 refresh_token = NULL, expires_at = NULL, refresh_owner = NULL,
                 refresh_until = NULL, updated_at = $1
             WHERE portal_id = $2",
        )
        .bind(now)
        .bind(portal.0 as i64)
        .execute(&mut *w.tx)
        .await?;
        let mut purged = 0;
        if purge {
            for sql in [
                "DELETE FROM portal_contacts WHERE portal_key = $1",
                "DELETE FROM portal_sync_state WHERE portal_key = $1",
                "DELETE FROM crm_objects WHERE portal_key = $1",
                "DELETE FROM crm_associations WHERE portal_key = $1",
                "DELETE FROM crm_fields WHERE portal_key = $1",
                "DELETE FROM portal_mappings WHERE portal_key = $1",
                "DELETE FROM portal_sync_objects WHERE portal_key = $1",
                "DELETE FROM object_writes WHERE portal_key = $1",
                "DELETE FROM lifecycle_events WHERE portal_key = $1",
                "DELETE FROM lifecycle_subjects WHERE portal_key = $1",
                "DELETE FROM outbox WHERE portal_id = $1",
                "DELETE FROM webhook_events WHERE portal_id = $1",
            ] {
                purged += sqlx::query(sql)
                    .bind(portal.0 as i64)
                    .execute(&mut *w.tx)
                    .await?
                    .rows_affected();
            }
        }
        w.commit().await?;
        Ok(Some((row.get("refresh_token"), purged)))
    }

    /// Every stored token, sealed: (portal, access, refresh), for key rotation.
    pub async fn all_sealed(&self) -> StoreResult<Vec<(PortalId, Option<String>, Option<String>)>> {
        Ok(sqlx::query(
            "SELECT portal_id, access_token, refresh_token FROM hubspot_connections
             WHERE access_token IS NOT NULL OR refresh_token IS NOT NULL",
        )
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| {
            (
                PortalId(r.get::<i64, _>("portal_id") as u64),
                r.get("access_token"),
                r.get("refresh_token"),
            )
        })
        .collect())
    }

    /// Replaces a portal's sealed tokens with re-sealed ones, only if they are still `old` (a
    /// refresh in between wins; rotation tries again). Whether it replaced them.
    pub async fn reseal(
        &self,
        portal: PortalId,
        old: (&Option<String>, &Option<String>),
        new: (&Option<String>, &Option<String>),
    ) -> StoreResult<bool> {
        let mut w = self.db.write().await?;
        let done = sqlx::query(
            "UPDATE hubspot_connections SET access_token = $1, refresh_token = $2
             WHERE portal_id = $3
               AND access_token IS NOT DISTINCT FROM $4 AND refresh_token IS NOT DISTINCT FROM $5",
        )
        .bind(new.0)
        .bind(new.1)
        .bind(portal.0 as i64)
        .bind(old.0)
        .bind(old.1)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done == 1)
    }
}
