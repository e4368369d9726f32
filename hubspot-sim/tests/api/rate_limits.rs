use std::time::Duration;

use hubspot_sim::{RateSpec, SimConfig};
use reqwest::Method;
use serde_json::json;

use crate::helpers::TestSim;

fn limited() -> SimConfig {
    SimConfig {
        rate_limit: RateSpec::new(3, Duration::from_millis(600)),
        search_rate_limit: RateSpec::new(2, Duration::from_millis(400)),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn ten_secondly_429_has_hubspots_body_and_headers_then_recovers() {
    let t = TestSim::with(limited()).await;
    for remaining in ["2", "1", "0"] {
        let r = t.get("/crm/v3/objects/contacts").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-hubspot-ratelimit-max"], "3");
        assert_eq!(r.headers["x-hubspot-ratelimit-remaining"], remaining);
        assert_eq!(
            r.headers["x-hubspot-ratelimit-interval-milliseconds"],
            "600"
        );
    }
    let r = t.get("/crm/v3/objects/contacts").await;
    assert_eq!(r.status, 429);
    let b = &r.body;
    assert_eq!(b["status"], "error");
    assert_eq!(
        b["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert_eq!(b["errorType"], "RATE_LIMIT");
    assert_eq!(b["policyName"], "TEN_SECONDLY_ROLLING");
    assert!(b["correlationId"].is_string() && b["requestId"].is_string());
    assert_eq!(r.headers["x-hubspot-ratelimit-remaining"], "0");

    // Another token has its own budget.
    assert_eq!(
        t.call_as(Some("other"), Method::GET, "/crm/v3/objects/contacts", None)
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(650)).await;
    assert_eq!(
        t.get("/crm/v3/objects/contacts").await.status,
        200,
        "the window rolled"
    );

    let stats = t.get("/_sim/stats").await.body;
    assert_eq!(stats["rateLimited"], 1, "{stats}");
}

#[tokio::test]
async fn search_has_its_own_limit_and_message() {
    let t = TestSim::with(limited()).await;
    for _ in 0..2 {
        assert_eq!(
            t.post("/crm/v3/objects/contacts/search", json!({}))
                .await
                .status,
            200
        );
    }
    let r = t.post("/crm/v3/objects/contacts/search", json!({})).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["message"], "You have reached your secondly limit.");
    assert_eq!(r.body["policyName"], "SECONDLY");
    assert!(r
        .headers
        .keys()
        .all(|k| !k.as_str().starts_with("x-hubspot-ratelimit")));
    // The general budget is untouched by searches.
    assert_eq!(
        t.get("/crm/v3/objects/contacts").await.headers["x-hubspot-ratelimit-remaining"],
        "2"
    );
}

#[tokio::test]
async fn daily_limit_is_a_daily_429() {
    let t = TestSim::with(SimConfig {
        daily_limit: Some(2),
        ..SimConfig::unthrottled()
    })
    .await;
    let r = t.get("/crm/v3/objects/contacts").await;
    assert_eq!(r.headers["x-hubspot-ratelimit-daily"], "2");
    assert_eq!(r.headers["x-hubspot-ratelimit-daily-remaining"], "1");
    t.get("/crm/v3/objects/contacts").await;
    let r = t.get("/crm/v3/objects/contacts").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["policyName"], "DAILY");
    assert_eq!(r.body["message"], "You have reached your daily limit.");
}
