//! Batch routes: `POST /crm/v3/objects/{type}/batch/{read,create,update,upsert,archive}`.
//!
//! At most 100 inputs. `create` is all-or-nothing (a bad input or an existing email fails the
//! whole batch, as in HubSpot); `read`, `update` and `upsert` answer 207 with `numErrors` and
//! `errors` when some inputs fail; two inputs resolving to the same record are refused.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::model::{format_ms, now_ms};
use crate::state::{select_properties, HsJson, Portal, Shared};
use crate::store::{Key, Table};

pub const MAX_INPUTS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchBody {
    pub inputs: Vec<Input>,
    #[serde(default)]
    pub properties: Vec<String>,
    #[serde(default)]
    pub id_property: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub id_property: Option<String>,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl Input {
    fn id_text(&self) -> Option<String> {
        match &self.id {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// One failed input, as a HubSpot `StandardError`.
fn input_error(err: &ApiError, id: &str) -> Value {
    json!({
        "status": "error",
        "category": err.category(),
        "message": err.message(),
        "context": {"id": [id]},
        "errors": [],
        "links": {},
    })
}

fn respond(
    ok_status: StatusCode,
    started: i64,
    results: Vec<Value>,
    errors: Vec<Value>,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": format_ms(started),
        "completedAt": format_ms(now_ms()),
    });
    let status = if errors.is_empty() {
        ok_status
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
        StatusCode::MULTI_STATUS
    };
    (status, Json(body)).into_response()
}

/// Refuses batches where two inputs name the same record (HubSpot: 400).
fn reject_duplicates(keys: impl Iterator<Item = String>) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    let dupes: Vec<String> = keys.filter(|k| !seen.insert(k.to_lowercase())).collect();
    if dupes.is_empty() {
        Ok(())
    } else {
        Err(
            ApiError::validation(format!("Duplicate IDs found in batch input: {dupes:?}"))
                .with("context", json!({"ids": dupes})),
        )
    }
}

fn missing_id(index: usize) -> ApiError {
    ApiError::validation(format!("inputs[{index}].id is required"))
}

pub async fn batch(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((object_type, action)): Path<(String, String)>,
    uri: axum::http::Uri,
    HsJson(body): HsJson<BatchBody>,
) -> Result<Response, ApiError> {
    let enforce = crate::model::enforces_required(uri.path());
    if body.inputs.len() > MAX_INPUTS {
        return Err(ApiError::validation(format!(
            "Too many inputs: {} given, at most {MAX_INPUTS} allowed in one batch.",
            body.inputs.len()
        ))
        .with("context", json!({"limit": [MAX_INPUTS.to_string()]})));
    }
    let started = now_ms();
    let mut changes = Vec::new();
    let response = {
        let mut store = state.store(portal);
        let table = store.table(&object_type)?;
        match action.as_str() {
            "read" => read(table, &body, started)?,
            "create" => create(table, &body, started, enforce, &mut changes)?,
            "update" => update(table, &body, started, enforce, &mut changes)?,
            "upsert" => upsert(table, &body, started, enforce, &mut changes)?,
            "archive" => {
                for (i, input) in body.inputs.iter().enumerate() {
                    let id = input.id_text().ok_or_else(|| missing_id(i))?;
                    table.archive(Key::Id(&id), &mut changes);
                }
                StatusCode::NO_CONTENT.into_response()
            }
            other => {
                return Err(ApiError::route_not_found(&format!(
                    "/crm/v3/objects/{object_type}/batch/{other} (use read, create, update, upsert or archive)"
                )))
            }
        }
    };
    state.emit(changes);
    Ok(response)
}

fn read(table: &mut Table, body: &BatchBody, started: i64) -> Result<Response, ApiError> {
    let selection = select_properties(&body.properties, &table.schema);
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (i, input) in body.inputs.iter().enumerate() {
        let id = input.id_text().ok_or_else(|| missing_id(i))?;
        let key = Key::from_id_property(&table.schema, &id, body.id_property.as_deref())?;
        match table.get(key) {
            Some(record) => results.push(record.to_json(Some(&selection))),
            None => missing.push(id),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![json!({
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": format!(
                "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
                table.schema.label.to_uppercase()
            ),
            "context": {"ids": missing},
            "errors": [],
            "links": {},
        })]
    };
    Ok(respond(StatusCode::OK, started, results, errors))
}

fn create(
    table: &mut Table,
    body: &BatchBody,
    started: i64,
    enforce: bool,
    changes: &mut Vec<crate::store::Change>,
) -> Result<Response, ApiError> {
    let checked = body
        .inputs
        .iter()
        .map(|input| table.check_write(&input.properties, None, enforce))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(unique) = table.schema.unique_property {
        reject_duplicates(
            checked
                .iter()
                .filter_map(|p| p.get(unique).cloned())
                .filter(|v| !v.is_empty()),
        )?;
        for props in &checked {
            if let Some(existing) = props.get(unique).and_then(|v| table.find_unique(v)) {
                return Err(ApiError::conflict_existing(existing, table.schema.label));
            }
        }
    }
    let mut results = Vec::with_capacity(checked.len());
    for props in checked {
        results.push(table.create(props, changes)?.to_json(None));
    }
    Ok(respond(StatusCode::CREATED, started, results, Vec::new()))
}

fn update(
    table: &mut Table,
    body: &BatchBody,
    started: i64,
    enforce: bool,
    changes: &mut Vec<crate::store::Change>,
) -> Result<Response, ApiError> {
    let mut targets = Vec::with_capacity(body.inputs.len());
    for (i, input) in body.inputs.iter().enumerate() {
        let id = input.id_text().ok_or_else(|| missing_id(i))?;
        let id_property = input.id_property.as_deref().or(body.id_property.as_deref());
        let key = Key::from_id_property(&table.schema, &id, id_property)?;
        targets.push((id.clone(), table.resolve(key)));
    }
    reject_duplicates(
        targets
            .iter()
            .filter_map(|(_, resolved)| resolved.map(|r| r.to_string())),
    )?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for ((id, resolved), input) in targets.into_iter().zip(&body.inputs) {
        let outcome = match resolved {
            None => Err(ApiError::object_not_found(&id)),
            Some(rid) => {
                let rid = rid.to_string();
                table
                    .check_write(&input.properties, Some(Key::Id(&rid)), enforce)
                    .and_then(|props| table.update(Key::Id(&rid), props, changes))
            }
        };
        match outcome {
            Ok(record) => results.push(record.to_json(None)),
            Err(err) => errors.push(input_error(&err, &id)),
        }
    }
    Ok(respond(StatusCode::OK, started, results, errors))
}

fn upsert(
    table: &mut Table,
    body: &BatchBody,
    started: i64,
    enforce: bool,
    changes: &mut Vec<crate::store::Change>,
) -> Result<Response, ApiError> {
    let unique = table.schema.unique_property;
    let mut keys = Vec::with_capacity(body.inputs.len());
    for (i, input) in body.inputs.iter().enumerate() {
        let id = input.id_text().ok_or_else(|| missing_id(i))?;
        let id_property = input.id_property.as_deref().or(body.id_property.as_deref());
        let property = match id_property {
            Some(p) if Some(p) == unique => p.to_string(),
            Some(p) if table.schema.custom.get(p).is_some_and(|c| c.unique) => p.to_string(),
            Some("hs_object_id") | None => {
                return Err(ApiError::validation(format!(
                    "inputs[{i}]: upsert needs idProperty set to a unique-value property{}; hs_object_id cannot be used.",
                    unique.map(|u| format!(" ({u})")).unwrap_or_default()
                )))
            }
            Some(p) => {
                return Err(ApiError::validation(format!(
                    "inputs[{i}]: {p} is not a unique-value property of {} and cannot be used as idProperty.",
                    table.schema.name
                )))
            }
        };
        keys.push((property, id));
    }
    reject_duplicates(
        keys.iter()
            .map(|(p, id)| format!("{p}={}", id.trim().to_lowercase())),
    )?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for ((property, id), input) in keys.iter().zip(&body.inputs) {
        let mut properties = input.properties.clone();
        properties.insert(property.clone(), Value::String(id.clone()));
        let existing = Key::from_id_property(&table.schema, id, Some(property))
            .ok()
            .and_then(|key| table.resolve(key))
            .map(|e| e.to_string());
        let outcome = table
            .check_write(&properties, existing.as_deref().map(Key::Id), enforce)
            .and_then(|props| match &existing {
                Some(existing) => table
                    .update(Key::Id(existing), props, changes)
                    .map(|r| (r, false)),
                None => table.create(props, changes).map(|r| (r, true)),
            });
        match outcome {
            Ok((record, new)) => {
                let mut json = record.to_json(None);
                json["new"] = json!(new);
                results.push(json);
            }
            Err(err) => errors.push(input_error(&err, id)),
        }
    }
    Ok(respond(StatusCode::OK, started, results, errors))
}
