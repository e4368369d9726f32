//! The CRM object types the app syncs, generic over type: what each is called, which property
//! says when it last changed, which properties a sync reads by default, and which associations
//! a sync of it reads (each pair of types from one side only, so an edge is stored once).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A HubSpot CRM object type the app can sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    Contacts,
    Companies,
    Deals,
    LineItems,
    Notes,
    Calls,
    Emails,
    Meetings,
    Tasks,
}

impl ObjectType {
    pub const ALL: [ObjectType; 9] = [
        ObjectType::Contacts,
        ObjectType::Companies,
        ObjectType::Deals,
        ObjectType::LineItems,
        ObjectType::Notes,
        ObjectType::Calls,
        ObjectType::Emails,
        ObjectType::Meetings,
        ObjectType::Tasks,
    ];

    /// HubSpot's URL name: `contacts`, `line_items`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
            ObjectType::Deals => "deals",
            ObjectType::LineItems => "line_items",
            ObjectType::Notes => "notes",
            ObjectType::Calls => "calls",
            ObjectType::Emails => "emails",
            ObjectType::Meetings => "meetings",
            ObjectType::Tasks => "tasks",
        }
    }

    /// The singular HubSpot uses in webhook subscription types: `contact`, `line_item`.
    pub fn singular(self) -> &'static str {
        match self {
            ObjectType::Companies => "company",
            other => other.as_str().trim_end_matches('s'),
        }
    }

    /// The property that holds when a record last changed (what the sync's windows filter on).
    pub fn last_modified_property(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    /// The properties a sync reads when no mapping names more.
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &["email", "firstname", "lastname", "phone", "company"],
            ObjectType::Companies => &["name", "domain", "industry", "phone", "city", "country"],
            ObjectType::Deals => &[
                "dealname",
                "amount",
                "deal_currency_code",
                "dealstage",
                "pipeline",
                "closedate",
                "hubspot_owner_id",
            ],
            ObjectType::LineItems => &["name", "quantity", "price", "amount", "hs_product_id"],
            ObjectType::Notes => &["hs_timestamp", "hs_note_body", "hubspot_owner_id"],
            ObjectType::Calls => &[
                "hs_timestamp",
                "hs_call_title",
                "hs_call_direction",
                "hs_call_duration",
                "hs_call_status",
            ],
            ObjectType::Emails => &[
                "hs_timestamp",
                "hs_email_subject",
                "hs_email_direction",
                "hs_email_status",
            ],
            ObjectType::Meetings => &[
                "hs_timestamp",
                "hs_meeting_title",
                "hs_meeting_start_time",
                "hs_meeting_end_time",
                "hs_meeting_outcome",
            ],
            ObjectType::Tasks => &[
                "hs_timestamp",
                "hs_task_subject",
                "hs_task_status",
                "hs_task_priority",
            ],
        }
    }

    fn is_activity(self) -> bool {
        matches!(
            self,
            ObjectType::Notes
                | ObjectType::Calls
                | ObjectType::Emails
                | ObjectType::Meetings
                | ObjectType::Tasks
        )
    }

    /// Whether HubSpot defines associations between the two types (in either direction).
    pub fn relates_to(self, other: ObjectType) -> bool {
        use ObjectType::*;
        let pair = |a, b| (self == a && other == b) || (self == b && other == a);
        pair(Contacts, Companies)
            || pair(Deals, Contacts)
            || pair(Deals, Companies)
            || pair(LineItems, Deals)
            || (self.is_activity() && matches!(other, Contacts | Companies | Deals))
            || (other.is_activity() && matches!(self, Contacts | Companies | Deals))
    }

    /// The side that reads a pair's associations: activities, then line items, deals,
    /// contacts, companies (the most specific record reads its edges).
    fn rank(self) -> usize {
        if self.is_activity() {
            return 0;
        }
        match self {
            ObjectType::LineItems => 1,
            ObjectType::Deals => 2,
            ObjectType::Contacts => 3,
            _ => 4,
        }
    }

    /// The types whose associations a sync of `self` reads, when `synced` are the types the
    /// portal syncs: the related ones among them, each pair read by exactly one of its two
    /// types, so each edge is stored once. A portal gets the associations among what it syncs
    /// (a deal's companies: sync deals and companies); reading edges to types it does not sync
    /// would spend its budget on ids it cannot show.
    pub fn association_targets(self, synced: &[ObjectType]) -> Vec<ObjectType> {
        ObjectType::ALL
            .into_iter()
            .filter(|&other| {
                other != self
                    && synced.contains(&other)
                    && self.relates_to(other)
                    && (self.rank(), self as u8) < (other.rank(), other as u8)
            })
            .collect()
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object type name the app does not sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown object type '{0}': use one of contacts, companies, deals, line_items, notes, calls, emails, meetings, tasks")]
pub struct UnknownType(pub String);

impl FromStr for ObjectType {
    type Err = UnknownType;

    /// The plural or the singular, in any case (`deals`, `Deal`, `line_item`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        ObjectType::ALL
            .into_iter()
            .find(|t| t.as_str() == lower || t.singular() == lower)
            .ok_or_else(|| UnknownType(s.to_string()))
    }
}

/// Parses a comma-separated list of types (`contacts,deals`), in order, without repeats.
pub fn parse_list(raw: &str) -> Result<Vec<ObjectType>, UnknownType> {
    let mut types = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let t: ObjectType = name.parse()?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

/// An id as HubSpot sends it: a string in some places, a number in others.
pub fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One association as read from HubSpot: from a record to another, with one of the edge's
/// association types (an edge with two types is two of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from_type: ObjectType,
    pub from_id: String,
    pub to_type: ObjectType,
    pub to_id: String,
    /// `HUBSPOT_DEFINED` or `USER_DEFINED`.
    pub category: String,
    pub type_id: i64,
    pub label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_plural_or_singular_and_unknown_ones_list_the_valid() {
        assert_eq!("deals".parse(), Ok(ObjectType::Deals));
        assert_eq!("Line_Item".parse(), Ok(ObjectType::LineItems));
        assert_eq!("company".parse(), Ok(ObjectType::Companies));
        let err = "tickets".parse::<ObjectType>().unwrap_err().to_string();
        assert!(
            err.contains("'tickets'") && err.contains("line_items"),
            "{err}"
        );
        assert_eq!(
            parse_list("contacts, deals,contacts").unwrap(),
            vec![ObjectType::Contacts, ObjectType::Deals]
        );
        for t in ObjectType::ALL {
            assert_eq!(t.as_str().parse(), Ok(t));
            assert_eq!(t.singular().parse(), Ok(t));
        }
    }

    #[test]
    fn each_related_pair_is_read_from_exactly_one_side() {
        let all = ObjectType::ALL;
        for a in all {
            for b in all {
                let reads = |x: ObjectType, y: ObjectType| x.association_targets(&all).contains(&y);
                if a != b && a.relates_to(b) {
                    assert!(reads(a, b) ^ reads(b, a), "{a} and {b}: read from one side");
                } else {
                    assert!(!reads(a, b), "{a} → {b} is not a HubSpot pair");
                }
            }
        }
        assert_eq!(
            ObjectType::Deals.association_targets(&all),
            vec![ObjectType::Contacts, ObjectType::Companies]
        );
        // Only among the synced types: deals and notes, with line items.
        let synced = [ObjectType::Deals, ObjectType::LineItems, ObjectType::Notes];
        assert!(ObjectType::Deals.association_targets(&synced).is_empty());
        assert_eq!(
            ObjectType::Notes.association_targets(&synced),
            vec![ObjectType::Deals]
        );
        assert!(ObjectType::Deals
            .association_targets(&[ObjectType::Deals])
            .is_empty());
        assert_eq!(
            ObjectType::LineItems.association_targets(&synced),
            vec![ObjectType::Deals]
        );
    }
}
