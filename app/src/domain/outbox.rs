//! The outbox's ordering rules, pure (no database, no HubSpot), so they can be tested alone.
//!
//! The invariant they serve: **once HubSpot has acknowledged a write to a contact, no older
//! write to that contact is sent afterwards.** Three rules keep it:
//!
//! 1. *Claim the head only.* An item is claimed only when it is the oldest unsettled (pending,
//!    leased or not) item of its email; the newer pending items of that email are claimed with
//!    it. So the items in flight for an email are always a prefix of its queue, and nothing
//!    newer can overtake an older write that is retrying.
//! 2. *Fold older under newer.* The items claimed for one email are sent as one input: their
//!    properties merged oldest first, so a newer value wins over an older one ([`fold`]).
//! 3. *Replay never overwrites.* A dead item that is replayed is queued again as the newest
//!    write, carrying only the properties that no later accepted write has set ([`replay`]).

use std::collections::BTreeMap;

/// Where an outbox item is. `pending` covers claimed items too (a lease on a pending item);
/// `replayed` is a dead item queued again as a new one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    Pending,
    Sent,
    Dead,
    Replayed,
}

impl ItemState {
    pub const ALL: [ItemState; 4] = [Self::Pending, Self::Sent, Self::Dead, Self::Replayed];

    /// The stored and listed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Dead => "dead",
            Self::Replayed => "replayed",
        }
    }
}

impl std::str::FromStr for ItemState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!("'{s}' is not an outbox state (pending, sent, dead or replayed)")
            })
    }
}

impl TryFrom<String> for ItemState {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The stored form of a write: property name → value.
pub type Properties = BTreeMap<String, String>;

/// One claimed item as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed<'a> {
    pub id: i64,
    pub email: &'a str,
    /// The item's stored properties (JSON text).
    pub properties: &'a str,
}

/// The claimed items of one email, folded into the one write that is sent for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    pub email: String,
    /// Oldest first.
    pub ids: Vec<i64>,
    /// The merged properties, or why the stored text cannot be read (then every item of the
    /// group is dead: sending a guess would be a wrong write).
    pub properties: Result<Properties, String>,
}

/// Groups `items` by email (groups in the order of their oldest item) and merges each group's
/// properties oldest first, whatever order the database returned them in.
pub fn fold(items: &[Claimed<'_>]) -> Vec<Folded> {
    let mut sorted: Vec<&Claimed<'_>> = items.iter().collect();
    sorted.sort_by_key(|c| c.id);
    let mut groups: Vec<Folded> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for item in sorted {
        let at = *index.entry(item.email).or_insert_with(|| {
            groups.push(Folded {
                email: item.email.to_string(),
                ids: Vec::new(),
                properties: Ok(Properties::new()),
            });
            groups.len() - 1
        });
        let group = &mut groups[at];
        group.ids.push(item.id);
        let parsed = parse(item.id, item.properties);
        group.properties = match (
            std::mem::replace(&mut group.properties, Ok(Properties::new())),
            parsed,
        ) {
            (Ok(mut merged), Ok(newer)) => {
                merged.extend(newer);
                Ok(merged)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    groups
}

/// Reads an item's stored properties; a row that does not parse is an error, never `{}`.
pub fn parse(id: i64, text: &str) -> Result<Properties, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("outbox item {id}: its stored properties cannot be read ({e})"))
}

/// What replaying a dead write sends: its properties less every property that a later
/// accepted write to the same contact (sent, in flight or pending) has set. Those later values
/// are newer than the dead write, so sending the dead one's would overwrite them. An empty
/// result means the dead write is wholly superseded and nothing is sent.
pub fn replay<'k>(dead: &Properties, newer_keys: impl IntoIterator<Item = &'k str>) -> Properties {
    let mut left = dead.clone();
    for key in newer_keys {
        left.remove(key);
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn newer_values_win_whatever_order_the_rows_come_in() {
        let rows = [
            Claimed {
                id: 9,
                email: "a@x.io",
                properties: r#"{"lastname":"v3"}"#,
            },
            Claimed {
                id: 2,
                email: "a@x.io",
                properties: r#"{"lastname":"v1","firstname":"A"}"#,
            },
            Claimed {
                id: 5,
                email: "b@x.io",
                properties: r#"{"firstname":"B"}"#,
            },
            Claimed {
                id: 4,
                email: "a@x.io",
                properties: r#"{"lastname":"v2","phone":"+1"}"#,
            },
        ];
        let folded = fold(&rows);
        assert_eq!(folded.len(), 2);
        assert_eq!(
            folded[0].email, "a@x.io",
            "groups in the order of their oldest item"
        );
        assert_eq!(folded[0].ids, [2, 4, 9]);
        assert_eq!(
            folded[0].properties,
            Ok(props(&[
                ("firstname", "A"),
                ("lastname", "v3"),
                ("phone", "+1")
            ]))
        );
        assert_eq!(folded[1].ids, [5]);
    }

    #[test]
    fn a_corrupt_row_fails_its_whole_group_and_only_it() {
        let rows = [
            Claimed {
                id: 1,
                email: "a@x.io",
                properties: "{not json",
            },
            Claimed {
                id: 2,
                email: "a@x.io",
                properties: r#"{"lastname":"v2"}"#,
            },
            Claimed {
                id: 3,
                email: "b@x.io",
                properties: r#"{"lastname":"ok"}"#,
            },
        ];
        let folded = fold(&rows);
        let err = folded[0].properties.as_ref().unwrap_err();
        assert!(err.contains("outbox item 1"), "{err}");
        assert_eq!(folded[0].ids, [1, 2]);
        assert_eq!(folded[1].properties, Ok(props(&[("lastname", "ok")])));
    }

    #[test]
    fn replay_keeps_only_what_no_later_write_set() {
        let dead = props(&[("firstname", "Old"), ("lastname", "Old"), ("phone", "+1")]);
        assert_eq!(
            replay(&dead, ["lastname", "company"]),
            props(&[("firstname", "Old"), ("phone", "+1")])
        );
        assert!(replay(&dead, ["firstname", "lastname", "phone"]).is_empty());
        assert_eq!(replay(&dead, []), dead);
    }
}
