//! Named users and their API tokens (`app_users`, `user_tokens`). A token is stored as its
//! SHA-256 only (the caller hashes it; the store never sees one in clear). Revoking keeps the
//! rows, so the audit's names keep meaning something; a revoked user's tokens stop at once.

use serde::Serialize;
use sqlx::Row;

use super::{Db, StoreError, StoreResult};
use crate::domain::access::Role;

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub created_by: String,
    /// Set once revoked.
    pub revoked_at: Option<i64>,
    /// Tokens not revoked.
    pub active_tokens: i64,
}

#[derive(Debug, Clone)]
pub struct Users {
    db: Db,
}

impl Users {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Adds `name` with `role` and its first token; `Conflict` when the name is taken (a
    /// revoked user's name too: names in the audit stay unambiguous).
    pub async fn add(&self, name: &str, role: Role, by: &str, token_hash: &str) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO app_users (name, role, created_at, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(now)
        .bind(by)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a user named '{name}' exists (or existed); pick another name"
            )));
        }
        insert_token(&mut w.tx, name, token_hash, now).await?;
        w.commit().await
    }

    /// Another token for an active user; `NotFound` when there is none of that name.
    pub async fn add_token(&self, name: &str, token_hash: &str) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let active = sqlx::query("SELECT 1 FROM app_users WHERE name = $1 AND revoked_at IS NULL")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some();
        if !active {
            return Err(StoreError::NotFound(format!(
                "no active user named '{name}'"
            )));
        }
        insert_token(&mut w.tx, name, token_hash, now).await?;
        w.commit().await
    }

    /// Revokes the user and every token of theirs; `NotFound` when no active user has that name.
    pub async fn revoke(&self, name: &str) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let n = sqlx::query(
            "UPDATE app_users SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no active user named '{name}'"
            )));
        }
        sqlx::query(
            "UPDATE user_tokens SET revoked_at = $1 WHERE user_name = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The active user a token hash belongs to, with their role.
    pub async fn by_token(&self, token_hash: &str) -> StoreResult<Option<(String, Role)>> {
        let row = sqlx::query(
            "SELECT u.name, u.role FROM user_tokens t JOIN app_users u ON u.name = t.user_name
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| {
            let role: String = r.get("role");
            let role = role.parse::<Role>().map_err(StoreError::Data)?;
            Ok((r.get("name"), role))
        })
        .transpose()
    }

    pub async fn list(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(
            "SELECT u.name, u.role, u.created_at, u.created_by, u.revoked_at,
                (SELECT COUNT(*) FROM user_tokens t WHERE t.user_name = u.name AND t.revoked_at IS NULL) AS active
             FROM app_users u ORDER BY u.name",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.get("role");
                Ok(User {
                    name: r.get("name"),
                    role: role.parse().map_err(StoreError::Data)?,
                    created_at: r.get("created_at"),
                    created_by: r.get("created_by"),
                    revoked_at: r.get("revoked_at"),
                    active_tokens: r.get("active"),
                })
            })
            .collect()
    }
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    name: &str,
    token_hash: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO user_tokens (token_hash, user_name, created_at) VALUES ($1, $2, $3)")
        .bind(token_hash)
        .bind(name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
