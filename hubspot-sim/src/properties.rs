//! HubSpot's properties API, read side: the definition of every property an object type has
//! (`GET /crm/properties/2026-03/{objectType}` and one by name; the legacy
//! `/crm/v3/properties/...` paths answer the same). The definitions follow the object schemas
//! of [`crate::model`], so what the API lists is exactly what writes accept. Custom properties
//! and value-type enforcement on writes come next (issue 13).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::model::{ObjectSchema, READ_ONLY};
use crate::state::Shared;

/// A property's value type and form field, as HubSpot names them.
fn kind(schema: &ObjectSchema, name: &str) -> (&'static str, &'static str) {
    if schema.is_datetime(name) {
        return ("datetime", "date");
    }
    match name {
        "date_of_birth" => ("date", "date"),
        "hs_object_id" | "amount" | "annualrevenue" | "numemployees" | "numberofemployees" => {
            ("number", "number")
        }
        "lifecyclestage" | "hs_lead_status" | "dealstage" | "pipeline" | "dealtype"
        | "hs_priority" | "industry" | "type" | "hubspot_owner_id" => ("enumeration", "select"),
        "description" | "message" | "address" => ("string", "textarea"),
        "phone" | "mobilephone" | "fax" => ("string", "phonenumber"),
        _ => ("string", "text"),
    }
}

/// Every property of `schema`: its writable ones and those the API maintains.
pub fn names(schema: &ObjectSchema) -> Vec<String> {
    let mut names: Vec<String> = schema.writable.iter().cloned().collect();
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
    json!({
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "description": "",
        "groupName": format!("{}information", schema.singular),
        "options": [],
        "displayOrder": -1,
        "calculated": false,
        "externalOptions": false,
        "hasUniqueValue": schema.unique_property == Some(name),
        "hidden": false,
        "hubspotDefined": true,
        "formField": !read_only,
        "modificationMetadata": {
            "archivable": false,
            "readOnlyDefinition": true,
            "readOnlyValue": read_only,
        },
        "createdAt": "2019-08-06T02:41:52.000Z",
        "updatedAt": "2019-08-06T02:41:52.000Z",
        "archived": false,
    })
}

fn schema_of(object_type: &str) -> Result<ObjectSchema, ApiError> {
    ObjectSchema::all()
        .into_iter()
        .find(|s| s.name == object_type)
        .ok_or_else(|| ApiError::unknown_object_type(object_type))
}

/// `GET /crm/properties/2026-03/{objectType}`: `{"results": [definition, ...]}`.
pub async fn list(
    State(_state): State<Shared>,
    Path(object_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let schema = schema_of(&object_type)?;
    let results: Vec<Value> = names(&schema)
        .iter()
        .map(|n| definition(&schema, n))
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// `GET /crm/properties/2026-03/{objectType}/{propertyName}`: one definition, or 404.
pub async fn get(
    State(_state): State<Shared>,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let schema = schema_of(&object_type)?;
    if !schema.knows(&name) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("Unable to find property with name '{name}' for object type '{object_type}'"),
        ));
    }
    Ok(Json(definition(&schema, &name)))
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
