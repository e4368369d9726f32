//! `POST /api/sync/run[?portal=HUB_ID]` (admin): start a pull sync of one account now.
//!
//! May import: `http::{state, error, auth}`, `jobs::sync`, `mask`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::AdminAuth;
use super::error::ApiError;
use super::state::Shared;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// The portal (hub id) to sync; unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// `started`.
    pub status: &'static str,
}

/// Starts a pull sync in the background; 409 while one is running (here or in the other slot).
#[utoipa::path(post, path = "/api/sync/run", tag = "sync", params(SyncQuery), security(("admin" = [])), responses(
    (status = 202, description = "Started", body = Started),
    (status = 400, description = "An invalid portal", body = ApiError),
    (status = 401, description = "No or a wrong admin token", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 409, description = "A sync is already running", body = ApiError),
    (status = 503, description = "Disabled (admin API or HubSpot), or the database failed", body = ApiError)))]
pub async fn run(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<SyncQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let Query(SyncQuery { portal }) =
        q.map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))?;
    let (account, client) = match s.account(portal).await? {
        (account, Some(client)) => (account, client),
        (_, None) => return Err(ApiError::hubspot_disabled()),
    };
    let sync = s.sync.for_portal(account);
    let status = sync.status().await.map_err(|e| {
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
    tokio::spawn(async move {
        if let Err(e) = sync.run(&client).await {
            tracing::warn!(error = %crate::mask::text(&e.to_string()), "requested sync did not finish");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Started { status: "started" })))
}
