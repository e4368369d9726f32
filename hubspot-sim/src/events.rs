//! HubSpot's custom events (`/events/2026-03/…`, legacy `/events/v3/…`): event definitions
//! (`event-definitions`: a name, a primary object, typed properties; the fully qualified name
//! is `pe{hubId}_{name}`), occurrences sent one at a time (`send`) or up to 500 at once
//! (`send/batch`), both answered 204 with no body, and the occurrences of a record read back
//! (`GET …/events?objectType=contact&objectId=…[&eventType=…]`).
//!
//! An occurrence names its record by `objectId`, or by `email` (a contact, created when none
//! has it, as HubSpot does). Its `uuid`, when given, makes a resend a no-op: HubSpot keeps one
//! occurrence per uuid.

use std::collections::{BTreeMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::model::{format_ms, now_ms, parse_datetime_ms};
use crate::state::{HsJson, Portal, Shared};
use crate::store::{Key, Store};

/// HubSpot's limit on one `send/batch`.
pub const MAX_BATCH: usize = 500;

/// One event definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub label: String,
    pub description: Option<String>,
    /// `CONTACT` or `COMPANY`.
    pub primary_object: String,
    /// Property name → type (`string`, `number`, `enumeration`, `datetime`, `bool`).
    pub properties: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// One occurrence as stored.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub id: String,
    pub event_type: String,
    pub object_type: String,
    pub object_id: u64,
    pub occurred_ms: i64,
    pub properties: Map<String, Value>,
}

/// A portal's custom events.
#[derive(Debug, Default)]
pub struct Events {
    /// By short name.
    pub definitions: BTreeMap<String, Definition>,
    pub occurrences: Vec<Occurrence>,
    uuids: HashSet<String>,
    next_id: u64,
}

fn fully_qualified(portal: u64, name: &str) -> String {
    format!("pe{portal}_{name}")
}

fn definition_json(portal: u64, d: &Definition) -> Value {
    json!({
        "name": d.name,
        "fullyQualifiedName": fully_qualified(portal, &d.name),
        "labels": {"singular": d.label, "plural": d.label},
        "description": d.description,
        "primaryObject": d.primary_object,
        "objectTypeId": if d.primary_object == "COMPANY" { "0-2" } else { "0-1" },
        "properties": d.properties.iter().map(|(name, kind)| json!({
            "name": name, "label": name, "type": kind, "archived": false,
        })).collect::<Vec<_>>(),
        "createdAt": format_ms(d.created_ms),
        "archived": false,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyBody {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionBody {
    pub label: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub primary_object: Option<String>,
    #[serde(default)]
    pub property_definitions: Vec<PropertyBody>,
}

const KINDS: [&str; 5] = ["string", "number", "enumeration", "datetime", "bool"];

/// `POST …/event-definitions`: 201 with the definition; 409 when the name is taken.
pub async fn create_definition(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    HsJson(body): HsJson<DefinitionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = body.name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ApiError::validation(format!(
            "Event name '{name}' is invalid: use lowercase letters, digits and underscores."
        )));
    }
    let primary = body
        .primary_object
        .clone()
        .unwrap_or_else(|| "CONTACT".into())
        .to_uppercase();
    if !matches!(primary.as_str(), "CONTACT" | "COMPANY") {
        return Err(ApiError::validation(format!(
            "primaryObject '{primary}' is not supported: use CONTACT or COMPANY."
        )));
    }
    let mut properties = BTreeMap::new();
    for p in &body.property_definitions {
        if !KINDS.contains(&p.kind.as_str()) {
            return Err(ApiError::validation(format!(
                "Event property '{}' has type '{}': use one of {}.",
                p.name,
                p.kind,
                KINDS.join(", ")
            )));
        }
        properties.insert(p.name.clone(), p.kind.clone());
    }
    let mut store = state.store(portal);
    if store.events.definitions.contains_key(name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            format!("An event named '{name}' already exists."),
        ));
    }
    let definition = Definition {
        name: name.to_string(),
        label: body.label.clone(),
        description: body.description.clone(),
        primary_object: primary,
        properties,
        created_ms: now_ms(),
    };
    let answer = definition_json(portal, &definition);
    store
        .events
        .definitions
        .insert(name.to_string(), definition);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET …/event-definitions`: every definition (one page).
pub async fn list_definitions(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
) -> Json<Value> {
    let store = state.store(portal);
    let results: Vec<Value> = store
        .events
        .definitions
        .values()
        .map(|d| definition_json(portal, d))
        .collect();
    Json(json!({"total": results.len(), "results": results}))
}

/// `GET …/event-definitions/{name}`.
pub async fn get_definition(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store(portal);
    store
        .events
        .definitions
        .get(&name)
        .map(|d| Json(definition_json(portal, d)))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                format!("No event definition named '{name}'."),
            )
        })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendBody {
    pub event_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub object_id: Option<Value>,
    #[serde(default)]
    pub utk: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// Checks an occurrence against the portal's definitions and its records: the definition, the
/// record it names, the occurrence time. `Ok(None)`: a resend of a uuid already kept.
fn check(store: &mut Store, portal: u64, body: &SendBody) -> Result<Option<Occurrence>, ApiError> {
    let prefix = format!("pe{portal}_");
    let definition = body
        .event_name
        .strip_prefix(&prefix)
        .and_then(|name| store.events.definitions.get(name))
        .ok_or_else(|| {
            ApiError::validation(format!(
                "Event '{}' is not defined in portal {portal}: use a fullyQualifiedName (pe{portal}_<name>) from the event definitions API.",
                body.event_name
            ))
        })?
        .clone();
    for (name, value) in &body.properties {
        let Some(kind) = definition.properties.get(name) else {
            return Err(ApiError::validation(format!(
                "Property '{name}' is not defined on event '{}'.",
                body.event_name
            )));
        };
        let ok = match kind.as_str() {
            "number" => {
                value.as_f64().is_some() || value.as_str().is_some_and(|s| s.parse::<f64>().is_ok())
            }
            "bool" => value.is_boolean() || matches!(value.as_str(), Some("true" | "false")),
            "datetime" => {
                value.as_i64().is_some()
                    || value
                        .as_str()
                        .is_some_and(|s| parse_datetime_ms(s).is_some())
            }
            _ => !value.is_object() && !value.is_array(),
        };
        if !ok {
            return Err(ApiError::validation(format!(
                "Property '{name}' of event '{}' must be a {kind}, got {value}.",
                body.event_name
            )));
        }
    }
    let occurred_ms = match &body.occurred_at {
        None => now_ms(),
        Some(raw) => parse_datetime_ms(raw).ok_or_else(|| {
            ApiError::validation(format!("occurredAt '{raw}' is not an ISO 8601 datetime."))
        })?,
    };
    if body
        .uuid
        .as_ref()
        .is_some_and(|u| store.events.uuids.contains(u))
    {
        return Ok(None);
    }
    let object_type = if definition.primary_object == "COMPANY" {
        "companies"
    } else {
        "contacts"
    };
    let object_id = match (&body.object_id, &body.email) {
        (Some(id), _) => {
            let id = id
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            store
                .table(object_type)?
                .resolve(Key::Id(&id))
                .ok_or_else(|| ApiError::object_not_found(&id))?
        }
        (None, Some(email)) if object_type == "contacts" => {
            let contacts = store.table("contacts")?;
            match contacts.find_unique(email) {
                Some(id) => id,
                None => {
                    let props = contacts.check_properties(
                        json!({"email": email}).as_object().expect("an object"),
                    )?;
                    let mut changes = Vec::new();
                    contacts.create(props, &mut changes)?.id
                }
            }
        }
        _ => {
            return Err(ApiError::validation(
                "An occurrence needs objectId, or email for a CONTACT event (utk alone is not supported here).",
            ))
        }
    };
    let events = &mut store.events;
    events.next_id += 1;
    if let Some(uuid) = &body.uuid {
        events.uuids.insert(uuid.clone());
    }
    Ok(Some(Occurrence {
        id: body
            .uuid
            .clone()
            .unwrap_or_else(|| format!("sim-{}", events.next_id)),
        event_type: body.event_name.clone(),
        object_type: object_type.to_string(),
        object_id,
        occurred_ms,
        properties: body.properties.clone(),
    }))
}

/// `POST …/send`: one occurrence; 204.
pub async fn send(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    HsJson(body): HsJson<SendBody>,
) -> Result<StatusCode, ApiError> {
    let mut store = state.store(portal);
    if let Some(occurrence) = check(&mut store, portal, &body)? {
        store.events.occurrences.push(occurrence);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct BatchSend {
    pub inputs: Vec<SendBody>,
}

/// `POST …/send/batch`: up to 500 occurrences, all kept or none (a 400 names the input).
pub async fn send_batch(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    HsJson(body): HsJson<BatchSend>,
) -> Result<StatusCode, ApiError> {
    if body.inputs.is_empty() || body.inputs.len() > MAX_BATCH {
        return Err(ApiError::validation(format!(
            "A batch holds 1 to {MAX_BATCH} occurrences, got {}.",
            body.inputs.len()
        )));
    }
    let mut store = state.store(portal);
    let mut kept = Vec::new();
    for (i, input) in body.inputs.iter().enumerate() {
        match check(&mut store, portal, input) {
            Ok(Some(o)) => kept.push(o),
            Ok(None) => {}
            Err(e) => {
                // None of the batch is kept: forget the uuids taken so far.
                for o in &kept {
                    store.events.uuids.remove(&o.id);
                }
                return Err(ApiError::validation(format!(
                    "inputs[{i}]: {}",
                    e.message()
                )));
            }
        }
    }
    store.events.occurrences.extend(kept);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OccurrenceQuery {
    pub object_type: String,
    pub object_id: u64,
    #[serde(default)]
    pub event_type: Option<String>,
}

/// `GET …/events?objectType=contact&objectId=…[&eventType=…]`: a record's occurrences, oldest
/// first.
pub async fn occurrences(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Query(q): Query<OccurrenceQuery>,
) -> Result<Json<Value>, ApiError> {
    let object_type = match q.object_type.as_str() {
        "contact" | "contacts" | "0-1" => "contacts",
        "company" | "companies" | "0-2" => "companies",
        other => {
            return Err(ApiError::validation(format!(
                "objectType '{other}' is not supported: use contact or company."
            )))
        }
    };
    let store = state.store(portal);
    let mut found: Vec<&Occurrence> = store
        .events
        .occurrences
        .iter()
        .filter(|o| o.object_type == object_type && o.object_id == q.object_id)
        .filter(|o| q.event_type.as_ref().is_none_or(|t| *t == o.event_type))
        .collect();
    found.sort_by_key(|o| (o.occurred_ms, o.id.clone()));
    let results: Vec<Value> = found
        .into_iter()
        .map(|o| {
            json!({
                "objectType": if o.object_type == "companies" { "COMPANY" } else { "CONTACT" },
                "objectId": o.object_id.to_string(),
                "eventType": o.event_type,
                "occurredAt": format_ms(o.occurred_ms),
                "id": o.id,
                "properties": o.properties,
            })
        })
        .collect();
    Ok(Json(json!({"results": results})))
}
