//! Batch upsert of any object type by a unique-value property (`email`, or a custom property
//! created with `hasUniqueValue`, such as the product's user id), the default association of
//! upserted records, and the creation of the custom properties the app writes.

use std::collections::{BTreeMap, HashMap};

use reqwest::Method;
use serde_json::{json, Value};

use super::limiter::Permit;
use super::{Bucket, HubSpotClient, HubSpotError};
use crate::domain::object::ObjectType;

/// The outcome of upserting one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub id: String,
    /// The id property's value it was upserted by.
    pub key: String,
    pub created: bool,
}

/// A custom property the app needs on a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProperty {
    pub name: String,
    pub label: String,
    /// `string`, `number`, `datetime`, `enumeration`, `bool`.
    pub kind: String,
    pub options: Vec<String>,
    pub unique: bool,
}

impl NewProperty {
    fn field_type(&self) -> &'static str {
        match self.kind.as_str() {
            "number" => "number",
            "datetime" | "date" => "date",
            "enumeration" => "select",
            "bool" => "booleancheckbox",
            _ => "text",
        }
    }
}

impl HubSpotClient {
    /// `POST …/{type}/batch/upsert` by `id_property` (≤ 100 inputs; idempotent, so retried like
    /// a read). Each input's outcome in order: `Err` with HubSpot's message for one it refused.
    pub async fn upsert_objects(
        &self,
        reserved: Option<Permit<'_>>,
        object_type: ObjectType,
        id_property: &str,
        inputs: &[(String, BTreeMap<String, String>)],
    ) -> Result<Vec<Result<Upserted, String>>, HubSpotError> {
        assert!(
            inputs.len() <= 100,
            "HubSpot takes at most 100 inputs per batch"
        );
        let body = json!({
            "inputs": inputs.iter().map(|(key, properties)| json!({
                "id": key, "idProperty": id_property, "properties": properties,
            })).collect::<Vec<_>>(),
        });
        let value = self
            .call_reserved(
                reserved,
                Method::POST,
                &self.paths.batch(object_type.as_str(), "upsert"),
                &[],
                Some(&body),
                Bucket::General,
                true,
            )
            .await?;
        let mut done: HashMap<String, Upserted> = HashMap::new();
        for r in value["results"].as_array().into_iter().flatten() {
            let (Some(id), Some(key)) = (r["id"].as_str(), r["properties"][id_property].as_str())
            else {
                return Err(HubSpotError::Decode(format!(
                    "upsert result without id or {id_property}: {r}"
                )));
            };
            done.insert(
                key.trim().to_lowercase(),
                Upserted {
                    id: id.into(),
                    key: key.into(),
                    created: r["new"].as_bool().unwrap_or(false),
                },
            );
        }
        let mut refused: HashMap<String, String> = HashMap::new();
        for e in value["errors"].as_array().into_iter().flatten() {
            let message = e["message"]
                .as_str()
                .unwrap_or("refused by HubSpot")
                .to_string();
            for id in e["context"]["id"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                refused.insert(id.trim().to_lowercase(), message.clone());
            }
        }
        Ok(inputs
            .iter()
            .map(|(key, _)| {
                let key = key.trim().to_lowercase();
                done.remove(&key).ok_or_else(|| {
                    refused
                        .remove(&key)
                        .unwrap_or_else(|| "HubSpot did not report this input".into())
                })
            })
            .collect())
    }

    /// `POST /crm/associations/{version}/{from}/{to}/batch/associate/default`: the pair's
    /// unlabelled association for each `(from id, to id)`, 100 a call (idempotent: an edge
    /// that exists stays one edge).
    pub async fn associate_default(
        &self,
        from: ObjectType,
        to: ObjectType,
        pairs: &[(String, String)],
    ) -> Result<(), HubSpotError> {
        for chunk in pairs.chunks(100) {
            let body = json!({
                "inputs": chunk.iter().map(|(f, t)| json!({"from": {"id": f}, "to": {"id": t}})).collect::<Vec<_>>(),
            });
            self.call(
                Method::POST,
                &self
                    .paths
                    .associations(from.as_str(), to.as_str(), "batch/associate/default"),
                &[],
                Some(&body),
                Bucket::General,
                true,
            )
            .await?;
        }
        Ok(())
    }

    /// `POST /crm/properties/{version}/{type}`: creates a custom property. A name another
    /// process created meanwhile (HubSpot's 409) is success.
    pub async fn create_property(
        &self,
        object_type: ObjectType,
        property: &NewProperty,
    ) -> Result<(), HubSpotError> {
        let mut body = json!({
            "name": property.name,
            "label": property.label,
            "type": property.kind,
            "fieldType": property.field_type(),
            // The type's own default group (`companyinformation` for a company property).
            "groupName": format!("{}information", object_type.singular()),
            "hasUniqueValue": property.unique,
        });
        if !property.options.is_empty() {
            body["options"] = property
                .options
                .iter()
                .enumerate()
                .map(|(i, o)| json!({"label": o, "value": o, "displayOrder": i}))
                .collect();
        }
        match self
            .call(
                Method::POST,
                &self.paths.properties(object_type.as_str()),
                &[],
                Some(&body),
                Bucket::General,
                false,
            )
            .await
        {
            Err(HubSpotError::Api { status: 409, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
