//! Admin access: the bearer token (`Authorization: Bearer $ADMIN_TOKEN`) or the dashboard's
//! session cookie, compared in constant time, in one place.
//!
//! May import: `http::{state, error}`, `config`'s secret. Nothing else of the app.

use axum::http::{header, HeaderMap, StatusCode};

use super::error::{ApiError, ErrorCode};
use super::state::{AppState, Shared};

pub use crate::secret::same as same_secret;

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether the request carries the admin token; the 503 when the admin API is off.
pub fn check_admin(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &s.settings.admin_token else {
        return Err(ApiError::disabled(
            "admin API is off: set ADMIN_TOKEN to enable it",
        ));
    };
    match bearer(headers) {
        Some(given) if same_secret(given, expected.expose()) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <ADMIN_TOKEN>",
        )),
    }
}

/// Extracting it admits only requests carrying the admin token.
pub struct AdminAuth;

impl axum::extract::FromRequestParts<Shared> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared,
    ) -> Result<Self, ApiError> {
        check_admin(state, &parts.headers).map(|()| AdminAuth)
    }
}
