//! `/api/flags` (staff read, admins set): the runtime feature flags, seen by every process
//! within `FLAGS_REFRESH`. Every change is audited.
//!
//! May import: `http::{state, error, auth}`, `access`, `domain::access`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{Admins, Signed, Staff};
use super::error::ApiError;
use super::state::{AppState, Shared};
use crate::access::audit::{About, Kind};
use crate::access::flags::FlagState;
use crate::access::{Caller, Origin};
use crate::domain::access::Flag;

fn unavailable(e: &crate::store::StoreError) -> ApiError {
    ApiError::internal(
        e,
        "feature flags",
        "could not read or write the flags; nothing changed, try again",
    )
}

/// The five flags, with who set them.
#[utoipa::path(get, path = "/api/flags", tag = "access", security(("admin" = [])), responses(
    (status = 200, description = "Every flag", body = Vec<FlagState>),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "The database failed", body = ApiError)))]
pub async fn list(
    _: Signed<Staff>,
    State(s): State<Shared>,
) -> Result<Json<Vec<FlagState>>, ApiError> {
    Ok(Json(s.flags.refresh().await.map_err(|e| unavailable(&e))?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagBody {
    pub enabled: bool,
}

/// Sets a flag for every process (audited).
pub async fn set(
    s: &AppState,
    caller: &Caller,
    origin: &Origin,
    flag: Flag,
    enabled: bool,
) -> Result<Vec<FlagState>, ApiError> {
    let flags = s
        .flags
        .set(flag, enabled, &caller.name)
        .await
        .map_err(|e| unavailable(&e))?;
    s.auditor
        .record(
            caller,
            origin,
            Kind::Always,
            "flag change",
            About::thing(format!("flag {}", flag.name())),
            if enabled { "on" } else { "off" },
        )
        .await;
    Ok(flags)
}

/// Turns a flag on or off, for every process within `FLAGS_REFRESH` (this one at once).
#[utoipa::path(put, path = "/api/flags/{name}", tag = "access", security(("admin" = [])),
    params(("name" = String, Path, description = "The flag, e.g. HUBSPOT_CACHE_ENABLED")),
    request_body = FlagBody, responses(
    (status = 200, description = "Every flag, after the change", body = Vec<FlagState>),
    (status = 400, description = "Not a flag (the valid ones listed), or a malformed body", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "The database failed; nothing changed", body = ApiError)))]
pub async fn put(
    who: Signed<Admins>,
    State(s): State<Shared>,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<FlagBody>, JsonRejection>,
) -> Result<Json<Vec<FlagState>>, ApiError> {
    let Path(name) = name.map_err(|_| ApiError::invalid("name: a flag name"))?;
    let flag = name
        .parse::<Flag>()
        .map_err(|m| ApiError::invalid(format!("name: {m}")))?;
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "body: {}; send {{\"enabled\": true|false}}",
            e.body_text()
        ))
    })?;
    Ok(Json(
        set(&s, &who.caller, &who.origin, flag, body.enabled).await?,
    ))
}
