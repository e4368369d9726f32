use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{assert_error, TestSim};

#[tokio::test]
async fn injected_status_applies_to_the_next_n_matching_requests() {
    let t = TestSim::start().await;
    let r = t.post("/_sim/faults", json!({"path": "/crm/v3/objects/contacts", "method": "GET", "times": 2, "status": 503, "headers": {"Retry-After": "1"}})).await;
    assert_eq!(r.status, 201);
    for _ in 0..2 {
        let r = t.get("/crm/v3/objects/contacts").await;
        assert_error(&r, 503, "INTERNAL_ERROR");
        assert_eq!(r.headers["retry-after"], "1");
    }
    assert_eq!(t.get("/crm/v3/objects/contacts").await.status, 200);
    assert_eq!(t.get("/account-info/v3/details").await.status, 200);
}

#[tokio::test]
async fn injected_429_looks_like_hubspots() {
    let t = TestSim::start().await;
    t.post(
        "/_sim/faults",
        json!({"path": "/", "times": 1, "status": 429}),
    )
    .await;
    let r = t.get("/account-info/v3/details").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["policyName"], "TEN_SECONDLY_ROLLING");
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let t = TestSim::start().await;
    t.post(
        "/_sim/faults",
        json!({"path": "/account-info", "times": 1, "latency_ms": 300}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(t.get("/account-info/v3/details").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    t.get("/account-info/v3/details").await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn drop_closes_the_connection_without_an_answer() {
    let t = TestSim::start().await;
    t.post(
        "/_sim/faults",
        json!({"path": "/crm/v3/objects/contacts", "method": "POST", "times": 1, "drop": true}),
    )
    .await;
    let err = t
        .http
        .post(t.url("/crm/v3/objects/contacts"))
        .bearer_auth("x")
        .json(&json!({"properties": {}}))
        .send()
        .await
        .expect_err("connection must be dropped");
    assert!(
        err.is_request() || err.is_connect() || err.to_string().contains("connection"),
        "{err:?}"
    );
    // The server is still fine afterwards, and the dropped request is counted.
    assert_eq!(
        t.post("/crm/v3/objects/contacts", json!({"properties": {}}))
            .await
            .status,
        201
    );
    let stats = t.get("/_sim/stats").await.body;
    let dropped = stats["byRoute"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == 0)
        .expect("a dropped row");
    assert_eq!(dropped["count"], 1);
}

#[tokio::test]
async fn rules_can_be_listed_removed_and_reset() {
    let t = TestSim::start().await;
    let id = t
        .post("/_sim/faults", json!({"path": "/", "status": 500}))
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    assert_eq!(t.get("/_sim/faults").await.body["faults"][0]["id"], id);
    assert_eq!(t.get("/account-info/v3/details").await.status, 500);
    assert_eq!(t.delete(&format!("/_sim/faults/{id}")).await.status, 204);
    assert_eq!(t.get("/account-info/v3/details").await.status, 200);

    t.contact(json!({"email": "r@example.com"})).await;
    t.post("/_sim/faults", json!({"path": "/", "status": 500}))
        .await;
    assert_eq!(t.post("/_sim/reset", json!({})).await.status, 204);
    assert_eq!(t.get("/_sim/records/contacts").await.body["count"], 0);
    assert_eq!(t.get("/account-info/v3/details").await.status, 200);

    let r = t
        .post("/_sim/faults", json!({"path": "/", "status": 42}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("between 200 and 599"));
}
