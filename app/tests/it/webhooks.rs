//! Webhooks and lookups against the simulator: the simulator's own signed deliveries (with
//! duplicates) are accepted once and refresh the cache; forgery, replayed old deliveries,
//! malformed and oversized bodies are refused; a phone lookup serves a stale cache entry when
//! HubSpot is down.

use crate::common;

use std::time::{Duration, Instant};

use hubspot_sim::{SignatureVersion, SimConfig, WebhookConfig};
use serde_json::{json, Value};

const SECRET: &str = "client-secret-for-tests";
const ADMIN: &str = "admin-for-webhook-tests";

struct T {
    base: String,
    sim: hubspot_sim::RunningSim,
    http: reqwest::Client,
}

async fn spawn(duplicates: f64, extra: &[(&str, &str)]) -> T {
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let sim = hubspot_sim::spawn(SimConfig {
        webhooks: Some(WebhookConfig {
            url: format!("{base}/webhooks/hubspot"),
            secret: SECRET.into(),
            signature: SignatureVersion::V3,
            duplicate_probability: duplicates,
            timeout: Duration::from_secs(5),
            retry_delay: Duration::from_millis(100),
            max_attempts: 5,
            batch_window: Duration::from_millis(50),
            ca_pem: None,
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let settings = common::settings_with(
        &[
            ("APP_LISTEN", format!("127.0.0.1:{port}")),
            ("HUBSPOT_ACCESS_TOKEN", "pat-webhooks".into()),
            ("HUBSPOT_BASE_URL", sim.base_url()),
            ("HUBSPOT_CLIENT_SECRET", SECRET.into()),
            ("ADMIN_TOKEN", ADMIN.into()),
            ("HUBSPOT_TIMEOUT", "2s".into()),
            ("DATABASE_URL", "sqlite::memory:".into()),
        ],
        extra,
    );
    common::serve(settings).await;
    T {
        base,
        sim,
        http: reqwest::Client::new(),
    }
}

impl T {
    async fn admin(&self, path: &str) -> Value {
        common::get_json(&self.http, &format!("{}{path}", self.base), Some(ADMIN)).await
    }

    async fn upsert(&self, email: &str, phone: &str, firstname: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/api/hubspot/test", self.base))
            .json(&json!({"email": email, "phone": phone, "firstname": firstname}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn wait_for(&self, what: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let stats = self.admin("/api/stats").await;
            if done(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "{what}: {stats}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post_webhook(&self, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}/webhooks/hubspot", self.base))
            .body(body.to_vec());
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

fn sign_v3(uri: &str, body: &[u8], ts: i64) -> Vec<(&'static str, String)> {
    hubspot_sim::webhooks::sign(SignatureVersion::V3, SECRET, "POST", uri, body, ts)
}

#[tokio::test]
async fn signed_deliveries_are_recorded_once_and_refresh_the_cache() {
    // Every delivery is sent twice by the simulator (duplicates, as HubSpot may).
    let t = spawn(1.0, &[]).await;
    let created = t.upsert("ada@example.com", "+1 415 555 0100", "Ada").await;
    let stats = t
        .wait_for("the creation event processed", |s| {
            s["webhooks"]["processed"].as_u64() >= Some(1)
                && s["webhooks"]["duplicates"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(stats["webhooks"]["rejected"], 0, "{stats}");
    assert_eq!(stats["cache"]["entries"], 1, "{stats}");
    // The cache now answers the lookup without HubSpot.
    let found = t.admin("/api/contacts/lookup?phone=%2B14155550100").await;
    assert_eq!(found["source"], "cache", "{found}");
    assert_eq!(found["contacts"][0]["id"], created["id"]);
    assert_eq!(found["contacts"][0]["firstname"], "Ada");
    // An update arrives as an event too; the cache follows.
    t.upsert("ada@example.com", "+1 415 555 0100", "Augusta")
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = t.admin("/api/contacts/lookup?phone=%2B14155550100").await;
        if found["contacts"][0]["firstname"] == "Augusta" {
            break;
        }
        assert!(Instant::now() < deadline, "cache not refreshed: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE app_webhook_events counter")
            && metrics.contains("app_webhook_events_total{outcome=\"processed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("app_cache_lookups_total{result=\"hit\"}") && metrics.ends_with("# EOF\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn forged_stale_malformed_and_oversized_deliveries_are_refused() {
    let t = spawn(0.0, &[]).await;
    let uri = format!("{}/webhooks/hubspot", t.base);
    let now = chrono::Utc::now().timestamp_millis();
    let body = br#"[{"eventId": 1, "subscriptionType": "contact.creation", "objectId": 5, "occurredAt": 1}]"#;

    let (status, _) = t.post_webhook(body, &sign_v3(&uri, body, now)).await;
    assert_eq!(status, 200, "a good signature");
    let (status, answer) = t.post_webhook(body, &sign_v3(&uri, body, now)).await;
    assert_eq!(
        (status, answer["duplicates"].as_u64()),
        (200, Some(1)),
        "a replayed event is recorded once"
    );

    let forged = hubspot_sim::webhooks::sign(
        SignatureVersion::V3,
        "not-the-secret",
        "POST",
        &uri,
        body,
        now,
    );
    let (status, answer) = t.post_webhook(body, &forged).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("signature does not match"),
        "{answer}"
    );

    let old = now - 6 * 60 * 1000;
    let (status, answer) = t.post_webhook(body, &sign_v3(&uri, body, old)).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("older than 5 minutes"),
        "{answer}"
    );

    let (status, answer) = t.post_webhook(body, &[]).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("missing signature"),
        "{answer}"
    );

    let malformed = br#"{"not": "an array"}"#;
    let (status, answer) = t
        .post_webhook(malformed, &sign_v3(&uri, malformed, now))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["message"].as_str().unwrap().contains("JSON array"),
        "{answer}"
    );

    let huge = vec![b' '; 300 * 1024];
    let (status, _) = t.post_webhook(&huge, &sign_v3(&uri, &huge, now)).await;
    assert_eq!(status, 413);

    // Behind nginx the signed URI is the public one, rebuilt from the forwarded headers.
    let public = "https://api.example.com/webhooks/hubspot";
    let body2 = br#"[{"eventId": 2, "subscriptionType": "contact.creation", "objectId": 5, "occurredAt": 1}]"#;
    let mut headers = sign_v3(public, body2, now);
    headers.extend([
        ("X-Forwarded-Proto", "https".to_string()),
        ("X-Forwarded-Host", "api.example.com".to_string()),
        ("X-Forwarded-Port", "443".to_string()),
    ]);
    let (status, answer) = t.post_webhook(body2, &headers).await;
    assert_eq!(status, 200, "{answer}");
    let stats = t.admin("/api/stats").await;
    assert_eq!(stats["webhooks"]["rejected"], 5, "{stats}");
    assert_eq!(stats["webhooks"]["accepted"], 2, "{stats}");
}

#[tokio::test]
async fn lookups_serve_a_stale_entry_when_hubspot_is_down() {
    let t = spawn(0.0, &[("CACHE_TTL", "300ms"), ("HUBSPOT_TIMEOUT", "1s")]).await;
    t.upsert("grace@example.com", "+44 20 7946 0958", "Grace")
        .await;
    let r = t.admin("/api/contacts/lookup?phone=%2B442079460958").await;
    assert_eq!(r["source"], "hubspot", "first from HubSpot: {r}");
    assert_eq!(r["found"], true, "{r}");
    let r = t.admin("/api/contacts/lookup?phone=%2B442079460958").await;
    assert_eq!(r["source"], "cache", "then from the cache: {r}");
    tokio::time::sleep(Duration::from_millis(400)).await; // past the TTL
    common::sim_fault(
        &t.sim,
        json!({"path": "/crm/objects/2026-03/contacts/search", "times": 1000, "status": 503}),
    )
    .await;
    let r = t.admin("/api/contacts/lookup?phone=%2B442079460958").await;
    assert_eq!(
        (r["source"].as_str(), r["stale"].as_bool()),
        (Some("cache"), Some(true)),
        "{r}"
    );
    assert_eq!(r["contacts"][0]["firstname"], "Grace");
    // Batch lookup: one answer per phone, a bad one named.
    let r: Value = t
        .http
        .post(format!("{}/api/contacts/lookup", t.base))
        .bearer_auth(ADMIN)
        .json(&json!({"phones": ["+442079460958", "not a phone"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["results"][0]["stale"], true, "{r}");
    assert_eq!(r["results"][1]["status"], 400, "{r}");
    let stats = t.admin("/api/stats").await;
    assert_eq!(stats["cache"]["stale_served"], 2, "{stats}");
}
