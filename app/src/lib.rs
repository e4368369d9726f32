//! The HubSpot contact-sync web service.
//!
//! # Layout
//! - [`clock`]: the one wall clock (epoch milliseconds).
//! - [`cache`]: contacts as last read from HubSpot (by id, email, phone), TTL, stale serving.
//! - [`webhooks`]: signature checks, the durable event inbox and its processor.
//! - [`sync`]: incremental pull of contacts (cursor, 10k search cap, resumable) on a schedule.
//! - [`config`]: settings from the environment, validated at start; secrets stay hidden.
//! - [`db`]: the app's SQLite database (migrations at start; the audit log of admin lookups).
//! - [`contacts`]: contact domain types, validated at the edge.
//! - [`hubspot`]: the only module that talks to HubSpot.
//! - [`healthcheck`]: `app healthcheck`, the container's health probe (no curl in `scratch`).
//! - [`outbox`]: the durable queue of contact writes and its worker (order per contact, leases,
//!   batches, dead letters and replay).
//! - [`budget`]: HubSpot's rate budget shared through the database by every process on it.
//! - [`identity`]: this process's identity, checkable by others (a dead worker's leases).
//! - [`secret`]: `Secret` (never printed) and the one constant-time compare.
//! - [`mask`]: masks emails and phone numbers in anything that is logged.
//! - [`http`]: the HTTP edge: routes, admin auth, `ApiError`, the dashboard, `/openapi.json`.
//! - [`serve`]: connection counting and the drain that makes a blue-green switch lossless.
//! - [`Application`]: binds first (port 0 in tests), then serves until shut down.

pub mod budget;
pub mod cache;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod db;
pub mod healthcheck;
pub mod http;
pub mod hubspot;
pub mod identity;
pub mod mask;
pub mod outbox;
pub mod secret;
pub mod serve;
pub mod sync;
pub mod webhooks;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::db::Db;
use crate::http::AppState;
use crate::hubspot::HubSpotClient;
use crate::outbox::{Outbox, OutboxConfig};

pub struct Application {
    listener: TcpListener,
    unix: Option<tokio::net::UnixListener>,
    state: http::Shared,
}

impl Application {
    /// Validates what needs validating, opens the database and binds the listeners, so
    /// `local_addr()` is known before serving (tests bind port 0).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = Db::connect(settings.database_url.expose()).await?;
        let hubspot = match (&settings.hubspot.enabled, &settings.hubspot.token) {
            (true, Some(token)) => Some(Arc::new(
                HubSpotClient::new(&settings.hubspot, token.clone())?
                    .with_shared_budget(Arc::new(db.clone())),
            )),
            _ => None,
        };
        let outbox = Outbox::new(
            db.clone(),
            OutboxConfig {
                max_attempts: settings.outbox_max_attempts,
                lease: settings.outbox_lease,
                ..OutboxConfig::default()
            },
        );
        let inbox = crate::webhooks::Inbox::new(db.clone());
        let cache = crate::cache::Cache::new(db.clone(), settings.cache_ttl);
        let sync = crate::sync::Sync::new(db.clone(), cache.clone(), settings.sync_overlap);
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {} (set APP_LISTEN)", settings.listen))?;
        let unix = settings
            .socket
            .as_deref()
            .map(serve::bind_unix)
            .transpose()?;
        Ok(Self {
            listener,
            unix,
            state: Arc::new(AppState {
                settings,
                hubspot,
                db,
                outbox,
                inbox,
                cache,
                sync,
                drain: Arc::default(),
            }),
        })
    }

    /// The shared state (tests drive the outbox's `try_once` through it).
    pub fn state(&self) -> http::Shared {
        self.state.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains (see [`serve`]): keeps answering, with
    /// `Connection: close`, until no connection is open or `APP_DRAIN_TIMEOUT` has passed, and
    /// finally finishes whatever is still in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (worker_stop, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = match (&self.state.hubspot, self.state.settings.outbox_worker) {
            (Some(client), true) => {
                let owner = crate::identity::this_process();
                Some(tokio::spawn(self.state.outbox.clone().run(
                    client.clone(),
                    owner,
                    worker_stopped,
                )))
            }
            _ => None,
        };
        let processor = self.state.hubspot.as_ref().map(|client| {
            tokio::spawn(self.state.inbox.clone().run(
                self.state.cache.clone(),
                client.clone(),
                worker_stop.subscribe(),
            ))
        });
        let scheduler = self.state.hubspot.as_ref().and_then(|client| {
            let schedule = self.state.settings.sync_schedule.clone()?;
            let (sync, client) = (self.state.sync.clone(), client.clone());
            let on_start = self.state.settings.sync_on_start;
            let mut stop = worker_stop.subscribe();
            Some(tokio::spawn(async move {
                let mut first = on_start;
                loop {
                    let wait = if first { Duration::ZERO } else { crate::sync::next_run(&schedule).unwrap_or(Duration::from_secs(1800)) };
                    first = false;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                    // Blue and green both schedule; the database lets one run at a time.
                    if let Err(e) = sync.run(&client).await {
                        tracing::info!(error = %crate::mask::text(&e.to_string()), "scheduled sync did not run to the end");
                    }
                }
            }))
        });
        let drain = self.state.drain.clone();
        let drain_timeout = self.state.settings.drain_timeout;
        let socket_path = self.state.settings.socket.clone();
        let app = http::router(self.state);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let tcp = axum::serve(
            serve::Counted::new(self.listener, drain.clone()),
            app.clone(),
        )
        .with_graceful_shutdown(stopped());
        let unix = self.unix.map(|l| {
            axum::serve(serve::Counted::new(l, drain.clone()), app)
                .with_graceful_shutdown(stopped())
        });
        let conductor = async move {
            shutdown.await;
            drain.start();
            tracing::info!(open = drain.open_connections(), "draining");
            let left = drain.until_idle(drain_timeout).await;
            if left > 0 {
                tracing::warn!(
                    open = left,
                    "drain timeout passed; finishing in-flight requests"
                );
            }
            let _ = stop_tx.send(true);
        };
        let servers = async move {
            match unix {
                Some(unix) => tokio::try_join!(tcp.into_future(), unix.into_future()).map(|_| ()),
                None => tcp.await,
            }
        };
        let (served, ()) = tokio::join!(servers, conductor);
        // The worker finishes the batch in flight (bounded by HUBSPOT_TIMEOUT) and stops; an
        // item it had claimed but not sent keeps its lease until it expires, then is sent.
        let _ = worker_stop.send(true);
        if let Some(scheduler) = scheduler {
            scheduler.abort(); // a run cut here resumes from its last committed page
        }
        for task in [worker, processor].into_iter().flatten() {
            let _ = task.await;
        }
        if let Some(path) = socket_path {
            let _ = std::fs::remove_file(path);
        }
        served.context("Server failed")
    }
}
