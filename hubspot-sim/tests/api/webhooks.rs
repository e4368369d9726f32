use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use hubspot_sim::{SignatureVersion, SimConfig, WebhookConfig};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::TestSim;

const SECRET: &str = "client-secret-for-tests";

#[derive(Clone)]
enum Behaviour {
    Status(u16),
    Slow(Duration),
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    script: Arc<Mutex<VecDeque<Behaviour>>>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got.lock().push((headers, body));
    let next = r.script.lock().pop_front();
    match next {
        Some(Behaviour::Status(s)) => StatusCode::from_u16(s).unwrap(),
        Some(Behaviour::Slow(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NO_CONTENT,
    }
}

impl Receiver {
    async fn start(script: Vec<Behaviour>) -> (Self, String) {
        let r = Receiver {
            script: Arc::new(Mutex::new(script.into())),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/webhooks/hubspot?source=sim",
            listener.local_addr().unwrap()
        );
        let app = Router::new()
            .route("/webhooks/hubspot", post(hook))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    async fn wait_for(&self, deliveries: usize) -> Vec<(HeaderMap, Value)> {
        for _ in 0..200 {
            if self.got.lock().len() >= deliveries {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let got = self.got.lock().clone();
        assert!(
            got.len() >= deliveries,
            "expected {deliveries} deliveries, got {}",
            got.len()
        );
        got.into_iter()
            .map(|(h, b)| (h, serde_json::from_slice(&b).unwrap()))
            .collect()
    }
}

fn config(url: &str, signature: SignatureVersion, duplicates: f64) -> SimConfig {
    SimConfig {
        webhooks: Some(WebhookConfig {
            url: url.to_string(),
            secret: SECRET.into(),
            signature,
            duplicate_probability: duplicates,
            timeout: Duration::from_millis(300),
            retry_delay: Duration::from_millis(50),
            max_attempts: 10,
            batch_window: Duration::from_millis(30),
            ca_pem: None,
        }),
        ..SimConfig::default()
    }
}

/// Verifies v3 the way a receiver must: HMAC-SHA256 over method + URI + body + timestamp.
fn v3_valid(headers: &HeaderMap, url: &str, body: &[u8]) -> bool {
    let ts = headers["x-hubspot-request-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("POST{url}").as_bytes());
    mac.update(body);
    mac.update(ts.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    headers["x-hubspot-signature-v3"] == expected.as_str()
}

#[tokio::test]
async fn creation_change_and_deletion_arrive_signed_v3() {
    let (rx, url) = Receiver::start(vec![]).await;
    let t = TestSim::with(config(&url, SignatureVersion::V3, 0.0)).await;
    let id = t.contact(json!({"email": "hook@example.com"})).await;
    let got = rx.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    t.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({"properties": {"firstname": "Hook"}}),
    )
    .await;
    rx.wait_for(2).await;
    t.delete(&format!("/crm/v3/objects/contacts/{id}")).await;
    let got_all = rx.wait_for(3).await;

    let raw = rx.got.lock().clone();
    for (headers, body) in &raw {
        assert!(v3_valid(headers, &url, body), "v3 signature must verify");
        let ts: i64 = headers["x-hubspot-request-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((hubspot_sim::model::now_ms() - ts).abs() < 60_000);
    }
    let creation = &got[0].1[0];
    assert_eq!(creation["subscriptionType"], "contact.creation");
    assert_eq!(creation["objectId"].as_u64().unwrap().to_string(), id);
    assert_eq!(creation["attemptNumber"], 0);
    assert_eq!(creation["portalId"], 62_515);
    for key in [
        "eventId",
        "subscriptionId",
        "appId",
        "occurredAt",
        "changeSource",
    ] {
        assert!(!creation[key].is_null(), "{key} missing: {creation}");
    }
    let change = &got_all[1].1[0];
    assert_eq!(change["subscriptionType"], "contact.propertyChange");
    assert_eq!(change["propertyName"], "firstname");
    assert_eq!(change["propertyValue"], "Hook");
    assert_eq!(got_all[2].1[0]["subscriptionType"], "contact.deletion");
}

#[tokio::test]
async fn events_are_batched_up_to_100_per_request() {
    let (rx, url) = Receiver::start(vec![]).await;
    let t = TestSim::with(config(&url, SignatureVersion::V3, 0.0)).await;
    let inputs: Vec<Value> = (0..100)
        .map(|i| json!({"properties": {"email": format!("n{i}@example.com")}}))
        .collect();
    t.post(
        "/crm/v3/objects/contacts/batch/create",
        json!({"inputs": inputs.clone()[..60]}),
    )
    .await;
    t.post(
        "/crm/v3/objects/contacts/batch/create",
        json!({"inputs": inputs.clone()[60..]}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.wait_for(1).await;
    let total: usize = got.iter().map(|(_, b)| b.as_array().unwrap().len()).sum();
    assert_eq!(total, 100);
    assert!(got.iter().all(|(_, b)| b.as_array().unwrap().len() <= 100));
}

#[tokio::test]
async fn failures_and_slow_answers_are_retried_with_rising_attempt_numbers() {
    let (rx, url) = Receiver::start(vec![
        Behaviour::Status(500),
        Behaviour::Slow(Duration::from_millis(600)),
    ])
    .await;
    let t = TestSim::with(config(&url, SignatureVersion::V3, 0.0)).await;
    t.contact(json!({"email": "retry@example.com"})).await;
    let got = rx.wait_for(3).await;
    let attempts: Vec<u64> = got
        .iter()
        .map(|(_, b)| b[0]["attemptNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [0, 1, 2]);
    let ids: Vec<&Value> = got.iter().map(|(_, b)| &b[0]["eventId"]).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "a retry resends the same event"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = t.get("/_sim/webhooks").await.body;
    let log = log["attempts"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0]["status"], 500);
    assert!(log[1]["error"]
        .as_str()
        .unwrap()
        .contains("no answer within"));
    assert_eq!(log[2]["delivered"], true);
}

#[tokio::test]
async fn duplicates_are_delivered_when_asked_for() {
    let (rx, url) = Receiver::start(vec![]).await;
    let t = TestSim::with(config(&url, SignatureVersion::V3, 1.0)).await;
    t.contact(json!({"email": "twice@example.com"})).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].1, got[1].1, "the same events twice");
}

#[tokio::test]
async fn v1_and_v2_signatures_are_selectable() {
    for (version, label) in [(SignatureVersion::V1, "v1"), (SignatureVersion::V2, "v2")] {
        let (rx, url) = Receiver::start(vec![]).await;
        let t = TestSim::with(config(&url, version, 0.0)).await;
        t.contact(json!({"email": format!("{label}@example.com")}))
            .await;
        rx.wait_for(1).await;
        let (headers, body) = rx.got.lock()[0].clone();
        assert_eq!(headers["x-hubspot-signature-version"], label);
        let mut h = Sha256::new();
        h.update(SECRET.as_bytes());
        if version == SignatureVersion::V2 {
            h.update(format!("POST{url}").as_bytes());
        }
        h.update(&body);
        assert_eq!(
            headers["x-hubspot-signature"],
            hex::encode(h.finalize()).as_str()
        );
    }
}

#[tokio::test]
async fn each_event_carries_the_portal_whose_record_changed() {
    let (rx, url) = Receiver::start(vec![]).await;
    // Portals 62515 (--portal-id, the private-app token's) and 777 (installed by OAuth).
    let t = TestSim::with(SimConfig {
        webhooks: config(&url, SignatureVersion::V3, 0.0).webhooks,
        ..crate::oauth::config()
    })
    .await;
    let tokens = crate::oauth::exchange(&t, &crate::oauth::code_for(&t, 777).await)
        .await
        .1;
    let oauth = tokens["access_token"].as_str().unwrap();
    t.contact(json!({"email": "default@example.com"})).await;
    let body = json!({"properties": {"email": "other@example.com"}});
    let r = t
        .call_as(
            Some(oauth),
            reqwest::Method::POST,
            "/crm/objects/2026-03/contacts",
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let other_id = r.body["id"].as_str().unwrap().to_string();
    let events: Vec<Value> = loop {
        let got = rx.wait_for(1).await;
        let events: Vec<Value> = got
            .into_iter()
            .flat_map(|(_, b)| b.as_array().unwrap().clone())
            .collect();
        if events.len() >= 2 {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let portal_of = |id: &str| {
        events
            .iter()
            .find(|e| e["objectId"].as_u64().unwrap().to_string() == id)
            .map(|e| e["portalId"].clone())
    };
    assert_eq!(portal_of(&other_id), Some(json!(777)), "{events:?}");
    let default: Vec<&Value> = events.iter().filter(|e| e["portalId"] == 62_515).collect();
    assert_eq!(default.len(), 1, "{events:?}");
}
