//! Each user's contact searches (`search_history`): the query sealed (it names people), its
//! blind index (a person's, when the query is a whole email or phone, so a privacy export finds
//! it), and the HubSpot ids it found. The outbound flow shows a user their `recent` searches.

use sqlx::Row;

use super::{placeholders, Db, StoreResult};
use crate::domain::privacy::SharedSealer;

/// A search as the privacy tools and `recent` see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PastSearch {
    pub user: String,
    pub query: String,
    pub result_ids: Vec<String>,
    /// Milliseconds since the epoch.
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct History {
    db: Db,
    sealer: Option<SharedSealer>,
}

fn context(user: &str) -> String {
    format!("search_history:{user}")
}

impl History {
    pub fn new(db: Db, sealer: Option<SharedSealer>) -> Self {
        Self { db, sealer }
    }

    /// Records a search (nothing without a key: the query is personal data).
    pub async fn record(
        &self,
        user: &str,
        portal_key: i64,
        query: &str,
        indexed: &str,
        result_ids: &[String],
    ) -> StoreResult<()> {
        let Some(sealer) = &self.sealer else {
            return Ok(());
        };
        let now = self.db.now_ms();
        let mut w = self.db.write().await?;
        sqlx::query(
            "INSERT INTO search_history (user_name, portal_key, query, query_hash, result_ids, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user)
        .bind(portal_key)
        .bind(sealer.seal(query, &context(user)))
        .bind(sealer.blind(indexed).swap_remove(0))
        .bind(serde_json::to_string(result_ids)?)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The user's latest distinct queries, newest first.
    pub async fn recent(&self, user: &str, n: usize) -> StoreResult<Vec<String>> {
        let Some(sealer) = &self.sealer else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT query FROM search_history WHERE user_name = $1 ORDER BY id DESC LIMIT 100",
        )
        .bind(user)
        .fetch_all(self.db.pool())
        .await?;
        let mut seen = Vec::new();
        for r in rows {
            if let Some(q) = sealer.open(r.get::<&str, _>("query"), &context(user)) {
                if !seen.contains(&q) {
                    seen.push(q);
                }
            }
            if seen.len() == n {
                break;
            }
        }
        Ok(seen)
    }

    /// Searches whose query had one of `hashes`, or that found one of `ids` (a privacy export).
    pub async fn about(
        &self,
        hashes: &[String],
        ids: &[String],
    ) -> StoreResult<Vec<(i64, PastSearch)>> {
        let Some(sealer) = &self.sealer else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut consider = |rows: Vec<sqlx::any::AnyRow>| {
            for r in rows {
                let id: i64 = r.get("id");
                if out.iter().any(|(seen, _)| *seen == id) {
                    continue;
                }
                let user: String = r.get("user_name");
                let found: Vec<String> =
                    serde_json::from_str(r.get::<&str, _>("result_ids")).unwrap_or_default();
                let by_hash = hashes.contains(&r.get::<String, _>("query_hash"));
                if !by_hash && !found.iter().any(|f| ids.contains(f)) {
                    continue;
                }
                let query = sealer
                    .open(r.get::<&str, _>("query"), &context(&user))
                    .unwrap_or_else(|| "(does not open)".into());
                out.push((
                    id,
                    PastSearch {
                        user,
                        query,
                        result_ids: found,
                        at: r.get("at_ms"),
                    },
                ));
            }
        };
        if !hashes.is_empty() {
            let sql = format!(
                "SELECT id, user_name, query, query_hash, result_ids, at_ms FROM search_history
                 WHERE query_hash IN ({})",
                placeholders(1, hashes.len())
            );
            let mut q = sqlx::query(&sql);
            for h in hashes {
                q = q.bind(h);
            }
            consider(q.fetch_all(self.db.pool()).await?);
        }
        for id in ids {
            // The ids are in a JSON list: a LIKE narrows, the parse above decides.
            let rows = sqlx::query(
                "SELECT id, user_name, query, query_hash, result_ids, at_ms FROM search_history
                 WHERE result_ids LIKE $1",
            )
            .bind(format!("%\"{id}\"%"))
            .fetch_all(self.db.pool())
            .await?;
            consider(rows);
        }
        Ok(out)
    }
}
