use std::process::ExitCode;

use clap::Parser;
use hubspot_sim::config::{Cli, SimConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match SimConfig::try_from(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hubspot-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "hubspot-sim: cannot listen on {}: {e} (pick another address with --listen)",
                config.listen
            );
            return ExitCode::from(1);
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    tracing::info!(%addr, rate_limit = %config.rate_limit, search_rate_limit = %config.search_rate_limit,
        search_lag = ?config.search_lag, webhooks = config.webhooks.is_some(), "hubspot-sim listening");
    let shutdown = CancellationToken::new();
    let state = hubspot_sim::SimState::new(config, shutdown.clone());
    let app = hubspot_sim::router(state);
    hubspot_sim::server::serve(listener, app, async move {
        shutdown_signal().await;
        shutdown.cancel();
    })
    .await;
    tracing::info!("hubspot-sim stopped");
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
