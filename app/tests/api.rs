//! The app over real HTTP against a real (in-process) HubSpot simulator.

use std::time::Duration;

use app::config::Settings;
use app::Application;
use hubspot_sim::SimConfig;
use serde_json::{json, Value};

struct TestApp {
    base: String,
    sim: hubspot_sim::RunningSim,
    http: reqwest::Client,
}

async fn spawn_app(sim_config: SimConfig, extra: &[(&str, &str)]) -> TestApp {
    let sim = hubspot_sim::spawn(sim_config).await.unwrap();
    let sim_url = sim.base_url();
    let mut vars = vec![
        ("APP_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("HUBSPOT_ACCESS_TOKEN".into(), "pat-na1-app".into()),
        ("HUBSPOT_BASE_URL".into(), sim_url),
        ("APP_VERSION".into(), "test-1".into()),
        ("APP_SLOT".into(), "blue".into()),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    let settings =
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(std::future::pending()));
    TestApp {
        base,
        sim,
        http: reqwest::Client::new(),
    }
}

impl TestApp {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

#[tokio::test]
async fn health_reports_version_and_slot() {
    let t = spawn_app(SimConfig::default(), &[]).await;
    let (status, body) = t.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ok", "version": "test-1", "slot": "blue"})
    );
    assert_eq!(t.get("/ready").await.0, 200);
}

#[tokio::test]
async fn hubspot_test_reports_portal_and_latency() {
    let t = spawn_app(SimConfig::default(), &[]).await;
    let (status, body) = t.get("/api/hubspot/test").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["hubspot"]["reachable"], true);
    assert_eq!(body["hubspot"]["authenticated"], true);
    assert_eq!(body["hubspot"]["portal_id"], 62_515);
    assert!(body["hubspot"]["latency_ms"].is_u64());
    assert_eq!(body["slot"], "blue");
}

#[tokio::test]
async fn rejected_token_is_502_with_a_clear_message() {
    let sim = SimConfig {
        tokens: vec!["the-right-one".into()],
        ..SimConfig::default()
    };
    let t = spawn_app(sim, &[]).await;
    let (status, body) = t.get("/api/hubspot/test").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["hubspot"]["authenticated"], false);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("HUBSPOT_ACCESS_TOKEN"));
    assert!(body["hubspot"]["correlation_id"].is_string());
    assert!(
        !body.to_string().contains("pat-na1-app"),
        "the token never comes back"
    );
}

#[tokio::test]
async fn stalled_hubspot_is_504_after_the_timeout_and_the_app_stays_responsive() {
    let t = spawn_app(SimConfig::default(), &[("HUBSPOT_TIMEOUT", "500ms")]).await;
    t.http
        .post(format!("{}/_sim/faults", t.sim.base_url()))
        .json(&json!({"path": "/account-info", "times": 1, "latency_ms": 3000}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let slow = tokio::spawn({
        let (http, base) = (t.http.clone(), t.base.clone());
        async move {
            http.get(format!("{base}/api/hubspot/test"))
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        t.get("/health").await.0,
        200,
        "health answers while HubSpot stalls"
    );
    let r = slow.await.unwrap();
    assert_eq!(r.status(), 504);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{body}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn unreachable_hubspot_is_502_and_disabled_is_503() {
    let t = spawn_app(
        SimConfig::default(),
        &[("HUBSPOT_BASE_URL", "http://127.0.0.1:9")],
    )
    .await;
    let (status, body) = t.get("/api/hubspot/test").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["hubspot"]["reachable"], false);

    let t = spawn_app(SimConfig::default(), &[("HUBSPOT_ENABLED", "false")]).await;
    let (status, body) = t.get("/api/hubspot/test").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "disabled");
}
