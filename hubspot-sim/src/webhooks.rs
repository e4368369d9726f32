//! Webhook delivery: store changes become HubSpot-shaped event arrays, signed (v1, v2 or v3)
//! and POSTed to the subscriber asynchronously, with HubSpot's retry behaviour.
//!
//! - events are gathered for a short window into batches of at most 100;
//! - at most 10 deliveries are in flight at once (HubSpot's per-account concurrency);
//! - a connection failure, any non-2xx answer, or an answer slower than the timeout (5 s) is
//!   retried with a doubling delay and an increasing `attemptNumber`, up to the attempt limit;
//! - with a duplicate probability set, a delivered batch is sometimes delivered again.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::{SignatureVersion, WebhookConfig};
use crate::store::{Change, ChangeKind};

pub const MAX_EVENTS_PER_REQUEST: usize = 100;
pub const MAX_CONCURRENT_DELIVERIES: usize = 10;

/// The signature headers for one delivery, as `(name, value)` pairs.
pub fn sign(
    version: SignatureVersion,
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> Vec<(&'static str, String)> {
    match version {
        SignatureVersion::V3 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes any key length");
            mac.update(method.as_bytes());
            mac.update(uri.as_bytes());
            mac.update(body);
            mac.update(timestamp_ms.to_string().as_bytes());
            let signature =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            vec![
                ("X-HubSpot-Signature-v3", signature),
                ("X-HubSpot-Request-Timestamp", timestamp_ms.to_string()),
            ]
        }
        SignatureVersion::V2 => {
            let mut h = Sha256::new();
            h.update(secret.as_bytes());
            h.update(method.as_bytes());
            h.update(uri.as_bytes());
            h.update(body);
            vec![
                ("X-HubSpot-Signature", hex::encode(h.finalize())),
                ("X-HubSpot-Signature-Version", "v2".into()),
            ]
        }
        SignatureVersion::V1 => {
            let mut h = Sha256::new();
            h.update(secret.as_bytes());
            h.update(body);
            vec![
                ("X-HubSpot-Signature", hex::encode(h.finalize())),
                ("X-HubSpot-Signature-Version", "v1".into()),
            ]
        }
    }
}

/// One delivery attempt, kept for `/_sim/webhooks`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub batch: u64,
    pub attempt_number: u32,
    pub events: usize,
    pub duplicate: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub elapsed_ms: u128,
    pub delivered: bool,
}

/// Handle the server holds: feed changes in, read the delivery log out.
#[derive(Debug, Clone)]
pub struct Webhooks {
    tx: mpsc::UnboundedSender<Change>,
    log: Arc<Mutex<Vec<Attempt>>>,
}

impl Webhooks {
    pub fn spawn(config: WebhookConfig, app_id: u64, shutdown: CancellationToken) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut client = reqwest::Client::builder();
        if let Some(cert) = config
            .ca_pem
            .as_deref()
            .and_then(|pem| reqwest::Certificate::from_pem(pem).ok())
        {
            client = client.add_root_certificate(cert);
        }
        let client = client
            .build()
            .expect("a client with default settings builds");
        let dispatcher = Dispatcher {
            config: Arc::new(config),
            app_id,
            log: log.clone(),
            client,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_DELIVERIES)),
            shutdown,
        };
        tokio::spawn(dispatcher.run(rx));
        Self { tx, log }
    }

    pub fn emit(&self, changes: Vec<Change>) {
        for change in changes {
            // The dispatcher only stops at shutdown; events emitted after that are moot.
            let _ = self.tx.send(change);
        }
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.log.lock().clone()
    }

    pub fn clear(&self) {
        self.log.lock().clear();
    }
}

struct Dispatcher {
    config: Arc<WebhookConfig>,
    app_id: u64,
    log: Arc<Mutex<Vec<Attempt>>>,
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
}

fn subscription_id(subscription_type: &str) -> u64 {
    // Stable per type, like a real app's subscriptions.
    subscription_type.bytes().fold(1_000_000u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b)) % 10_000_000
    })
}

impl Dispatcher {
    fn event(&self, event_id: u64, change: &Change) -> Value {
        let (kind, extra) = match &change.kind {
            ChangeKind::Created => ("creation", json!({"changeFlag": "CREATED"})),
            ChangeKind::Deleted => ("deletion", json!({"changeFlag": "DELETED"})),
            ChangeKind::Restored => ("restore", json!({"changeFlag": "RESTORED"})),
            ChangeKind::PrivacyDeleted => {
                ("privacyDeletion", json!({"changeFlag": "PRIVACY_DELETED"}))
            }
            ChangeKind::Merged { merged } => (
                "merge",
                json!({
                    "primaryObjectId": change.object_id,
                    "mergedObjectIds": merged,
                    "newObjectId": change.object_id,
                    "numberOfPropertiesMoved": 0,
                }),
            ),
            ChangeKind::PropertyChanged { name, value } => (
                "propertyChange",
                json!({"propertyName": name, "propertyValue": value}),
            ),
            ChangeKind::Association(edge) => (
                "associationChange",
                json!({
                    "associationType": crate::associations::webhook_name(edge.from, edge.to),
                    "associationTypeId": edge.type_id,
                    "fromObjectId": edge.from_id,
                    "toObjectId": edge.to_id,
                    "associationRemoved": edge.removed,
                    "isPrimaryAssociation": matches!(edge.type_id, 1 | 2 | 5 | 6),
                }),
            ),
        };
        let subscription_type = format!("{}.{kind}", change.singular);
        let mut event = json!({
            "eventId": event_id,
            "subscriptionId": subscription_id(&subscription_type),
            "portalId": change.portal_id,
            "appId": self.app_id,
            "occurredAt": change.occurred_ms,
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
            "objectId": change.object_id,
            "changeSource": "CRM",
            "sourceId": "sim",
        });
        if let (Value::Object(e), Value::Object(x)) = (&mut event, extra) {
            e.extend(x);
        }
        event
    }

    async fn run(self, mut rx: mpsc::UnboundedReceiver<Change>) {
        let this = Arc::new(self);
        let mut next_event_id: u64 = rand::thread_rng().gen_range(1_000..1_000_000);
        let mut next_batch: u64 = 1;
        loop {
            let first = tokio::select! {
                change = rx.recv() => match change { Some(c) => c, None => return },
                () = this.shutdown.cancelled() => return,
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + this.config.batch_window;
            while batch.len() < MAX_EVENTS_PER_REQUEST {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(change)) => batch.push(change),
                    Ok(None) | Err(_) => break,
                }
            }
            let events: Vec<Value> = batch
                .iter()
                .map(|c| {
                    next_event_id += 1;
                    this.event(next_event_id, c)
                })
                .collect();
            let id = next_batch;
            next_batch += 1;
            tokio::spawn(this.clone().deliver(id, events));
        }
    }

    /// Delivers one batch until it succeeds, the attempts run out, or the simulator stops.
    async fn deliver(self: Arc<Self>, batch: u64, mut events: Vec<Value>) {
        let mut attempt_number = 0;
        loop {
            let delivered = self.attempt(batch, &events, attempt_number, false).await;
            if delivered {
                if rand::thread_rng().gen_bool(self.config.duplicate_probability) {
                    self.attempt(batch, &events, attempt_number, true).await;
                }
                return;
            }
            attempt_number += 1;
            if attempt_number >= self.config.max_attempts {
                return;
            }
            let delay = self
                .config
                .retry_delay
                .saturating_mul(1 << (attempt_number - 1).min(16));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.cancelled() => return,
            }
            for e in &mut events {
                e["attemptNumber"] = json!(attempt_number);
            }
        }
    }

    async fn attempt(
        &self,
        batch: u64,
        events: &[Value],
        attempt_number: u32,
        duplicate: bool,
    ) -> bool {
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let body = serde_json::to_vec(events).expect("events serialise");
        let timestamp = crate::model::now_ms();
        let mut request = self
            .client
            .post(&self.config.url)
            .timeout(self.config.timeout)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                "HubSpot Connect 2.0 (http://dev.hubspot.com/) (simulated)",
            );
        for (name, value) in sign(
            self.config.signature,
            &self.config.secret,
            "POST",
            &self.config.url,
            &body,
            timestamp,
        ) {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let outcome = request.body(body).send().await;
        let elapsed_ms = started.elapsed().as_millis();
        let (status, error) = match &outcome {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) if e.is_timeout() => (
                None,
                Some(format!("no answer within {:?}", self.config.timeout)),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        tracing::debug!(
            batch,
            attempt_number,
            ?status,
            ?error,
            elapsed_ms,
            "webhook delivery"
        );
        self.log.lock().push(Attempt {
            batch,
            attempt_number,
            events: events.len(),
            duplicate,
            status,
            error,
            elapsed_ms,
            delivered,
        });
        delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers computed independently (Python's hmac/hashlib) for:
    // secret "s3cret", POST, https://example.com/webhooks/hubspot?x=1, body "[]", ts 1700000000000.
    const URI: &str = "https://example.com/webhooks/hubspot?x=1";

    #[test]
    fn v3_signature_matches_known_answer() {
        let h = sign(
            SignatureVersion::V3,
            "s3cret",
            "POST",
            URI,
            b"[]",
            1_700_000_000_000,
        );
        assert_eq!(
            h[0],
            (
                "X-HubSpot-Signature-v3",
                "3yQZ+jalKfiBt411d+kcJGPWLiLY3Pm1ZoYRwazgTlk=".to_string()
            )
        );
        assert_eq!(
            h[1],
            ("X-HubSpot-Request-Timestamp", "1700000000000".to_string())
        );
    }

    #[test]
    fn v2_and_v1_signatures_match_known_answers() {
        let v2 = sign(SignatureVersion::V2, "s3cret", "POST", URI, b"[]", 0);
        assert_eq!(
            v2[0].1,
            "5abe64f74cbfe72215c2a3f4d89dcd4bd3f092d9ec8c65bb5aaf263f49917019"
        );
        assert_eq!(v2[1], ("X-HubSpot-Signature-Version", "v2".to_string()));
        let v1 = sign(SignatureVersion::V1, "s3cret", "POST", URI, b"[]", 0);
        assert_eq!(
            v1[0].1,
            "3ab1a0c9f6504498b78b004bf1de327095f9b599a13da2536989d960e10f33e0"
        );
    }

    #[test]
    fn subscription_ids_are_stable_per_type() {
        assert_eq!(
            subscription_id("contact.creation"),
            subscription_id("contact.creation")
        );
        assert_ne!(
            subscription_id("contact.creation"),
            subscription_id("contact.deletion")
        );
    }
}
