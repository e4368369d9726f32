//! The figures' history: every [`SAMPLE_EVERY`] the [`Sampler`] adds what this process counted
//! since its last sample (HubSpot calls and 429s, webhook and lifecycle events, sync runs,
//! cache hits and misses) to the current minute in the database, with the outbox's depth and
//! the age of its oldest write; [`Figures::history`] reads the last hour or day back for the
//! dashboard's charts and `GET /api/stats/history`. Being in the shared database, the history
//! is the same seen from blue or green and survives a deploy.
//!
//! May not import: `axum`, `sqlx` (SQL is the store's), `crate::http`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::sync::Sync;
use super::{Job, Next};
use crate::domain::figures::{self, History, Series, Totals, Window};
use crate::events::Events;
use crate::hubspot::CallStats;
use crate::store::cache::Cache;
use crate::store::figures::FigureStore;
use crate::store::inbox::Inbox;
use crate::store::outbox::Outbox;
use crate::store::StoreResult;

/// How often a process adds its counts to the history.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// How long the history is kept.
pub const KEEP: Duration = Duration::from_secs(2 * 24 * 3600);

/// Sync runs finished by this process, of every portal and type.
#[derive(Debug, Default)]
pub struct RunCounts {
    pub finished: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

impl RunCounts {
    pub fn count(&self, ok: bool) {
        self.finished.fetch_add(1, Relaxed);
        if !ok {
            self.failed.fetch_add(1, Relaxed);
        }
    }
}

/// What the figures are read from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub calls: Arc<CallStats>,
    pub inbox: Inbox,
    pub events: Events,
    pub sync: Sync,
    pub cache: Cache,
    pub outbox: Outbox,
}

/// This process's part of the history.
#[derive(Debug, Clone)]
pub struct Figures {
    store: FigureStore,
    sources: Sources,
    /// Names this process's rows: its slot and its process.
    process: String,
    /// The totals of the last sample stored, held through a sample so two (the job's and the
    /// last one at shutdown) never add the same counts.
    last: Arc<tokio::sync::Mutex<Totals>>,
}

impl Figures {
    pub fn new(store: FigureStore, sources: Sources, process: String) -> Self {
        Self {
            store,
            sources,
            process,
            last: Arc::default(),
        }
    }

    /// This process's totals now, and the gauges read from the database.
    pub async fn totals(&self) -> StoreResult<Totals> {
        let s = &self.sources;
        let mut t = Totals::default();
        t.set(Series::HubspotCalls, s.calls.attempts.load(Relaxed) as f64);
        t.set(
            Series::HubspotRateLimited,
            s.calls.rate_limited.load(Relaxed) as f64,
        );
        t.set(
            Series::WebhooksReceived,
            s.inbox.stats.accepted.load(Relaxed) as f64,
        );
        t.set(
            Series::WebhooksProcessed,
            s.inbox.stats.processed.load(Relaxed) as f64,
        );
        t.set(Series::EventsAccepted, s.events.stored() as f64);
        t.set(Series::SyncRuns, s.sync.runs.finished.load(Relaxed) as f64);
        t.set(
            Series::SyncFailures,
            s.sync.runs.failed.load(Relaxed) as f64,
        );
        t.set(Series::CacheHits, s.cache.stats().hits.load(Relaxed) as f64);
        t.set(
            Series::CacheMisses,
            s.cache.stats().misses.load(Relaxed) as f64,
        );
        let (waiting, oldest) = s.outbox.waiting().await?;
        t.set(Series::OutboxDepth, waiting as f64);
        let age = oldest.map_or(0, |at| (self.store.now_ms() - at).max(0) / 1000);
        t.set(Series::OutboxOldestSecs, age as f64);
        Ok(t)
    }

    /// Adds what was counted since the last sample to the current minute. When the write
    /// fails, the counts stay for the next sample: nothing is lost, nothing counted twice.
    pub async fn sample(&self) -> StoreResult<()> {
        let mut last = self.last.lock().await;
        let now = self.totals().await?;
        let minute = self.store.now_ms().div_euclid(60_000);
        self.store
            .add(&self.process, minute, &now.since(&last))
            .await?;
        *last = now;
        Ok(())
    }

    /// Deletes the history older than [`KEEP`].
    pub async fn cleanup(&self) -> StoreResult<u64> {
        let before = (self.store.now_ms() - KEEP.as_millis() as i64).div_euclid(60_000);
        self.store.cleanup(before).await
    }

    /// The last hour or day, as the charts draw it.
    pub async fn history(&self, window: Window) -> StoreResult<History> {
        let now = self.store.now_ms().div_euclid(60_000);
        let minutes = self.store.minutes(window.start(now)).await?;
        Ok(figures::history(window, now, &minutes))
    }
}

/// Samples every [`SAMPLE_EVERY`]; once an hour, deletes what is older than [`KEEP`].
pub struct Sampler {
    pub figures: Figures,
    /// When the next cleanup is due (epoch ms).
    pub cleanup_at: i64,
}

impl Sampler {
    pub fn new(figures: Figures) -> Self {
        Self {
            figures,
            cleanup_at: 0,
        }
    }
}

impl Job for Sampler {
    const NAME: &'static str = "figures";

    async fn step(&mut self) -> Next {
        if let Err(e) = self.figures.sample().await {
            tracing::warn!(error = %e, "could not store the figures; they are added to the next sample");
        }
        let now = self.figures.store.now_ms();
        if now >= self.cleanup_at {
            match self.figures.cleanup().await {
                Ok(_) => self.cleanup_at = now + 3_600_000,
                Err(e) => tracing::warn!(error = %e, "could not delete old figures"),
            }
        }
        Next::After(SAMPLE_EVERY)
    }
}
