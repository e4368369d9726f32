//! HubSpot's public routes: single-object CRUD, listing, search and account info.
//! Batch routes live in [`crate::batch`].

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::search::{Plan, SearchRequest};
use crate::state::{HsJson, Portal, ReadParams, Shared};
use crate::store::Key;

pub const LIST_MAX_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
pub struct WriteBody {
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    #[allow(dead_code)]
    pub associations: Vec<Value>,
}

/// The portal of the token (see [`Portal`]).
pub async fn account_details(Extension(Portal(portal)): Extension<Portal>) -> Json<Value> {
    Json(json!({
        "portalId": portal,
        "accountType": "STANDARD",
        "timeZone": "US/Eastern",
        "companyCurrency": "USD",
        "additionalCurrencies": [],
        "utcOffset": "-05:00",
        "utcOffsetMilliseconds": -18_000_000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    }))
}

pub async fn create(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(object_type): Path<String>,
    HsJson(body): HsJson<WriteBody>,
) -> Result<Response, ApiError> {
    let mut changes = Vec::new();
    let record = {
        let mut store = state.store(portal);
        let table = store.table(&object_type)?;
        let props = table.check_properties(&body.properties)?;
        table.create(props, &mut changes)?
    };
    state.emit(changes);
    Ok((StatusCode::CREATED, Json(record.to_json(None))).into_response())
}

pub async fn get(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((object_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = ReadParams::parse(query.as_deref());
    let mut store = state.store(portal);
    let table = store.table(&object_type)?;
    let key = Key::from_id_property(&table.schema, &id, params.id_property.as_deref())?;
    let record = table
        .get(key)
        .or_else(|| params.archived.then(|| table.get_archived(&id)).flatten())
        .ok_or_else(|| ApiError::object_not_found(&id))?;
    Ok(Json(record.to_json(Some(&params.selection(&table.schema)))))
}

pub async fn update(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((object_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    HsJson(body): HsJson<WriteBody>,
) -> Result<Json<Value>, ApiError> {
    let params = ReadParams::parse(query.as_deref());
    let mut changes = Vec::new();
    let record = {
        let mut store = state.store(portal);
        let table = store.table(&object_type)?;
        let key = Key::from_id_property(&table.schema, &id, params.id_property.as_deref())?;
        let props = table.check_properties(&body.properties)?;
        table.update(key, props, &mut changes)?
    };
    state.emit(changes);
    Ok(Json(record.to_json(None)))
}

pub async fn archive(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut changes = Vec::new();
    state
        .store(portal)
        .table(&object_type)?
        .archive(Key::Id(&id), &mut changes);
    state.emit(changes);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(object_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let params = ReadParams::parse(query.as_deref());
    let limit = match params.limit.as_deref() {
        None => 10,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=LIST_MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "limit must be between 1 and {LIST_MAX_LIMIT}, got '{raw}'."
                ))
            })?,
    };
    let after = match params.after.as_deref() {
        None | Some("") => 0,
        Some(raw) => raw.parse::<u64>().map_err(|_| {
            ApiError::validation(format!(
                "after must be a paging cursor from a previous page, got '{raw}'."
            ))
        })?,
    };
    let mut store = state.store(portal);
    let table = store.table(&object_type)?;
    let selection = params.selection(&table.schema);
    let (page, next) = if params.archived {
        table.archived_page(after, limit)
    } else {
        table.page(after, limit)
    };
    let results: Vec<Value> = page.iter().map(|r| r.to_json(Some(&selection))).collect();
    let mut body = json!({ "results": results });
    if let Some(next) = next {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        body["paging"] = json!({"next": {
            "after": next.to_string(),
            "link": format!("http://{host}/crm/v3/objects/{object_type}?limit={limit}&after={next}"),
        }});
    }
    Ok(Json(body))
}

pub async fn search(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(object_type): Path<String>,
    HsJson(req): HsJson<SearchRequest>,
) -> Result<Json<Value>, ApiError> {
    let mut store = state.store(portal);
    let table = store.table(&object_type)?;
    let plan = Plan::new(req, &table.schema, state.config.search_limits)?;
    Ok(Json(table.search(&plan)))
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::route_not_found(uri.path())
}
