//! HubSpot's contacts endpoints: batch upsert by email, read by id or email; search and the
//! paged listing through the generic ones of [`super::objects`]. Each goes through the client's one send loop (`call`).

use reqwest::Method;
use serde_json::Value;

use super::limiter::Permit;
use super::objects::Page;
use super::{Bucket, HubSpotClient, HubSpotError};
use crate::domain::object::ObjectType;

/// The outcome of upserting one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub id: String,
    pub email: String,
    pub created: bool,
}

impl HubSpotClient {
    /// Batch upsert by email (≤ 100 per call; idempotent, so retried like a read). Inputs that
    /// HubSpot refused come back as errors in the same order of appearance.
    pub async fn upsert_contacts(
        &self,
        contacts: &[crate::domain::contact::ContactInput],
    ) -> Result<Vec<Result<Upserted, String>>, HubSpotError> {
        self.upsert_contacts_with(None, contacts).await
    }

    /// [`upsert_contacts`](Self::upsert_contacts) on a slot taken by [`reserve`](Self::reserve).
    pub async fn upsert_contacts_with(
        &self,
        reserved: Option<Permit<'_>>,
        contacts: &[crate::domain::contact::ContactInput],
    ) -> Result<Vec<Result<Upserted, String>>, HubSpotError> {
        assert!(
            contacts.len() <= 100,
            "HubSpot takes at most 100 inputs per batch"
        );
        let inputs: Vec<Value> = contacts
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.email.as_str(),
                    "idProperty": "email",
                    "properties": c.properties,
                })
            })
            .collect();
        let body = serde_json::json!({ "inputs": inputs });
        let value = self
            .call_reserved(
                reserved,
                Method::POST,
                &self.paths.batch("contacts", "upsert"),
                &[],
                Some(&body),
                Bucket::General,
                true,
            )
            .await?;
        let mut done: std::collections::HashMap<String, Upserted> =
            std::collections::HashMap::new();
        for r in value["results"].as_array().into_iter().flatten() {
            let (Some(id), Some(email)) = (r["id"].as_str(), r["properties"]["email"].as_str())
            else {
                return Err(HubSpotError::Decode(format!(
                    "upsert result without id or email: {r}"
                )));
            };
            let created = r["new"].as_bool().unwrap_or(false);
            done.insert(
                email.to_lowercase(),
                Upserted {
                    id: id.into(),
                    email: email.into(),
                    created,
                },
            );
        }
        let mut refused: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
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
                refused.insert(id.to_lowercase(), message.clone());
            }
        }
        Ok(contacts
            .iter()
            .map(|c| {
                done.remove(c.email.as_str()).ok_or_else(|| {
                    refused
                        .remove(c.email.as_str())
                        .unwrap_or_else(|| "HubSpot did not report this input".into())
                })
            })
            .collect())
    }
}

impl HubSpotClient {
    /// `GET …/contacts/{email}?idProperty=email`; `None` for HubSpot's 404.
    pub async fn contact_by_email(
        &self,
        email: &crate::domain::contact::Email,
    ) -> Result<Option<Value>, HubSpotError> {
        self.get_contact(email.as_str(), Some("email")).await
    }

    /// `GET …/contacts/{id}`; `None` for HubSpot's 404 (deleted or never existed).
    pub async fn contact_by_id(&self, id: &str) -> Result<Option<Value>, HubSpotError> {
        self.get_contact(id, None).await
    }

    async fn get_contact(
        &self,
        key: &str,
        id_property: Option<&str>,
    ) -> Result<Option<Value>, HubSpotError> {
        let properties: Vec<&str> = crate::domain::contact::READ_PROPERTIES.split(',').collect();
        self.get_object(ObjectType::Contacts, key, id_property, &properties)
            .await
    }

    /// `POST …/contacts/search`, held to the search budget (5/s).
    pub async fn search_contacts(&self, request: &Value) -> Result<Value, HubSpotError> {
        self.search_objects(ObjectType::Contacts, request).await
    }

    /// `GET …/contacts?limit=100&after=…`: one page of the full listing.
    pub async fn list_contacts(&self, after: Option<&str>) -> Result<Page, HubSpotError> {
        let properties: Vec<&str> = crate::domain::contact::READ_PROPERTIES.split(',').collect();
        self.list_objects(ObjectType::Contacts, &properties, after, false)
            .await
    }
}
