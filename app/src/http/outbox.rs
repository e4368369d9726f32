//! `/api/outbox…` (admin): the queue of contact writes as operators see it, and replay of a
//! dead write.
//!
//! May import: `http::{state, error, auth}`, `store::outbox`, `domain::outbox`, `mask`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Signed, Staff};
use super::error::ApiError;
use super::state::Shared;
use crate::domain::outbox::ItemState;
use crate::store::outbox::{Depth, Item};
use crate::store::StoreError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// Which items (default `dead`).
    #[serde(default = "dead")]
    #[param(inline)]
    state: ItemState,
}

fn dead() -> ItemState {
    ItemState::Dead
}

/// An outbox item as operators see it (the email masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxItem {
    pub id: i64,
    /// Masked (`a***@example.com`).
    pub email: String,
    pub state: ItemState,
    pub attempts: i64,
    /// Epoch milliseconds.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub hubspot_id: Option<String>,
    /// For a replayed item: the item that carries its replay.
    pub replayed_as: Option<i64>,
}

impl From<&Item> for OutboxItem {
    fn from(item: &Item) -> Self {
        Self {
            id: item.id,
            email: crate::mask::email(&item.email),
            state: item.state,
            attempts: item.attempts,
            next_attempt_at: item.next_attempt_at,
            last_error: item.last_error.clone(),
            hubspot_id: item.hubspot_id.clone(),
            replayed_as: item.replayed_as,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxListing {
    pub depth: Depth,
    /// The newest 200 items in that state.
    pub items: Vec<OutboxItem>,
}

/// The queue's depth and its newest items in one state.
#[utoipa::path(get, path = "/api/outbox", tag = "outbox", params(OutboxQuery),
    security(("admin" = [])), responses(
    (status = 200, description = "Depth and items", body = OutboxListing),
    (status = 400, description = "An unknown state", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "Admin API off, or the database failed", body = ApiError)))]
pub async fn list(
    _: Signed<Staff>,
    State(s): State<Shared>,
    q: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Json<OutboxListing>, ApiError> {
    let Query(q) =
        q.map_err(|_| ApiError::invalid("state: one of dead, pending, sent, replayed"))?;
    let unavailable = |e: StoreError| {
        ApiError::internal(
            &e,
            "reading the outbox",
            "the outbox could not be read; try again",
        )
    };
    let items = s.outbox.list(q.state, 200).await.map_err(unavailable)?;
    let depth = s.outbox.depth().await.map_err(unavailable)?;
    Ok(Json(OutboxListing {
        depth,
        items: items.iter().map(OutboxItem::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replay {
    /// `queued`, or `superseded` when later writes had set every property (nothing is sent).
    pub status: &'static str,
    /// The dead item.
    pub id: i64,
    #[serde(flatten)]
    pub replayed: crate::store::outbox::Replayed,
}

/// Queues a dead item's write again as the newest write to its contact, less what later writes
/// set: a replay never overwrites a newer value.
#[utoipa::path(post, path = "/api/outbox/{id}/retry", tag = "outbox",
    params(("id" = i64, Path, description = "A dead item's id")),
    security(("admin" = [])), responses(
    (status = 200, description = "Queued again, or superseded", body = Replay),
    (status = 400, description = "The id is not a number", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 409, description = "No such item, or it is not dead", body = ApiError),
    (status = 503, description = "Admin API off, or the database failed", body = ApiError)))]
pub async fn retry(
    _: Signed<Staff>,
    State(s): State<Shared>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Replay>, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::invalid("id: an outbox item's id (a number)"))?;
    let replayed = s.outbox.replay(id).await.map_err(|e| {
        ApiError::internal(
            &e,
            "outbox replay",
            "the item could not be replayed; nothing changed, try again",
        )
    })?;
    let replayed = replayed.ok_or_else(|| {
        ApiError::conflict(format!(
            "outbox item {id} does not exist or is not dead; only dead items can be retried"
        ))
    })?;
    Ok(Json(Replay {
        status: if replayed.queued_as.is_some() {
            "queued"
        } else {
            "superseded"
        },
        id,
        replayed,
    }))
}
