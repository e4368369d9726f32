//! `POST /api/sync/run[?portal=HUB_ID][&object_type=deals]` (admin): start a pull sync of one
//! account now, of one object type or of every synced one.
//!
//! May import: `http::{state, error, auth}`, `jobs::sync`, `domain::object`, `mask`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admins, Signed, Staff};
use super::error::ApiError;
use super::state::Shared;
use crate::domain::object::ObjectType;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// The portal (hub id) to sync; unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
    /// One object type (`deals`); unset: every type of `SYNC_OBJECTS`, in turn.
    object_type: Option<String>,
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
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 409, description = "A sync is already running", body = ApiError),
    (status = 503, description = "Disabled (admin API or HubSpot), or the database failed", body = ApiError)))]
pub async fn run(
    _: Signed<Staff>,
    State(s): State<Shared>,
    q: Result<Query<SyncQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let Query(SyncQuery {
        portal,
        object_type,
    }) = q.map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))?;
    let chosen = object_type
        .as_deref()
        .map(|raw| {
            raw.parse::<ObjectType>()
                .map_err(|e| ApiError::invalid(format!("object_type: {e}")))
        })
        .transpose()?;
    let (account, client) = match s.account(portal).await? {
        (account, Some(client)) => (account, client),
        (_, None) => return Err(ApiError::hubspot_disabled()),
    };
    let sync = s.sync.for_portal(account);
    let types = match chosen {
        Some(t) => vec![t],
        None => portal_types(&sync).await?,
    };
    for &t in &types {
        let status = sync.for_type(t).status().await.map_err(|e| {
            ApiError::internal(
                &e,
                "reading the sync status",
                "the sync status could not be read; try again",
            )
        })?;
        if status.status == crate::domain::sync::RunState::Syncing {
            return Err(ApiError::conflict(format!(
                "a sync of {t} is already running; GET /api/stats shows its progress"
            )));
        }
    }
    tokio::spawn(async move {
        for t in types {
            if let Err(e) = sync.for_type(t).run(&client).await {
                tracing::warn!(object_type = t.as_str(), error = %crate::mask::text(&e.to_string()), "requested sync did not finish");
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Started { status: "started" })))
}

/// The types a portal syncs (its own choice, else `SYNC_OBJECTS`).
async fn portal_types(sync: &crate::jobs::sync::Sync) -> Result<Vec<ObjectType>, ApiError> {
    Ok(sync
        .with_portal_types()
        .await
        .map_err(|e| {
            ApiError::internal(
                &e,
                "reading sync types",
                "could not read the types; try again",
            )
        })?
        .types()
        .to_vec())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PortalQuery {
    /// The portal (hub id); unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncObjects {
    /// The object types the portal syncs, in order; `null` (in a `PUT`): back to the default
    /// (`SYNC_OBJECTS`).
    pub objects: Option<Vec<String>>,
}

/// The object types a portal syncs (its own choice, else `SYNC_OBJECTS`).
#[utoipa::path(get, path = "/api/sync/objects", tag = "sync", params(PortalQuery), security(("admin" = [])), responses(
    (status = 200, description = "The types", body = SyncObjects),
    (status = 400, description = "An invalid portal", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 503, description = "Disabled, or the database failed", body = ApiError)))]
pub async fn objects(
    _: Signed<Staff>,
    State(s): State<Shared>,
    q: Result<Query<PortalQuery>, QueryRejection>,
) -> Result<Json<SyncObjects>, ApiError> {
    let Query(PortalQuery { portal }) =
        q.map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))?;
    let (account, _) = s.account(portal).await?;
    Ok(Json(SyncObjects::of(
        &portal_types(&s.sync.for_portal(account)).await?,
    )))
}

impl SyncObjects {
    fn of(types: &[ObjectType]) -> Self {
        Self {
            objects: Some(types.iter().map(|t| t.as_str().to_string()).collect()),
        }
    }
}

/// Chooses the object types a portal syncs (the schedule and `POST /api/sync/run` follow it).
#[utoipa::path(put, path = "/api/sync/objects", tag = "sync", params(PortalQuery), request_body = SyncObjects,
    security(("admin" = [])), responses(
    (status = 200, description = "Set", body = SyncObjects),
    (status = 400, description = "An unknown type (the valid ones listed), an empty list, or an invalid portal", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 503, description = "Disabled, or the database failed", body = ApiError)))]
pub async fn set_objects(
    _: Signed<Admins>,
    State(s): State<Shared>,
    q: Result<Query<PortalQuery>, QueryRejection>,
    body: Result<Json<SyncObjects>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SyncObjects>, ApiError> {
    let Query(PortalQuery { portal }) =
        q.map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))?;
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "objects: {}; send {{\"objects\": [\"contacts\", \"deals\"]}}",
            e.body_text()
        ))
    })?;
    let types = match &body.objects {
        None => None,
        Some(names) => {
            let types = crate::domain::object::parse_list(&names.join(","))
                .map_err(|e| ApiError::invalid(format!("objects: {e}")))?;
            if types.is_empty() {
                return Err(ApiError::invalid(
                    "objects: empty; name at least one type, or send null for the default",
                ));
            }
            Some(types)
        }
    };
    let (account, _) = s.account(portal).await?;
    let sync = s.sync.for_portal(account);
    sync.set_portal_types(types.as_deref()).await.map_err(|e| {
        ApiError::internal(
            &e,
            "setting sync types",
            "could not store the types; try again",
        )
    })?;
    Ok(Json(SyncObjects::of(&portal_types(&sync).await?)))
}
