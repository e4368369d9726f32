//! Feature flags at runtime (`feature_flags`): a row overrides the environment's default. Every
//! process reads the whole table every `FLAGS_REFRESH` ([`crate::access::Flags`]).

use serde::Serialize;
use sqlx::Row;

use super::{Db, StoreResult};
use crate::domain::access::Flag;

/// A flag set in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredFlag {
    pub flag: Flag,
    pub enabled: bool,
    pub updated_at: i64,
    pub updated_by: String,
}

#[derive(Debug, Clone)]
pub struct FlagStore {
    db: Db,
}

impl FlagStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The flags set in the database (names this release does not know are skipped: a newer
    /// release may have set them).
    pub async fn all(&self) -> StoreResult<Vec<StoredFlag>> {
        let rows = sqlx::query("SELECT name, enabled, updated_at, updated_by FROM feature_flags")
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let flag = r.get::<String, _>("name").parse::<Flag>().ok()?;
                Some(StoredFlag {
                    flag,
                    enabled: r.get::<i64, _>("enabled") != 0,
                    updated_at: r.get("updated_at"),
                    updated_by: r.get("updated_by"),
                })
            })
            .collect())
    }

    pub async fn set(&self, flag: Flag, enabled: bool, by: &str) -> StoreResult<()> {
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        sqlx::query(
            "INSERT INTO feature_flags (name, enabled, updated_at, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(flag.name())
        .bind(i64::from(enabled))
        .bind(now)
        .bind(by)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }
}
