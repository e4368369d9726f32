//! `ApiError`: the one error every route answers with, in one JSON shape
//! (`{"status", "code", "message", "fields"?, "hubspot"?}`), and the mapping of inner errors to
//! honest status codes. Internal failures are logged here, once, with their whole chain; the
//! caller is told what happened and what to do, never a secret.
//!
//! May import: `hubspot` (its error), `mask`. Nothing else of the app.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::hubspot::HubSpotError;

/// What went wrong, for a program: stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid (`fields` says which).
    Invalid,
    /// The body is over the route's limit.
    TooLarge,
    /// No or an unknown token.
    Unauthorized,
    /// The caller's role may not use the route (the message names the roles that may).
    Forbidden,
    /// The caller's own rate limit is used up; `Retry-After` says when to try again.
    RateLimited,
    /// A webhook whose signature, timestamp or shape is refused.
    Rejected,
    /// Nothing has that key.
    NotFound,
    /// The request conflicts with the current state (a sync running, an item not dead).
    Conflict,
    /// A feature is off by configuration.
    Disabled,
    /// HubSpot failed or refused; `hubspot` says how.
    Upstream,
    /// HubSpot did not answer in time.
    UpstreamTimeout,
    /// This service could not do it now (its database); nothing was changed, try again.
    Unavailable,
}

/// How HubSpot looked from here when a call to it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HubSpotReach {
    /// Whether HubSpot answered at all.
    pub reachable: bool,
    /// Whether it accepted the token (`null` when that is not known).
    pub authenticated: Option<bool>,
    /// HubSpot's correlation id of the failed call, for its support.
    pub correlation_id: Option<String>,
}

/// Every error answer of the API.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ApiError {
    /// The HTTP status, repeated for clients that only keep the body.
    pub status: u16,
    pub code: ErrorCode,
    /// What was wrong and how to fix it.
    pub message: String,
    /// Input errors: the field (as `contacts[3].phone`) and what is wrong with it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hubspot: Option<HubSpotReach>,
    /// Seconds until a retry can succeed (sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            hubspot: None,
            retry_after: None,
        }
    }

    /// 429: the caller's own limit; `Retry-After` in whole seconds (at least 1).
    pub fn rate_limited(wait: std::time::Duration, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                message,
            )
        }
    }

    /// 400 for a field: `message` is "field: what is wrong" (the domain's validation messages
    /// have that form); the field is also listed in `fields`.
    pub fn invalid(message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(StatusCode::BAD_REQUEST, ErrorCode::Invalid, message.clone());
        if let Some((field, what)) = message.split_once(": ") {
            if !field.is_empty() && !field.contains(' ') {
                e.fields.insert(field.to_string(), what.to_string());
            }
        }
        e
    }

    /// 400 for the item at `index` of a list, its field prefixed with `list[index]`.
    pub fn invalid_at(list: &str, index: usize, message: &str) -> Self {
        let field = match message.split_once(": ") {
            Some((field, _)) if !field.contains(' ') => format!("{list}[{index}].{field}"),
            _ => format!("{list}[{index}]"),
        };
        let what = message.split_once(": ").map_or(message, |(_, w)| w);
        Self::invalid(format!("{field}: {what}"))
    }

    pub fn too_large(limit: usize, hint: &str) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            format!("body: larger than {} KiB; {hint}", limit / 1024),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }

    pub fn disabled(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Disabled,
            message,
        )
    }

    /// 404 for a request naming a portal this app has no connection for.
    pub fn portal_not_connected(portal: crate::domain::portal::PortalId) -> Self {
        Self::not_found(format!(
            "portal {portal} is not connected here; connect it at /api/integrations/hubspot/install"
        ))
    }

    pub fn hubspot_disabled() -> Self {
        Self::disabled("HubSpot integration is disabled (HUBSPOT_ENABLED=false)")
    }

    /// The database (or another inner part) failed: logged once with its whole chain; the
    /// caller hears `message` (what did and did not happen, and what to do).
    pub fn internal(error: &dyn std::fmt::Display, doing: &str, message: &str) -> Self {
        tracing::error!(error = %crate::mask::text(&format!("{error:#}")), "{doing} failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            message,
        )
    }

    /// The status as axum's type.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// A failed HubSpot call: 504 for a timeout, 502 otherwise, with HubSpot's correlation id when
/// there is one. Never echoes the token.
impl From<&HubSpotError> for ApiError {
    fn from(err: &HubSpotError) -> Self {
        tracing::warn!(error = %crate::mask::text(&err.to_string()), "HubSpot call failed");
        let (status, code, reachable, authenticated, message) = match err {
            HubSpotError::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::UpstreamTimeout,
                false,
                None,
                err.to_string(),
            ),
            HubSpotError::CircuitOpen(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Upstream,
                false,
                None,
                format!("{err}; try again then"),
            ),
            HubSpotError::NotConnected(_) => (
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                true,
                Some(false),
                format!("{err}; connect it at /api/integrations/hubspot/install"),
            ),
            HubSpotError::Unreachable(_) => (
                StatusCode::BAD_GATEWAY,
                ErrorCode::Upstream,
                false,
                None,
                err.to_string(),
            ),
            e if e.is_auth() => (
                StatusCode::BAD_GATEWAY,
                ErrorCode::Upstream,
                true,
                Some(false),
                "HubSpot rejected the access token; check HUBSPOT_ACCESS_TOKEN and the private app's scopes".to_string(),
            ),
            _ => (
                StatusCode::BAD_GATEWAY,
                ErrorCode::Upstream,
                true,
                None,
                err.to_string(),
            ),
        };
        let correlation_id = match err {
            HubSpotError::Api { body, .. } => body.correlation_id.clone(),
            _ => None,
        };
        Self {
            hubspot: Some(HubSpotReach {
                reachable,
                authenticated,
                correlation_id,
            }),
            ..Self::new(status, code, message)
        }
    }
}

impl From<HubSpotError> for ApiError {
    fn from(err: HubSpotError) -> Self {
        Self::from(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status_code(), Json(self)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// A body axum could not read: 413 when over `limit`, 400 otherwise.
pub fn unreadable_body(
    rejection: axum::extract::rejection::BytesRejection,
    limit: usize,
    hint: &str,
) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit, hint)
    } else {
        ApiError::invalid(format!("body: {}", rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_message_names_its_field() {
        let e = ApiError::invalid("email: not a valid email address");
        assert_eq!(e.fields["email"], "not a valid email address");
        let e = ApiError::invalid_at("contacts", 3, "phone: not a valid phone number");
        assert_eq!(e.message, "contacts[3].phone: not a valid phone number");
        assert_eq!(e.fields["contacts[3].phone"], "not a valid phone number");
        // A sentence is not a field.
        assert!(ApiError::invalid("HubSpot refused the contact: x")
            .fields
            .is_empty());
    }

    #[test]
    fn one_shape_for_every_error() {
        let v = serde_json::to_value(ApiError::conflict("a sync is already running")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": 409, "code": "conflict", "message": "a sync is already running"})
        );
    }
}
