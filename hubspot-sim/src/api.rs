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
    /// Edges to make with the record (creates only): `[{to: {id}, types: [...]}]`.
    #[serde(default)]
    pub associations: Vec<crate::associations::InlineAssociation>,
}

/// The portal of the token (see [`Portal`]).
pub async fn account_details(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
) -> Json<Value> {
    let (company, additional) = {
        let store = state.store(portal);
        let c = &store.currencies;
        let mut additional: Vec<String> = c.rates.iter().map(|r| r.from.clone()).collect();
        additional.sort();
        additional.dedup();
        (c.company.clone(), additional)
    };
    Json(json!({
        "portalId": portal,
        "accountType": "STANDARD",
        "timeZone": "US/Eastern",
        "companyCurrency": company,
        "additionalCurrencies": additional,
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
    uri: axum::http::Uri,
    HsJson(body): HsJson<WriteBody>,
) -> Result<Response, ApiError> {
    let enforce = crate::model::enforces_required(uri.path());
    let mut changes = Vec::new();
    let record = {
        let mut store = state.store(portal);
        let from = crate::associations::canonical(&object_type)?;
        let edges = crate::associations::check_inline(&mut store, from, &body.associations)?;
        let table = store.table(from)?;
        let props = table.check_write(&body.properties, None, enforce)?;
        let record = table.create(props, &mut changes)?;
        let mut added = Vec::new();
        for (to, to_id, type_id) in edges {
            store
                .associations
                .add((from, record.id), (to, to_id), type_id, &mut added);
        }
        changes.extend(crate::associations::as_changes(portal, added));
        record
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
    uri: axum::http::Uri,
    HsJson(body): HsJson<WriteBody>,
) -> Result<Json<Value>, ApiError> {
    let enforce = crate::model::enforces_required(uri.path());
    let params = ReadParams::parse(query.as_deref());
    let mut changes = Vec::new();
    let record = {
        let mut store = state.store(portal);
        let table = store.table(&object_type)?;
        let key = Key::from_id_property(&table.schema, &id, params.id_property.as_deref())?;
        let props = table.check_write(&body.properties, Some(key), enforce)?;
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeBody {
    pub primary_object_id: Value,
    pub object_id_to_merge: Value,
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `POST …/{type}/merge`: the record to merge is archived, its associations move to the
/// primary, and the primary (its values winning) is returned.
pub async fn merge(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(object_type): Path<String>,
    HsJson(body): HsJson<MergeBody>,
) -> Result<Json<Value>, ApiError> {
    let (primary, other) = (
        id_text(&body.primary_object_id),
        id_text(&body.object_id_to_merge),
    );
    let mut changes = Vec::new();
    let record = {
        let mut store = state.store(portal);
        let from = crate::associations::canonical(&object_type)?;
        let record = store.table(from)?.merge(&primary, &other, &mut changes)?;
        let mut moved = Vec::new();
        if let Ok(other) = other.parse::<u64>() {
            store
                .associations
                .repoint(from, other, record.id, &mut moved);
        }
        changes.extend(crate::associations::as_changes(portal, moved));
        record
    };
    state.emit(changes);
    Ok(Json(record.to_json(None)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GdprBody {
    pub object_id: Value,
    #[serde(default)]
    pub id_property: Option<String>,
}

/// `POST …/contacts/gdpr-delete` (`{objectId[, idProperty]}`): the contact deleted for good,
/// with its associations; 204, or 404 when no live contact has that key. Contacts only.
pub async fn gdpr_delete(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(object_type): Path<String>,
    HsJson(body): HsJson<GdprBody>,
) -> Result<StatusCode, ApiError> {
    let canonical = crate::associations::canonical(&object_type)?;
    if canonical != "contacts" {
        return Err(ApiError::validation(format!(
            "GDPR delete is for contacts, not {canonical}."
        )));
    }
    let key_text = id_text(&body.object_id);
    let mut changes = Vec::new();
    {
        let mut store = state.store(portal);
        let table = store.table("contacts")?;
        let key = Key::from_id_property(&table.schema, &key_text, body.id_property.as_deref())?;
        let id = table
            .gdpr_delete(key, &mut changes)
            .ok_or_else(|| ApiError::object_not_found(&key_text))?;
        let mut edges = Vec::new();
        for (to, to_id, _) in store.associations.of("contacts", id) {
            store
                .associations
                .remove(("contacts", id), (to, to_id), &mut edges);
        }
        changes.extend(crate::associations::as_changes(portal, edges));
    }
    state.emit(changes);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::route_not_found(uri.path())
}
