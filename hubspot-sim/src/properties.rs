//! HubSpot's properties API: the definition of every property an object type has
//! (`GET /crm/properties/2026-03/{objectType}` and one by name; the legacy
//! `/crm/v3/properties/...` paths answer the same). The definitions follow the object schemas
//! of [`crate::model`] plus the portal's custom properties, so what the API lists is exactly
//! what writes accept. `POST` creates a custom property; [`check_value`] enforces each
//! property's value type on writes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, PropertyProblem};
use crate::model::{CustomProperty, ObjectSchema, READ_ONLY};
use crate::state::{HsJson, Portal, Shared};

/// A property's value type and form field, as HubSpot names them.
fn kind(schema: &ObjectSchema, name: &str) -> (&'static str, String) {
    if let Some(c) = schema.custom.get(name) {
        return (c.kind, c.field_type.clone());
    }
    let (kind, field) = builtin_kind(schema, name);
    (kind, field.to_string())
}

fn builtin_kind(schema: &ObjectSchema, name: &str) -> (&'static str, &'static str) {
    if schema.is_datetime(name) {
        return ("datetime", "date");
    }
    match name {
        "date_of_birth" => ("date", "date"),
        "hs_object_id" | "amount" | "annualrevenue" | "numemployees" | "numberofemployees"
        | "quantity" | "price" | "discount" | "hs_call_duration" => ("number", "number"),
        "lifecyclestage"
        | "hs_lead_status"
        | "dealstage"
        | "pipeline"
        | "dealtype"
        | "hs_priority"
        | "industry"
        | "type"
        | "hubspot_owner_id"
        | "deal_currency_code"
        | "hs_line_item_currency_code"
        | "hs_call_direction"
        | "hs_call_status"
        | "hs_email_direction"
        | "hs_email_status"
        | "hs_meeting_outcome"
        | "hs_task_status"
        | "hs_task_priority"
        | "hs_task_type" => ("enumeration", "select"),
        "description" | "message" | "address" | "hs_note_body" | "hs_call_body"
        | "hs_email_text" | "hs_meeting_body" | "hs_task_body" => ("string", "textarea"),
        "phone" | "mobilephone" | "fax" => ("string", "phonenumber"),
        _ => ("string", "text"),
    }
}

/// Every property of `schema`: its writable ones and those the API maintains.
pub fn names(schema: &ObjectSchema) -> Vec<String> {
    let mut names: Vec<String> = schema
        .writable
        .iter()
        .chain(schema.custom.keys())
        .cloned()
        .collect();
    for maintained in READ_ONLY
        .iter()
        .chain(std::iter::once(&schema.last_modified_property))
    {
        if schema.knows(maintained) && !names.iter().any(|n| n == maintained) {
            names.push(maintained.to_string());
        }
    }
    names.sort();
    names
}

/// The definition HubSpot returns for `name` on `schema`.
pub fn definition(schema: &ObjectSchema, name: &str) -> Value {
    let (kind, field_type) = kind(schema, name);
    let read_only = READ_ONLY.contains(&name) || name == schema.last_modified_property;
    let label: String = name
        .split('_')
        .filter(|w| !w.is_empty() && *w != "hs")
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let custom = schema.custom.get(name);
    let options: Vec<Value> = custom
        .map(|c| {
            c.options
                .iter()
                .enumerate()
                .map(|(i, (label, value))| {
                    json!({"label": label, "value": value, "displayOrder": i, "hidden": false})
                })
                .collect()
        })
        .unwrap_or_default();
    let created = custom.map_or_else(
        || "2019-08-06T02:41:52.000Z".to_string(),
        |c| crate::model::format_ms(c.created_ms),
    );
    json!({
        "name": name,
        "label": custom.map_or(label, |c| c.label.clone()),
        "type": kind,
        "fieldType": field_type,
        "description": "",
        "groupName": custom.map_or_else(|| format!("{}information", schema.singular), |c| c.group_name.clone()),
        "options": options,
        "displayOrder": -1,
        "calculated": false,
        "externalOptions": false,
        "hasUniqueValue": schema.unique_property == Some(name) || custom.is_some_and(|c| c.unique),
        "hidden": false,
        "hubspotDefined": custom.is_none(),
        "formField": !read_only,
        "modificationMetadata": {
            "archivable": custom.is_some(),
            "readOnlyDefinition": custom.is_none(),
            "readOnlyValue": read_only,
        },
        "createdAt": created,
        "updatedAt": created,
        "archived": false,
    })
}

/// Checks a (non-empty) value against its property's type, as HubSpot does on writes:
/// numbers, dates, datetimes and booleans must parse; an enumeration with options takes only
/// one of their values (`;`-separated for checkboxes).
pub fn check_value(schema: &ObjectSchema, name: &str, value: &str) -> Option<PropertyProblem> {
    if value.is_empty() {
        return None;
    }
    let problem = |code: &'static str, what: &str| {
        Some(PropertyProblem {
            name: name.to_string(),
            code,
            message: format!("{value} was not a valid {what} for {name}"),
        })
    };
    let (kind, field_type) = kind(schema, name);
    match kind {
        "number" if value.trim().parse::<f64>().map_or(true, |n| !n.is_finite()) => {
            problem("INVALID_DECIMAL", "number")
        }
        "datetime" if crate::model::parse_datetime_ms(value).is_none() => {
            problem("INVALID_DATETIME", "datetime")
        }
        "date" if crate::model::parse_datetime_ms(value).is_none_or(|ms| ms % 86_400_000 != 0) => {
            problem("INVALID_DATE", "date (midnight UTC)")
        }
        "bool" if !matches!(value, "true" | "false") => problem("INVALID_BOOLEAN", "boolean"),
        "enumeration" => {
            let options = &schema.custom.get(name)?.options;
            let ok = |v: &str| options.iter().any(|(_, o)| o == v);
            let fine = if field_type == "checkbox" {
                value.split(';').all(ok)
            } else {
                ok(value)
            };
            if fine {
                None
            } else {
                problem("INVALID_OPTION", "option")
            }
        }
        _ => None,
    }
}

#[cfg(test)]
fn schema_of(object_type: &str) -> Result<ObjectSchema, ApiError> {
    ObjectSchema::all()
        .into_iter()
        .find(|s| s.name == object_type)
        .ok_or_else(|| ApiError::unknown_object_type(object_type))
}

/// The portal's schema of a type (its custom properties included).
fn portal_schema(state: &Shared, portal: u64, object_type: &str) -> Result<ObjectSchema, ApiError> {
    let canonical = crate::associations::canonical(object_type)?;
    Ok(state.store(portal).table(canonical)?.schema.clone())
}

/// `GET /crm/properties/2026-03/{objectType}`: `{"results": [definition, ...]}`.
pub async fn list(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(object_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let schema = portal_schema(&state, portal, &object_type)?;
    let results: Vec<Value> = names(&schema)
        .iter()
        .map(|n| definition(&schema, n))
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// `GET /crm/properties/2026-03/{objectType}/{propertyName}`: one definition, or 404.
pub async fn get(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let schema = portal_schema(&state, portal, &object_type)?;
    if !schema.knows(&name) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("Unable to find property with name '{name}' for object type '{object_type}'"),
        ));
    }
    Ok(Json(definition(&schema, &name)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewProperty {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub field_type: String,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub options: Vec<NewOption>,
    /// No two records may share a value; usable as `idProperty` (string and number only).
    #[serde(default)]
    pub has_unique_value: bool,
}

#[derive(Debug, Deserialize)]
pub struct NewOption {
    pub label: String,
    pub value: String,
}

/// Which form fields each value type may use.
const FIELD_TYPES: &[(&str, &[&str])] = &[
    (
        "string",
        &["text", "textarea", "phonenumber", "html", "file"],
    ),
    ("number", &["number", "calculation_equation"]),
    ("date", &["date"]),
    ("datetime", &["date"]),
    (
        "enumeration",
        &["select", "radio", "checkbox", "booleancheckbox"],
    ),
    ("bool", &["booleancheckbox"]),
];

/// `POST /crm/properties/2026-03/{objectType}`: a custom property, usable in writes at once.
/// 409 when the name is taken; 400 naming what is wrong with the definition.
pub async fn create(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    Path(object_type): Path<String>,
    HsJson(body): HsJson<NewProperty>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let canonical = crate::associations::canonical(&object_type)?;
    let name = body.name.trim();
    if name.is_empty()
        || name.len() > 100
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ApiError::validation(format!(
            "Property name '{name}' is invalid: use lowercase letters, digits and underscores, starting with a letter."
        )));
    }
    let Some((kind, fields)) = FIELD_TYPES.iter().find(|(k, _)| *k == body.kind) else {
        return Err(ApiError::validation(format!(
            "Property type '{}' is invalid: use string, number, date, datetime, enumeration or bool.",
            body.kind
        )));
    };
    if !fields.contains(&body.field_type.as_str()) {
        return Err(ApiError::validation(format!(
            "fieldType '{}' cannot be used with type '{kind}': use one of {}.",
            body.field_type,
            fields.join(", ")
        )));
    }
    if *kind == "enumeration" && body.options.is_empty() {
        return Err(ApiError::validation(
            "An enumeration property needs options: [{label, value}].",
        ));
    }
    if body.has_unique_value && !matches!(*kind, "string" | "number") {
        return Err(ApiError::validation(format!(
            "hasUniqueValue cannot be used with type '{kind}': only string and number properties can be unique."
        )));
    }
    let mut store = state.store(portal);
    let table = store.table(canonical)?;
    if table.schema.knows(name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("A property named '{name}' already exists on {canonical}."),
        ));
    }
    let property = CustomProperty {
        label: body.label.clone(),
        kind,
        field_type: body.field_type.clone(),
        group_name: body
            .group_name
            .clone()
            .unwrap_or_else(|| format!("{}information", table.schema.singular)),
        options: body
            .options
            .iter()
            .map(|o| (o.label.clone(), o.value.clone()))
            .collect(),
        created_ms: crate::model::now_ms(),
        unique: body.has_unique_value,
    };
    table.schema.custom.insert(name.to_string(), property);
    if body.has_unique_value {
        table.add_unique_property(name);
    }
    Ok((StatusCode::CREATED, Json(definition(&table.schema, name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str) -> ObjectSchema {
        schema_of(name).unwrap()
    }

    #[test]
    fn every_writable_and_maintained_property_is_listed_once_with_its_type() {
        let deals = schema("deals");
        let listed = names(&deals);
        for w in &deals.writable {
            assert!(listed.contains(w), "{w}");
        }
        assert!(listed.contains(&"hs_lastmodifieddate".to_string()));
        assert!(listed.contains(&"hs_object_id".to_string()));
        let mut unique = listed.clone();
        unique.dedup();
        assert_eq!(unique, listed);
        assert!(
            listed.iter().all(|n| deals.knows(n)),
            "only what writes accept"
        );
        let amount = definition(&deals, "amount");
        assert_eq!(
            (amount["type"].as_str(), amount["fieldType"].as_str()),
            (Some("number"), Some("number"))
        );
        let closedate = definition(&deals, "closedate");
        assert_eq!(closedate["type"], "datetime");
        let modified = definition(&deals, "hs_lastmodifieddate");
        assert_eq!(modified["modificationMetadata"]["readOnlyValue"], true);
        assert_eq!(
            definition(&schema("contacts"), "email")["hasUniqueValue"],
            true
        );
        assert_eq!(definition(&deals, "dealname")["label"], "Dealname");
    }

    #[test]
    fn an_unknown_type_is_refused() {
        assert!(schema_of("widgets").is_err());
    }
}
