//! Unique-value custom properties as `idProperty`, and custom events: definitions, occurrences
//! sent one by one and in batches (deduplicated by uuid), read back per record.

use serde_json::json;

use crate::helpers::{assert_error, TestSim};

async fn portal(t: &TestSim) -> u64 {
    t.get("/account-info/2026-03/details").await.body["portalId"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_unique_custom_property_keys_upserts_and_refuses_a_second_holder() {
    let t = TestSim::start().await;
    let r = t
        .post(
            "/crm/properties/2026-03/contacts",
            json!({"name": "product_user_id", "label": "User id", "type": "string",
                   "fieldType": "text", "hasUniqueValue": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["hasUniqueValue"], true);
    // Not unique: refused as idProperty.
    let r = t
        .post(
            "/crm/objects/2026-03/contacts/batch/upsert",
            json!({"inputs": [{"id": "Ann", "idProperty": "firstname", "properties": {}}]}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");

    let upsert = |props: serde_json::Value| json!({"inputs": [{"id": "u-1", "idProperty": "product_user_id", "properties": props}]});
    let r = t
        .post(
            "/crm/objects/2026-03/contacts/batch/upsert",
            upsert(json!({"firstname": "Anon"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"][0]["new"], true);
    let id = r.body["results"][0]["id"].as_str().unwrap().to_string();
    // The email arrives later: the same record, not a second one.
    let r = t
        .post(
            "/crm/objects/2026-03/contacts/batch/upsert",
            upsert(json!({"email": "anon@example.com"})),
        )
        .await;
    assert_eq!(r.body["results"][0]["new"], false);
    assert_eq!(r.body["results"][0]["id"], id.as_str());
    let r = t
        .get("/crm/objects/2026-03/contacts/U-1?idProperty=product_user_id&properties=email,firstname")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["properties"]["email"], "anon@example.com");

    // A second record may not take the value.
    let other = t.contact(json!({"email": "other@example.com"})).await;
    let r = t
        .patch(
            &format!("/crm/objects/2026-03/contacts/{other}"),
            json!({"properties": {"product_user_id": "u-1"}}),
        )
        .await;
    assert_error(&r, 409, "CONFLICT");
    // Archived, the value is free again.
    let r = t
        .call(
            reqwest::Method::DELETE,
            &format!("/crm/objects/2026-03/contacts/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = t
        .patch(
            &format!("/crm/objects/2026-03/contacts/{other}"),
            json!({"properties": {"product_user_id": "u-1"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Only strings and numbers can be unique.
    let r = t
        .post(
            "/crm/properties/2026-03/contacts",
            json!({"name": "flag", "label": "Flag", "type": "bool", "fieldType": "booleancheckbox",
                   "hasUniqueValue": true, "options": [{"label": "Yes", "value": "true"}]}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn custom_event_occurrences_are_checked_kept_once_per_uuid_and_read_back() {
    let t = TestSim::start().await;
    let hub = portal(&t).await;
    let r = t
        .post(
            "/events/2026-03/event-definitions",
            json!({"label": "Nova earned", "name": "nova_earned", "primaryObject": "CONTACT",
                   "propertyDefinitions": [{"name": "amount", "label": "Amount", "type": "number"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let name = r.body["fullyQualifiedName"].as_str().unwrap().to_string();
    assert_eq!(name, format!("pe{hub}_nova_earned"));
    let r = t
        .post(
            "/events/2026-03/event-definitions",
            json!({"label": "Again", "name": "nova_earned"}),
        )
        .await;
    assert_error(&r, 409, "CONFLICT");
    let r = t.get("/events/v3/event-definitions/nova_earned").await;
    assert_eq!(r.body["properties"][0]["name"], "amount");

    let contact = t.contact(json!({"email": "ev@example.com"})).await;
    let one = json!({"eventName": name, "email": "ev@example.com", "uuid": "e-1",
                     "occurredAt": "2026-11-01T10:00:00Z", "properties": {"amount": 5}});
    let r = t.post("/events/2026-03/send", one.clone()).await;
    assert_eq!(r.status, 204, "{}", r.body);
    // The same uuid again (a retried send): still one occurrence.
    let r = t
        .post(
            "/events/2026-03/send/batch",
            json!({"inputs": [one, {"eventName": name, "objectId": contact.to_string(), "uuid": "e-2",
                                    "occurredAt": "2026-11-01T09:00:00Z", "properties": {"amount": "7"}}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = t
        .get(&format!(
            "/events/2026-03/events?objectType=contact&objectId={contact}&eventType={name}"
        ))
        .await;
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", r.body);
    assert_eq!(results[0]["id"], "e-2", "oldest first");
    assert_eq!(results[1]["properties"]["amount"], 5);

    // Checked: an undefined event, an undefined property, a wrong type, a batch over 500.
    for (body, what) in [
        (
            json!({"eventName": format!("pe{hub}_nope"), "email": "ev@example.com"}),
            "not defined",
        ),
        (
            json!({"eventName": name, "email": "ev@example.com", "properties": {"colour": "red"}}),
            "colour",
        ),
        (
            json!({"eventName": name, "email": "ev@example.com", "properties": {"amount": "lots"}}),
            "number",
        ),
    ] {
        let r = t.post("/events/2026-03/send", body).await;
        let b = assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(b["message"].as_str().unwrap().contains(what), "{b}");
    }
    let many: Vec<_> = (0..501)
        .map(|i| json!({"eventName": name, "objectId": contact.to_string(), "uuid": format!("m-{i}")}))
        .collect();
    let r = t
        .post("/events/2026-03/send/batch", json!({"inputs": many}))
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    // A bad input refuses its whole batch.
    let r = t
        .post(
            "/events/2026-03/send/batch",
            json!({"inputs": [{"eventName": name, "objectId": contact.to_string(), "uuid": "x-1"},
                              {"eventName": name, "objectId": "999999999", "uuid": "x-2"}]}),
        )
        .await;
    let b = assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(
        b["message"].as_str().unwrap().starts_with("inputs[1]"),
        "{b}"
    );
    let r = t
        .get(&format!(
            "/events/2026-03/events?objectType=contact&objectId={contact}"
        ))
        .await;
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
}
