//! The HTTP API: `fn router(state) -> Router`, separate from serving so tests can drive it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::Settings;
use crate::contacts::{ContactInput, ContactRequest};
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
        .route(
            "/api/hubspot/test",
            get(hubspot_test)
                .post(hubspot_test_upsert)
                .layer(DefaultBodyLimit::max(MAX_CONTACT_BODY)),
        )
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
            let (status, mut body) = failure(&err);
            body["rate_limit"] = rate_limit;
            body["version"] = json!(version);
            body["slot"] = json!(slot);
            (status, Json(body))
        }
    }
}

/// How a failed HubSpot call is reported: 504 for a timeout, 502 otherwise, with a message that
/// says what to do and HubSpot's correlation id when there is one. Never echoes the token.
fn failure(err: &HubSpotError) -> (StatusCode, Value) {
    let (status, reachable, authenticated, message) = match err {
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
    tracing::warn!(error = %crate::mask::text(&err.to_string()), "HubSpot call failed");
    let correlation_id = match err {
        HubSpotError::Api { body, .. } => body.correlation_id.clone(),
        _ => None,
    };
    (
        status,
        json!({
            "status": "error",
            "message": message,
            "hubspot": {"reachable": reachable, "authenticated": authenticated, "correlation_id": correlation_id},
        }),
    )
}

/// Largest body `POST /api/hubspot/test` accepts.
pub const MAX_CONTACT_BODY: usize = 16 * 1024;

fn bad_input(message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "invalid", "message": message.into()})),
    )
}

/// `POST /api/hubspot/test`: upserts one contact by email and answers `{id, created}`.
async fn hubspot_test_upsert(
    State(s): State<Shared>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> (StatusCode, Json<Value>) {
    let Ok(body) = body else {
        return bad_input(format!("body: larger than {} KiB", MAX_CONTACT_BODY / 1024));
    };
    let request: ContactRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_input(format!("body: {e}")),
    };
    let contact = match ContactInput::try_from(request) {
        Ok(c) => c,
        Err(message) => return bad_input(message),
    };
    let Some(client) = &s.hubspot else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "disabled", "message": "HubSpot integration is disabled (HUBSPOT_ENABLED=false)"}),
            ),
        );
    };
    if !s.settings.hubspot.send_live {
        tracing::info!("dry run: contact validated, not sent (HUBSPOT_SEND_LIVE=false)");
        return (
            StatusCode::OK,
            Json(json!({"id": null, "created": false, "dry_run": true})),
        );
    }
    match client.upsert_contacts(std::slice::from_ref(&contact)).await {
        Ok(mut results) => match results.pop() {
            Some(Ok(done)) => (
                StatusCode::OK,
                Json(json!({"id": done.id, "created": done.created})),
            ),
            Some(Err(message)) => bad_input(format!("HubSpot refused the contact: {message}")),
            None => (
                StatusCode::BAD_GATEWAY,
                Json(json!({"status": "error", "message": "HubSpot returned no result"})),
            ),
        },
        Err(err) => {
            let (status, body) = failure(&err);
            (status, Json(body))
        }
    }
}
