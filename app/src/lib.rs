//! The HubSpot contact-sync web service.
//!
//! # Layout
//! Layers, each a folder (see ARCHITECTURE.md for what each may not import; `tests/it/layers.rs`
//! checks it):
//! - [`domain`]: the app's types and rules, pure (contacts, the outbox's order, sync positions,
//!   webhook events, the budget's port).
//! - [`hubspot`]: the only HTTP to HubSpot (client, retries, limiter, search bodies, webhook
//!   signatures).
//! - [`store`]: all SQL (`Db`, the outbox queue, the webhook inbox, the contact cache, the sync
//!   state, the shared budget, the audit log).
//! - [`jobs`]: the background work (outbox worker, webhook processor, pull sync and its
//!   schedule), each a [`jobs::Job`] run by the one [`jobs::supervise`] loop.
//! - [`lookup`]: the read-through phone lookup (cache, HubSpot, stale fallback).
//! - [`http`]: the HTTP edge: routes, admin auth, `ApiError`, the dashboard, `/openapi.json`.
//!
//! Leaves (they import nothing of the app but each other): [`clock`], [`secret`], [`mask`],
//! [`identity`]. Around them: [`config`] (settings from the environment), [`serve`] (connection
//! counting and the drain that makes a blue-green switch lossless), [`healthcheck`] (`app
//! healthcheck`, the image's probe) and [`Application`], which assembles everything.
//!
//! Long because it is where every part is built and joined: the state, the jobs, the server.

pub mod access;
pub mod clock;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod domain;
pub mod events;
pub mod healthcheck;
pub mod http;
pub mod hubspot;
pub mod identity;
pub mod jobs;
pub mod lookup;
pub mod mask;
pub mod outbound;
pub mod privacy;
pub mod secret;
pub mod serve;
pub mod store;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Settings;
use crate::http::AppState;
use crate::hubspot::HubSpotClient;
use crate::jobs::supervise;
use crate::store::outbox::{Outbox, OutboxConfig};
use crate::store::Db;

/// The connected portals of `settings` on `db`.
fn portals(
    settings: &Settings,
    db: &Db,
    private: Option<Arc<HubSpotClient>>,
) -> anyhow::Result<crate::connections::Portals> {
    let oauth = match &settings.oauth {
        Some(o) => Some((
            Arc::new(crate::hubspot::oauth::OAuthClient::new(
                &settings.hubspot,
                o.app.clone(),
            )?),
            o.keyring.clone(),
        )),
        None => None,
    };
    Ok(crate::connections::Portals::new(
        crate::store::connections::Connections::new(db.clone()),
        crate::store::oauth_states::OAuthStates::new(db.clone()),
        settings.hubspot.clone(),
        oauth,
        Some(Arc::new(db.clone())),
        // A refresh lease names its holder; several `Application`s in one process (tests)
        // must not take each other's for their own.
        format!(
            "{}#{:08x}",
            crate::identity::this_process(),
            rand::random::<u32>()
        ),
        private,
    ))
}

/// `app keys rotate`: re-seals every stored token under `TOKEN_ENCRYPTION_KEY` (the old keys in
/// `TOKEN_ENCRYPTION_OLD_KEYS`), safely beside running processes. Returns how many portals'
/// tokens changed.
pub async fn rotate_keys(settings: Settings) -> anyhow::Result<usize> {
    anyhow::ensure!(
        settings.oauth.is_some(),
        "key rotation needs the OAuth settings (HUBSPOT_CLIENT_ID, …, TOKEN_ENCRYPTION_KEY)"
    );
    let db = Db::connect(settings.database_url.expose()).await?;
    Ok(portals(&settings, &db, None)?.rotate_keys().await?)
}

/// `app migrate`: applies the migrations to DATABASE_URL and exits (a deploy's `pre_deploy`
/// hook, before the new release starts); returns the schema it left.
pub async fn migrate(settings: Settings) -> anyhow::Result<store::SchemaInfo> {
    Db::connect(settings.database_url.expose()).await?;
    Ok(store::schema_info())
}

/// `app users …` (see [`access::cli`]).
pub async fn users(settings: Settings, args: &[String]) -> anyhow::Result<String> {
    let p = &settings.privacy;
    access::cli::users(
        settings.database_url.expose(),
        p.keyring.clone(),
        p.flag_defaults,
        args,
    )
    .await
}

pub struct Application {
    listener: TcpListener,
    unix: Option<tokio::net::UnixListener>,
    state: http::Shared,
}

impl Application {
    /// Validates what needs validating, opens the database and binds the listeners, so
    /// `local_addr()` is known before serving (tests bind port 0).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`build`](Self::build) on a given clock (tests move a manual one).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let db = Db::connect_with_clock(settings.database_url.expose(), clock).await?;
        let calls = Arc::new(crate::hubspot::CallStats::default());
        let hubspot = match (&settings.hubspot.enabled, &settings.hubspot.token) {
            (true, Some(token)) => Some(Arc::new(
                HubSpotClient::new(&settings.hubspot, token.clone())?
                    .with_shared_budget(Arc::new(db.clone()))
                    .counting_into(calls.clone()),
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
        let inbox = crate::store::inbox::Inbox::new(db.clone());
        let crate::access::Parts {
            access,
            auditor,
            flags,
            sealer,
        } = crate::access::Parts::new(
            &db,
            settings.privacy.keyring.clone(),
            settings.privacy.flag_defaults,
            settings.admin_token.clone(),
        );
        let cache = crate::store::cache::Cache::new(db.clone(), settings.cache_ttl, sealer.clone());
        if let Err(e) = flags.refresh().await {
            tracing::warn!(error = %e, "could not read the feature flags; starting with the environment's");
        }
        let history = crate::store::history::History::new(db.clone(), sealer.clone());
        let outbound = crate::outbound::Outbound::new(
            history.clone(),
            settings.privacy.search_cache_ttl,
            settings.phone_region,
        );
        let privacy = crate::privacy::Privacy::new(
            cache.clone(),
            history,
            crate::store::privacy::PrivacyStore::new(db.clone(), sealer.clone()),
            auditor.clone(),
        );
        let objects = crate::store::objects::Objects::new(db.clone());
        let object_writes = crate::store::object_writes::ObjectWrites::new(db.clone());
        let sync = crate::jobs::sync::Sync::new(
            crate::store::sync::SyncState::new(db.clone(), None),
            cache.clone(),
            objects.clone(),
            settings.sync_overlap,
            settings.sync_objects.clone(),
            (
                crate::store::mappings::Mappings::new(db.clone()),
                settings.mappings.clone(),
            ),
        );
        let portals = portals(&settings, &db, hubspot.clone())?.counting_calls_into(calls.clone());
        let lifecycle = crate::store::lifecycle::Lifecycle::new(
            db.clone(),
            crate::store::lifecycle::Keys {
                external_id_property: settings.lifecycle.external_id_property.clone(),
                merchant_id_property: settings.lifecycle.merchant_id_property.clone(),
            },
        )
        .with_lease(settings.outbox_lease)
        .with_wake(outbox.wake());
        let events = crate::events::Events::new(
            lifecycle.clone(),
            Arc::new(settings.lifecycle.clone()),
            portals.clone(),
        );
        let figures = crate::jobs::figures::Figures::new(
            crate::store::figures::FigureStore::new(db.clone()),
            crate::jobs::figures::Sources {
                calls,
                inbox: inbox.clone(),
                events: events.clone(),
                sync: sync.clone(),
                cache: cache.clone(),
                outbox: outbox.clone(),
            },
            format!("{} {}", settings.slot, crate::identity::this_process()),
        );
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
                limits: crate::access::limits::UserLimits::new(settings.privacy.user_rate),
                settings,
                hubspot,
                db,
                outbox,
                inbox,
                cache,
                objects,
                object_writes,
                sync,
                portals,
                lifecycle,
                events,
                access,
                auditor,
                flags,
                outbound,
                privacy,
                sealer,
                figures,
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
        let (jobs_stop, jobs_stopped) = tokio::sync::watch::channel(false);
        let clock = self.state.db.clock().clone();
        let mut jobs = Vec::new();
        if self.state.hubspot.is_some() || self.state.portals.oauth_enabled() {
            let (s, stop) = (&self.state, || jobs_stopped.clone());
            if let Some(schedule) = s.settings.sync_schedule.clone() {
                let scheduled = jobs::schedule::Scheduled::new(
                    s.sync.clone(),
                    s.portals.clone(),
                    schedule,
                    clock.clone(),
                    s.settings.sync_on_start,
                );
                jobs.push(tokio::spawn(supervise(scheduled, clock.clone(), stop())));
            }
        }
        // Writes go to, and webhook events are read back from, their own portal: the
        // private-app account's, or one connected by OAuth.
        if self.state.hubspot.is_some() || self.state.portals.oauth_enabled() {
            let s = &self.state;
            if s.settings.outbox_worker {
                let owner = crate::identity::this_process();
                let live = s.settings.hubspot.send_live;
                if live {
                    // Previewed in a dry run before: sent now.
                    if let Err(e) = s.lifecycle.resume_previewed().await {
                        tracing::warn!(error = %e, "could not queue previewed lifecycle deliveries");
                    }
                }
                let delivery = jobs::lifecycle::Delivery::new(
                    s.lifecycle.clone(),
                    s.events.config().clone(),
                    live,
                );
                let worker =
                    jobs::outbox::Worker::for_portals(s.outbox.clone(), s.portals.clone(), owner)
                        .with_concurrency(s.settings.outbox_concurrency)
                        .with_lifecycle(delivery)
                        .with_stop(jobs_stopped.clone());
                jobs.push(tokio::spawn(supervise(
                    worker,
                    clock.clone(),
                    jobs_stopped.clone(),
                )));
                let writer =
                    jobs::object_writes::Writer::new(s.object_writes.clone(), s.portals.clone());
                jobs.push(tokio::spawn(supervise(
                    writer,
                    clock.clone(),
                    jobs_stopped.clone(),
                )));
            }
            let processor = jobs::webhooks::Processor::new(
                s.inbox.clone(),
                s.cache.clone(),
                s.objects.clone(),
                s.sync.clone(),
                s.portals.clone(),
                s.privacy.clone(),
            );
            jobs.push(tokio::spawn(supervise(
                processor,
                clock.clone(),
                jobs_stopped.clone(),
            )));
        }
        {
            let s = &self.state;
            jobs.push(tokio::spawn(supervise(
                jobs::upkeep::FlagRefresh {
                    flags: s.flags.clone(),
                    every: s.settings.privacy.flags_refresh,
                },
                clock.clone(),
                jobs_stopped.clone(),
            )));
            jobs.push(tokio::spawn(supervise(
                jobs::figures::Sampler::new(s.figures.clone()),
                clock.clone(),
                jobs_stopped.clone(),
            )));
            jobs.push(tokio::spawn(supervise(
                jobs::upkeep::AuditRetention {
                    audit: s.auditor.store().clone(),
                    keep: s.settings.privacy.audit_retention,
                },
                clock.clone(),
                jobs_stopped.clone(),
            )));
            if (s.hubspot.is_some() || s.portals.oauth_enabled()) && s.settings.outbox_worker {
                jobs.push(tokio::spawn(supervise(
                    jobs::privacy::Deletes {
                        store: s.privacy.store().clone(),
                        portals: s.portals.clone(),
                        owner: crate::identity::this_process(),
                        lease: s.settings.outbox_lease,
                    },
                    clock.clone(),
                    jobs_stopped.clone(),
                )));
            }
        }
        let drain = self.state.drain.clone();
        let drain_timeout = self.state.settings.drain_timeout;
        let socket_path = self.state.settings.socket.clone();
        let figures = self.state.figures.clone();
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
        // The worker finishes the batch in flight (bounded by HUBSPOT_TIMEOUT) and stops; a
        // sync run is cut (it resumes from its last committed page).
        let _ = jobs_stop.send(true);
        for job in jobs {
            let _ = job.await;
        }
        // The last seconds' counts, so the history has what a deploy's old slot did last.
        if let Err(e) = figures.sample().await {
            tracing::warn!(error = %e, "could not store the last figures");
        }
        if let Some(path) = socket_path {
            let _ = std::fs::remove_file(path);
        }
        served.context("Server failed")
    }
}
