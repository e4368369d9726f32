//! Object types, their property schemas, and the record type the store keeps.
//!
//! HubSpot serves every CRM object type through the same routes; what differs per type is the
//! set of known properties, which property is unique (contacts: `email`), which properties are
//! returned by default, and what the "last modified" property is called.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// The schema of one object type.
#[derive(Debug, Clone)]
pub struct ObjectSchema {
    /// URL name, e.g. `contacts`.
    pub name: &'static str,
    /// Singular used in webhook subscription types, e.g. `contact`.
    pub singular: &'static str,
    /// Label used in messages, e.g. `Contact`.
    pub label: &'static str,
    /// A property whose values must be unique (case-insensitively), usable as `idProperty`.
    pub unique_property: Option<&'static str>,
    pub last_modified_property: &'static str,
    /// Returned when a read names no properties.
    pub default_properties: &'static [&'static str],
    /// Settable properties.
    pub writable: BTreeSet<String>,
    /// Words searched by the free-text `query` of a search.
    pub query_properties: &'static [&'static str],
    /// First id handed out, so ids look like HubSpot's (large, numeric).
    pub first_id: u64,
}

const CONTACT_WRITABLE: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "website",
    "jobtitle",
    "lifecyclestage",
    "hs_lead_status",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "hubspot_owner_id",
    "fax",
    "industry",
    "annualrevenue",
    "numemployees",
    "date_of_birth",
    "salutation",
    "message",
    "hs_language",
    "twitterhandle",
];
const COMPANY_WRITABLE: &[&str] = &[
    "name",
    "domain",
    "industry",
    "phone",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "website",
    "numberofemployees",
    "annualrevenue",
    "description",
    "hubspot_owner_id",
    "lifecyclestage",
    "type",
];
const DEAL_WRITABLE: &[&str] = &[
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "hubspot_owner_id",
    "dealtype",
    "description",
    "hs_priority",
];

/// Properties the API maintains and refuses to have written.
pub const READ_ONLY: &[&str] = &[
    "hs_object_id",
    "createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
];

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl ObjectSchema {
    /// The object types the simulator serves.
    pub fn all() -> Vec<ObjectSchema> {
        vec![
            ObjectSchema {
                name: "contacts",
                singular: "contact",
                label: "Contact",
                unique_property: Some("email"),
                last_modified_property: "lastmodifieddate",
                default_properties: &[
                    "createdate",
                    "email",
                    "firstname",
                    "hs_object_id",
                    "lastmodifieddate",
                    "lastname",
                ],
                writable: names(CONTACT_WRITABLE),
                query_properties: &[
                    "firstname",
                    "lastname",
                    "email",
                    "phone",
                    "mobilephone",
                    "company",
                ],
                first_id: 37_765_100_001,
            },
            ObjectSchema {
                name: "companies",
                singular: "company",
                label: "Company",
                unique_property: None,
                last_modified_property: "hs_lastmodifieddate",
                default_properties: &[
                    "createdate",
                    "domain",
                    "hs_lastmodifieddate",
                    "hs_object_id",
                    "name",
                ],
                writable: names(COMPANY_WRITABLE),
                query_properties: &["name", "domain", "website", "phone"],
                first_id: 18_210_500_001,
            },
            ObjectSchema {
                name: "deals",
                singular: "deal",
                label: "Deal",
                unique_property: None,
                last_modified_property: "hs_lastmodifieddate",
                default_properties: &[
                    "amount",
                    "closedate",
                    "createdate",
                    "dealname",
                    "dealstage",
                    "hs_lastmodifieddate",
                    "hs_object_id",
                    "pipeline",
                ],
                writable: names(DEAL_WRITABLE),
                query_properties: &["dealname"],
                first_id: 9_870_200_001,
            },
        ]
    }

    /// Properties that hold datetimes (compared as instants, not as text).
    pub fn is_datetime(&self, property: &str) -> bool {
        matches!(
            property,
            "createdate" | "lastmodifieddate" | "hs_lastmodifieddate" | "closedate"
        )
    }

    /// Whether `property` exists on this type (writable or maintained by the API).
    pub fn knows(&self, property: &str) -> bool {
        self.writable.contains(property)
            || property == self.last_modified_property
            || READ_ONLY.contains(&property)
    }
}

/// One stored CRM object.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: u64,
    /// Property values, always strings on the wire. Empty values are not stored.
    pub properties: BTreeMap<String, String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub archived_ms: Option<i64>,
}

impl Record {
    pub fn get(&self, property: &str) -> Option<&str> {
        self.properties.get(property).map(String::as_str)
    }

    /// The JSON HubSpot returns for this record. `properties`: `None` for every stored
    /// property (write responses), `Some(list)` for exactly those names (reads: unset ones
    /// come back as `null`).
    pub fn to_json(&self, properties: Option<&[String]>) -> Value {
        let props: Map<String, Value> = match properties {
            None => self
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
            Some(names) => names
                .iter()
                .map(|name| {
                    let value = self
                        .properties
                        .get(name)
                        .map_or(Value::Null, |v| Value::String(v.clone()));
                    (name.clone(), value)
                })
                .collect(),
        };
        let mut body = json!({
            "id": self.id.to_string(),
            "properties": props,
            "createdAt": format_ms(self.created_ms),
            "updatedAt": format_ms(self.updated_ms),
            "archived": self.archived_ms.is_some(),
        });
        if let Some(at) = self.archived_ms {
            body["archivedAt"] = Value::String(format_ms(at));
        }
        body
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// HubSpot's timestamp format: `2019-10-30T03:30:17.883Z`.
pub fn format_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a datetime filter value the ways HubSpot accepts it: epoch milliseconds, an
/// RFC 3339 timestamp, or a plain date (midnight UTC).
pub fn parse_datetime_ms(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(value) {
        return Some(dt.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_millisecond_utc_format() {
        assert_eq!(format_ms(1_572_406_217_883), "2019-10-30T03:30:17.883Z");
    }

    #[test]
    fn datetime_values_parse_in_every_accepted_form() {
        let ms = 1_572_406_217_883;
        assert_eq!(parse_datetime_ms("1572406217883"), Some(ms));
        assert_eq!(parse_datetime_ms("2019-10-30T03:30:17.883Z"), Some(ms));
        assert_eq!(parse_datetime_ms("2019-10-30"), Some(1_572_393_600_000));
        assert_eq!(parse_datetime_ms("yesterday"), None);
    }

    #[test]
    fn reads_return_requested_properties_with_nulls() {
        let record = Record {
            id: 7,
            properties: BTreeMap::from([("email".into(), "a@b.co".into())]),
            created_ms: 0,
            updated_ms: 0,
            archived_ms: None,
        };
        let body = record.to_json(Some(&["email".into(), "phone".into()]));
        assert_eq!(body["id"], "7");
        assert_eq!(
            body["properties"],
            json!({"email": "a@b.co", "phone": null})
        );
        assert_eq!(body["archived"], false);
    }
}
