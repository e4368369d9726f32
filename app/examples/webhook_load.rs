//! Load for `POST /webhooks/hubspot` (scripts/bench-sync.sh): `connections` keep-alive
//! connections each send deliveries of `events` contact events, signed with v3 the way HubSpot
//! does, for `seconds`. Every event id is new except a `dup` fraction that repeats an earlier
//! one (the dedupe path). Prints deliveries/s, events/s, non-2xx and latency percentiles.
//! Usage: webhook_load URL SECRET [connections=16] [seconds=10] [events=10] [dup=0.1]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect("URL").clone();
    let secret = args.get(2).expect("SECRET").clone();
    let connections: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10);
    let events: u64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(10);
    let dup: f64 = args.get(6).and_then(|a| a.parse().ok()).unwrap_or(0.1);
    let next_id = Arc::new(AtomicU64::new(1));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (url, secret, next_id) = (url.clone(), secret.clone(), next_id.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
                let mut latencies = Vec::new();
                let mut non_2xx = 0u64;
                while Instant::now() < until {
                    let body: Vec<serde_json::Value> = (0..events)
                        .map(|_| {
                            let fresh = next_id.fetch_add(1, Ordering::Relaxed);
                            let id = if rand::random::<f64>() < dup && fresh > 100 { fresh - 100 } else { fresh };
                            serde_json::json!({
                                "eventId": id, "subscriptionId": 1, "portalId": 62515, "appId": 1,
                                "occurredAt": 1_700_000_000_000u64 + id, "subscriptionType": "contact.propertyChange",
                                "attemptNumber": 0, "objectId": 1000 + id % 500, "propertyName": "firstname",
                                "propertyValue": "x", "changeSource": "CRM"
                            })
                        })
                        .collect();
                    let body = serde_json::to_vec(&body).unwrap();
                    let ts = chrono::Utc::now().timestamp_millis().to_string();
                    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                    mac.update(b"POST");
                    mac.update(url.as_bytes());
                    mac.update(&body);
                    mac.update(ts.as_bytes());
                    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                    let t = Instant::now();
                    match http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("X-HubSpot-Signature-v3", sig)
                        .header("X-HubSpot-Request-Timestamp", ts)
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            latencies.push(t.elapsed().as_micros() as u64);
                        }
                        _ => non_2xx += 1,
                    }
                }
                (latencies, non_2xx)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failed += f;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "webhooks: {} deliveries of {events} events in {secs:.1}s: {:.0} deliveries/s, {:.0} events/s; non-2xx {failed}; latency ms p50 {:.2} p99 {:.2}",
        all.len(),
        all.len() as f64 / secs,
        all.len() as f64 * events as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
}
