//! HubSpot's search requests (`POST …/{type}/search`), built in one place: contacts by email
//! or phone (an exact filter) or by free text, and the sync walk's pages of any type.

use serde_json::{json, Value};

use crate::domain::contact::READ_PROPERTIES;

/// What to search contacts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactSearch {
    /// Exactly this (lower-cased) email.
    Email(String),
    /// Exactly this E.164 phone, as the cache stores it.
    Phone(String),
    /// HubSpot's free-text query (names, and phones in any stored format).
    Text(String),
    /// The outbound flow's free-text query, reading every searched property and when the
    /// contact was last contacted.
    Outbound(String),
}

impl ContactSearch {
    /// The request body, reading the properties this service shows, up to `limit` results
    /// (HubSpot allows 200).
    pub fn request(&self, limit: u32) -> Value {
        let properties: Vec<&str> = READ_PROPERTIES.split(',').collect();
        let exact = |property: &str, value: &str| {
            json!({
                "filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": value}]}],
                "properties": properties,
                "limit": limit,
            })
        };
        match self {
            ContactSearch::Email(email) => exact("email", email),
            ContactSearch::Phone(phone) => exact("phone", phone),
            ContactSearch::Text(text) => {
                json!({"query": text, "properties": properties, "limit": limit})
            }
            ContactSearch::Outbound(text) => {
                let mut properties = crate::domain::search::SEARCHED.to_vec();
                properties.extend(["notes_last_contacted", "lastmodifieddate"]);
                json!({"query": text, "properties": properties, "limit": limit})
            }
        }
    }
}

/// A page of records matching all of `filters` (HubSpot's filter objects), sorted ascending by
/// `sort`, from offset `after`, reading `properties` (the pull sync's walk).
pub fn page(filters: Value, sort: &str, properties: &[&str], limit: u32, after: usize) -> Value {
    let mut request = json!({
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": properties,
        "limit": limit,
    });
    if after > 0 {
        request["after"] = json!(after.to_string());
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_searches_filter_and_text_searches_query() {
        let r = ContactSearch::Email("ada@example.com".into()).request(100);
        assert_eq!(r["filterGroups"][0]["filters"][0]["propertyName"], "email");
        assert_eq!(
            r["filterGroups"][0]["filters"][0]["value"],
            "ada@example.com"
        );
        assert_eq!(r["limit"], 100);
        let r = ContactSearch::Text("Lovelace".into()).request(10);
        assert_eq!(r["query"], "Lovelace");
        assert!(r.get("filterGroups").is_none());
        assert_eq!(r["properties"].as_array().unwrap().len(), 5);
    }
}
