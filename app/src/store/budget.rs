//! HubSpot's rate budget shared through the app's database ([`BudgetStore`] for [`Db`]): every
//! process on one database that calls HubSpot with one token takes its slots from the same
//! rolling window, so blue and green (or more processes) stay under the token's limit together.
//!
//! A call costs two short writes: the take (in one transaction: forget the calls that left the
//! window, count the rest, add this one) and the finish (the call counts from its end, as
//! HubSpot counted it by then). Until its finish, a call counts as if it ends one window from
//! its take: a process killed mid-call never writes its finish, and its slot must not free
//! before HubSpot's does (HubSpot counted the call when it arrived, after the take). At HubSpot's 100–110 calls per 10 s that is about 20 writes a
//! second at most. On PostgreSQL the take is serialized per bucket by a transaction-scoped
//! advisory lock (SQLite's `BEGIN IMMEDIATE` already serializes writers).

use std::time::Duration;

use sqlx::Row;

use super::{Backend, Db, StoreResult};
use crate::domain::budget::{BoxFuture, BudgetStore, Take};

/// The budget mirrors HubSpot's own rolling window, which runs on real time, and the client's
/// limiter waits for it in real time: so it reads the machine's clock, not the store's
/// (a test's manual clock must not open HubSpot's window early).
fn hubspot_now_ms() -> i64 {
    crate::clock::Clock::system().now_ms()
}

impl BudgetStore for Db {
    fn take<'a>(
        &'a self,
        bucket: &'a str,
        max: usize,
        span: Duration,
    ) -> BoxFuture<'a, Result<Take, String>> {
        Box::pin(async move {
            take(self, bucket, max, span)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    }

    fn finish(&self, id: i64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let done = async {
                let mut w = self.write().await?;
                sqlx::query("UPDATE hubspot_budget SET counts_at = $1 WHERE id = $2")
                    .bind(hubspot_now_ms())
                    .bind(id)
                    .execute(&mut *w.tx)
                    .await?;
                w.commit().await
            };
            if let Err(e) = done.await {
                // The slot keeps counting until one window after its take: never over.
                tracing::warn!(error = %e, "could not record the end of a HubSpot call");
            }
        })
    }
}

async fn take(db: &Db, bucket: &str, max: usize, span: Duration) -> StoreResult<Take> {
    let now = hubspot_now_ms();
    let span_ms = span.as_millis() as i64;
    let mut w = db.write().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(bucket)
            .execute(&mut *w.tx)
            .await?;
    }
    sqlx::query("DELETE FROM hubspot_budget WHERE bucket = $1 AND counts_at <= $2")
        .bind(bucket)
        .bind(now - span_ms)
        .execute(&mut *w.tx)
        .await?;
    // `oldest`: the finished call that leaves the window first (calls in flight count from a
    // future time, and free when they finish).
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(CASE WHEN counts_at <= $2 THEN counts_at END) AS oldest \
         FROM hubspot_budget WHERE bucket = $1",
    )
    .bind(bucket)
    .bind(now)
    .fetch_one(&mut *w.tx)
    .await?;
    let (n, oldest): (i64, Option<i64>) = (row.get("n"), row.get("oldest"));
    let taken = if (n as usize) < max {
        let id: i64 = sqlx::query(
            "INSERT INTO hubspot_budget (bucket, counts_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(bucket)
        .bind(now + span_ms)
        .fetch_one(&mut *w.tx)
        .await?
        .get("id");
        Take::Taken {
            id,
            in_window: n as usize + 1,
        }
    } else {
        // Every call in the window still running: one of them frees the moment it finishes.
        let retry_in = match oldest {
            Some(oldest) => (oldest + span_ms - now).max(1),
            None => (span_ms / 50).max(1),
        };
        Take::Full {
            retry_in: Duration::from_millis(retry_in as u64),
        }
    };
    w.commit().await?;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process killed mid-call never finishes its slot: the slot then counts as a call that
    /// ended one window after its take, so it never frees before HubSpot's count does. Finished
    /// slots free one window after their finish.
    #[tokio::test]
    async fn a_slot_never_finished_counts_until_a_window_after_its_take_would_end() {
        let dir = std::env::temp_dir().join(format!("app-budget-killed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(&format!("sqlite://{}/app.db", dir.display()))
            .await
            .unwrap();
        let span = Duration::from_millis(400);
        let take = || db.take("t", 3, span);
        let mut ids = Vec::new();
        for _ in 0..3 {
            match take().await.unwrap() {
                Take::Taken { id, .. } => ids.push(id),
                full => panic!("{full:?}"),
            }
        }
        // Two finish; the third's process "dies".
        db.finish(ids[0]).await;
        db.finish(ids[1]).await;
        let Take::Full { retry_in } = take().await.unwrap() else {
            panic!("the window holds three calls")
        };
        assert!(retry_in <= span, "{retry_in:?}");
        tokio::time::sleep(span + Duration::from_millis(50)).await;
        // The two finished slots left; the unfinished one still counts.
        for _ in 0..2 {
            assert!(matches!(take().await.unwrap(), Take::Taken { .. }));
        }
        assert!(matches!(take().await.unwrap(), Take::Full { .. }));
        tokio::time::sleep(span).await;
        assert!(matches!(take().await.unwrap(), Take::Taken { .. }));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
