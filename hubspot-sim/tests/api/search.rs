use std::time::Duration;

use hubspot_sim::SimConfig;
use serde_json::{json, Value};

use crate::helpers::{assert_default_contact_properties, assert_error, TestSim};

const SEARCH: &str = "/crm/v3/objects/contacts/search";

fn eq(property: &str, value: &str) -> Value {
    json!({"filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": value}]}]})
}

#[tokio::test]
async fn finds_by_email_with_total_and_default_properties() {
    let t = TestSim::with(SimConfig::unthrottled()).await;
    let id = t
        .contact(json!({"email": "s@example.com", "firstname": "Sam", "phone": "555"}))
        .await;
    t.contact(json!({"email": "other@example.com"})).await;
    let r = t.post(SEARCH, eq("email", "S@EXAMPLE.COM")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["results"][0]["id"], id.as_str());
    assert_default_contact_properties(&r.body["results"][0]);
    assert!(r.body.get("paging").is_none());
    assert!(
        r.headers.get("x-hubspot-ratelimit-max").is_none(),
        "search responses carry no rate-limit headers"
    );
}

#[tokio::test]
async fn new_writes_are_invisible_until_the_index_lag_passes() {
    let t = TestSim::with(SimConfig {
        search_lag: Duration::from_millis(400),
        ..SimConfig::unthrottled()
    })
    .await;
    let id = t.contact(json!({"email": "lag@example.com"})).await;
    // Reads by id see it at once; search does not.
    assert_eq!(
        t.get(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        t.post(SEARCH, eq("email", "lag@example.com")).await.body["total"],
        0
    );
    // An update is also seen late: the old value stays searchable meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        t.post(SEARCH, eq("email", "lag@example.com")).await.body["total"],
        1
    );
    t.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({"properties": {"firstname": "Late"}}),
    )
    .await;
    assert_eq!(
        t.post(SEARCH, eq("firstname", "Late")).await.body["total"],
        0
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        t.post(SEARCH, eq("firstname", "Late")).await.body["total"],
        1
    );
}

#[tokio::test]
async fn pages_up_to_the_10k_cap_then_400() {
    let t = TestSim::with(SimConfig::unthrottled()).await;
    let seeded = t
        .post("/_sim/seed/contacts", json!({"count": 10_050, "properties": {"email": "bulk{n}@example.com", "firstname": "Bulk"}, "timestamp": "2026-01-31T23:59:59.000Z"}))
        .await;
    assert_eq!(seeded.status, 201, "{}", seeded.body);
    assert_eq!(seeded.body["created"], 10_050);

    let body = json!({"filterGroups": [{"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Bulk"}]}], "limit": 200, "after": "9800", "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]});
    let r = t.post(SEARCH, body.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["total"], 10_050,
        "total counts every match, past the cap"
    );
    assert_eq!(r.body["results"].as_array().unwrap().len(), 200);
    assert_eq!(r.body["paging"]["next"]["after"], "10000");

    let mut past = body;
    past["after"] = json!("10000");
    let b = assert_error(&t.post(SEARCH, past).await, 400, "VALIDATION_ERROR");
    assert!(b["message"].as_str().unwrap().contains("10000"), "{b}");

    // Every record carries the seeded timestamp: the case a cursor on lastmodifieddate cannot page.
    let same = t
        .post(SEARCH, json!({"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": "2026-01-31T23:59:59.000Z"}]}], "limit": 1}))
        .await;
    assert_eq!(same.body["total"], 10_050);
}

#[tokio::test]
async fn limit_and_filter_bounds_are_400s() {
    let t = TestSim::with(SimConfig::unthrottled()).await;
    assert_error(
        &t.post(SEARCH, json!({"limit": 201})).await,
        400,
        "VALIDATION_ERROR",
    );
    let filter = json!({"propertyName": "email", "operator": "HAS_PROPERTY"});
    let groups: Vec<Value> = (0..6)
        .map(|_| json!({"filters": [filter.clone()]}))
        .collect();
    assert_error(
        &t.post(SEARCH, json!({"filterGroups": groups})).await,
        400,
        "VALIDATION_ERROR",
    );
    // The relaxed reading (5/10/25) accepts 10 filters in a group; the strict one does not.
    let ten = json!({"filterGroups": [{"filters": vec![filter.clone(); 10]}]});
    assert_error(&t.post(SEARCH, ten.clone()).await, 400, "VALIDATION_ERROR");
    let relaxed = TestSim::with(SimConfig {
        search_limits: hubspot_sim::SearchLimits::Relaxed,
        ..SimConfig::unthrottled()
    })
    .await;
    assert_eq!(relaxed.post(SEARCH, ten).await.status, 200);
}

#[tokio::test]
async fn sorts_and_free_text_query_over_http() {
    let t = TestSim::with(SimConfig::unthrottled()).await;
    for (email, first) in [
        ("zed@example.com", "Zed"),
        ("amy@example.com", "Amy"),
        ("kim@example.com", "Kim"),
    ] {
        t.contact(json!({"email": email, "firstname": first})).await;
    }
    let r = t.post(SEARCH, json!({"sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}], "properties": ["firstname"]})).await;
    let names: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["properties"]["firstname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Zed", "Kim", "Amy"]);
    let r = t.post(SEARCH, json!({"query": "ki"})).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(
        r.body["results"][0]["properties"]["email"],
        "kim@example.com"
    );
}
