//! The store: all of the app's SQL, and nothing else.
//!
//! Each submodule owns its tables: [`outbox`] (the queue of contact writes), [`inbox`] (webhook
//! events), [`cache`] (contacts as last read), [`sync`] (the pull sync's position), [`budget`]
//! (HubSpot's shared rate budget); this file holds [`Db`] itself and the audit log. Every write
//! goes through [`Db::write`]; reads may use [`Db::pool`], and nothing outside `store/` touches
//! the pool. Times come from the [`Clock`] the `Db` was opened with.
//!
//! May not import: `axum`, `reqwest`, `crate::http`, `crate::hubspot`, `crate::jobs` (the store
//! records what the jobs decided; it never calls HubSpot).
//!
//! The app's own database: SQLite by default (one file under a volume, WAL so blue and green can
//! share it during a switch), PostgreSQL in production if wanted. One code path serves both
//! (sqlx's `Any` driver, portable SQL with `$n` parameters); the migrations are the same schema
//! written once per dialect (`migrations/sqlite`, `migrations/postgres`), embedded and run at
//! start, idempotently.

use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub use crate::clock::Clock;

pub mod audit;
pub mod budget;
pub mod cache;
pub mod connections;
pub mod figures;
pub mod flags;
pub mod history;
pub mod inbox;
pub mod leases;
pub mod lifecycle;
pub mod mappings;
pub mod oauth_states;
pub mod object_writes;
pub mod objects;
pub mod outbox;
pub mod privacy;
pub mod sync;
pub mod users;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// One writer at a time within this process: SQLite allows one anyway, and waiting here
    /// (a fair queue) is quicker than SQLite's busy handler, which sleeps in growing steps.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    clock: Clock,
}

/// A write transaction holding this process's writer turn. On SQLite it is `BEGIN IMMEDIATE`
/// (the write lock is taken up front, so a read-then-write never fails on upgrade).
pub struct WriteTx {
    pub tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

/// What the store's operations fail with: the database, or stored data that does not read back
/// (or a value that cannot be stored). Callers at the edge say what they were doing; this says
/// what broke.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data: {0}")]
    Data(String),
    /// A write that would break a uniqueness the caller cares about (a taken user name).
    #[error("{0}")]
    Conflict(String),
    /// The row a write needs is not there (no such active user).
    #[error("{0}")]
    NotFound(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Data(format!("JSON: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// PostgreSQL aborted the transaction as a deadlock (40P01) or a serialization failure
    /// (40001): running it again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

impl WriteTx {
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// The URL with a password, if any, replaced: safe to show.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The embedded migrations for `backend`. A database already migrated further (by a newer
/// release, before a rollback) is accepted: migrations only add (ARCHITECTURE.md), so this
/// release runs on it; the deployer refuses a rollback past a contract migration
/// ([`OLDEST_COMPATIBLE`]).
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    let mut migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.set_ignore_missing(true);
    migrator
}

/// The oldest schema version whose code can run on this release's schema. Every migration so
/// far only adds, so code from the first schema on still runs; a contract migration (one that
/// drops or renames what older code uses) must raise this to its own version.
pub const OLDEST_COMPATIBLE: i64 = 1;

/// This release's schema, for `app schema` (the deployer records it per release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SchemaInfo {
    /// The newest migration this release applies.
    pub version: i64,
    pub oldest_compatible: i64,
}

pub fn schema_info() -> SchemaInfo {
    let newest = |m: sqlx::migrate::Migrator| m.iter().map(|m| m.version).max().unwrap_or(0);
    SchemaInfo {
        version: newest(migrator(Backend::Sqlite)),
        oldest_compatible: OLDEST_COMPATIBLE,
    }
}

impl Db {
    /// Opens (a SQLite file is created if needed) and migrates the database at `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with_clock(url, Clock::system()).await
    }

    /// [`connect`](Self::connect), with the clock every stored time is read from.
    pub async fn connect_with_clock(url: &str, clock: Clock) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let backend = Backend::of(url).with_context(|| {
            format!("DATABASE_URL '{shown}' is neither sqlite:… nor postgres://…; write e.g. sqlite://data/app.db")
        })?;
        let url = match backend {
            Backend::Sqlite if !url.contains(":memory:") && !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_string(),
        };
        // An in-memory SQLite database exists once per connection: keep exactly one.
        let max = if url.contains(":memory:") { 1 } else { 8 };
        // Processes starting together on one SQLite file take turns to open and migrate it
        // (sqlx's SQLite migrator takes no lock; PostgreSQL's takes an advisory one).
        let _startup = match backend {
            Backend::Sqlite => startup_lock(&url, &shown).await?,
            Backend::Postgres => None,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // The busy timeout first: switching to WAL takes a lock another
                        // process may hold for a moment.
                        conn.execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| match backend {
                Backend::Sqlite => format!("cannot open the database at DATABASE_URL '{shown}' (is its directory there and writable?)"),
                Backend::Postgres => format!("cannot connect to DATABASE_URL '{shown}' (is PostgreSQL up, and the user, password and database right?)"),
            })?;
        migrator(backend)
            .run(&pool)
            .await
            .context("database migrations failed")?;
        Ok(Self {
            pool,
            backend,
            writer: Default::default(),
            clock,
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now on the store's clock, in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction; see [`WriteTx`].
    pub async fn write(&self) -> StoreResult<WriteTx> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Readiness probe: one round trip, bounded by `within`.
    pub async fn ping(&self, within: Duration) -> Result<(), String> {
        match tokio::time::timeout(within, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("database error: {e}")),
            Err(_) => Err(format!("database did not answer within {within:?}")),
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The file of a `sqlite:` URL (`None` for an in-memory database).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
}

/// An exclusive lock on `<database file>.lock`, held while this process opens and migrates the
/// database: processes started together (blue and green, or a test's many) take turns instead
/// of racing on the migrations table. The lock is the kernel's (`flock`), so it is released
/// when its holder exits, however it exits; it works across containers sharing the volume.
async fn startup_lock(url: &str, shown_url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = sqlite_path(url) else {
        return Ok(None);
    };
    let mut lock_path = path.into_os_string();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let shown = lock_path.display().to_string();
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await?
    .with_context(|| format!("cannot open the database at DATABASE_URL '{shown_url}': cannot create or lock {shown} (is its directory there and writable?)"))?;
    Ok(Some(file))
}

/// The key column of per-portal tables (`portal_contacts`, `portal_sync_state`): the hub id,
/// or 0 for the single account of `HUBSPOT_ACCESS_TOKEN` (a NULL portal in other tables).
pub fn portal_key(portal: Option<crate::domain::portal::PortalId>) -> i64 {
    portal.map_or(0, |p| p.0 as i64)
}

/// `count` numbered parameters from `$first`: `$3, $4, $5`. The same syntax serves SQLite and
/// PostgreSQL through the Any driver.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrates_twice_and_audits_filters_pages_and_expires() {
        let dir = std::env::temp_dir().join(format!("app-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/app.db", dir.display());
        let db = Db::connect(&url).await.unwrap();
        drop(db);
        let db = Db::connect(&url).await.unwrap(); // migrations are idempotent
        db.ping(Duration::from_secs(1)).await.unwrap();
        let audit = audit::Audit::new(db.clone());
        for action in ["lookup", "search"] {
            audit
                .record(&audit::Record {
                    actor: "ada".into(),
                    role: "support".into(),
                    action: action.into(),
                    subject: "phone".into(),
                    subject_hash: Some("b1.k.h".into()),
                    outcome: "found".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let filter = |f: audit::Filter| audit::Filter { limit: 10, ..f };
        let rows = audit.list(&filter(Default::default())).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].action, "search", "newest first");
        let only = audit
            .list(&filter(audit::Filter {
                action: Some("look".into()),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_eq!(only.len(), 1);
        let by_hash = audit
            .list(&filter(audit::Filter {
                subject_hashes: vec!["b1.k.h".into(), "b1.k.other".into()],
                before_id: Some(rows[0].id),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_eq!(by_hash.len(), 1, "paged past the newest");
        assert_eq!(audit.cleanup(db.now_ms() + 1).await.unwrap(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_file_of_a_sqlite_url() {
        let p = |u: &str| sqlite_path(u).map(|p| p.display().to_string());
        assert_eq!(
            p("sqlite:///data/app.db?mode=rwc").as_deref(),
            Some("/data/app.db")
        );
        assert_eq!(p("sqlite://app.db").as_deref(), Some("app.db"));
        assert_eq!(p("sqlite:app.db").as_deref(), Some("app.db"));
        assert_eq!(p("sqlite::memory:"), None);
    }

    #[tokio::test]
    async fn a_missing_directory_is_a_clear_error() {
        let err = Db::connect("sqlite:///nonexistent-dir-for-app/app.db")
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(text.contains("writable"), "{text}");
    }
}
