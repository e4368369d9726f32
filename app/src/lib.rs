//! The HubSpot contact-sync web service.
//!
//! # Layout
//! - [`config`]: settings from the environment, validated at start; secrets stay hidden.
//! - [`contacts`]: contact domain types, validated at the edge.
//! - [`hubspot`]: the only module that talks to HubSpot.
//! - [`healthcheck`]: `app healthcheck`, the container's health probe (no curl in `scratch`).
//! - [`mask`]: masks emails and phone numbers in anything that is logged.
//! - [`routes`]: the HTTP API (`router(state)`), separate from serving.
//! - [`Application`]: binds first (port 0 in tests), then serves until shut down.

pub mod config;
pub mod contacts;
pub mod healthcheck;
pub mod hubspot;
pub mod mask;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::hubspot::HubSpotClient;
use crate::routes::AppState;

pub struct Application {
    listener: TcpListener,
    state: routes::Shared,
}

impl Application {
    /// Validates what needs validating and binds the listener, so `port()` is known before
    /// serving (tests bind port 0).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let hubspot = match (&settings.hubspot.enabled, &settings.hubspot.token) {
            (true, Some(token)) => Some(HubSpotClient::new(&settings.hubspot, token.clone())?),
            _ => None,
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {} (set APP_LISTEN)", settings.listen))?;
        Ok(Self {
            listener,
            state: Arc::new(AppState { settings, hubspot }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, routes::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("Server failed")
    }
}
