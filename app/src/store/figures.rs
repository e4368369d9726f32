//! The figures' history (`metric_samples`): each process adds what it counted in a minute to
//! that minute's counters and writes the gauges it read; the charts read the minutes back,
//! summed and maxed over the processes. See [`crate::domain::figures`] for the rules.

use sqlx::Row;

use super::{Db, StoreResult};
use crate::domain::figures::{Kind, Minute, Series};

#[derive(Debug, Clone)]
pub struct FigureStore {
    db: Db,
}

impl FigureStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn now_ms(&self) -> i64 {
        self.db.now_ms()
    }

    /// Adds `samples` (a sample's counter increases and gauge values) to `minute`'s rows of
    /// `process`, in one transaction: counters add up, gauges keep the last value.
    pub async fn add(
        &self,
        process: &str,
        minute: i64,
        samples: &[(Series, f64)],
    ) -> StoreResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut w = self.db.write().await?;
        for (kind, on_conflict) in [
            (Kind::Counter, "metric_samples.value + excluded.value"),
            (Kind::Gauge, "excluded.value"),
        ] {
            let rows: Vec<&(Series, f64)> =
                samples.iter().filter(|(s, _)| s.kind() == kind).collect();
            if rows.is_empty() {
                continue;
            }
            let values = (0..rows.len())
                .map(|i| format!("($1, $2, ${}, ${})", 3 + 2 * i, 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO metric_samples (minute, process, name, value) VALUES {values}
                 ON CONFLICT (minute, process, name) DO UPDATE SET value = {on_conflict}"
            );
            let mut q = sqlx::query(&sql).bind(minute).bind(process);
            for (series, value) in rows {
                q = q.bind(series.name()).bind(*value);
            }
            q.execute(&mut *w.tx).await?;
        }
        w.commit().await
    }

    /// Every stored minute from `from` on (epoch minutes), each series summed and maxed over
    /// the processes. Names this release does not know (a newer one's) are skipped.
    pub async fn minutes(&self, from: i64) -> StoreResult<Vec<Minute>> {
        let rows = sqlx::query(
            "SELECT minute, name, SUM(value) AS total, MAX(value) AS largest
             FROM metric_samples WHERE minute >= $1 GROUP BY minute, name",
        )
        .bind(from)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Minute {
                    minute: r.get("minute"),
                    series: Series::parse(r.get::<&str, _>("name"))?,
                    sum: r.get("total"),
                    max: r.get("largest"),
                })
            })
            .collect())
    }

    /// Deletes the minutes before `before` (epoch minutes); returns how many rows went.
    pub async fn cleanup(&self, before: i64) -> StoreResult<u64> {
        let mut w = self.db.write().await?;
        let done = sqlx::query("DELETE FROM metric_samples WHERE minute < $1")
            .bind(before)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(done.rows_affected())
    }
}
