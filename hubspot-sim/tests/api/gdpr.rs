//! HubSpot's GDPR delete of a contact: gone for good (not in the recycle bin), by id or by a
//! unique property, its edges removed, its email free again; contacts only.

use serde_json::json;

use crate::helpers::{assert_error, TestSim};

#[tokio::test]
async fn a_gdpr_delete_removes_the_contact_for_good_with_its_edges() {
    let t = TestSim::start().await;
    let contact = t
        .contact(json!({"email": "forget@example.com", "firstname": "Forget"}))
        .await;
    let company = t
        .post(
            "/crm/objects/2026-03/companies",
            json!({"properties": {"name": "Keep Inc"}}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .post(
            "/crm/associations/2026-03/contacts/companies/batch/associate/default",
            json!({"inputs": [{"from": {"id": contact}, "to": {"id": company}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = t
        .post(
            "/crm/objects/2026-03/contacts/gdpr-delete",
            json!({"objectId": "FORGET@example.com", "idProperty": "email"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        t.get(&format!("/crm/objects/2026-03/contacts/{contact}"))
            .await
            .status,
        404
    );
    let archived = t.get("/crm/objects/2026-03/contacts?archived=true").await;
    assert_eq!(
        archived.body["results"].as_array().unwrap().len(),
        0,
        "not in the recycle bin"
    );
    let r = t
        .post(
            "/crm/associations/2026-03/companies/contacts/batch/read",
            json!({"inputs": [{"id": company}]}),
        )
        .await;
    assert_eq!(
        r.body["results"].as_array().unwrap().len(),
        0,
        "no edge left: {}",
        r.body
    );
    // The email is free: a new contact may take it.
    let r = t
        .post(
            "/crm/objects/2026-03/contacts",
            json!({"properties": {"email": "forget@example.com"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // By id; a second time is a 404; other types are refused.
    let again = r.body["id"].as_str().unwrap().to_string();
    let r = t
        .post(
            "/crm/objects/2026-03/contacts/gdpr-delete",
            json!({"objectId": again}),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = t
        .post(
            "/crm/v3/objects/contacts/gdpr-delete",
            json!({"objectId": again}),
        )
        .await;
    assert_error(&r, 404, "OBJECT_NOT_FOUND");
    let r = t
        .post(
            "/crm/objects/2026-03/companies/gdpr-delete",
            json!({"objectId": company}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
}
