//! A local stand-in for HubSpot's CRM v3 API, faithful enough to prove a client against:
//! payloads, error bodies, 409s, 429s and their headers, search semantics and limits, paging,
//! index lag, and signed webhooks; plus fault injection under `/_sim/`.
//!
//! # Layout
//! - [`config`]: CLI flags and the validated [`SimConfig`].
//! - [`model`]: object types, property schemas, records, timestamps.
//! - [`store`]: the in-memory tables, unique index and lagging search index.
//! - [`search`]: search validation, filters, sorting, paging (pure).
//! - [`api`], [`batch`]: HubSpot's routes.
//! - [`associations`]: associations v4 (labelled edges, both directions in step).
//! - [`currencies`]: the multi-currency settings (company currency, exchange rates).
//! - [`events`]: custom event definitions and occurrences (HubSpot's timeline events).
//! - [`gate`]: faults → auth → rate limit, in front of every HubSpot route.
//! - [`ratelimit`], [`faults`], [`stats`], [`webhooks`]: one concern each.
//! - [`oauth`]: HubSpot's OAuth: install, token grants, introspection, revocation; each access
//!   token belongs to one portal.
//! - [`state`]: shared state; every portal has its own records (the gate names the portal of
//!   each request), and each change's webhook event carries that portal's `portalId`.
//! - [`admin`]: the `/_sim/` control plane.
//! - [`server`]: the accept loop (per-connection drop handles, graceful shutdown).
//!
//! Tests and other crates start a simulator in-process with [`spawn`].

pub mod admin;
pub mod api;
pub mod associations;
pub mod batch;
pub mod config;
pub mod currencies;
pub mod error;
pub mod events;
pub mod faults;
pub mod gate;
pub mod model;
pub mod oauth;
pub mod properties;
pub mod ratelimit;
pub mod search;
pub mod server;
pub mod state;
pub mod stats;
pub mod store;
pub mod webhooks;

use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{RateSpec, SearchLimits, SignatureVersion, SimConfig, WebhookConfig};
pub use state::{Shared, SimState};

/// HubSpot rejects bodies far below this; it only keeps a runaway client from exhausting memory.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Every route: HubSpot's behind the [`gate`], and the `/_sim/` control plane beside them.
pub fn router(state: Shared) -> Router {
    let mut hubspot = Router::new();
    // The numeric (legacy) paths and the date-based ones, with the same semantics.
    for (account, objects, properties) in [
        ("/account-info/v3", "/crm/v3/objects", "/crm/v3/properties"),
        (
            "/account-info/2026-03",
            "/crm/objects/2026-03",
            "/crm/properties/2026-03",
        ),
        (
            "/account-info/2026-09",
            "/crm/objects/2026-09",
            "/crm/properties/2026-09",
        ),
    ] {
        hubspot = hubspot
            .route(&format!("{account}/details"), get(api::account_details))
            .route(
                &format!("{properties}/{{object_type}}"),
                get(properties::list).post(properties::create),
            )
            .route(
                &format!("{properties}/{{object_type}}/{{name}}"),
                get(properties::get),
            )
            .route(
                &format!("{objects}/{{object_type}}"),
                get(api::list).post(api::create),
            )
            .route(
                &format!("{objects}/{{object_type}}/search"),
                post(api::search),
            )
            .route(
                &format!("{objects}/{{object_type}}/merge"),
                post(api::merge),
            )
            .route(
                &format!("{objects}/{{object_type}}/gdpr-delete"),
                post(api::gdpr_delete),
            )
            .route(
                &format!("{objects}/{{object_type}}/batch/{{action}}"),
                post(batch::batch),
            )
            .route(
                &format!("{objects}/{{object_type}}/{{id}}"),
                get(api::get).patch(api::update).delete(api::archive),
            );
    }
    for associations in ["/crm/v4/associations", "/crm/associations/2026-03"] {
        let pair = format!("{associations}/{{from}}/{{to}}");
        hubspot = hubspot
            .route(
                &format!("{pair}/batch/read"),
                post(associations::batch_read),
            )
            .route(
                &format!("{pair}/batch/create"),
                post(associations::batch_create),
            )
            .route(
                &format!("{pair}/batch/associate/default"),
                post(associations::batch_default),
            )
            .route(
                &format!("{pair}/batch/archive"),
                post(associations::batch_archive),
            )
            .route(
                &format!("{pair}/labels"),
                get(associations::labels).post(associations::create_label),
            );
    }
    for currencies in ["/settings/v3/currencies", "/settings/currencies/2026-03"] {
        hubspot = hubspot
            .route(
                &format!("{currencies}/company-currency"),
                get(currencies::company).put(currencies::set_company),
            )
            .route(
                &format!("{currencies}/exchange-rates"),
                get(currencies::rates).post(currencies::add_rate),
            )
            .route(
                &format!("{currencies}/exchange-rates/current"),
                get(currencies::current),
            );
    }
    for events in ["/events/v3", "/events/2026-03"] {
        hubspot = hubspot
            .route(
                &format!("{events}/event-definitions"),
                get(events::list_definitions).post(events::create_definition),
            )
            .route(
                &format!("{events}/event-definitions/{{name}}"),
                get(events::get_definition),
            )
            .route(&format!("{events}/send"), post(events::send))
            .route(&format!("{events}/send/batch"), post(events::send_batch))
            .route(&format!("{events}/events"), get(events::occurrences))
            // The official Python client asks for it with a trailing slash.
            .route(&format!("{events}/events/"), get(events::occurrences));
    }
    let hubspot = hubspot
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ));
    // OAuth is answered before any bearer token exists: not behind the gate.
    let oauth = Router::new()
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/2026-03/token", post(oauth::token))
        .route("/oauth/v1/token", post(oauth::token))
        .route("/oauth/2026-03/token/introspect", post(oauth::introspect))
        .route("/oauth/2026-03/token/revoke", post(oauth::revoke))
        .route("/oauth/v1/access-tokens/{token}", get(oauth::token_info))
        .route("/_sim/oauth", get(oauth::admin_grants));
    Router::new()
        .merge(admin::routes())
        .merge(oauth)
        .merge(hubspot)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// A simulator running in the background of the current Tokio runtime.
#[derive(Debug)]
pub struct RunningSim {
    pub addr: SocketAddr,
    pub state: Shared,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`, what a client's base URL should be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds `config.listen` (port 0 picks a free port) and serves in a background task.
pub async fn spawn(config: SimConfig) -> std::io::Result<RunningSim> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let state = SimState::new(config, shutdown.clone());
    let app = router(state.clone());
    let stop = shutdown.clone();
    let task =
        tokio::spawn(async move { server::serve(listener, app, stop.cancelled_owned()).await });
    Ok(RunningSim {
        addr,
        state,
        shutdown,
        task: Some(task),
    })
}
