//! A change HubSpot reported by webhook, as the app records it, and the parsing of a delivery.

use serde::Deserialize;

use super::object::{id_text, ObjectType};

/// HubSpot sends at most 100 events per request; this is ample for that.
pub const MAX_BODY: usize = 256 * 1024;
/// One event as HubSpot sends it (the fields this service uses; others are kept in `payload`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: u64,
    pub subscription_type: String,
    pub object_id: u64,
    pub occurred_at: i64,
    /// The portal the change happened in.
    #[serde(default)]
    pub portal_id: Option<u64>,
}

/// A recorded event, as the processor reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub id: i64,
    pub subscription_type: String,
    pub object_id: i64,
    pub portal_id: Option<u64>,
    /// The event as HubSpot sent it (merges and association changes carry more ids).
    pub payload: serde_json::Value,
}

/// What a recorded event asks the processor to do. The processor reads records back from
/// HubSpot rather than applying an event's values, so duplicates and reordering are harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A record was created, changed, deleted or restored: read it again (gone: archive it).
    Record { object_type: ObjectType, id: String },
    /// An edge changed: both records' associations are read again.
    Association {
        from: (ObjectType, String),
        to: (ObjectType, String),
    },
    /// `merged` were merged into `primary` (HubSpot's `mergedObjectIds`, `primaryObjectId`).
    Merge {
        object_type: ObjectType,
        primary: String,
        merged: Vec<String>,
    },
    /// HubSpot deleted a contact for good at someone's request (GDPR): what is held here about
    /// them goes too.
    PrivacyDeleted { id: String },
    /// A type or an event the app does not sync: recorded, nothing to do.
    Ignored,
}

impl Recorded {
    /// What this event means (`contact.propertyChange`, `deal.associationChange`, …).
    pub fn change(&self) -> Change {
        let Some((singular, kind)) = self.subscription_type.split_once('.') else {
            return Change::Ignored;
        };
        let Ok(object_type) = singular.parse::<ObjectType>() else {
            return Change::Ignored;
        };
        let id = self.object_id.to_string();
        match kind {
            "privacyDeletion" if object_type == ObjectType::Contacts => {
                Change::PrivacyDeleted { id }
            }
            "creation" | "propertyChange" | "deletion" | "restore" | "privacyDeletion" => {
                Change::Record { object_type, id }
            }
            "associationChange" => {
                let to_type = self.payload["associationType"]
                    .as_str()
                    .and_then(|a| a.split_once("_TO_"))
                    .and_then(|(_, to)| to.to_ascii_lowercase().parse::<ObjectType>().ok());
                let from_id = id_text(&self.payload["fromObjectId"]).unwrap_or(id);
                match (to_type, id_text(&self.payload["toObjectId"])) {
                    (Some(to_type), Some(to_id)) => Change::Association {
                        from: (object_type, from_id),
                        to: (to_type, to_id),
                    },
                    _ => Change::Record {
                        object_type,
                        id: from_id,
                    },
                }
            }
            "merge" => {
                let primary = id_text(&self.payload["primaryObjectId"]).unwrap_or(id);
                let merged = self.payload["mergedObjectIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(id_text)
                    .filter(|m| *m != primary)
                    .collect();
                Change::Merge {
                    object_type,
                    primary,
                    merged,
                }
            }
            _ => Change::Ignored,
        }
    }
}

/// Parses a delivery: a non-empty JSON array of events, at most 100.
pub fn parse(body: &[u8]) -> Result<Vec<(Event, serde_json::Value)>, String> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| format!("body: not a JSON array of events: {e}"))?;
    if values.is_empty() || values.len() > 100 {
        return Err("body: HubSpot sends 1 to 100 events per request".into());
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<Event>(v.clone())
                .map(|e| (e, v))
                .map_err(|e| format!("[{i}]: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(subscription_type: &str, object_id: i64, payload: serde_json::Value) -> Recorded {
        Recorded {
            id: 1,
            subscription_type: subscription_type.into(),
            object_id,
            portal_id: Some(62515),
            payload,
        }
    }

    #[test]
    fn events_of_every_synced_type_say_what_to_read_again() {
        let e = recorded("deal.propertyChange", 7, serde_json::json!({}));
        assert_eq!(
            e.change(),
            Change::Record {
                object_type: ObjectType::Deals,
                id: "7".into()
            }
        );
        let e = recorded(
            "line_item.associationChange",
            7,
            serde_json::json!({"associationType": "LINE_ITEM_TO_DEAL", "fromObjectId": 7, "toObjectId": 9}),
        );
        assert_eq!(
            e.change(),
            Change::Association {
                from: (ObjectType::LineItems, "7".into()),
                to: (ObjectType::Deals, "9".into())
            }
        );
        let e = recorded(
            "company.merge",
            5,
            serde_json::json!({"primaryObjectId": 5, "mergedObjectIds": [5, 6], "newObjectId": 5}),
        );
        assert_eq!(
            e.change(),
            Change::Merge {
                object_type: ObjectType::Companies,
                primary: "5".into(),
                merged: vec!["6".into()]
            }
        );
        assert_eq!(
            recorded("ticket.creation", 1, serde_json::json!({})).change(),
            Change::Ignored
        );
    }

    #[test]
    fn malformed_deliveries_are_named() {
        assert!(parse(b"{")
            .unwrap_err()
            .starts_with("body: not a JSON array"));
        assert!(parse(b"[]").unwrap_err().contains("1 to 100"));
        assert!(parse(br#"[{"eventId": 1}]"#)
            .unwrap_err()
            .starts_with("[0]: missing field"));
    }
}
