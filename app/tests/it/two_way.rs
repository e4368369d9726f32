//! Two-way sync's ordering under stress: two app processes on one database accept interleaved
//! changes of the same 50 deals (ten rounds, alternating processes) while HubSpot fails some
//! batch updates; every deal ends with its newest value in HubSpot and keeps it (no older write
//! lands after a newer one), nothing is dead, nothing is left pending.

use std::time::{Duration, Instant};

use hubspot_sim::SimConfig;
use serde_json::{json, Value};

use crate::common;

const ADMIN: &str = "admin-two-way";

#[tokio::test]
async fn interleaved_changes_from_two_processes_through_failures_end_newest_in_hubspot() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/crm/properties/2026-03/deals", sim.base_url()))
        .bearer_auth("pat-two-way")
        .json(&json!({"name": "commission_amount", "label": "Commission", "type": "number", "fieldType": "number"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{}/_sim/seed/deals", sim.base_url()))
        .json(&json!({"count": 50, "properties": {"dealname": "Deal {n}"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let db = common::temp_db_url("two-way");
    let mut apps = Vec::new();
    for _ in 0..2 {
        let settings = common::settings(&[
            ("APP_LISTEN", "127.0.0.1:0".to_string()),
            ("HUBSPOT_ACCESS_TOKEN", "pat-two-way".to_string()),
            ("HUBSPOT_BASE_URL", sim.base_url()),
            ("DATABASE_URL", db.clone()),
            ("ADMIN_TOKEN", ADMIN.to_string()),
            ("SYNC_SCHEDULE", "off".to_string()),
            ("SYNC_OBJECTS", "deals".to_string()),
            ("HUBSPOT_TIMEOUT", "3s".to_string()),
        ]);
        apps.push(common::serve(settings).await);
    }
    let r = http
        .put(format!("{}/api/mappings/deals", apps[0]))
        .bearer_auth(ADMIN)
        .json(&json!({"mappings": [{"field": "commission", "hubspot": "commission_amount", "owner": "app"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{}/api/sync/run", apps[0]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ids: Vec<String> = loop {
        let page = common::get_json(
            &http,
            &format!("{}/api/objects/deals?limit=200", apps[1]),
            Some(ADMIN),
        )
        .await;
        let ids: Vec<String> = page["results"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|d| d["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() == 50 {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "the deals were not synced: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // A retry storm: many of the batch updates fail while the rounds go on.
    common::sim_fault(
        &sim,
        json!({"path": "/crm/objects/2026-03/deals/batch/update", "times": 25, "status": 503}),
    )
    .await;
    for round in 1..=10 {
        let changes = ids.iter().enumerate().map(|(i, id)| {
            let base = &apps[(i + round) % 2];
            http.patch(format!("{base}/api/objects/deals/{id}"))
                .bearer_auth(ADMIN)
                .json(&json!({"fields": {"commission": round.to_string()}}))
                .send()
        });
        for r in futures_util::future::join_all(changes).await {
            assert_eq!(r.unwrap().status(), 202);
        }
    }

    let newest = |records: &Value| -> usize {
        records["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["properties"]["commission_amount"] == "10")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = common::sim_records(&sim, "deals").await;
        if newest(&records) == 50 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all deals reached their newest value: {} of 50",
            newest(&records)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing older lands afterwards, and the queue is empty in both processes' view.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(newest(&common::sim_records(&sim, "deals").await), 50);
    let stats = common::get_json(&http, &format!("{}/api/stats", apps[1]), Some(ADMIN)).await;
    assert_eq!(stats["object_writes"]["pending"], 0, "{stats}");
    assert_eq!(stats["object_writes"]["dead"], 0, "{stats}");
    assert_eq!(stats["object_writes"]["sent"], 500, "{stats}");
    let statuses =
        common::route_statuses(&sim, "/crm/objects/2026-03/{object_type}/batch/{action}").await;
    assert!(
        statuses.contains(&(503, 25)),
        "the storm happened: {statuses:?}"
    );
    let updates: u64 = statuses
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, n)| n)
        .sum();
    assert!(
        updates < 500,
        "changes of a record waiting together go as one: {updates} calls"
    );
}
