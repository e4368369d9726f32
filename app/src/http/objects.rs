//! `/api/objects/{type}…` (admin): the synced CRM records of one portal, read locally (never a
//! HubSpot call): a filtered page, one record with its associations; and changes of app-owned
//! fields, queued for HubSpot.
//!
//! May import: `http::{state, error, auth}`, `domain::{object, mapping}`, `store::{objects,
//! object_writes}`, `jobs::sync` (the mappings in force).

use std::collections::{BTreeMap, HashMap};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Signed, Staff};
use super::error::ApiError;
use super::state::Shared;
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;
use crate::store::objects::StoredObject;

/// A page holds at most this many records.
pub const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 50;

/// The query of a listing. Every other parameter is a filter: `?dealstage=closedwon` keeps
/// the records whose field equals that value (all filters must match).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; the handler reads them from the raw map
pub struct ListQuery {
    /// The portal (hub id); unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
    /// Records per page, 1–200 (default 50).
    limit: Option<usize>,
    /// The cursor of the next page (`paging.next.after` of the previous one).
    after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Next {
    pub after: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Paging {
    pub next: Next,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectPage {
    pub results: Vec<StoredObject>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

/// One association type of an edge.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssociationType {
    /// `HUBSPOT_DEFINED` or `USER_DEFINED`.
    pub category: String,
    #[serde(rename = "typeId")]
    pub type_id: i64,
    pub label: Option<String>,
}

/// A record this one is associated with.
#[derive(Debug, Serialize, ToSchema)]
pub struct Associated {
    pub id: String,
    pub types: Vec<AssociationType>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectWithAssociations {
    #[serde(flatten)]
    pub object: StoredObject,
    /// By object type (`companies`, `contacts`, …): the associated records, each with the
    /// association types of the edge.
    pub associations: BTreeMap<String, Vec<Associated>>,
}

/// An object type named in a path (400 listing the valid ones otherwise).
pub(super) fn object_type(raw: &str) -> Result<ObjectType, ApiError> {
    raw.parse::<ObjectType>()
        .map_err(|e| ApiError::invalid(format!("type: {e}")))
}

/// The hub id of a `?portal=` parameter.
pub(super) fn hub_id(portal: Option<&str>) -> Result<Option<u64>, ApiError> {
    portal
        .map(|p| {
            p.parse::<u64>()
                .map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))
        })
        .transpose()
}

async fn portal_of(s: &Shared, portal: Option<&str>) -> Result<Option<PortalId>, ApiError> {
    Ok(s.account(hub_id(portal)?).await?.0)
}

/// The record a request names: its type and id from the path, its portal from `?portal=`.
async fn record_of(
    s: &Shared,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<(ObjectType, String, Option<PortalId>), ApiError> {
    let Path((raw_type, id)) = path.map_err(|_| ApiError::invalid("id: missing"))?;
    let object_type = object_type(&raw_type)?;
    let Query(query) = query.map_err(|_| ApiError::invalid("query: not a valid query string"))?;
    let portal = portal_of(s, query.get("portal").map(String::as_str)).await?;
    Ok((object_type, id, portal))
}

fn read_failed(e: &crate::store::StoreError) -> ApiError {
    ApiError::internal(
        e,
        "reading synced records",
        "the synced records could not be read; try again",
    )
}

/// A page of the synced records of one type.
#[utoipa::path(get, path = "/api/objects/{type}", tag = "objects", params(
        ("type" = String, Path, description = "contacts, companies, deals, line_items, notes, calls, emails, meetings or tasks"),
        ListQuery),
    security(("admin" = [])), responses(
    (status = 200, description = "The page", body = ObjectPage),
    (status = 400, description = "An unknown type, or a bad limit, cursor or portal", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 503, description = "Disabled, or the database failed", body = ApiError)))]
pub async fn list(
    _: Signed<Staff>,
    State(s): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ObjectPage>, ApiError> {
    let Path(raw_type) = path.map_err(|_| ApiError::invalid("type: missing"))?;
    let object_type = object_type(&raw_type)?;
    let Query(mut query) =
        query.map_err(|_| ApiError::invalid("query: not a valid query string"))?;
    let portal = portal_of(&s, query.remove("portal").as_deref()).await?;
    let limit = match query.remove("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::invalid(format!("limit: between 1 and {MAX_LIMIT}, got '{raw}'"))
            })?,
    };
    let after = query.remove("after");
    let mut filters: Vec<(String, String)> = query.into_iter().collect();
    filters.sort();
    let mut results = s
        .objects
        .list(portal, object_type, &filters, after.as_deref(), limit + 1)
        .await
        .map_err(|e| read_failed(&e))?;
    let paging = (results.len() > limit).then(|| {
        results.truncate(limit);
        Paging {
            next: Next {
                after: results.last().map(|r| r.id.clone()).unwrap_or_default(),
            },
        }
    });
    Ok(Json(ObjectPage { results, paging }))
}

/// One synced record, with its associations.
#[utoipa::path(get, path = "/api/objects/{type}/{id}", tag = "objects", params(
        ("type" = String, Path, description = "contacts, companies, deals, line_items, notes, calls, emails, meetings or tasks"),
        ("id" = String, Path, description = "HubSpot's id of the record"),
        ("portal" = Option<u64>, Query, description = "The portal (hub id); unset: the single account of `HUBSPOT_ACCESS_TOKEN`")),
    security(("admin" = [])), responses(
    (status = 200, description = "The record", body = ObjectWithAssociations),
    (status = 400, description = "An unknown type or a bad portal", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "Not synced here (or that portal is not connected here)", body = ApiError),
    (status = 503, description = "Disabled, or the database failed", body = ApiError)))]
pub async fn get(
    _: Signed<Staff>,
    State(s): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ObjectWithAssociations>, ApiError> {
    let (object_type, id, portal) = record_of(&s, path, query).await?;
    let object = s
        .objects
        .get(portal, object_type, &id)
        .await
        .map_err(|e| read_failed(&e))?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no {object_type} record {id} is synced here; POST /api/sync/run to sync now"
            ))
        })?;
    let edges = s
        .objects
        .associations(portal, object_type, &id)
        .await
        .map_err(|e| read_failed(&e))?;
    let mut associations: BTreeMap<String, Vec<Associated>> = BTreeMap::new();
    for edge in edges {
        let list = associations
            .entry(edge.to_type.as_str().to_string())
            .or_default();
        let kind = AssociationType {
            category: edge.category,
            type_id: edge.type_id,
            label: edge.label,
        };
        match list.iter_mut().find(|a| a.id == edge.to_id) {
            Some(a) => a.types.push(kind),
            None => list.push(Associated {
                id: edge.to_id,
                types: vec![kind],
            }),
        }
    }
    Ok(Json(ObjectWithAssociations {
        object,
        associations,
    }))
}

/// A change of app-owned fields of one record.
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct FieldChange {
    /// Local field → value; each must be an app-owned field of the portal's mappings.
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeAccepted {
    /// The queued write (`object_writes` in `/api/stats` counts them by state).
    pub write_id: i64,
    /// The HubSpot properties the write sets.
    pub properties: BTreeMap<String, String>,
}

/// Changes app-owned fields of a synced record: stored here at once (a sync never overwrites
/// them) and sent to HubSpot through the write queue, in order per record. A HubSpot-owned or
/// unmapped field is refused, named.
#[utoipa::path(patch, path = "/api/objects/{type}/{id}", tag = "objects", params(
        ("type" = String, Path, description = "contacts, companies, deals, line_items, notes, calls, emails, meetings or tasks"),
        ("id" = String, Path, description = "HubSpot's id of the record"),
        ("portal" = Option<u64>, Query, description = "The portal (hub id); unset: the single account of `HUBSPOT_ACCESS_TOKEN`")),
    request_body = FieldChange,
    security(("admin" = [])), responses(
    (status = 202, description = "Accepted: stored, queued for HubSpot", body = ChangeAccepted),
    (status = 400, description = "An unknown type, a field that is not app-owned, or a bad body", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "Not synced here (or that portal is not connected here)", body = ApiError),
    (status = 503, description = "Disabled, or the database failed", body = ApiError)))]
pub async fn change(
    _: Signed<Staff>,
    State(s): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Result<Json<FieldChange>, axum::extract::rejection::JsonRejection>,
) -> Result<(axum::http::StatusCode, Json<ChangeAccepted>), ApiError> {
    let (object_type, id, portal) = record_of(&s, path, query).await?;
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "fields: {}; send {{\"fields\": {{\"commission_amount\": \"120\"}}}}",
            e.body_text()
        ))
    })?;
    if body.fields.is_empty() {
        return Err(ApiError::invalid(
            "fields: empty; name at least one app-owned field",
        ));
    }
    let mapping = s
        .sync
        .for_portal(portal)
        .for_type(object_type)
        .mapping()
        .await
        .map_err(|e| read_failed(&e))?;
    let mut properties = BTreeMap::new();
    for (field, value) in &body.fields {
        match mapping.mappings.iter().find(|m| &m.field == field) {
            Some(m) if m.owner == crate::domain::mapping::Owner::App => {
                if let Some(p) = &m.hubspot {
                    properties.insert(p.clone(), value.clone());
                }
            }
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "fields.{field}: owned by HubSpot; change it in HubSpot (the sync brings it here)"
                )))
            }
            None => {
                return Err(ApiError::invalid(format!(
                    "fields.{field}: not a mapped field of {object_type}; GET /api/mappings/{object_type} lists them"
                )))
            }
        }
    }
    let write_id = s
        .object_writes
        .accept(portal, object_type, &id, &body.fields, &properties)
        .await
        .map_err(|e| read_failed(&e))?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no {object_type} record {id} is synced here; POST /api/sync/run to sync now"
            ))
        })?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(ChangeAccepted {
            write_id,
            properties,
        }),
    ))
}
