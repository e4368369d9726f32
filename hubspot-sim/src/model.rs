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
    /// HubSpot's object type id, e.g. `0-1` (contacts); accepted wherever a type is named.
    pub type_id: &'static str,
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
    /// Properties the portal created through the properties API.
    pub custom: BTreeMap<String, CustomProperty>,
    /// Properties the portal's validation rules require: enforced on creates and updates under
    /// the `2026-09` API version only, as HubSpot announced.
    pub required: BTreeSet<String>,
}

/// A property created through the properties API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomProperty {
    pub label: String,
    /// `string`, `number`, `date`, `datetime`, `enumeration` or `bool`.
    pub kind: &'static str,
    pub field_type: String,
    pub group_name: String,
    /// `(label, value)` of each option (enumerations).
    pub options: Vec<(String, String)>,
    pub created_ms: i64,
    /// Created with `hasUniqueValue`: usable as `idProperty`.
    pub unique: bool,
}

/// The API version whose writes enforce required properties.
pub const REQUIRED_FROM: &str = "2026-09";

/// Whether a request path is under an API version that enforces required properties.
pub fn enforces_required(path: &str) -> bool {
    path.split('/').any(|segment| {
        segment >= REQUIRED_FROM && segment.len() == 7 && segment.as_bytes()[4] == b'-'
    })
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
    "deal_currency_code",
];

const LINE_ITEM_WRITABLE: &[&str] = &[
    "name",
    "quantity",
    "price",
    "amount",
    "hs_product_id",
    "hs_sku",
    "description",
    "discount",
    "hs_line_item_currency_code",
];
const NOTE_WRITABLE: &[&str] = &["hs_timestamp", "hs_note_body", "hubspot_owner_id"];
const CALL_WRITABLE: &[&str] = &[
    "hs_timestamp",
    "hs_call_title",
    "hs_call_body",
    "hs_call_duration",
    "hs_call_direction",
    "hs_call_status",
    "hubspot_owner_id",
];
const EMAIL_WRITABLE: &[&str] = &[
    "hs_timestamp",
    "hs_email_subject",
    "hs_email_text",
    "hs_email_direction",
    "hs_email_status",
    "hubspot_owner_id",
];
const MEETING_WRITABLE: &[&str] = &[
    "hs_timestamp",
    "hs_meeting_title",
    "hs_meeting_body",
    "hs_meeting_start_time",
    "hs_meeting_end_time",
    "hs_meeting_outcome",
    "hubspot_owner_id",
];
const TASK_WRITABLE: &[&str] = &[
    "hs_timestamp",
    "hs_task_subject",
    "hs_task_body",
    "hs_task_status",
    "hs_task_priority",
    "hs_task_type",
    "hubspot_owner_id",
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
                type_id: "0-1",
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
                custom: BTreeMap::new(),
                required: BTreeSet::new(),
            },
            ObjectSchema {
                name: "companies",
                type_id: "0-2",
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
                custom: BTreeMap::new(),
                required: BTreeSet::new(),
            },
            ObjectSchema {
                name: "deals",
                type_id: "0-3",
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
                custom: BTreeMap::new(),
                required: BTreeSet::new(),
            },
            ObjectSchema {
                name: "line_items",
                type_id: "0-8",
                singular: "line_item",
                label: "Line item",
                unique_property: None,
                last_modified_property: "hs_lastmodifieddate",
                default_properties: &[
                    "amount",
                    "createdate",
                    "hs_lastmodifieddate",
                    "hs_object_id",
                    "hs_product_id",
                    "name",
                    "price",
                    "quantity",
                ],
                writable: names(LINE_ITEM_WRITABLE),
                query_properties: &["name", "hs_sku"],
                first_id: 4_410_300_001,
                custom: BTreeMap::new(),
                required: BTreeSet::new(),
            },
            Self::engagement(
                ("notes", "note", "Note", "0-46"),
                NOTE_WRITABLE,
                5_120_400_001,
            ),
            Self::engagement(
                ("calls", "call", "Call", "0-48"),
                CALL_WRITABLE,
                5_230_500_001,
            ),
            Self::engagement(
                ("emails", "email", "Email", "0-49"),
                EMAIL_WRITABLE,
                5_340_600_001,
            ),
            Self::engagement(
                ("meetings", "meeting", "Meeting", "0-47"),
                MEETING_WRITABLE,
                5_450_700_001,
            ),
            Self::engagement(
                ("tasks", "task", "Task", "0-27"),
                TASK_WRITABLE,
                5_560_800_001,
            ),
        ]
    }

    /// An activity type (notes, calls, emails, meetings, tasks): timestamped, owned, and read
    /// by default with only the system properties and its timestamp.
    fn engagement(
        (name, singular, label, type_id): (&'static str, &'static str, &'static str, &'static str),
        writable: &[&str],
        first_id: u64,
    ) -> ObjectSchema {
        ObjectSchema {
            name,
            singular,
            label,
            type_id,
            unique_property: None,
            last_modified_property: "hs_lastmodifieddate",
            default_properties: &[
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
                "hs_timestamp",
            ],
            writable: names(writable),
            query_properties: &[],
            first_id,
            custom: BTreeMap::new(),
            required: BTreeSet::new(),
        }
    }

    /// Properties that hold datetimes (compared as instants, not as text).
    pub fn is_datetime(&self, property: &str) -> bool {
        matches!(
            property,
            "createdate"
                | "lastmodifieddate"
                | "hs_lastmodifieddate"
                | "closedate"
                | "hs_timestamp"
                | "hs_meeting_start_time"
                | "hs_meeting_end_time"
        )
    }

    /// Whether `property` exists on this type (writable or maintained by the API).
    pub fn knows(&self, property: &str) -> bool {
        self.writable.contains(property)
            || self.custom.contains_key(property)
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
