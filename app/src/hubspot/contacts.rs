//! HubSpot's contacts endpoints: batch upsert by email, read by id or email; search and the
//! paged listing through the generic ones of [`super::objects`]. Each goes through the client's one send loop (`call`).

use serde_json::Value;

use reqwest::Method;

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
        let inputs: Vec<(String, std::collections::BTreeMap<String, String>)> = contacts
            .iter()
            .map(|c| {
                let properties = c
                    .properties
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect();
                (c.email.as_str().to_string(), properties)
            })
            .collect();
        Ok(self
            .upsert_objects(reserved, ObjectType::Contacts, "email", &inputs)
            .await?
            .into_iter()
            .map(|r| {
                r.map(|u| Upserted {
                    id: u.id,
                    email: u.key,
                    created: u.created,
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

    /// `POST …/contacts/gdpr-delete`: deletes a contact for good (HubSpot's GDPR delete), by
    /// its id or, with `by_email`, its email. A contact HubSpot no longer has (404) is done.
    /// Idempotent (a second delete is a 404), so retried like a read.
    pub async fn gdpr_delete(&self, key: &str, by_email: bool) -> Result<(), HubSpotError> {
        let mut body = serde_json::json!({"objectId": key});
        if by_email {
            body["idProperty"] = "email".into();
        }
        match self
            .call(
                Method::POST,
                &self.paths.object("contacts", "gdpr-delete"),
                &[],
                Some(&body),
                Bucket::General,
                true,
            )
            .await
        {
            Err(HubSpotError::Api { status: 404, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
