//! The HubSpot client on its own, against the simulator.

use crate::common;

use app::hubspot::HubSpotClient;
use hubspot_sim::SimConfig;
use serde_json::json;

#[tokio::test]
async fn list_contacts_pages_through_everything_once() {
    let sim = hubspot_sim::spawn(SimConfig::default()).await.unwrap();
    let seeded = reqwest::Client::new()
        .post(format!("{}/_sim/seed/contacts", sim.base_url()))
        .json(&json!({"count": 250, "properties": {"email": "p{n}@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 201);
    let base = sim.base_url();
    let vars = [
        ("HUBSPOT_ACCESS_TOKEN", "pat".to_string()),
        ("HUBSPOT_BASE_URL", base),
    ];
    let settings = common::settings(&vars);
    let client =
        HubSpotClient::new(&settings.hubspot, settings.hubspot.token.clone().unwrap()).unwrap();

    let mut emails = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client.list_contacts(after.as_deref()).await.unwrap();
        pages += 1;
        emails.extend(
            page.results
                .iter()
                .map(|c| c["properties"]["email"].as_str().unwrap().to_string()),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(emails.len(), 250);
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), 250, "no contact twice");
}

/// Two limiters (two processes' worth) on one database file never exceed the window
/// together, and each gets calls through.
#[tokio::test]
async fn two_processes_share_one_budget_window() {
    let url = common::temp_db_url("budget");
    let (a, b) = (
        app::store::Db::connect(&url).await.unwrap(),
        app::store::Db::connect(&url).await.unwrap(),
    );
    let span = std::time::Duration::from_millis(600);
    let la =
        app::hubspot::limiter::Limiter::shared(5, span, std::sync::Arc::new(a), "t:general".into());
    let lb =
        app::hubspot::limiter::Limiter::shared(5, span, std::sync::Arc::new(b), "t:general".into());
    let started = std::time::Instant::now();
    let mut at = Vec::new();
    for i in 0..15 {
        let limiter = if i % 2 == 0 { &la } else { &lb };
        drop(limiter.acquire().await);
        at.push(started.elapsed());
    }
    // 15 calls, 5 per 600 ms: the 6th waits for the 1st to leave, the 11th for the 6th.
    assert!(at[4] < span, "{at:?}");
    assert!(at[5] >= span, "{at:?}");
    assert!(at[10] >= span * 2, "{at:?}");
    for w in at.windows(6) {
        assert!(
            w[5] - w[0] >= span - std::time::Duration::from_millis(5),
            "{at:?}"
        );
    }
}

/// HubSpot failing call after call: after `HUBSPOT_BREAKER`'s count the calls fail at once (no
/// request reaches HubSpot, no deadline is waited), then one probe decides.
#[tokio::test]
async fn the_circuit_breaker_fails_fast_then_one_probe_closes_it() {
    let sim = hubspot_sim::spawn(SimConfig::default()).await.unwrap();
    let vars = [
        ("HUBSPOT_ACCESS_TOKEN", "pat-breaker".to_string()),
        ("HUBSPOT_BASE_URL", sim.base_url()),
        ("HUBSPOT_BREAKER", "3/1s".to_string()),
    ];
    let settings = common::settings(&vars);
    let client =
        HubSpotClient::new(&settings.hubspot, settings.hubspot.token.clone().unwrap()).unwrap();
    let fault = common::sim_fault(
        &sim,
        json!({"path": "/account-info", "status": 500, "times": 100}),
    )
    .await;
    for _ in 0..3 {
        let err = client.account_details().await.unwrap_err();
        assert!(
            matches!(err, app::hubspot::HubSpotError::Api { status: 500, .. }),
            "{err}"
        );
    }
    let started = std::time::Instant::now();
    let err = client.account_details().await.unwrap_err();
    assert!(
        matches!(err, app::hubspot::HubSpotError::CircuitOpen(_)),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_millis(50),
        "failed at once"
    );
    assert_eq!(client.circuit(), app::hubspot::breaker::CircuitState::Open);
    let hits = |rules: serde_json::Value| rules["faults"][0]["hits"].as_u64().unwrap();
    let rules = common::get_json(
        &reqwest::Client::new(),
        &format!("{}/_sim/faults", sim.base_url()),
        None,
    )
    .await;
    assert_eq!(hits(rules), 3, "the refused call never reached HubSpot");
    // HubSpot recovers; after the open time one probe goes through and closes the breaker.
    reqwest::Client::new()
        .delete(format!("{}/_sim/faults/{}", sim.base_url(), fault["id"]))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(client.account_details().await.unwrap().0.portal_id, 62_515);
    assert_eq!(
        client.circuit(),
        app::hubspot::breaker::CircuitState::Closed
    );
}
