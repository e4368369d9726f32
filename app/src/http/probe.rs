//! `/api/hubspot/test`: is HubSpot reachable with our token (GET), and one contact written
//! straight through (POST), the first thing a user tries through nginx.
//!
//! May import: `http::{state, error}`, `domain::contact`, `hubspot`.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{unreadable_body, ApiError};
use super::state::Shared;
use crate::domain::contact::{ContactInput, ContactRequest};

/// Largest body `POST /api/hubspot/test` accepts.
pub const MAX_CONTACT_BODY: usize = 16 * 1024;

#[derive(Debug, Serialize, ToSchema)]
pub struct HubSpotCheck {
    /// `ok`.
    pub status: &'static str,
    pub hubspot: HubSpotAccount,
    pub rate_limit: RateLimit,
    pub version: String,
    pub slot: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HubSpotAccount {
    pub reachable: bool,
    pub authenticated: bool,
    pub portal_id: u64,
    pub latency_ms: u64,
}

/// This process's view of the token's rate budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimit {
    pub max: u64,
    pub window_ms: u64,
    pub used_in_window: u64,
}

/// Checks HubSpot with the configured token (one account-details call).
#[utoipa::path(get, path = "/api/hubspot/test", tag = "hubspot", responses(
    (status = 200, description = "HubSpot answered and accepted the token", body = HubSpotCheck),
    (status = 502, description = "HubSpot unreachable or the token refused (`hubspot` says which)", body = ApiError),
    (status = 503, description = "HubSpot integration disabled, or calls to HubSpot paused after repeated failures (circuit breaker)", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn check(State(s): State<Shared>) -> Result<Json<HubSpotCheck>, ApiError> {
    let client = s.hubspot()?;
    let budget = client.budget();
    let (details, latency) = client.account_details().await?;
    Ok(Json(HubSpotCheck {
        status: "ok",
        hubspot: HubSpotAccount {
            reachable: true,
            authenticated: true,
            portal_id: details.portal_id,
            latency_ms: latency.as_millis() as u64,
        },
        rate_limit: RateLimit {
            max: budget.max as u64,
            window_ms: budget.window.as_millis() as u64,
            used_in_window: budget.used as u64,
        },
        version: s.settings.version.clone(),
        slot: s.settings.slot.clone(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Upserted {
    /// HubSpot's id of the contact (`null` in a dry run).
    pub id: Option<String>,
    pub created: bool,
    /// `true` when HUBSPOT_SEND_LIVE=false: validated, not sent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Upserts one contact by email, straight to HubSpot (not through the outbox).
#[utoipa::path(post, path = "/api/hubspot/test", tag = "hubspot",
    request_body(content = ContactRequest, content_type = "application/json"),
    responses(
    (status = 200, description = "Written (or validated, in a dry run)", body = Upserted),
    (status = 400, description = "Invalid contact, or HubSpot refused it", body = ApiError),
    (status = 413, description = "Body over 16 KiB", body = ApiError),
    (status = 502, description = "HubSpot failed", body = ApiError),
    (status = 503, description = "HubSpot integration disabled, or calls to HubSpot paused after repeated failures (circuit breaker)", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn upsert(
    State(s): State<Shared>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Upserted>, ApiError> {
    let body = body.map_err(|r| {
        unreadable_body(
            r,
            MAX_CONTACT_BODY,
            "send less (for many contacts, POST /api/contacts takes up to 1000 at once)",
        )
    })?;
    let request: ContactRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("body: {e}")))?;
    let contact =
        ContactInput::from_request(request, s.settings.phone_region).map_err(ApiError::invalid)?;
    let client = s.hubspot()?;
    if !s.settings.hubspot.send_live {
        tracing::info!("dry run: contact validated, not sent (HUBSPOT_SEND_LIVE=false)");
        return Ok(Json(Upserted {
            id: None,
            created: false,
            dry_run: true,
        }));
    }
    match client
        .upsert_contacts(std::slice::from_ref(&contact))
        .await?
        .pop()
    {
        Some(Ok(done)) => Ok(Json(Upserted {
            id: Some(done.id),
            created: done.created,
            dry_run: false,
        })),
        Some(Err(message)) => Err(ApiError::invalid(format!(
            "HubSpot refused the contact: {message}"
        ))),
        None => Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            super::error::ErrorCode::Upstream,
            "HubSpot returned no result",
        )),
    }
}
