//! HubSpot webhooks: `POST /webhooks/hubspot`.
//!
//! The request is verified (v3 by default: HMAC-SHA256 over method, URI, body and timestamp,
//! base64, within 5 minutes; v1/v2 when configured), its events are recorded durably (the event
//! id is the primary key, so a duplicate delivery is recorded once), and it is answered at once.
//! A processor then refreshes the contact cache from HubSpot for each changed contact: it reads
//! the contact's current state instead of applying the event, so duplicates and out-of-order
//! events are harmless.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{Db, StoreResult};

/// HubSpot's window for `X-HubSpot-Request-Timestamp`.
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// HubSpot sends at most 100 events per request; this is ample for that.
pub const MAX_BODY: usize = 256 * 1024;
/// Processed events are kept this long (for dedupe of late redeliveries), then cleaned up.
pub const KEEP_EVENTS: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
    V3,
}

impl Version {
    pub fn parse_list(raw: &str) -> Option<Vec<Version>> {
        raw.split(',')
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "v1" => Some(Version::V1),
                "v2" => Some(Version::V2),
                "v3" => Some(Version::V3),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("missing signature: send X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp")]
    Missing,
    #[error("stale or invalid X-HubSpot-Request-Timestamp: requests older than 5 minutes are refused (is the sender's clock right?)")]
    Stale,
    #[error("signature does not match (check HUBSPOT_CLIENT_SECRET and that the proxy forwards Host and X-Forwarded-Proto)")]
    BadSignature,
    #[error("signature version {0} is not accepted here (WEBHOOK_SIGNATURE_VERSIONS)")]
    VersionNotAccepted(String),
}

/// The URI HubSpot signed: the public URL of this endpoint, rebuilt from the forwarded headers
/// nginx sets (scheme, host, port), plus the path and query as received.
pub fn public_uri(headers: &HeaderMap, uri: &Uri) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or("localhost");
    let port = header("x-forwarded-port").filter(|p| {
        !host.contains(':') && !matches!((scheme, *p), ("https", "443") | ("http", "80"))
    });
    let path = decode_signed(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

/// HubSpot signs the URI with these escapes decoded (its v3 documentation lists them).
fn decode_signed(path: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = path.to_string();
    for (escaped, plain) in DECODED {
        out = out
            .replace(escaped, plain)
            .replace(&escaped.to_lowercase(), plain);
    }
    out
}

/// Verifies a delivery with the accepted versions; `now_ms` is the current Unix time in ms.
pub fn verify(
    secret: &str,
    accepted: &[Version],
    method: &Method,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<Version, Rejected> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(signature) = header("x-hubspot-signature-v3") {
        if !accepted.contains(&Version::V3) {
            return Err(Rejected::VersionNotAccepted("v3".into()));
        }
        let timestamp = header("x-hubspot-request-timestamp").ok_or(Rejected::Stale)?;
        let ts: i64 = timestamp.trim().parse().map_err(|_| Rejected::Stale)?;
        if (now_ms - ts).unsigned_abs() > MAX_AGE.as_millis() as u64 {
            return Err(Rejected::Stale);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(method.as_str().as_bytes());
        mac.update(uri.as_bytes());
        mac.update(body);
        mac.update(timestamp.trim().as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        return crate::secret::same(signature.trim(), &expected)
            .then_some(Version::V3)
            .ok_or(Rejected::BadSignature);
    }
    let signature = header("x-hubspot-signature").ok_or(Rejected::Missing)?;
    let version = match header("x-hubspot-signature-version").map(str::trim) {
        Some("v2") => Version::V2,
        Some("v1") | None => Version::V1,
        Some(other) => return Err(Rejected::VersionNotAccepted(other.to_string())),
    };
    if !accepted.contains(&version) {
        return Err(Rejected::VersionNotAccepted(
            format!("{version:?}").to_lowercase(),
        ));
    }
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    if version == Version::V2 {
        h.update(method.as_str().as_bytes());
        h.update(uri.as_bytes());
    }
    h.update(body);
    let expected = hex::encode(h.finalize());
    crate::secret::same(&signature.trim().to_ascii_lowercase(), &expected)
        .then_some(version)
        .ok_or(Rejected::BadSignature)
}

/// Why a processing round stopped: HubSpot (the events stay unprocessed, retried next round)
/// or the store.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("HubSpot: {0}")]
    HubSpot(#[from] crate::hubspot::HubSpotError),
    #[error(transparent)]
    Store(#[from] crate::db::StoreError),
}

/// One event as HubSpot sends it (the fields this service uses; others are kept in `payload`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: u64,
    pub subscription_type: String,
    pub object_id: u64,
    pub occurred_at: i64,
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

#[derive(Debug, Default)]
pub struct WebhookStats {
    pub accepted: std::sync::atomic::AtomicU64,
    pub duplicates: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
    pub processed: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone)]
pub struct Inbox {
    db: Db,
    wake: Arc<tokio::sync::Notify>,
    pub stats: Arc<WebhookStats>,
}

impl Inbox {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Processes recorded events until `stop`: each changed contact is re-read from HubSpot and
    /// the cache refreshed (or the entry dropped when HubSpot no longer has it). A HubSpot
    /// failure leaves the events for the next round. Also deletes expired events hourly.
    pub async fn run(
        self,
        cache: crate::cache::Cache,
        client: Arc<crate::hubspot::HubSpotClient>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut last_cleanup = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if *stop.borrow() {
                return;
            }
            if last_cleanup.elapsed() >= Duration::from_secs(3600) {
                last_cleanup = std::time::Instant::now();
                if let Err(e) = self.cleanup().await {
                    tracing::warn!(error = %e, "webhook event cleanup failed");
                }
            }
            let pause = match self.process_once(&cache, &client).await {
                Ok(0) => Duration::from_secs(1),
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %crate::mask::text(&format!("{e:#}")), "webhook processing failed; retrying in 5 s");
                    Duration::from_secs(5)
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// One round: up to 100 events, each distinct contact read once. Returns events processed.
    pub async fn process_once(
        &self,
        cache: &crate::cache::Cache,
        client: &crate::hubspot::HubSpotClient,
    ) -> Result<usize, ProcessError> {
        let events = self.unprocessed(100).await?;
        let mut seen = std::collections::BTreeSet::new();
        for (_, kind, object_id) in &events {
            if !kind.starts_with("contact.") || !seen.insert(*object_id) {
                continue;
            }
            let id = object_id.to_string();
            match client.contact_by_id(&id).await? {
                Some(object) => cache.put(&object).await?,
                None => cache.remove(&id).await?,
            }
        }
        let ids: Vec<i64> = events.iter().map(|e| e.0).collect();
        self.mark_processed(&ids).await?;
        self.stats
            .processed
            .fetch_add(ids.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(ids.len())
    }

    /// Records events; returns (new, duplicates). Multi-row INSERTs (up to 500 events each,
    /// far under SQLite's and PostgreSQL's bound-parameter limits) in one write transaction:
    /// the database sees one statement per delivery, not one per event.
    pub async fn record(
        &self,
        events: &[(Event, serde_json::Value)],
    ) -> StoreResult<(usize, usize)> {
        const PER_STATEMENT: usize = 500;
        let now = crate::outbox::now_ms();
        let mut w = self.db.write().await?;
        let mut new = 0;
        for chunk in events.chunks(PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", crate::db::placeholders(i * 7 + 1, 7)))
                .collect();
            let sql = format!(
                "INSERT INTO webhook_events (event_id, subscription_type, object_id, occurred_at, payload, received_at, expires_at)
                 VALUES {}
                 ON CONFLICT (event_id, subscription_type, object_id, occurred_at) DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (e, payload) in chunk {
                query = query
                    .bind(e.event_id as i64)
                    .bind(e.subscription_type.clone())
                    .bind(e.object_id as i64)
                    .bind(e.occurred_at)
                    .bind(payload.to_string())
                    .bind(now)
                    .bind(now + KEEP_EVENTS.as_millis() as i64);
            }
            new += query.execute(&mut *w.tx).await?.rows_affected() as usize;
        }
        w.commit().await?;
        self.wake.notify_one();
        Ok((new, events.len() - new))
    }

    /// Unprocessed events: (row id, subscription type, object id), oldest first.
    pub async fn unprocessed(&self, limit: i64) -> StoreResult<Vec<(i64, String, i64)>> {
        let rows = sqlx::query(
            "SELECT id, subscription_type, object_id FROM webhook_events
             WHERE processed_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("id"), r.get("subscription_type"), r.get("object_id")))
            .collect())
    }

    /// Marks events processed: one UPDATE per 500 ids, in one write transaction.
    pub async fn mark_processed(&self, ids: &[i64]) -> StoreResult<()> {
        let now = crate::outbox::now_ms();
        let mut w = self.db.write().await?;
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE webhook_events SET processed_at = $1 WHERE id IN ({})",
                crate::db::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *w.tx).await?;
        }
        w.commit().await
    }

    /// Deletes processed events past their expiry; returns how many.
    pub async fn cleanup(&self) -> StoreResult<u64> {
        let mut w = self.db.write().await?;
        let deleted = sqlx::query(
            "DELETE FROM webhook_events WHERE processed_at IS NOT NULL AND expires_at < $1",
        )
        .bind(crate::outbox::now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(deleted)
    }

    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn v3(secret: &str, uri: &str, body: &[u8], ts: i64) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("POST{uri}").as_bytes());
        mac.update(body);
        mac.update(ts.to_string().as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        headers(&[
            ("x-hubspot-signature-v3", sig),
            ("x-hubspot-request-timestamp", ts.to_string()),
        ])
    }

    const URI: &str = "https://example.com/webhooks/hubspot";
    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn v3_accepts_a_good_signature_and_refuses_forgery_and_staleness() {
        let body = br#"[{"eventId":1}]"#;
        let ok = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("s3cret", URI, body, NOW),
            body,
            NOW + 1000,
        );
        assert_eq!(ok, Ok(Version::V3));
        let forged = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("guess", URI, body, NOW),
            body,
            NOW,
        );
        assert_eq!(forged, Err(Rejected::BadSignature));
        let tampered = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("s3cret", URI, body, NOW),
            b"[]",
            NOW,
        );
        assert_eq!(tampered, Err(Rejected::BadSignature));
        let other_uri = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            "http://example.com/webhooks/hubspot",
            &v3("s3cret", URI, body, NOW),
            body,
            NOW,
        );
        assert_eq!(other_uri, Err(Rejected::BadSignature));
        let stale = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("s3cret", URI, body, NOW),
            body,
            NOW + 301_000,
        );
        assert_eq!(stale, Err(Rejected::Stale));
        assert_eq!(
            verify(
                "s3cret",
                &[Version::V3],
                &Method::POST,
                URI,
                &HeaderMap::new(),
                body,
                NOW
            ),
            Err(Rejected::Missing)
        );
    }

    #[test]
    fn v1_and_v2_only_when_configured() {
        let body = b"[]";
        let v1 = hex::encode(Sha256::digest([b"s".as_slice(), body].concat()));
        let h = headers(&[
            ("x-hubspot-signature", v1),
            ("x-hubspot-signature-version", "v1".into()),
        ]);
        assert_eq!(
            verify("s", &[Version::V3], &Method::POST, URI, &h, body, NOW),
            Err(Rejected::VersionNotAccepted("v1".into()))
        );
        assert_eq!(
            verify(
                "s",
                &[Version::V1, Version::V3],
                &Method::POST,
                URI,
                &h,
                body,
                NOW
            ),
            Ok(Version::V1)
        );
        let v2 = hex::encode(Sha256::digest(format!("sPOST{URI}[]")));
        let h = headers(&[
            ("x-hubspot-signature", v2),
            ("x-hubspot-signature-version", "v2".into()),
        ]);
        assert_eq!(
            verify("s", &[Version::V2], &Method::POST, URI, &h, body, NOW),
            Ok(Version::V2)
        );
    }

    #[test]
    fn the_public_uri_comes_from_the_forwarded_headers() {
        let uri: Uri = "/webhooks/hubspot?x=1".parse().unwrap();
        let behind_nginx = headers(&[
            ("host", "internal:3000".into()),
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "api.example.com".into()),
            ("x-forwarded-port", "443".into()),
        ]);
        assert_eq!(
            public_uri(&behind_nginx, &uri),
            "https://api.example.com/webhooks/hubspot?x=1"
        );
        let odd_port = headers(&[
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "h".into()),
            ("x-forwarded-port", "8443".into()),
        ]);
        assert_eq!(
            public_uri(&odd_port, &uri),
            "https://h:8443/webhooks/hubspot?x=1"
        );
        let direct = headers(&[("host", "127.0.0.1:3000".into())]);
        assert_eq!(
            public_uri(&direct, &uri),
            "http://127.0.0.1:3000/webhooks/hubspot?x=1"
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
