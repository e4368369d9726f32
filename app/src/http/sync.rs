//! `POST /api/sync/run` (admin): start a pull sync now.
//!
//! May import: `http::{state, error, auth}`, `jobs::sync`, `mask`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::AdminAuth;
use super::error::ApiError;
use super::state::Shared;

#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// `started`.
    pub status: &'static str,
}

/// Starts a pull sync in the background; 409 while one is running (here or in the other slot).
#[utoipa::path(post, path = "/api/sync/run", tag = "sync", security(("admin" = [])), responses(
    (status = 202, description = "Started", body = Started),
    (status = 401, description = "No or a wrong admin token", body = ApiError),
    (status = 409, description = "A sync is already running", body = ApiError),
    (status = 503, description = "Disabled (admin API or HubSpot), or the database failed", body = ApiError)))]
pub async fn run(
    _: AdminAuth,
    State(s): State<Shared>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let client = s.hubspot()?.clone();
    let status = s.sync.status().await.map_err(|e| {
        ApiError::internal(
            &e,
            "reading the sync status",
            "the sync status could not be read; try again",
        )
    })?;
    if status.status == crate::domain::sync::RunState::Syncing {
        return Err(ApiError::conflict(
            "a sync is already running; GET /api/stats shows its progress",
        ));
    }
    let sync = s.sync.clone();
    tokio::spawn(async move {
        if let Err(e) = sync.run(&client).await {
            tracing::warn!(error = %crate::mask::text(&e.to_string()), "requested sync did not finish");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Started { status: "started" })))
}
