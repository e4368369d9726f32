use serde_json::{json, Value};

use crate::helpers::{assert_error, TestSim};

#[tokio::test]
async fn upsert_by_email_creates_and_updates_with_new_flags() {
    let t = TestSim::start().await;
    let existing = t
        .contact(json!({"email": "old@example.com", "firstname": "Old"}))
        .await;
    let r = t
        .post("/crm/v3/objects/contacts/batch/upsert", json!({"inputs": [
            {"id": "OLD@example.com", "idProperty": "email", "properties": {"lastname": "Timer"}},
            {"id": "new@example.com", "idProperty": "email", "properties": {"firstname": "New"}},
        ]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "COMPLETE");
    assert!(r.body["startedAt"].is_string() && r.body["completedAt"].is_string());
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let old = results
        .iter()
        .find(|x| x["id"] == existing.as_str())
        .unwrap();
    assert_eq!(old["new"], false);
    assert_eq!(old["properties"]["firstname"], "Old");
    assert_eq!(old["properties"]["lastname"], "Timer");
    let new = results
        .iter()
        .find(|x| x["id"] != existing.as_str())
        .unwrap();
    assert_eq!(new["new"], true);
    assert_eq!(new["properties"]["email"], "new@example.com");
}

#[tokio::test]
async fn upsert_partial_failure_is_207_with_errors() {
    let t = TestSim::start().await;
    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [
                {"id": "fine@example.com", "idProperty": "email", "properties": {}},
                {"id": "broken", "idProperty": "email", "properties": {}},
            ]}),
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    assert_eq!(r.body["numErrors"], 1);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 1);
    let e = &r.body["errors"][0];
    assert_eq!(e["status"], "error");
    assert_eq!(e["category"], "VALIDATION_ERROR");
    assert_eq!(e["context"], json!({"id": ["broken"]}));
}

#[tokio::test]
async fn upsert_refuses_duplicates_and_non_unique_id_property() {
    let t = TestSim::start().await;
    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [
                {"id": "twice@example.com", "idProperty": "email", "properties": {}},
                {"id": "TWICE@example.com", "idProperty": "email", "properties": {}},
            ]}),
        )
        .await;
    let b = assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(
        b["message"].as_str().unwrap().contains("Duplicate IDs"),
        "{b}"
    );
    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [{"id": "1", "idProperty": "hs_object_id", "properties": {}}]}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(
        t.get("/_sim/records/contacts").await.body["count"],
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn more_than_100_inputs_is_400() {
    let t = TestSim::start().await;
    let inputs: Vec<Value> = (0..101)
        .map(
            |i| json!({"id": format!("b{i}@example.com"), "idProperty": "email", "properties": {}}),
        )
        .collect();
    let b = assert_error(
        &t.post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": inputs}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    assert!(
        b["message"].as_str().unwrap().contains("at most 100"),
        "{b}"
    );
}

#[tokio::test]
async fn create_is_all_or_nothing() {
    let t = TestSim::start().await;
    let existing = t.contact(json!({"email": "here@example.com"})).await;
    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [
                {"properties": {"email": "a1@example.com"}},
                {"properties": {"email": "here@example.com"}},
            ]}),
        )
        .await;
    let b = assert_error(&r, 409, "CONFLICT");
    assert!(b["message"].as_str().unwrap().ends_with(&existing));
    assert_eq!(t.get("/_sim/records/contacts").await.body["count"], 1);
    let r = t
        .post("/crm/v3/objects/contacts/batch/create", json!({"inputs": [{"properties": {"email": "a1@example.com"}}, {"properties": {"email": "a2@example.com"}}]}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn read_update_and_archive() {
    let t = TestSim::start().await;
    let a = t.contact(json!({"email": "ra@example.com"})).await;
    let b = t.contact(json!({"email": "rb@example.com"})).await;

    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"inputs": [{"id": a}, {"id": "1"}], "properties": ["email"]}),
        )
        .await;
    assert_eq!(r.status, 207);
    assert_eq!(
        r.body["results"][0]["properties"]["email"],
        "ra@example.com"
    );
    assert_eq!(r.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(r.body["errors"][0]["context"], json!({"ids": ["1"]}));

    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"idProperty": "email", "inputs": [{"id": "rb@example.com"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["results"][0]["id"], b.as_str());

    let r = t.post("/crm/v3/objects/contacts/batch/update", json!({"inputs": [{"id": a, "properties": {"firstname": "A"}}, {"id": b, "properties": {"firstname": "B"}}]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [{"id": a, "properties": {}}, {"id": a, "properties": {}}]}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");

    let r = t
        .post(
            "/crm/v3/objects/contacts/batch/archive",
            json!({"inputs": [{"id": a}, {"id": b}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(t.get("/_sim/records/contacts").await.body["count"], 0);
}
