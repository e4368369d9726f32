//! Where a pull sync stands, as stored after every page: the position a killed run resumes
//! from.

use serde::{Deserialize, Serialize};

/// Where a run is. Stored as JSON in `sync_state.position` after every page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Position {
    /// First run: the full listing, at this paging cursor.
    Listing {
        after: Option<String>,
        max_seen: i64,
    },
    /// Searching `from <= lastmodifieddate <= until`, at offset `after`; `first` is the
    /// timestamp of the window's first result.
    Window {
        from: i64,
        after: usize,
        max_seen: i64,
        first: Option<i64>,
    },
    /// More than 10,000 contacts at `ts`: walking them by id, past `last_id`.
    SameTimestamp {
        ts: i64,
        last_id: u64,
        after: usize,
        max_seen: i64,
    },
}

/// Whether a sync runs. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Idle,
    Syncing,
    /// The last run failed; the next resumes from its committed page.
    Error,
    Disabled,
}

impl std::str::FromStr for RunState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "idle" => Ok(Self::Idle),
            "syncing" => Ok(Self::Syncing),
            "error" => Ok(Self::Error),
            "disabled" => Ok(Self::Disabled),
            other => Err(format!("'{other}' is not a sync state")),
        }
    }
}

/// A HubSpot timestamp as epoch milliseconds: HubSpot sends them as millisecond strings or as
/// RFC 3339 text.
pub fn parse_timestamp(v: &serde_json::Value) -> Option<i64> {
    let s = v.as_str()?;
    s.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis())
    })
}

#[cfg(test)]
mod timestamp_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_parse_as_ms_or_rfc3339() {
        assert_eq!(
            parse_timestamp(&json!("1706745600000")),
            Some(1_706_745_600_000)
        );
        assert_eq!(
            parse_timestamp(&json!("2024-02-01T00:00:00.000Z")),
            Some(1_706_745_600_000)
        );
        assert_eq!(parse_timestamp(&json!(null)), None);
    }
}
