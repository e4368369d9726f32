//! Associations v4 and the object types beyond contacts: line items, the engagement objects.

use serde_json::{json, Value};

use crate::helpers::{assert_error, TestSim};

async fn create(t: &TestSim, object_type: &str, body: Value) -> String {
    let r = t
        .post(&format!("/crm/objects/2026-03/{object_type}"), body)
        .await;
    assert_eq!(r.status, 201, "{object_type}: {}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn edges(reply: &Value, from: &str) -> Vec<(String, Vec<u64>)> {
    let result = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["from"]["id"] == from)
        .unwrap_or_else(|| panic!("no result for {from}: {reply}"));
    result["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let types = t["associationTypes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["typeId"].as_u64().unwrap())
                .collect();
            (t["toObjectId"].as_u64().unwrap().to_string(), types)
        })
        .collect()
}

#[tokio::test]
async fn labelled_edges_read_back_from_both_sides_on_both_paths() {
    let t = TestSim::start().await;
    let company = create(&t, "companies", json!({"properties": {"name": "Acme"}})).await;
    let contact = create(
        &t,
        "contacts",
        json!({"properties": {"email": "a@acme.test"}}),
    )
    .await;
    // A deal made with its associations inline (HubSpot infers the type from the type id).
    let deal = create(
        &t,
        "deals",
        json!({"properties": {"dealname": "Big", "amount": "10"},
               "associations": [
                 {"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]},
                 {"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]}),
    )
    .await;
    let item = create(
        &t,
        "line_items",
        json!({"properties": {"name": "Seat", "quantity": "3", "price": "20"}}),
    )
    .await;
    let r = t
        .post(
            "/crm/associations/2026-03/line_items/deals/batch/associate/default",
            json!({"inputs": [{"from": {"id": item}, "to": {"id": deal}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A second, unlabelled type on the deal → company edge.
    let r = t
        .post(
            "/crm/associations/2026-03/deal/company/batch/create",
            json!({"inputs": [{"from": {"id": deal}, "to": {"id": company},
                   "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["results"][0]["labels"], json!(["Primary"]));

    let r = t
        .post(
            "/crm/associations/2026-03/deals/companies/batch/read",
            json!({"inputs": [{"id": deal}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(edges(&r.body, &deal), vec![(company.clone(), vec![5, 341])]);
    let labels: Vec<&Value> = r.body["results"][0]["to"][0]["associationTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["label"])
        .collect();
    assert_eq!(labels, vec![&json!("Primary"), &Value::Null]);
    // The inverse, on the legacy path, by type id.
    let r = t
        .post(
            "/crm/v4/associations/0-2/0-3/batch/read",
            json!({"inputs": [{"id": company}]}),
        )
        .await;
    assert_eq!(edges(&r.body, &company), vec![(deal.clone(), vec![6, 342])]);
    let r = t
        .post(
            "/crm/associations/2026-03/deals/line_items/batch/read",
            json!({"inputs": [{"id": deal}]}),
        )
        .await;
    assert_eq!(edges(&r.body, &deal), vec![(item.clone(), vec![19])]);
    let r = t
        .post(
            "/crm/associations/2026-03/contacts/deals/batch/read",
            json!({"inputs": [{"id": contact}]}),
        )
        .await;
    assert_eq!(edges(&r.body, &contact), vec![(deal.clone(), vec![4])]);

    // Archiving the edge removes both directions.
    let r = t
        .post(
            "/crm/associations/2026-03/companies/deals/batch/archive",
            json!({"inputs": [{"from": {"id": company}, "to": [{"id": deal}]}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = t
        .post(
            "/crm/associations/2026-03/deals/companies/batch/read",
            json!({"inputs": [{"id": deal}]}),
        )
        .await;
    assert_eq!(r.status, 207, "no associations left is a per-input error");
    assert_eq!(r.body["numErrors"], 1);
    assert_eq!(
        r.body["errors"][0]["subCategory"],
        "crm.associations.NO_ASSOCIATIONS_FOUND"
    );
}

#[tokio::test]
async fn batch_read_pages_per_input_and_refuses_more_than_1000_inputs() {
    let t = TestSim::start().await;
    let company = create(&t, "companies", json!({"properties": {"name": "Big"}})).await;
    let mut contacts = Vec::new();
    for chunk in 0..6 {
        let inputs: Vec<Value> = (0..100)
            .map(|i| json!({"properties": {"email": format!("c{chunk}-{i}@big.test")}}))
            .collect();
        let r = t
            .post(
                "/crm/objects/2026-03/contacts/batch/create",
                json!({ "inputs": inputs }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        contacts.extend(
            r.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
    }
    let inputs: Vec<Value> = contacts
        .iter()
        .map(|c| json!({"from": {"id": company}, "to": {"id": c}}))
        .collect();
    let r = t
        .post(
            "/crm/associations/2026-03/companies/contacts/batch/associate/default",
            json!({ "inputs": inputs }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut input = json!({"id": company});
        if let Some(a) = &after {
            input["after"] = json!(a);
        }
        let r = t
            .post(
                "/crm/associations/2026-03/companies/contacts/batch/read",
                json!({ "inputs": [input] }),
            )
            .await;
        assert_eq!(r.status, 200);
        seen.extend(edges(&r.body, &company).into_iter().map(|(id, _)| id));
        match r.body["results"][0]["paging"]["next"]["after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 600, "two pages: 500, then 100");
    let mut want = contacts.clone();
    want.sort();
    seen.sort();
    assert_eq!(seen, want);

    let too_many: Vec<Value> = (0..1001).map(|i| json!({"id": i.to_string()})).collect();
    let r = t
        .post(
            "/crm/associations/2026-03/companies/contacts/batch/read",
            json!({ "inputs": too_many }),
        )
        .await;
    let body = assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(body["message"].as_str().unwrap().contains("1000"), "{body}");
}

#[tokio::test]
async fn unknown_types_missing_records_and_user_labels() {
    let t = TestSim::start().await;
    let deal = create(&t, "deals", json!({"properties": {"dealname": "D"}})).await;
    let company = create(&t, "companies", json!({"properties": {"name": "C"}})).await;
    // A contact → company type id used from deals: refused, naming it.
    let r = t
        .post(
            "/crm/associations/2026-03/deals/companies/batch/create",
            json!({"inputs": [{"from": {"id": deal}, "to": {"id": company},
                   "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}),
        )
        .await;
    let body = assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(body["message"].as_str().unwrap().contains("279"), "{body}");
    let r = t
        .post(
            "/crm/associations/2026-03/deals/companies/batch/associate/default",
            json!({"inputs": [{"from": {"id": deal}, "to": {"id": "999"}}]}),
        )
        .await;
    assert_error(&r, 404, "OBJECT_NOT_FOUND");
    let r = t
        .post(
            "/crm/associations/2026-03/deals/tickets/batch/read",
            json!({"inputs": []}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");

    // A user-defined label, usable at once, listed beside HubSpot's.
    let r = t
        .post(
            "/crm/associations/2026-03/deals/companies/labels",
            json!({"label": "Reseller", "name": "reseller"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let type_id = r.body["results"][0]["typeId"].as_u64().unwrap();
    let r = t
        .post(
            "/crm/associations/2026-03/deals/companies/batch/create",
            json!({"inputs": [{"from": {"id": deal}, "to": {"id": company},
                   "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}]}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["results"][0]["labels"], json!(["Reseller"]));
    let r = t
        .get("/crm/associations/2026-03/companies/deals/labels")
        .await;
    let labels: Vec<&Value> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["label"])
        .collect();
    assert!(labels.contains(&&json!("Reseller")), "{labels:?}");
    assert!(labels.contains(&&json!("Primary")), "{labels:?}");
}

#[tokio::test]
async fn engagement_objects_are_timestamped_records_of_their_own() {
    let t = TestSim::start().await;
    let contact = create(&t, "contacts", json!({"properties": {"email": "n@x.test"}})).await;
    for (object_type, props, type_id) in [
        (
            "notes",
            json!({"hs_timestamp": "2026-11-01T10:00:00Z", "hs_note_body": "Called back"}),
            202,
        ),
        (
            "calls",
            json!({"hs_timestamp": "2026-11-01T10:00:00Z", "hs_call_title": "Intro", "hs_call_duration": "60000"}),
            194,
        ),
        (
            "emails",
            json!({"hs_timestamp": "2026-11-01T10:00:00Z", "hs_email_subject": "Hello"}),
            198,
        ),
        (
            "meetings",
            json!({"hs_timestamp": "2026-11-01T10:00:00Z", "hs_meeting_title": "Demo"}),
            200,
        ),
        (
            "tasks",
            json!({"hs_timestamp": "2026-11-01T10:00:00Z", "hs_task_subject": "Follow up"}),
            204,
        ),
    ] {
        let id = create(
            &t,
            object_type,
            json!({"properties": props, "associations": [{"to": {"id": contact},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]}),
        )
        .await;
        let r = t
            .get(&format!("/crm/objects/2026-03/{object_type}/{id}"))
            .await;
        assert_eq!(r.status, 200, "{object_type}");
        assert!(
            r.body["properties"]["hs_timestamp"].is_string(),
            "{}",
            r.body
        );
        let r = t
            .post(
                &format!("/crm/associations/2026-03/contacts/{object_type}/batch/read"),
                json!({"inputs": [{"id": contact}]}),
            )
            .await;
        assert_eq!(edges(&r.body, &contact)[0].0, id, "{object_type}");
    }
}

#[tokio::test]
async fn a_merge_moves_edges_to_the_survivor_and_a_restore_brings_a_record_back() {
    let t = TestSim::start().await;
    let a = create(&t, "companies", json!({"properties": {"name": "Acme"}})).await;
    let b = create(
        &t,
        "companies",
        json!({"properties": {"name": "Acme dup", "city": "Berlin"}}),
    )
    .await;
    let deal = create(
        &t,
        "deals",
        json!({"properties": {"dealname": "D"}, "associations": [{"to": {"id": b},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]}),
    )
    .await;
    let r = t
        .post(
            "/crm/objects/2026-03/companies/merge",
            json!({"primaryObjectId": a, "objectIdToMerge": b}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], a.as_str());
    assert_eq!(
        r.body["properties"]["name"], "Acme",
        "the primary's values win"
    );
    assert_eq!(
        r.body["properties"]["city"], "Berlin",
        "gaps filled from the other"
    );
    assert_eq!(r.body["properties"]["hs_merged_object_ids"], b.as_str());
    assert_eq!(
        t.get(&format!("/crm/objects/2026-03/companies/{b}"))
            .await
            .status,
        404
    );
    let r = t
        .post(
            "/crm/associations/2026-03/deals/companies/batch/read",
            json!({"inputs": [{"id": deal}]}),
        )
        .await;
    assert_eq!(edges(&r.body, &deal), vec![(a.clone(), vec![5])]);
    let r = t
        .post(
            "/crm/objects/2026-03/companies/merge",
            json!({"primaryObjectId": a, "objectIdToMerge": a}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");

    // Deleted, then restored from the recycle bin (there is no API for it: a /_sim/ route).
    assert_eq!(
        t.delete(&format!("/crm/objects/2026-03/deals/{deal}"))
            .await
            .status,
        204
    );
    let r = t
        .post(&format!("/_sim/restore/deals/{deal}"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t.get(&format!("/crm/objects/2026-03/deals/{deal}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["archived"], false);
}
