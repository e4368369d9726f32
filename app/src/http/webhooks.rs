//! `POST /webhooks/hubspot`: HubSpot's signed event deliveries, verified, recorded durably and
//! answered at once (the processor applies them later).
//!
//! May import: `http::{state, error}`, `domain::event`, `hubspot::signature`, `store::inbox`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorCode};
use super::state::Shared;

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// `accepted`.
    pub status: &'static str,
    /// Events recorded now.
    pub accepted: usize,
    /// Events already recorded by an earlier delivery (HubSpot retries).
    pub duplicates: usize,
    /// Events of portals not connected here: recorded, never applied.
    pub refused: usize,
}

/// Verifies the signature (v3, or v1/v2 where configured) against the public URL HubSpot
/// called, records the events durably and answers; a 5xx makes HubSpot deliver again.
#[utoipa::path(post, path = "/webhooks/hubspot", tag = "webhooks",
    request_body(content = Vec<Object>, description = "HubSpot's event array", content_type = "application/json"),
    params(
        ("X-HubSpot-Signature-v3" = Option<String>, Header, description = "HMAC-SHA256 of method, URL, body and timestamp"),
        ("X-HubSpot-Request-Timestamp" = Option<String>, Header, description = "Epoch milliseconds; older than 5 minutes is refused")),
    responses(
    (status = 200, description = "Recorded", body = Accepted),
    (status = 400, description = "Not HubSpot's event array", body = ApiError),
    (status = 401, description = "Missing, stale or wrong signature", body = ApiError),
    (status = 413, description = "Body over the limit", body = ApiError),
    (status = 503, description = "Webhooks off, or not recorded (HubSpot will retry)", body = ApiError)))]
pub async fn receive(
    State(s): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = &s.inbox.stats;
    let reject = |status: StatusCode, message: String| {
        stats.rejected.fetch_add(1, Relaxed);
        tracing::warn!(%status, %message, "webhook rejected");
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Disabled,
            StatusCode::BAD_REQUEST => ErrorCode::Invalid,
            _ => ErrorCode::Rejected,
        };
        ApiError::new(status, code, message)
    };
    let Some(secret) = &s.settings.webhook_secret else {
        return Err(reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are off: set HUBSPOT_CLIENT_SECRET to the HubSpot app's client secret".into(),
        ));
    };
    let body = body.map_err(|_| {
        reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body: larger than {} KiB",
                crate::domain::event::MAX_BODY / 1024
            ),
        )
    })?;
    let public = crate::hubspot::signature::public_uri(&headers, &uri);
    crate::hubspot::signature::verify(
        secret.expose(),
        &s.settings.webhook_versions,
        &method,
        &public,
        &headers,
        &body,
        s.db.now_ms(),
    )
    .map_err(|e| reject(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let events = crate::domain::event::parse(&body)
        .map_err(|message| reject(StatusCode::BAD_REQUEST, message))?;
    // Events of a portal not connected here are recorded and refused. When that cannot be
    // told now, nothing is refused: an event applied twice is harmless, one lost is not.
    let mut unknown = std::collections::BTreeSet::new();
    for portal in events
        .iter()
        .filter_map(|(e, _)| e.portal_id)
        .collect::<std::collections::BTreeSet<_>>()
    {
        if let Ok(false) = s
            .portals
            .is_known(crate::domain::portal::PortalId(portal))
            .await
        {
            unknown.insert(portal);
        }
    }
    let refuse = |e: &crate::domain::event::Event| {
        e.portal_id
            .filter(|p| unknown.contains(p))
            .map(|p| format!("portal {p} is not connected here"))
    };
    let refused = events.iter().filter(|(e, _)| refuse(e).is_some()).count();
    if refused > 0 {
        tracing::warn!(refused, portals = ?unknown, "webhook events of portals not connected here were recorded and refused");
    }
    let (new, duplicates) = s.inbox.record(&events, refuse).await.map_err(|e| {
        // Not recorded: a 5xx makes HubSpot deliver again.
        ApiError::internal(
            &e,
            "recording webhook events",
            "could not record the events; HubSpot will retry",
        )
    })?;
    stats.accepted.fetch_add(new as u64, Relaxed);
    stats.duplicates.fetch_add(duplicates as u64, Relaxed);
    Ok(Json(Accepted {
        status: "accepted",
        accepted: new,
        duplicates,
        refused,
    }))
}
