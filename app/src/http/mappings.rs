//! `/api/mappings/{type}` (admin): a portal's property mappings of one object type — read, and
//! set after checking them against the portal's property definitions (HubSpot's properties API).
//!
//! May import: `http::{state, error, auth}`, `domain::{mapping, object}`, `jobs::sync`, `hubspot`.

use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Admins, Signed, Staff};
use super::error::ApiError;
use super::state::Shared;
use crate::domain::mapping::{Mapping, MappingSet};
use crate::domain::object::ObjectType;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MappingsBody {
    /// The fields of the type: each `{field, hubspot, owner}` (owner `hubspot` or `app`) or
    /// `{field, calculated}` (an expression over numeric fields, e.g. `amount * months`).
    pub mappings: Vec<Mapping>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappingsAnswer {
    pub object_type: String,
    pub mappings: Vec<Mapping>,
    /// After a change: whether the next sync lists every record again to compute the new
    /// fields (false while a sync of the type is running: run one after it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relisting: Option<bool>,
}

fn object_type(path: Result<Path<String>, PathRejection>) -> Result<ObjectType, ApiError> {
    let Path(raw) = path.map_err(|_| ApiError::invalid("type: missing"))?;
    super::objects::object_type(&raw)
}

fn portal_param(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Option<u64>, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::invalid("query: not a valid query string"))?;
    super::objects::hub_id(q.get("portal").map(String::as_str))
}

fn store_failed(e: &crate::store::StoreError) -> ApiError {
    ApiError::internal(
        e,
        "reading or writing mappings",
        "the mappings could not be read or stored; try again",
    )
}

/// The mappings in force for a portal's type (its own, else `MAPPINGS_FILE`'s).
#[utoipa::path(get, path = "/api/mappings/{type}", tag = "objects", params(
        ("type" = String, Path, description = "contacts, companies, deals, line_items, notes, calls, emails, meetings or tasks"),
        ("portal" = Option<u64>, Query, description = "The portal (hub id); unset: the single account of `HUBSPOT_ACCESS_TOKEN`")),
    security(("admin" = [])), responses(
    (status = 200, description = "The mappings", body = MappingsAnswer),
    (status = 400, description = "An unknown type or a bad portal", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 503, description = "Disabled, or the database failed", body = ApiError)))]
pub async fn get(
    _: Signed<Staff>,
    State(s): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<MappingsAnswer>, ApiError> {
    let t = object_type(path)?;
    let (account, _) = s.account(portal_param(query)?).await?;
    let set = s
        .sync
        .for_portal(account)
        .for_type(t)
        .mapping()
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(Json(MappingsAnswer {
        object_type: t.as_str().into(),
        mappings: set.mappings,
        relisting: None,
    }))
}

/// Sets a portal's mappings of a type, after checking each against the portal's property
/// definitions: an unknown or misspelled property, a calculation over a non-number, an
/// app-owned property HubSpot maintains are refused, each named in `fields`.
#[utoipa::path(put, path = "/api/mappings/{type}", tag = "objects", params(
        ("type" = String, Path, description = "contacts, companies, deals, line_items, notes, calls, emails, meetings or tasks"),
        ("portal" = Option<u64>, Query, description = "The portal (hub id); unset: the single account of `HUBSPOT_ACCESS_TOKEN`")),
    request_body = MappingsBody,
    security(("admin" = [])), responses(
    (status = 200, description = "Set; the next sync computes the fields", body = MappingsAnswer),
    (status = 400, description = "Mappings HubSpot's definitions refuse, each named", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 502, description = "HubSpot failed", body = ApiError),
    (status = 503, description = "Disabled (admin API or HubSpot), or the database failed", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn put(
    _: Signed<Admins>,
    State(s): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Result<Json<MappingsBody>, JsonRejection>,
) -> Result<Json<MappingsAnswer>, ApiError> {
    let t = object_type(path)?;
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "mappings: {}; send {{\"mappings\": [{{\"field\", \"hubspot\" | \"calculated\", \"owner\"?}}]}}",
            e.body_text()
        ))
    })?;
    let (account, client) = match s.account(portal_param(query)?).await? {
        (account, Some(client)) => (account, client),
        (_, None) => return Err(ApiError::hubspot_disabled()),
    };
    let definitions = client.property_definitions(t).await?;
    let set = MappingSet::new(t, body.mappings);
    if let Err(problems) = set.check(&definitions) {
        let mut e = ApiError::invalid(format!(
            "mappings: {} refused by this portal's property definitions: {}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("{}: {}", p.at, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        e.fields = problems.into_iter().map(|p| (p.at, p.message)).collect();
        return Err(e);
    }
    let relisting = s
        .sync
        .for_portal(account)
        .for_type(t)
        .set_mappings(&set.mappings)
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(Json(MappingsAnswer {
        object_type: t.as_str().into(),
        mappings: set.mappings,
        relisting: Some(relisting),
    }))
}
