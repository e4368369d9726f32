//! HubSpot's associations v4: labelled, directed edges between records, each edge carrying one
//! or more association types (`{category, typeId, label}`); an edge and its inverse are always
//! written together, so reading either direction agrees.
//!
//! Routes (date-based `/crm/associations/2026-03/{from}/{to}/…` and legacy
//! `/crm/v4/associations/{from}/{to}/…`, same semantics): `batch/read` (≤ 1,000 inputs, paged
//! per input), `batch/create` (labelled), `batch/associate/default`, `batch/archive`, and
//! `labels` (list, create a `USER_DEFINED` label). Object types may be named plural, singular
//! or by type id (`0-3`), as HubSpot accepts.
//!
//! Architecture invariant: edges change only through [`Associations::add`] and
//! [`Associations::remove`], which keep both directions in step and report each change for
//! webhooks.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::model::{format_ms, now_ms, ObjectSchema};
use crate::state::{HsJson, Portal, Shared};
use crate::store::{Change, ChangeKind, Key, Store};

/// Batch read takes at most this many inputs; the write batches take the same.
pub const MAX_INPUTS: usize = 1_000;
/// Associated ids returned per input per page.
pub const PAGE: usize = 500;

pub const HUBSPOT_DEFINED: &str = "HUBSPOT_DEFINED";
pub const USER_DEFINED: &str = "USER_DEFINED";

/// `(from, to, typeId, label, inverse typeId)`: HubSpot's defined association types. The first
/// unlabelled type of a pair is its default.
const DEFINED: &[(&str, &str, u32, Option<&str>, u32)] = &[
    ("contacts", "companies", 279, None, 280),
    ("contacts", "companies", 1, Some("Primary"), 2),
    ("deals", "contacts", 3, None, 4),
    ("deals", "companies", 341, None, 342),
    ("deals", "companies", 5, Some("Primary"), 6),
    ("line_items", "deals", 20, None, 19),
    ("notes", "contacts", 202, None, 201),
    ("notes", "companies", 190, None, 189),
    ("notes", "deals", 214, None, 213),
    ("calls", "contacts", 194, None, 193),
    ("calls", "companies", 182, None, 181),
    ("calls", "deals", 206, None, 205),
    ("emails", "contacts", 198, None, 197),
    ("emails", "companies", 186, None, 185),
    ("emails", "deals", 210, None, 209),
    ("meetings", "contacts", 200, None, 199),
    ("meetings", "companies", 188, None, 187),
    ("meetings", "deals", 212, None, 211),
    ("tasks", "contacts", 204, None, 203),
    ("tasks", "companies", 192, None, 191),
    ("tasks", "deals", 216, None, 215),
];

/// One association type from one object type to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationType {
    pub from: &'static str,
    pub to: &'static str,
    pub category: &'static str,
    pub type_id: u32,
    pub label: Option<String>,
    /// The same association read from the other side.
    pub inverse: u32,
}

impl AssociationType {
    fn json(&self) -> Value {
        json!({"category": self.category, "typeId": self.type_id, "label": self.label})
    }
}

/// A change to one edge, for webhooks: `association_type` is HubSpot's name
/// (`CONTACT_TO_COMPANY`); `removed` when the edge lost the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeChange {
    pub from: &'static str,
    pub from_id: u64,
    pub to: &'static str,
    pub to_id: u64,
    pub type_id: u32,
    pub removed: bool,
}

/// One portal's association types and edges.
#[derive(Debug)]
pub struct Associations {
    types: Vec<AssociationType>,
    /// `(from type, from id, to type)` → associated id → the type ids of that edge.
    edges: BTreeMap<(&'static str, u64, &'static str), BTreeMap<u64, BTreeSet<u32>>>,
    next_user_type: u32,
}

impl Default for Associations {
    fn default() -> Self {
        let mut types = Vec::new();
        for (from, to, id, label, inverse) in DEFINED {
            let label = label.map(String::from);
            types.push(AssociationType {
                from,
                to,
                category: HUBSPOT_DEFINED,
                type_id: *id,
                label: label.clone(),
                inverse: *inverse,
            });
            types.push(AssociationType {
                from: to,
                to: from,
                category: HUBSPOT_DEFINED,
                type_id: *inverse,
                label,
                inverse: *id,
            });
        }
        Self {
            types,
            edges: BTreeMap::new(),
            next_user_type: 1_001,
        }
    }
}

impl Associations {
    /// The types defined from `from` to `to`.
    pub fn types(&self, from: &str, to: &str) -> impl Iterator<Item = &AssociationType> {
        let (from, to) = (from.to_string(), to.to_string());
        self.types
            .iter()
            .filter(move |t| t.from == from && t.to == to)
    }

    fn get_type(&self, from: &str, to: &str, type_id: u32) -> Option<&AssociationType> {
        self.types(from, to).find(|t| t.type_id == type_id)
    }

    /// The unlabelled type of a pair (what "associate default" writes).
    pub fn default_type(&self, from: &str, to: &str) -> Option<u32> {
        self.types(from, to)
            .find(|t| t.label.is_none())
            .map(|t| t.type_id)
    }

    /// Defines a `USER_DEFINED` label in both directions; returns its type id from `from`.
    pub fn create_label(&mut self, from: &'static str, to: &'static str, label: &str) -> u32 {
        let (id, inverse) = (self.next_user_type, self.next_user_type + 1);
        self.next_user_type += 2;
        for (f, t, i, inv) in [(from, to, id, inverse), (to, from, inverse, id)] {
            self.types.push(AssociationType {
                from: f,
                to: t,
                category: USER_DEFINED,
                type_id: i,
                label: Some(label.to_string()),
                inverse: inv,
            });
        }
        id
    }

    /// Adds `type_id` (defined from `from` to `to`) to the edge, and its inverse to the
    /// inverse edge. Reports the change when the edge did not have the type yet.
    pub fn add(
        &mut self,
        (from, from_id): (&'static str, u64),
        (to, to_id): (&'static str, u64),
        type_id: u32,
        changes: &mut Vec<EdgeChange>,
    ) {
        let Some(inverse) = self.get_type(from, to, type_id).map(|t| t.inverse) else {
            return;
        };
        let new = self
            .edges
            .entry((from, from_id, to))
            .or_default()
            .entry(to_id)
            .or_default()
            .insert(type_id);
        self.edges
            .entry((to, to_id, from))
            .or_default()
            .entry(from_id)
            .or_default()
            .insert(inverse);
        if new {
            changes.push(EdgeChange {
                from,
                from_id,
                to,
                to_id,
                type_id,
                removed: false,
            });
        }
    }

    /// Removes every type of the edge between the two records, both directions.
    pub fn remove(
        &mut self,
        (from, from_id): (&'static str, u64),
        (to, to_id): (&'static str, u64),
        changes: &mut Vec<EdgeChange>,
    ) {
        let removed = self
            .edges
            .get_mut(&(from, from_id, to))
            .and_then(|m| m.remove(&to_id))
            .unwrap_or_default();
        if let Some(m) = self.edges.get_mut(&(to, to_id, from)) {
            m.remove(&from_id);
        }
        for type_id in removed {
            changes.push(EdgeChange {
                from,
                from_id,
                to,
                to_id,
                type_id,
                removed: true,
            });
        }
    }

    /// Every edge of one record, to every type: `(to type, to id, type ids)`.
    pub fn of(&self, from: &'static str, from_id: u64) -> Vec<(&'static str, u64, Vec<u32>)> {
        self.edges
            .range((from, from_id, "")..)
            .take_while(|((f, id, _), _)| *f == from && *id == from_id)
            .flat_map(|((_, _, to), m)| {
                m.iter()
                    .map(move |(to_id, types)| (*to, *to_id, types.iter().copied().collect()))
            })
            .collect()
    }

    /// Moves every edge of `from_id` to `onto_id` (a merge): the merged record's edges become
    /// the survivor's, with changes reported for both.
    pub fn repoint(
        &mut self,
        object_type: &'static str,
        from_id: u64,
        onto_id: u64,
        changes: &mut Vec<EdgeChange>,
    ) {
        for (to, to_id, types) in self.of(object_type, from_id) {
            self.remove((object_type, from_id), (to, to_id), changes);
            if to == object_type && to_id == onto_id {
                continue;
            }
            for type_id in types {
                self.add((object_type, onto_id), (to, to_id), type_id, changes);
            }
        }
    }

    fn associated(
        &self,
        from: &'static str,
        from_id: u64,
        to: &'static str,
    ) -> Vec<(u64, &BTreeSet<u32>)> {
        self.edges
            .get(&(from, from_id, to))
            .map(|m| m.iter().map(|(id, t)| (*id, t)).collect())
            .unwrap_or_default()
    }
}

/// HubSpot's name of an association type in webhooks: `CONTACT_TO_COMPANY`.
pub fn webhook_name(from: &str, to: &str) -> String {
    format!("{}_TO_{}", schema_of(from).singular, schema_of(to).singular).to_uppercase()
}

/// The canonical (plural) name of an object type named plural, singular, or by type id.
pub fn canonical(name: &str) -> Result<&'static str, ApiError> {
    let lower = name.to_ascii_lowercase();
    ObjectSchema::all()
        .into_iter()
        .find(|s| s.name == lower || s.singular == lower || s.type_id == lower)
        .map(|s| s.name)
        .ok_or_else(|| ApiError::unknown_object_type(name))
}

fn schema_of(name: &str) -> ObjectSchema {
    ObjectSchema::all()
        .into_iter()
        .find(|s| s.name == name)
        .expect("canonical names have schemas")
}

#[derive(Debug, Deserialize)]
pub struct Body<T> {
    pub inputs: Vec<T>,
}

#[derive(Debug, Deserialize)]
pub struct ReadInput {
    pub id: Value,
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Id {
    pub id: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeSpec {
    pub association_category: String,
    pub association_type_id: u32,
}

#[derive(Debug, Deserialize)]
pub struct CreateInput {
    pub from: Id,
    pub to: Id,
    #[serde(default)]
    pub types: Vec<TypeSpec>,
}

#[derive(Debug, Deserialize)]
pub struct ArchiveInput {
    pub from: Id,
    pub to: Vec<Id>,
}

fn id_of(v: &Value) -> Result<u64, ApiError> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| ApiError::validation(format!("Invalid object id {v}: ids are numeric.")))
}

fn check_count(n: usize) -> Result<(), ApiError> {
    if n > MAX_INPUTS {
        return Err(ApiError::validation(format!(
            "Too many inputs: {n}. The limit is {MAX_INPUTS} inputs per batch."
        )));
    }
    Ok(())
}

/// Whether the record exists (not archived) in the portal.
fn exists(store: &mut Store, object_type: &str, id: u64) -> Result<bool, ApiError> {
    let id = id.to_string();
    Ok(store.table(object_type)?.get(Key::Id(&id)).is_some())
}

fn emit(state: &Shared, portal: u64, edges: Vec<EdgeChange>) {
    state.emit(as_changes(portal, edges));
}

#[derive(Debug, Deserialize)]
pub struct InlineAssociation {
    pub to: Id,
    pub types: Vec<TypeSpec>,
}

/// The `associations` of an object create (`[{to: {id}, types: [...]}]`), checked before the
/// record is made: HubSpot infers the other object type from each type id. Returns the edges
/// to add once the record exists, as `(to type, to id, type id)`.
pub fn check_inline(
    store: &mut Store,
    from: &'static str,
    inline: &[InlineAssociation],
) -> Result<Vec<(&'static str, u64, u32)>, ApiError> {
    let mut edges = Vec::new();
    for a in inline {
        let to_id = id_of(&a.to.id)?;
        for spec in &a.types {
            let to = store
                .associations
                .types
                .iter()
                .find(|t| {
                    t.from == from
                        && t.type_id == spec.association_type_id
                        && t.category == spec.association_category
                })
                .map(|t| t.to)
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "{} association type {} is not defined from {from}.",
                        spec.association_category, spec.association_type_id
                    ))
                })?;
            if !exists(store, to, to_id)? {
                return Err(ApiError::validation(format!(
                    "Cannot associate with {to} {to_id}: it does not exist."
                )));
            }
            edges.push((to, to_id, spec.association_type_id));
        }
    }
    Ok(edges)
}

/// Reports edge changes as webhook changes of their `from` record.
pub fn as_changes(portal: u64, edges: Vec<EdgeChange>) -> Vec<Change> {
    let at = now_ms();
    edges
        .into_iter()
        .map(|e| Change {
            portal_id: portal,
            object_type: e.from,
            singular: schema_of(e.from).singular,
            object_id: e.from_id,
            occurred_ms: at,
            kind: ChangeKind::Association(e),
        })
        .collect()
}

/// `POST …/{from}/{to}/batch/read`.
pub async fn batch_read(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((from, to)): Path<(String, String)>,
    HsJson(body): HsJson<Body<ReadInput>>,
) -> Result<Response, ApiError> {
    let (from, to) = (canonical(&from)?, canonical(&to)?);
    check_count(body.inputs.len())?;
    let started = format_ms(now_ms());
    let store = state.store(portal);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &body.inputs {
        let id = id_of(&input.id)?;
        let after: usize = input
            .after
            .as_deref()
            .map(|a| {
                a.parse().map_err(|_| {
                    ApiError::validation(format!("after must be a paging cursor, got '{a}'."))
                })
            })
            .transpose()?
            .unwrap_or(0);
        let all = store.associations.associated(from, id, to);
        if all.is_empty() {
            errors.push(json!({
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                "message": format!("No {} is associated with {} {id}.", schema_of(to).singular, schema_of(from).singular),
                "context": {"fromObjectId": [id.to_string()]},
                "errors": [],
                "links": {},
            }));
            continue;
        }
        let page: Vec<Value> = all
            .iter()
            .skip(after)
            .take(PAGE)
            .map(|(to_id, types)| {
                let types: Vec<Value> = types
                    .iter()
                    .filter_map(|t| store.associations.get_type(from, to, *t))
                    .map(AssociationType::json)
                    .collect();
                json!({"toObjectId": to_id, "associationTypes": types})
            })
            .collect();
        let mut result = json!({"from": {"id": id.to_string()}, "to": page});
        if all.len() > after + PAGE {
            result["paging"] = json!({"next": {"after": (after + PAGE).to_string()}});
        }
        results.push(result);
    }
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": format_ms(now_ms()),
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        answer["numErrors"] = json!(errors.len());
        answer["errors"] = Value::Array(errors);
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(answer)).into_response())
}

/// `POST …/{from}/{to}/batch/create`: labelled edges. All-or-nothing: an unknown type or a
/// missing record refuses the batch.
pub async fn batch_create(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((from, to)): Path<(String, String)>,
    HsJson(body): HsJson<Body<CreateInput>>,
) -> Result<Response, ApiError> {
    let (from, to) = (canonical(&from)?, canonical(&to)?);
    check_count(body.inputs.len())?;
    let mut planned = Vec::new();
    let mut store = state.store(portal);
    for input in &body.inputs {
        let (from_id, to_id) = (id_of(&input.from.id)?, id_of(&input.to.id)?);
        for (t, id) in [(from, from_id), (to, to_id)] {
            if !exists(&mut store, t, id)? {
                return Err(ApiError::object_not_found(&id.to_string()));
            }
        }
        if input.types.is_empty() {
            return Err(ApiError::validation(
                "Each input needs at least one association type (types[]).",
            ));
        }
        for spec in &input.types {
            let known = store
                .associations
                .get_type(from, to, spec.association_type_id)
                .filter(|t| t.category == spec.association_category);
            if known.is_none() {
                return Err(ApiError::validation(format!(
                    "{} association type {} is not defined from {from} to {to}.",
                    spec.association_category, spec.association_type_id
                )));
            }
            planned.push((from_id, to_id, spec.association_type_id));
        }
    }
    let mut changes = Vec::new();
    for (from_id, to_id, type_id) in &planned {
        store
            .associations
            .add((from, *from_id), (to, *to_id), *type_id, &mut changes);
    }
    let results: Vec<Value> = body
        .inputs
        .iter()
        .filter_map(|input| {
            let (f, t) = (id_of(&input.from.id).ok()?, id_of(&input.to.id).ok()?);
            let labels: Vec<Value> = store
                .associations
                .associated(from, f, to)
                .into_iter()
                .find(|(id, _)| *id == t)
                .map(|(_, types)| {
                    types
                        .iter()
                        .filter_map(|ty| store.associations.get_type(from, to, *ty))
                        .filter_map(|ty| ty.label.clone().map(Value::String))
                        .collect()
                })
                .unwrap_or_default();
            Some(json!({
                "fromObjectTypeId": schema_of(from).type_id,
                "fromObjectId": f,
                "toObjectTypeId": schema_of(to).type_id,
                "toObjectId": t,
                "labels": labels,
            }))
        })
        .collect();
    drop(store);
    emit(&state, portal, changes);
    Ok((
        StatusCode::CREATED,
        Json(json!({"status": "COMPLETE", "results": results,
            "startedAt": format_ms(now_ms()), "completedAt": format_ms(now_ms())})),
    )
        .into_response())
}

/// `POST …/{from}/{to}/batch/associate/default`: the pair's unlabelled type.
pub async fn batch_default(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((from, to)): Path<(String, String)>,
    HsJson(body): HsJson<Body<CreateInput>>,
) -> Result<Response, ApiError> {
    let (from, to) = (canonical(&from)?, canonical(&to)?);
    check_count(body.inputs.len())?;
    let mut store = state.store(portal);
    let Some(type_id) = store.associations.default_type(from, to) else {
        return Err(ApiError::validation(format!(
            "There is no default association from {from} to {to}."
        )));
    };
    let mut pairs = Vec::new();
    for input in &body.inputs {
        let (from_id, to_id) = (id_of(&input.from.id)?, id_of(&input.to.id)?);
        for (t, id) in [(from, from_id), (to, to_id)] {
            if !exists(&mut store, t, id)? {
                return Err(ApiError::object_not_found(&id.to_string()));
            }
        }
        pairs.push((from_id, to_id));
    }
    let mut changes = Vec::new();
    let results: Vec<Value> = pairs
        .iter()
        .map(|(f, t)| {
            store
                .associations
                .add((from, *f), (to, *t), type_id, &mut changes);
            json!({"from": {"id": f.to_string()}, "to": {"id": t.to_string()},
                   "associationSpec": {"associationCategory": HUBSPOT_DEFINED, "associationTypeId": type_id}})
        })
        .collect();
    drop(store);
    emit(&state, portal, changes);
    Ok(Json(json!({"status": "COMPLETE", "results": results,
        "startedAt": format_ms(now_ms()), "completedAt": format_ms(now_ms())}))
    .into_response())
}

/// `POST …/{from}/{to}/batch/archive`: removes every type of each edge.
pub async fn batch_archive(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((from, to)): Path<(String, String)>,
    HsJson(body): HsJson<Body<ArchiveInput>>,
) -> Result<StatusCode, ApiError> {
    let (from, to) = (canonical(&from)?, canonical(&to)?);
    check_count(body.inputs.len())?;
    let mut pairs = Vec::new();
    for input in &body.inputs {
        let from_id = id_of(&input.from.id)?;
        for to_id in &input.to {
            pairs.push((from_id, id_of(&to_id.id)?));
        }
    }
    let mut changes = Vec::new();
    {
        let mut store = state.store(portal);
        for (f, t) in pairs {
            store.associations.remove((from, f), (to, t), &mut changes);
        }
    }
    emit(&state, portal, changes);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/{from}/{to}/labels`.
pub async fn labels(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((from, to)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (canonical(&from)?, canonical(&to)?);
    let store = state.store(portal);
    let results: Vec<Value> = store
        .associations
        .types(from, to)
        .map(AssociationType::json)
        .collect();
    Ok(Json(json!({ "results": results })))
}

#[derive(Debug, Deserialize)]
pub struct LabelBody {
    pub label: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub name: Option<String>,
}

/// `POST …/{from}/{to}/labels`: a `USER_DEFINED` label, both directions.
pub async fn create_label(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((from, to)): Path<(String, String)>,
    HsJson(body): HsJson<LabelBody>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (canonical(&from)?, canonical(&to)?);
    let label = body.label.trim();
    if label.is_empty() {
        return Err(ApiError::validation("label must not be empty."));
    }
    let mut store = state.store(portal);
    if store
        .associations
        .types(from, to)
        .any(|t| t.label.as_deref() == Some(label))
    {
        return Err(ApiError::validation(format!(
            "A label named '{label}' already exists from {from} to {to}."
        )));
    }
    let type_id = store.associations.create_label(from, to, label);
    Ok(Json(json!({"results": [
        {"category": USER_DEFINED, "typeId": type_id, "label": label}
    ]})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_and_its_inverse_are_written_and_removed_together() {
        let mut a = Associations::default();
        let mut changes = Vec::new();
        a.add(("deals", 7), ("companies", 9), 5, &mut changes);
        a.add(("deals", 7), ("companies", 9), 341, &mut changes);
        a.add(("deals", 7), ("companies", 9), 341, &mut changes);
        assert_eq!(changes.len(), 2, "a type already on the edge is no change");
        assert_eq!(a.of("companies", 9), vec![("deals", 7, vec![6, 342])]);
        a.remove(("companies", 9), ("deals", 7), &mut changes);
        assert!(a.of("deals", 7).is_empty());
        assert!(changes[2..].iter().all(|c| c.removed));
    }

    #[test]
    fn repointing_moves_every_edge_to_the_survivor() {
        let mut a = Associations::default();
        let mut changes = Vec::new();
        a.add(("contacts", 1), ("companies", 9), 279, &mut changes);
        a.add(("deals", 5), ("contacts", 1), 3, &mut changes);
        a.repoint("contacts", 1, 2, &mut changes);
        assert!(a.of("contacts", 1).is_empty());
        assert_eq!(
            a.of("contacts", 2),
            vec![("companies", 9, vec![279]), ("deals", 5, vec![4])]
        );
        assert_eq!(a.of("deals", 5), vec![("contacts", 2, vec![3])]);
    }

    #[test]
    fn object_types_are_named_plural_singular_or_by_type_id() {
        assert_eq!(canonical("deals").unwrap(), "deals");
        assert_eq!(canonical("Line_item").unwrap(), "line_items");
        assert_eq!(canonical("0-3").unwrap(), "deals");
        assert!(canonical("tickets").is_err());
    }
}
