//! The HTTP API: `fn router(state) -> Router`, separate from serving so tests can drive it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::Settings;
use crate::hubspot::{HubSpotClient, HubSpotError};

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    /// `None` when HubSpot is disabled.
    pub hubspot: Option<HubSpotClient>,
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/hubspot/test", get(hubspot_test))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn health(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"status": "ok", "version": s.settings.version, "slot": s.settings.slot}))
}

/// Ready once configuration is valid (it is, or the process would not have started). A HubSpot
/// outage makes the service degraded, never unready.
async fn ready(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"ready": true, "version": s.settings.version, "slot": s.settings.slot}))
}

async fn hubspot_test(State(s): State<Shared>) -> (StatusCode, Json<Value>) {
    let (version, slot) = (&s.settings.version, &s.settings.slot);
    let Some(client) = &s.hubspot else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "disabled",
                "message": "HubSpot integration is disabled (HUBSPOT_ENABLED=false)",
                "hubspot": {"reachable": null, "authenticated": null},
                "version": version, "slot": slot,
            })),
        );
    };
    let budget = client.budget().await;
    let rate_limit = json!({
        "max": budget.max,
        "window_ms": budget.window.as_millis(),
        "used_in_window": budget.used,
    });
    match client.account_details().await {
        Ok((details, latency)) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "hubspot": {
                    "reachable": true,
                    "authenticated": true,
                    "portal_id": details.portal_id,
                    "latency_ms": latency.as_millis(),
                },
                "rate_limit": rate_limit,
                "version": version, "slot": slot,
            })),
        ),
        Err(err) => {
            let (status, reachable, authenticated, message) = match &err {
                HubSpotError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, false, Value::Null, err.to_string()),
                HubSpotError::Unreachable(_) => (StatusCode::BAD_GATEWAY, false, Value::Null, err.to_string()),
                e if e.is_auth() => (
                    StatusCode::BAD_GATEWAY,
                    true,
                    Value::Bool(false),
                    "HubSpot rejected the access token; check HUBSPOT_ACCESS_TOKEN and the private app's scopes".to_string(),
                ),
                _ => (StatusCode::BAD_GATEWAY, true, Value::Null, err.to_string()),
            };
            tracing::warn!(error = %err, "HubSpot check failed");
            let correlation_id = match &err {
                HubSpotError::Api { body, .. } => body.correlation_id.clone(),
                _ => None,
            };
            (
                status,
                Json(json!({
                    "status": "error",
                    "message": message,
                    "hubspot": {"reachable": reachable, "authenticated": authenticated, "correlation_id": correlation_id},
                    "rate_limit": rate_limit,
                    "version": version, "slot": slot,
                })),
            )
        }
    }
}
