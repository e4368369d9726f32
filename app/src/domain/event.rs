//! A change HubSpot reported by webhook, as the app records it, and the parsing of a delivery.

use serde::Deserialize;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub id: i64,
    pub subscription_type: String,
    pub object_id: i64,
    pub portal_id: Option<u64>,
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
