//! `POST /api/events` (one lifecycle event, or up to 500 under `events`) and
//! `GET /api/events/{event_id}[?portal=]`: admin routes over [`crate::events`].

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Signed, Staff};
use super::error::{unreadable_body, ApiError};
use super::state::Shared;
use crate::events::{EventView, TrackError};

/// 500 events of a few hundred bytes each, with room (nginx in front takes up to 1100 KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// What a `POST /api/events` stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tracked {
    /// Events stored now.
    pub accepted: usize,
    /// Events stored before (same portal and `event_id`): nothing changed.
    pub duplicates: usize,
    /// Each event's outcome, in order: `accepted` or `duplicate`.
    pub results: Vec<TrackedEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedEvent {
    pub event_id: String,
    pub status: &'static str,
}

/// A lifecycle event as the product sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // documents the body; the handler reads it as JSON and validates it
pub struct EventRequest {
    /// Unique per portal: a repeat is a duplicate and changes nothing.
    event_id: String,
    /// user_signup (or driver_signed_up), otp_verified, wallet_pass_installed, nova_earned,
    /// nova_redeemed, first_redemption_completed, redemption, exclusive_completed,
    /// merchant_exclusive_enabled.
    #[serde(rename = "type")]
    event_type: String,
    /// RFC 3339, or epoch milliseconds.
    #[schema(value_type = String)]
    occurred_at: Value,
    /// The portal (hub id); unset: the single private-app account.
    portal: Option<u64>,
    /// `{external_id?, email?, phone?}`: at least the product's user id or an email.
    #[schema(value_type = Object)]
    subject: Value,
    /// The type's fields (`nova_earned`: `{amount}`, a positive integer; …).
    #[schema(value_type = Object)]
    data: Option<Value>,
}

fn tracked(err: TrackError) -> ApiError {
    match err {
        TrackError::Invalid(i) => ApiError::invalid(format!("{}: {}", i.field, i.message)),
        TrackError::UnknownPortal(p) => {
            ApiError::portal_not_connected(crate::domain::portal::PortalId(p))
        }
        TrackError::BatchSize(_) => ApiError::invalid(format!("events: {err}")),
        TrackError::Store(e) => ApiError::internal(
            &e,
            "storing events",
            "the events could not be stored; send them again (a repeat is harmless)",
        ),
    }
}

/// Stores lifecycle events durably and answers 202; the outbox worker brings their
/// property changes to HubSpot. Validation is all-or-nothing: the first bad field is named
/// and nothing is stored.
#[utoipa::path(post, path = "/api/events", tag = "events", request_body = EventRequest,
    security(("admin" = [])), responses(
    (status = 202, description = "Stored (or already stored)", body = Tracked),
    (status = 400, description = "A bad event, named by its field (`events[3].data.amount`)", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "A portal not connected here", body = ApiError),
    (status = 413, description = "Body over 1 MiB", body = ApiError),
    (status = 503, description = "The database failed: send again", body = ApiError)))]
pub async fn track(
    _: Signed<Staff>,
    State(s): State<Shared>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Tracked>), ApiError> {
    let body =
        body.map_err(|r| unreadable_body(r, MAX_BODY, "send at most 500 events per request"))?;
    let parsed: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("body: {e}")))?;
    let raws = match parsed {
        Value::Object(mut m) if m.len() == 1 && m.contains_key("events") => {
            match m.remove("events") {
                Some(Value::Array(list)) => list,
                _ => return Err(ApiError::invalid("events: a list of events")),
            }
        }
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(ApiError::invalid(
                "body: one event object, or {\"events\": [...]}",
            ))
        }
    };
    let done = s.events.track_batch(&raws).await.map_err(tracked)?;
    let duplicates = done.iter().filter(|a| a.duplicate).count();
    Ok((
        StatusCode::ACCEPTED,
        Json(Tracked {
            accepted: done.len() - duplicates,
            duplicates,
            results: done
                .into_iter()
                .map(|a| TrackedEvent {
                    status: if a.duplicate { "duplicate" } else { "accepted" },
                    event_id: a.event_id,
                })
                .collect(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// The portal (hub id) the event was sent for; unset: the single private-app account.
    portal: Option<u64>,
}

/// One event: its data, the contact properties it changed, and their delivery to HubSpot.
#[utoipa::path(get, path = "/api/events/{event_id}", tag = "events", params(("event_id" = String, Path), EventQuery),
    security(("admin" = [])), responses(
    (status = 200, description = "The event", body = EventView),
    (status = 400, description = "An invalid portal", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "No such event (or portal) here", body = ApiError),
    (status = 503, description = "The database failed", body = ApiError)))]
pub async fn show(
    _: Signed<Staff>,
    State(s): State<Shared>,
    Path(event_id): Path<String>,
    q: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<EventView>, ApiError> {
    let Query(EventQuery { portal }) =
        q.map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))?;
    match s.events.show(portal, &event_id).await.map_err(tracked)? {
        Some(view) => Ok(Json(view)),
        None => Err(ApiError::not_found(format!(
            "no event '{event_id}' is stored here{}; POST /api/events to send it",
            portal
                .map(|p| format!(" for portal {p}"))
                .unwrap_or_default()
        ))),
    }
}
