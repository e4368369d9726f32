use serde_json::json;

use crate::helpers::{assert_default_contact_properties, assert_error, TestSim};

#[tokio::test]
async fn create_returns_201_with_string_properties_and_system_fields() {
    let t = TestSim::start().await;
    let r = t
        .post("/crm/v3/objects/contacts", json!({"properties": {"email": " Ann@Example.COM ", "firstname": "Ann", "numemployees": 40}}))
        .await;
    assert_eq!(r.status, 201);
    let b = r.body;
    let id = b["id"].as_str().unwrap();
    assert!(id.parse::<u64>().is_ok());
    let props = b["properties"].as_object().unwrap();
    assert_eq!(props["email"], "ann@example.com");
    assert_eq!(props["numemployees"], "40", "numbers come back as strings");
    assert_eq!(props["hs_object_id"], id);
    assert_eq!(props["createdate"], b["createdAt"]);
    assert_eq!(props["lastmodifieddate"], b["updatedAt"]);
    assert_eq!(b["archived"], false);
    assert!(b["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn duplicate_email_is_409_with_existing_id_case_insensitively() {
    let t = TestSim::start().await;
    let id = t.contact(json!({"email": "dup@example.com"})).await;
    let r = t
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "DUP@example.com"}}),
        )
        .await;
    let b = assert_error(&r, 409, "CONFLICT");
    assert_eq!(
        b["message"],
        format!("Contact already exists. Existing ID: {id}")
    );
}

#[tokio::test]
async fn invalid_and_unknown_properties_are_400_validation_errors() {
    let t = TestSim::start().await;
    let r = t
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "not an email"}}),
        )
        .await;
    let b = assert_error(&r, 400, "VALIDATION_ERROR");
    let msg = b["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Property values were not valid: [{"),
        "{msg}"
    );
    assert!(
        msg.contains("\"error\":\"INVALID_EMAIL\"") && msg.contains("\"name\":\"email\""),
        "{msg}"
    );
    assert_eq!(b["errors"][0]["code"], "INVALID_EMAIL");

    let r = t
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"favorite_color": "red"}}),
        )
        .await;
    let b = assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(b["message"]
        .as_str()
        .unwrap()
        .contains("PROPERTY_DOESNT_EXIST"));

    let r = t
        .call(reqwest::Method::POST, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = t
        .http
        .post(t.url("/crm/v3/objects/contacts"))
        .bearer_auth(crate::helpers::TOKEN)
        .header("content-type", "application/json")
        .body("{\"properties\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["category"], "VALIDATION_ERROR");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid input JSON"),
        "{b}"
    );
}

#[tokio::test]
async fn get_by_id_or_email_with_selected_properties() {
    let t = TestSim::start().await;
    let id = t
        .contact(json!({"email": "get@example.com", "firstname": "G", "phone": "+1 555 0100"}))
        .await;

    let r = t.get(&format!("/crm/v3/objects/contacts/{id}")).await;
    assert_eq!(r.status, 200);
    assert_default_contact_properties(&r.body);
    assert_eq!(r.body["properties"]["lastname"], serde_json::Value::Null);

    let r = t.get("/crm/v3/objects/contacts/GET%40example.com?idProperty=email&properties=phone,firstname").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["properties"]["phone"], "+1 555 0100");
    assert!(
        r.body["properties"].get("email").is_none(),
        "only requested and system properties"
    );

    let r = t.get("/crm/v3/objects/contacts/424242").await;
    let b = assert_error(&r, 404, "OBJECT_NOT_FOUND");
    assert_eq!(
        b["message"],
        "Object not found.  objectId are usually numeric."
    );
    assert_eq!(b["context"], json!({"id": ["424242"]}));

    let r = t
        .get("/crm/v3/objects/contacts/x@y.co?idProperty=firstname")
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn patch_by_id_and_by_email_updates_lastmodifieddate() {
    let t = TestSim::start().await;
    let id = t.contact(json!({"email": "p@example.com"})).await;
    let before = t.get(&format!("/crm/v3/objects/contacts/{id}")).await.body;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = t
        .patch(
            &format!("/crm/v3/objects/contacts/{id}"),
            json!({"properties": {"firstname": "Pat"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["firstname"], "Pat");
    assert!(r.body["updatedAt"].as_str() > before["updatedAt"].as_str());
    assert_eq!(
        r.body["properties"]["lastmodifieddate"],
        r.body["updatedAt"]
    );

    let r = t
        .patch(
            "/crm/v3/objects/contacts/p%40example.com?idProperty=email",
            json!({"properties": {"lastname": "Q", "firstname": ""}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["properties"]["lastname"], "Q");
    assert!(
        r.body["properties"].get("firstname").is_none(),
        "empty string clears"
    );

    let r = t
        .patch(
            "/crm/v3/objects/contacts/nobody%40example.com?idProperty=email",
            json!({"properties": {"lastname": "Q"}}),
        )
        .await;
    assert_error(&r, 404, "OBJECT_NOT_FOUND");

    let other = t.contact(json!({"email": "taken@example.com"})).await;
    let r = t
        .patch(
            &format!("/crm/v3/objects/contacts/{id}"),
            json!({"properties": {"email": "taken@example.com"}}),
        )
        .await;
    let b = assert_error(&r, 409, "CONFLICT");
    assert!(b["message"].as_str().unwrap().ends_with(&other));
}

#[tokio::test]
async fn delete_archives_with_204_and_frees_the_email() {
    let t = TestSim::start().await;
    let id = t.contact(json!({"email": "gone@example.com"})).await;
    let r = t.delete(&format!("/crm/v3/objects/contacts/{id}")).await;
    assert_eq!(r.status, 204);
    assert_error(
        &t.get(&format!("/crm/v3/objects/contacts/{id}")).await,
        404,
        "OBJECT_NOT_FOUND",
    );
    let archived = t
        .get(&format!("/crm/v3/objects/contacts/{id}?archived=true"))
        .await;
    assert_eq!(archived.status, 200);
    assert_eq!(archived.body["archived"], true);
    assert!(archived.body["archivedAt"].is_string());
    t.contact(json!({"email": "gone@example.com"})).await;
    assert_eq!(
        t.delete("/crm/v3/objects/contacts/999").await.status,
        204,
        "archiving a missing id is not an error"
    );
}

#[tokio::test]
async fn list_pages_through_every_record_with_after_cursors() {
    let t = TestSim::start().await;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(
            t.contact(json!({"email": format!("l{i}@example.com")}))
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/crm/v3/objects/contacts?limit=10&after={a}"),
            None => "/crm/v3/objects/contacts?limit=10".to_string(),
        };
        let r = t.get(&path).await;
        assert_eq!(r.status, 200);
        for rec in r.body["results"].as_array().unwrap() {
            seen.push(rec["id"].as_str().unwrap().to_string());
        }
        match r.body["paging"]["next"]["after"].as_str() {
            Some(a) => {
                assert!(r.body["paging"]["next"]["link"]
                    .as_str()
                    .unwrap()
                    .contains(a));
                after = Some(a.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_error(
        &t.get("/crm/v3/objects/contacts?limit=101").await,
        400,
        "VALIDATION_ERROR",
    );
}

#[tokio::test]
async fn other_object_types_share_the_routes() {
    let t = TestSim::start().await;
    let r = t
        .post(
            "/crm/v3/objects/companies",
            json!({"properties": {"name": "Acme", "domain": "acme.test"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body["properties"]["hs_lastmodifieddate"].is_string());
    // No unique property on companies: the same domain twice is fine.
    let r2 = t
        .post(
            "/crm/v3/objects/companies",
            json!({"properties": {"name": "Acme", "domain": "acme.test"}}),
        )
        .await;
    assert_eq!(r2.status, 201);
    let deal = t
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"dealname": "Big", "amount": 1500.5}}),
        )
        .await;
    assert_eq!(deal.status, 201);
    assert_eq!(deal.body["properties"]["amount"], "1500.5");
    let r = t
        .post("/crm/v3/objects/widgets", json!({"properties": {}}))
        .await;
    let b = assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(b["message"], "Unable to infer object type from: widgets");
}

#[tokio::test]
async fn missing_or_unknown_token_is_401() {
    let t = TestSim::with(hubspot_sim::SimConfig {
        tokens: vec!["right".into()],
        ..Default::default()
    })
    .await;
    let r = t
        .call_as(None, reqwest::Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_error(&r, 401, "INVALID_AUTHENTICATION");
    let r = t
        .call_as(
            Some("wrong"),
            reqwest::Method::GET,
            "/crm/v3/objects/contacts",
            None,
        )
        .await;
    assert_error(&r, 401, "INVALID_AUTHENTICATION");
    let r = t
        .call_as(
            Some("right"),
            reqwest::Method::GET,
            "/crm/v3/objects/contacts",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn account_info_details() {
    let t = TestSim::start().await;
    let r = t.get("/account-info/v3/details").await;
    assert_eq!(r.status, 200);
    for key in [
        "portalId",
        "accountType",
        "timeZone",
        "companyCurrency",
        "uiDomain",
        "dataHostingLocation",
    ] {
        assert!(!r.body[key].is_null(), "{key} missing from {}", r.body);
    }
    assert_eq!(r.body["portalId"], 62_515);
}

/// The properties API lists what writes accept, on the date-based path and the legacy one,
/// behind the same token check.
#[tokio::test]
async fn the_properties_api_defines_every_property_writes_accept() {
    let t = TestSim::start().await;
    let listed = t.get("/crm/properties/2026-03/companies").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let names: Vec<&str> = listed.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"domain") && names.contains(&"hs_lastmodifieddate"),
        "{names:?}"
    );
    // Each listed writable property is accepted by a create; a read-only one is refused.
    let writable: serde_json::Map<String, serde_json::Value> = listed.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["modificationMetadata"]["readOnlyValue"] == false)
        .map(|p| {
            let value = match p["type"].as_str().unwrap() {
                "number" => "42",
                "datetime" | "date" => "2026-11-24",
                _ => "x",
            };
            (p["name"].as_str().unwrap().to_string(), json!(value))
        })
        .collect();
    let created = t
        .post(
            "/crm/objects/2026-03/companies",
            json!({"properties": writable}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let one = t.get("/crm/v3/properties/deals/amount").await;
    assert_eq!(
        (one.status.as_u16(), one.body["type"].as_str()),
        (200, Some("number"))
    );
    let missing = t.get("/crm/properties/2026-03/deals/no_such").await;
    assert_error(&missing, 404, "OBJECT_NOT_FOUND");
    let unknown = t.get("/crm/properties/2026-03/widgets").await;
    assert!(unknown.status.is_client_error(), "{:?}", unknown.body);
}

#[tokio::test]
async fn custom_properties_are_created_typed_and_enforced_and_2026_09_enforces_required_ones() {
    let t = TestSim::start().await;
    let r = t
        .post(
            "/crm/properties/2026-03/deals",
            json!({"name": "commission_status", "label": "Commission status", "type": "enumeration",
                   "fieldType": "select", "groupName": "dealinformation",
                   "options": [{"label": "Pending", "value": "pending"}, {"label": "Paid", "value": "paid"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["hubspotDefined"], false);
    assert_eq!(r.body["options"][1]["value"], "paid");
    let r = t
        .post(
            "/crm/properties/2026-03/deals",
            json!({"name": "commission_amount", "label": "Commission", "type": "number", "fieldType": "number"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Taken names, bad types and mismatched field types are refused, naming the problem.
    let r = t
        .post(
            "/crm/properties/2026-03/deals",
            json!({"name": "amount", "label": "x", "type": "number", "fieldType": "number"}),
        )
        .await;
    assert_error(&r, 409, "OBJECT_ALREADY_EXISTS");
    let r = t
        .post(
            "/crm/properties/2026-03/deals",
            json!({"name": "x_rate", "label": "x", "type": "number", "fieldType": "select"}),
        )
        .await;
    let body = assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("fieldType 'select'"),
        "{body}"
    );
    // Listed with the portal's definitions, and readable by name.
    let r = t
        .get("/crm/properties/2026-03/deals/commission_amount")
        .await;
    assert_eq!(r.body["type"], "number");

    // Writes: a custom property takes values of its type only.
    let ok = t
        .post(
            "/crm/objects/2026-03/deals",
            json!({"properties": {"dealname": "D", "commission_status": "paid", "commission_amount": "120.5"}}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let r = t
        .post(
            "/crm/objects/2026-03/deals",
            json!({"properties": {"dealname": "D", "commission_status": "lost", "commission_amount": "lots", "closedate": "soon"}}),
        )
        .await;
    let body = assert_error(&r, 400, "VALIDATION_ERROR");
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["INVALID_DATETIME", "INVALID_DECIMAL", "INVALID_OPTION"]
    );

    // Required properties: enforced under 2026-09 only.
    let r = t
        .post(
            "/_sim/required/deals",
            json!({"properties": ["commission_status"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t
        .post(
            "/crm/objects/2026-03/deals",
            json!({"properties": {"dealname": "Old API"}}),
        )
        .await;
    assert_eq!(r.status, 201, "2026-03 does not enforce: {}", r.body);
    let r = t
        .post(
            "/crm/objects/2026-09/deals",
            json!({"properties": {"dealname": "New API"}}),
        )
        .await;
    let body = assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["code"], "REQUIRED_FIELD", "{body}");
    let id = ok.body["id"].as_str().unwrap();
    let r = t
        .patch(
            &format!("/crm/objects/2026-09/deals/{id}"),
            json!({"properties": {"commission_status": ""}}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    let r = t
        .patch(
            &format!("/crm/objects/2026-09/deals/{id}"),
            json!({"properties": {"amount": "99"}}),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "an update keeping it set is fine: {}",
        r.body
    );
}

#[tokio::test]
async fn currency_settings_hold_the_company_currency_and_the_rate_in_force() {
    let t = TestSim::start().await;
    let r = t.get("/settings/currencies/2026-03/company-currency").await;
    assert_eq!(r.body["currencyCode"], "USD");
    for (from, rate, at) in [
        ("EUR", 1.1, "2026-01-01T00:00:00Z"),
        ("EUR", 1.08, "2026-06-01T00:00:00Z"),
        ("EUR", 2.0, "2099-01-01T00:00:00Z"),
        ("GBP", 1.27, "2026-02-01T00:00:00Z"),
    ] {
        let r = t
            .post(
                "/settings/currencies/2026-03/exchange-rates",
                json!({"fromCurrencyCode": from, "conversionRate": rate, "effectiveAt": at}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["toCurrencyCode"], "USD");
    }
    let r = t
        .get("/settings/currencies/2026-03/exchange-rates/current")
        .await;
    let current: Vec<(String, f64)> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["fromCurrencyCode"].as_str().unwrap().to_string(),
                r["conversionRate"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        current,
        vec![("EUR".to_string(), 1.08), ("GBP".to_string(), 1.27)],
        "the latest effective rate, not a future one"
    );
    for bad in [
        json!({"fromCurrencyCode": "USD", "conversionRate": 1.0}),
        json!({"fromCurrencyCode": "EUR", "conversionRate": 0}),
        json!({"fromCurrencyCode": "EUR", "conversionRate": 1.1234567}),
        json!({"fromCurrencyCode": "euro", "conversionRate": 1.1}),
    ] {
        let r = t
            .post("/settings/v3/currencies/exchange-rates", bad.clone())
            .await;
        assert_error(&r, 400, "VALIDATION_ERROR");
    }
    let r = t.get("/account-info/2026-03/details").await;
    assert_eq!(r.body["additionalCurrencies"], json!(["EUR", "GBP"]));
}
