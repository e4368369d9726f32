//! HubSpot's custom events (`/events/{version}/…`): the app's event definitions, and
//! occurrences sent in batches of up to 500, each with a uuid so a resend is a no-op.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use super::limiter::Permit;
use super::{Bucket, HubSpotClient, HubSpotError};

/// HubSpot's limit on one `send/batch`.
pub const MAX_OCCURRENCES: usize = 500;

/// One occurrence of a custom event on a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// The definition's short name (`nova_earned`); the fully qualified one is HubSpot's.
    pub name: String,
    pub contact_id: String,
    pub uuid: String,
    /// RFC 3339.
    pub occurred_at: String,
    pub properties: serde_json::Map<String, Value>,
}

impl HubSpotClient {
    /// The names of the portal's event definitions, and its hub id's prefix (`pe{hubId}_`)
    /// as their fully qualified names show it.
    pub async fn event_definitions(
        &self,
    ) -> Result<(BTreeSet<String>, Option<String>), HubSpotError> {
        let value = self
            .call(
                Method::GET,
                &self.paths.events("event-definitions"),
                &[],
                None,
                Bucket::General,
                true,
            )
            .await?;
        let mut names = BTreeSet::new();
        let mut prefix = None;
        for d in value["results"].as_array().into_iter().flatten() {
            let (Some(name), Some(full)) = (d["name"].as_str(), d["fullyQualifiedName"].as_str())
            else {
                continue;
            };
            prefix = full.strip_suffix(name).map(str::to_string);
            names.insert(name.to_string());
        }
        Ok((names, prefix))
    }

    /// `POST …/event-definitions` on contacts, with string-typed `properties`. Returns the
    /// fully qualified name; a definition another process created meanwhile (409) is read.
    pub async fn create_event_definition(
        &self,
        name: &str,
        label: &str,
        properties: &[&str],
    ) -> Result<String, HubSpotError> {
        let body = json!({
            "label": label,
            "name": name,
            "primaryObject": "CONTACT",
            "propertyDefinitions": properties.iter().map(|p| json!({"name": p, "label": p, "type": "string"})).collect::<Vec<_>>(),
        });
        match self
            .call(
                Method::POST,
                &self.paths.events("event-definitions"),
                &[],
                Some(&body),
                Bucket::General,
                false,
            )
            .await
        {
            Ok(v) => v["fullyQualifiedName"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    HubSpotError::Decode(format!(
                        "event definition without fullyQualifiedName: {v}"
                    ))
                }),
            Err(HubSpotError::Api { status: 409, .. }) => {
                let v = self
                    .call(
                        Method::GET,
                        &self.paths.events(&format!("event-definitions/{name}")),
                        &[],
                        None,
                        Bucket::General,
                        true,
                    )
                    .await?;
                Ok(v["fullyQualifiedName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string())
            }
            Err(e) => Err(e),
        }
    }

    /// `POST …/send/batch` (≤ 500): idempotent by each occurrence's uuid, so retried like a read.
    /// `prefix` is the portal's `pe{hubId}_`.
    pub async fn send_occurrences(
        &self,
        reserved: Option<Permit<'_>>,
        prefix: &str,
        occurrences: &[Occurrence],
    ) -> Result<(), HubSpotError> {
        assert!(occurrences.len() <= MAX_OCCURRENCES);
        let body = json!({
            "inputs": occurrences.iter().map(|o| json!({
                "eventName": format!("{prefix}{}", o.name),
                "objectId": o.contact_id,
                "uuid": o.uuid,
                "occurredAt": o.occurred_at,
                "properties": o.properties,
            })).collect::<Vec<_>>(),
        });
        self.call_reserved(
            reserved,
            Method::POST,
            &self.paths.events("send/batch"),
            &[],
            Some(&body),
            Bucket::General,
            true,
        )
        .await
        .map(|_| ())
    }
}
