//! The simulator's own control plane under `/_sim/` (not HubSpot's namespace): fault
//! injection, reset, record dumps, seeding, request counts and the webhook delivery log.
//! No authentication and no rate limits apply here.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::faults::FaultSpec;
use crate::model::{now_ms, parse_datetime_ms};
use crate::state::Shared;

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/_sim/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/_sim/reset", post(reset))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/faults/{id}", delete(remove_fault))
        .route("/_sim/stats", get(stats))
        .route("/_sim/records/{object_type}", get(records))
        .route("/_sim/seed/{object_type}", post(seed))
        .route("/_sim/restore/{object_type}/{id}", post(restore))
        .route("/_sim/required/{object_type}", post(required))
        .route("/_sim/webhooks", get(webhooks))
}

async fn reset(State(state): State<Shared>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(state): State<Shared>) -> Json<Value> {
    Json(json!({ "faults": state.faults.list() }))
}

async fn add_fault(State(state): State<Shared>, body: axum::body::Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(e) => return bad_request(format!("invalid fault rule: {e}")),
    };
    match state.faults.add(spec) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => bad_request(format!("invalid fault rule: {e}")),
    }
}

async fn clear_faults(State(state): State<Shared>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(state): State<Shared>, Path(id): Path<u64>) -> StatusCode {
    if state.faults.remove(id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn stats(State(state): State<Shared>) -> Json<Value> {
    Json(state.stats.snapshot())
}

/// `?portal=HUB_ID` picks the portal whose records the admin routes read or seed; unset means
/// `--portal-id`.
#[derive(Debug, Deserialize)]
struct PortalQuery {
    portal: Option<u64>,
}

impl PortalQuery {
    fn or_default(&self, state: &Shared) -> u64 {
        self.portal.unwrap_or(state.config.portal_id)
    }
}

async fn records(
    State(state): State<Shared>,
    Path(object_type): Path<String>,
    Query(q): Query<PortalQuery>,
) -> Response {
    let mut store = state.store(q.or_default(&state));
    let table = match store.table(&object_type) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let results: Vec<Value> = table.all().map(|r| r.to_json(None)).collect();
    Json(json!({ "objectType": object_type, "count": results.len(), "results": results }))
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SeedBody {
    count: usize,
    /// Property values; `{n}` in a value is replaced by the record's number (0-based).
    #[serde(default)]
    properties: Map<String, Value>,
    /// Stamp every record with this createdate / last-modified time (ms or RFC 3339).
    #[serde(default)]
    timestamp: Option<Value>,
}

async fn seed(
    State(state): State<Shared>,
    Path(object_type): Path<String>,
    Query(q): Query<PortalQuery>,
    body: axum::body::Bytes,
) -> Response {
    let body: SeedBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("invalid seed request: {e}")),
    };
    if body.count > 1_000_000 {
        return bad_request("count is limited to 1,000,000 per call");
    }
    let at_ms = match &body.timestamp {
        None => now_ms(),
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(parse_datetime_ms))
        {
            Some(ms) => ms,
            None => {
                return bad_request(format!(
                    "timestamp {v} is neither epoch milliseconds nor RFC 3339"
                ))
            }
        },
    };
    let mut store = state.store(q.or_default(&state));
    let table = match store.table(&object_type) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut rows = Vec::with_capacity(body.count);
    for n in 0..body.count {
        let props: Map<String, Value> = body
            .properties
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => Value::String(s.replace("{n}", &n.to_string())),
                    other => other.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        match table.check_properties(&props) {
            Ok(p) => rows.push(p),
            Err(e) => return bad_request(format!("record {n}: {}", e.message())),
        }
    }
    let ids = table.seed(rows, at_ms);
    (
        StatusCode::CREATED,
        Json(json!({ "created": ids.len(), "firstId": ids.first(), "lastId": ids.last() })),
    )
        .into_response()
}

/// What a user restoring a record from HubSpot's recycle bin does (there is no API for it):
/// the record comes back and a `restore` webhook event goes out.
async fn restore(
    State(state): State<Shared>,
    Path((object_type, id)): Path<(String, String)>,
    Query(q): Query<PortalQuery>,
) -> Response {
    let portal = q.or_default(&state);
    let mut changes = Vec::new();
    let restored = {
        let mut store = state.store(portal);
        store
            .table(&object_type)
            .and_then(|t| t.restore(&id, &mut changes))
    };
    match restored {
        Ok(record) => {
            state.emit(changes);
            Json(record.to_json(None)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct RequiredBody {
    properties: Vec<String>,
}

/// A portal admin's required-property rules for a type (replacing the previous ones), enforced
/// by writes under API version `2026-09` and later.
async fn required(
    State(state): State<Shared>,
    Path(object_type): Path<String>,
    Query(q): Query<PortalQuery>,
    body: axum::body::Bytes,
) -> Response {
    let body: RequiredBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("expected {{\"properties\": [names]}}: {e}")),
    };
    let portal = q.or_default(&state);
    let mut store = state.store(portal);
    let table = match store.table(&object_type) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    if let Some(unknown) = body.properties.iter().find(|p| !table.schema.knows(p)) {
        return bad_request(format!("{object_type} has no property {unknown}"));
    }
    table.schema.required = body.properties.into_iter().collect();
    Json(json!({ "required": table.schema.required })).into_response()
}

async fn webhooks(State(state): State<Shared>) -> Response {
    match &state.webhooks {
        Some(w) => Json(json!({ "attempts": w.attempts() })).into_response(),
        None => bad_request(
            "webhooks are off: start the simulator with --webhook-url and --webhook-secret",
        ),
    }
}
