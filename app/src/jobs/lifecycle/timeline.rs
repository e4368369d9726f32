//! The timeline side of lifecycle delivery: a portal's due occurrences (of the types
//! `LIFECYCLE_TIMELINE` or the configuration names) sent as HubSpot custom events, up to 500
//! in one `send/batch`, each with a uuid made from the portal and the event id (a resend is
//! the same occurrence to HubSpot); the event definitions created on first use.

use crate::domain::portal::PortalId;
use crate::hubspot::events::{Occurrence, MAX_OCCURRENCES};
use crate::hubspot::{HubSpotClient, HubSpotError};
use crate::store::StoreResult;

use super::Delivery;

impl Delivery {
    /// Sends `portal`'s due timeline occurrences (≤ 500), creating the event definitions
    /// first. Returns how many were sent.
    pub(super) async fn timeline(
        &self,
        portal: Option<PortalId>,
        client: &HubSpotClient,
    ) -> StoreResult<usize> {
        if self.config.timeline.is_empty() {
            return Ok(0);
        }
        let due = self.store.timeline_due(portal, MAX_OCCURRENCES).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let prefix = match self.event_definitions(portal, client, &due).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %crate::mask::text(&e.to_string()), "timeline: event definitions could not be read or created");
                return Ok(0);
            }
        };
        let occurrences: Vec<Occurrence> = due
            .iter()
            .map(|d| Occurrence {
                name: d.event.event.event_type.as_str().to_string(),
                contact_id: d.contact_id.clone(),
                uuid: occurrence_uuid(portal, &d.event.event.event_id),
                occurred_at: crate::domain::lifecycle::adapters::format_ms(
                    d.event.event.occurred_at,
                ),
                properties: timeline_properties(&d.event.event),
            })
            .collect();
        let permit = client.reserve().await;
        match client
            .send_occurrences(Some(permit), &prefix, &occurrences)
            .await
        {
            Ok(()) => {
                let seqs: Vec<i64> = due.iter().map(|d| d.seq).collect();
                self.store.timeline_sent(&seqs).await?;
                Ok(seqs.len())
            }
            Err(e) => {
                tracing::warn!(error = %crate::mask::text(&e.to_string()), "timeline batch failed; will retry");
                Ok(0)
            }
        }
    }

    async fn event_definitions(
        &self,
        portal: Option<PortalId>,
        client: &HubSpotClient,
        due: &[crate::store::lifecycle::TimelineItem],
    ) -> Result<String, HubSpotError> {
        let known = self
            .schemas
            .lock()
            .get(&portal)
            .and_then(|s| s.events.clone());
        let (mut prefix, mut names) = match known {
            Some(k) => k,
            None => {
                let (names, prefix) = client.event_definitions().await?;
                (prefix.unwrap_or_default(), names)
            }
        };
        for d in due {
            let t = d.event.event.event_type;
            if names.contains(t.as_str()) {
                continue;
            }
            let full = client
                .create_event_definition(t.as_str(), &t.as_str().replace('_', " "), t.data_fields())
                .await?;
            if let Some(p) = full.strip_suffix(t.as_str()) {
                prefix = p.to_string();
            }
            names.insert(t.as_str().to_string());
        }
        self.schemas.lock().entry(portal).or_default().events = Some((prefix.clone(), names));
        Ok(prefix)
    }
}
/// An occurrence's properties: the event's data as strings.
fn timeline_properties(
    e: &crate::domain::lifecycle::Event,
) -> serde_json::Map<String, serde_json::Value> {
    e.data
        .to_json()
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k, serde_json::Value::String(text))
        })
        .collect()
}

/// A stable uuid per (portal, event): a resent occurrence is the same occurrence to HubSpot.
fn occurrence_uuid(portal: Option<PortalId>, event_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest =
        Sha256::digest(format!("{}:{event_id}", crate::store::portal_key(portal)).as_bytes());
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
