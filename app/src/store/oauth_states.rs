//! The OAuth install's single-use states (`oauth_states`), shared by every instance so any of
//! them can finish an install another started. Stored as SHA-256 hashes of the state and of
//! the browser cookie it is bound to: the table holds nothing that could be replayed.

use sqlx::Row;

use super::{Db, StoreResult};

/// Why an install's state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRefused {
    Unknown,
    Used,
    Expired,
    /// Started in another browser.
    OtherBrowser,
}

/// The `oauth_states` table.
#[derive(Debug, Clone)]
pub struct OAuthStates {
    db: Db,
}

impl OAuthStates {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records an install's state (hashed) bound to a browser (hashed), valid until `expires_at`.
    pub async fn new_state(
        &self,
        state_hash: &str,
        browser_hash: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(now - 24 * 3600 * 1000)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, browser_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(state_hash)
        .bind(browser_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Uses an install's state up, once, for the browser it was made for.
    pub async fn use_state(
        &self,
        state_hash: &str,
        browser_hash: &str,
    ) -> StoreResult<Result<(), StateRefused>> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        let Some(row) = sqlx::query(
            "SELECT browser_hash, expires_at, used_at FROM oauth_states WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&mut *w.tx)
        .await?
        else {
            return Ok(Err(StateRefused::Unknown));
        };
        let refused = if row.get::<Option<i64>, _>("used_at").is_some() {
            Some(StateRefused::Used)
        } else if row.get::<i64, _>("expires_at") < now {
            Some(StateRefused::Expired)
        } else if !crate::secret::same(browser_hash, row.get::<&str, _>("browser_hash")) {
            Some(StateRefused::OtherBrowser)
        } else {
            None
        };
        if let Some(refused) = refused {
            return Ok(Err(refused));
        }
        let used = sqlx::query(
            "UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(state_hash)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(if used == 1 {
            Ok(())
        } else {
            Err(StateRefused::Used)
        })
    }
}
