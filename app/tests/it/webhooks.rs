//! Webhooks and lookups against the simulator: the simulator's own signed deliveries (with
//! duplicates) are accepted once and refresh the cache; forgery, replayed old deliveries,
//! malformed and oversized bodies are refused; a phone lookup serves a stale cache entry when
//! HubSpot is down.

use crate::common;

use std::time::{Duration, Instant};

use hubspot_sim::{SignatureVersion, SimConfig, WebhookConfig};
use serde_json::{json, Value};

const SECRET: &str = "client-secret-for-tests";
const ADMIN: &str = "admin-for-webhook-tests";

struct T {
    base: String,
    sim: hubspot_sim::RunningSim,
    http: reqwest::Client,
}

async fn spawn(duplicates: f64, extra: &[(&str, &str)]) -> T {
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let sim = hubspot_sim::spawn(SimConfig {
        webhooks: Some(WebhookConfig {
            url: format!("{base}/webhooks/hubspot"),
            secret: SECRET.into(),
            signature: SignatureVersion::V3,
            duplicate_probability: duplicates,
            timeout: Duration::from_secs(5),
            retry_delay: Duration::from_millis(100),
            max_attempts: 5,
            batch_window: Duration::from_millis(50),
            ca_pem: None,
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let settings = common::settings_with(
        &[
            ("APP_LISTEN", format!("127.0.0.1:{port}")),
            ("HUBSPOT_ACCESS_TOKEN", "pat-webhooks".into()),
            ("HUBSPOT_BASE_URL", sim.base_url()),
            ("HUBSPOT_CLIENT_SECRET", SECRET.into()),
            ("ADMIN_TOKEN", ADMIN.into()),
            ("HUBSPOT_TIMEOUT", "2s".into()),
            ("DATABASE_URL", "sqlite::memory:".into()),
        ],
        extra,
    );
    common::serve(settings).await;
    T {
        base,
        sim,
        http: reqwest::Client::new(),
    }
}

impl T {
    async fn admin(&self, path: &str) -> Value {
        common::get_json(&self.http, &format!("{}{path}", self.base), Some(ADMIN)).await
    }

    async fn upsert(&self, email: &str, phone: &str, firstname: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/api/hubspot/test", self.base))
            .json(&json!({"email": email, "phone": phone, "firstname": firstname}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn wait_for(&self, what: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let stats = self.admin("/api/stats").await;
            if done(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "{what}: {stats}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post_webhook(&self, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}/webhooks/hubspot", self.base))
            .body(body.to_vec());
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

fn sign_v3(uri: &str, body: &[u8], ts: i64) -> Vec<(&'static str, String)> {
    hubspot_sim::webhooks::sign(SignatureVersion::V3, SECRET, "POST", uri, body, ts)
}

#[tokio::test]
async fn signed_deliveries_are_recorded_once_and_refresh_the_cache() {
    // Every delivery is sent twice by the simulator (duplicates, as HubSpot may).
    let t = spawn(1.0, &[]).await;
    let created = t.upsert("ada@example.com", "+1 415 555 0100", "Ada").await;
    let stats = t
        .wait_for("the creation event processed", |s| {
            s["webhooks"]["processed"].as_u64() >= Some(1)
                && s["webhooks"]["duplicates"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(stats["webhooks"]["rejected"], 0, "{stats}");
    assert_eq!(stats["cache"]["entries"], 1, "{stats}");
    // The cache now answers the lookup without HubSpot.
    let found = t.admin("/api/contacts/lookup?phone=%2B14155550100").await;
    assert_eq!(found["source"], "cache", "{found}");
    assert_eq!(found["contacts"][0]["id"], created["id"]);
    assert_eq!(found["contacts"][0]["firstname"], "Ada");
    // An update arrives as an event too; the cache follows.
    t.upsert("ada@example.com", "+1 415 555 0100", "Augusta")
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = t.admin("/api/contacts/lookup?phone=%2B14155550100").await;
        if found["contacts"][0]["firstname"] == "Augusta" {
            break;
        }
        assert!(Instant::now() < deadline, "cache not refreshed: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The round that refreshed the cache marks its events processed when it ends.
    t.wait_for("both events processed", |s| {
        s["webhooks"]["processed"].as_u64() >= Some(2)
    })
    .await;
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE app_webhook_events counter")
            && metrics.contains("app_webhook_events_total{outcome=\"processed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("app_cache_lookups_total{result=\"hit\"}") && metrics.ends_with("# EOF\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn forged_stale_malformed_and_oversized_deliveries_are_refused() {
    let t = spawn(0.0, &[]).await;
    let uri = format!("{}/webhooks/hubspot", t.base);
    let now = chrono::Utc::now().timestamp_millis();
    let body = br#"[{"eventId": 1, "subscriptionType": "contact.creation", "objectId": 5, "occurredAt": 1}]"#;

    let (status, _) = t.post_webhook(body, &sign_v3(&uri, body, now)).await;
    assert_eq!(status, 200, "a good signature");
    let (status, answer) = t.post_webhook(body, &sign_v3(&uri, body, now)).await;
    assert_eq!(
        (status, answer["duplicates"].as_u64()),
        (200, Some(1)),
        "a replayed event is recorded once"
    );

    let forged = hubspot_sim::webhooks::sign(
        SignatureVersion::V3,
        "not-the-secret",
        "POST",
        &uri,
        body,
        now,
    );
    let (status, answer) = t.post_webhook(body, &forged).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("signature does not match"),
        "{answer}"
    );

    let old = now - 6 * 60 * 1000;
    let (status, answer) = t.post_webhook(body, &sign_v3(&uri, body, old)).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("older than 5 minutes"),
        "{answer}"
    );

    let (status, answer) = t.post_webhook(body, &[]).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("missing signature"),
        "{answer}"
    );

    let malformed = br#"{"not": "an array"}"#;
    let (status, answer) = t
        .post_webhook(malformed, &sign_v3(&uri, malformed, now))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["message"].as_str().unwrap().contains("JSON array"),
        "{answer}"
    );

    let huge = vec![b' '; 300 * 1024];
    let (status, _) = t.post_webhook(&huge, &sign_v3(&uri, &huge, now)).await;
    assert_eq!(status, 413);

    // Behind nginx the signed URI is the public one, rebuilt from the forwarded headers.
    let public = "https://api.example.com/webhooks/hubspot";
    let body2 = br#"[{"eventId": 2, "subscriptionType": "contact.creation", "objectId": 5, "occurredAt": 1}]"#;
    let mut headers = sign_v3(public, body2, now);
    headers.extend([
        ("X-Forwarded-Proto", "https".to_string()),
        ("X-Forwarded-Host", "api.example.com".to_string()),
        ("X-Forwarded-Port", "443".to_string()),
    ]);
    let (status, answer) = t.post_webhook(body2, &headers).await;
    assert_eq!(status, 200, "{answer}");
    let stats = t.admin("/api/stats").await;
    assert_eq!(stats["webhooks"]["rejected"], 5, "{stats}");
    assert_eq!(stats["webhooks"]["accepted"], 2, "{stats}");
}

#[tokio::test]
async fn lookups_serve_a_stale_entry_when_hubspot_is_down() {
    let t = spawn(0.0, &[("CACHE_TTL", "300ms"), ("HUBSPOT_TIMEOUT", "1s")]).await;
    t.upsert("grace@example.com", "+44 20 7946 0958", "Grace")
        .await;
    let r = t.admin("/api/contacts/lookup?phone=%2B442079460958").await;
    assert_eq!(r["source"], "hubspot", "first from HubSpot: {r}");
    assert_eq!(r["found"], true, "{r}");
    let r = t.admin("/api/contacts/lookup?phone=%2B442079460958").await;
    assert_eq!(r["source"], "cache", "then from the cache: {r}");
    tokio::time::sleep(Duration::from_millis(400)).await; // past the TTL
    common::sim_fault(
        &t.sim,
        json!({"path": "/crm/objects/2026-03/contacts/search", "times": 1000, "status": 503}),
    )
    .await;
    let r = t.admin("/api/contacts/lookup?phone=%2B442079460958").await;
    assert_eq!(
        (r["source"].as_str(), r["stale"].as_bool()),
        (Some("cache"), Some(true)),
        "{r}"
    );
    assert_eq!(r["contacts"][0]["firstname"], "Grace");
    // Batch lookup: one answer per phone, a bad one named.
    let r: Value = t
        .http
        .post(format!("{}/api/contacts/lookup", t.base))
        .bearer_auth(ADMIN)
        .json(&json!({"phones": ["+442079460958", "not a phone"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["results"][0]["stale"], true, "{r}");
    assert_eq!(r["results"][1]["status"], 400, "{r}");
    let stats = t.admin("/api/stats").await;
    assert_eq!(stats["cache"]["stale_served"], 2, "{stats}");
}

impl T {
    /// A call to HubSpot (the simulator) as the app's private app.
    async fn hubspot(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .bearer_auth("pat-webhooks");
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let body = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn create(&self, object_type: &str, body: Value) -> String {
        let path = format!("/crm/objects/2026-03/{object_type}");
        let r = self.hubspot(reqwest::Method::POST, &path, Some(body)).await;
        r["id"].as_str().unwrap().to_string()
    }

    /// Polls a synced record until `done` holds (404s included: not there yet).
    async fn wait_object(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self
                .http
                .get(format!("{}/api/objects/{path}", self.base))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{what}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn companies_of(deal: &Value) -> Vec<String> {
    deal["associations"]["companies"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every delivery twice (duplicates): records of every synced type follow HubSpot by webhook —
/// creation, association change, merge (edges re-pointed to the survivor), deletion, restore.
#[tokio::test]
async fn deals_and_companies_follow_hubspot_by_webhook_through_merges_deletes_and_restores() {
    let t = spawn(1.0, &[("SYNC_OBJECTS", "contacts,companies,deals")]).await;
    let a = t
        .create("companies", json!({"properties": {"name": "Acme"}}))
        .await;
    let b = t
        .create("companies", json!({"properties": {"name": "Acme (dup)"}}))
        .await;
    let d1 = t
        .create(
            "deals",
            json!({"properties": {"dealname": "One", "amount": "10"},
                   "associations": [{"to": {"id": a}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]}),
        )
        .await;
    let d2 = t
        .create("deals", json!({"properties": {"dealname": "Two"}}))
        .await;
    let deal = t
        .wait_object(
            &format!("deals/{d1}"),
            "deal one by its creation event",
            |d| companies_of(d) == vec![a.clone()],
        )
        .await;
    assert_eq!(deal["properties"]["dealname"], "One");

    // An association made later arrives as an associationChange.
    t.hubspot(
        reqwest::Method::POST,
        "/crm/associations/2026-03/deals/companies/batch/associate/default",
        Some(json!({"inputs": [{"from": {"id": d2}, "to": {"id": b}}]})),
    )
    .await;
    t.wait_object(&format!("deals/{d2}"), "deal two's new company", |d| {
        companies_of(d) == vec![b.clone()]
    })
    .await;

    // The duplicate company is merged into the first: its edges are the survivor's now.
    t.hubspot(
        reqwest::Method::POST,
        "/crm/objects/2026-03/companies/merge",
        Some(json!({"primaryObjectId": a, "objectIdToMerge": b})),
    )
    .await;
    let merged = t
        .wait_object(&format!("companies/{b}"), "the merged company", |c| {
            c["merged_into"] == a.as_str()
        })
        .await;
    assert!(merged["archived_at"].is_i64(), "{merged}");
    t.wait_object(&format!("deals/{d2}"), "deal two re-pointed", |d| {
        companies_of(d) == vec![a.clone()]
    })
    .await;
    let survivor = t
        .wait_object(&format!("companies/{a}"), "the survivor's deals", |c| {
            c["associations"]["deals"].as_array().map(Vec::len) == Some(2)
        })
        .await;
    assert_eq!(survivor["properties"]["name"], "Acme");

    // Deleted in HubSpot: archived here, out of listings, edges gone; restored: back.
    t.hubspot(
        reqwest::Method::DELETE,
        &format!("/crm/objects/2026-03/deals/{d1}"),
        None,
    )
    .await;
    t.wait_object(&format!("deals/{d1}"), "the deleted deal archived", |d| {
        d["archived_at"].is_i64()
    })
    .await;
    let listed = t.wait_object("deals", "the listing", |_| true).await;
    let ids: Vec<&str> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![d2.as_str()], "{listed}");
    let r = t
        .http
        .post(format!("{}/_sim/restore/deals/{d1}", t.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    t.wait_object(&format!("deals/{d1}"), "the restored deal", |d| {
        d["archived_at"].is_null() && d["properties"]["dealname"] == "One"
    })
    .await;
}

async fn batch_writes(t: &T) -> u64 {
    common::route_statuses(&t.sim, "/crm/objects/2026-03/{object_type}/batch/{action}")
        .await
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, n)| n)
        .sum()
}

impl T {
    async fn patch_fields(&self, path: &str, fields: Value) -> (u16, Value) {
        let r = self
            .http
            .patch(format!("{}/api/objects/{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "fields": fields }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn wait_hubspot(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.hubspot(reqwest::Method::GET, path, None).await;
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{what}: {r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Two-way: the app's changes to its own (commission) fields reach HubSpot in order, once per
/// change, even through failures; HubSpot's echo of them (webhooks, delivered twice, and a sync)
/// brings no new write; each side's fields stay each side's.
#[tokio::test]
async fn app_owned_fields_go_to_hubspot_once_per_change_in_order_and_echoes_stay_quiet() {
    let t = spawn(1.0, &[("SYNC_OBJECTS", "deals")]).await;
    for (name, kind, field, options) in [
        ("commission_amount", "number", "number", json!([])),
        (
            "commission_status",
            "enumeration",
            "select",
            json!([{"label": "Pending", "value": "pending"}, {"label": "Paid", "value": "paid"}]),
        ),
    ] {
        t.hubspot(
            reqwest::Method::POST,
            "/crm/properties/2026-03/deals",
            Some(json!({"name": name, "label": name, "type": kind, "fieldType": field, "options": options})),
        )
        .await;
    }
    let r = t
        .http
        .put(format!("{}/api/mappings/deals", t.base))
        .bearer_auth(ADMIN)
        .json(&json!({"mappings": [
            {"field": "stage", "hubspot": "dealstage"},
            {"field": "commission", "hubspot": "commission_amount", "owner": "app"},
            {"field": "commission_status", "hubspot": "commission_status", "owner": "app"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let deal = t
        .create("deals", json!({"properties": {"dealname": "Commissioned", "dealstage": "appointmentscheduled"}}))
        .await;
    t.wait_object(&format!("deals/{deal}"), "the deal by webhook", |d| {
        d["fields"]["stage"] == "appointmentscheduled"
    })
    .await;
    let hubspot_deal = format!("/crm/objects/2026-03/deals/{deal}?properties=commission_amount,commission_status,dealstage");

    // One change, one write.
    let (status, body) = t
        .patch_fields(
            &format!("deals/{deal}"),
            json!({"commission": "120", "commission_status": "pending"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    t.wait_hubspot(&hubspot_deal, "the first change in HubSpot", |d| {
        d["properties"]["commission_amount"] == "120"
    })
    .await;
    assert_eq!(batch_writes(&t).await, 1);

    // Through failures, in order: two changes while HubSpot answers 503 arrive as the newer.
    common::sim_fault(
        &t.sim,
        json!({"path": "/crm/objects/2026-03/deals/batch/update", "times": 2, "status": 503}),
    )
    .await;
    t.patch_fields(&format!("deals/{deal}"), json!({"commission": "200"}))
        .await;
    t.patch_fields(
        &format!("deals/{deal}"),
        json!({"commission": "250", "commission_status": "paid"}),
    )
    .await;
    let d = t
        .wait_hubspot(&hubspot_deal, "the newest change in HubSpot", |d| {
            d["properties"]["commission_status"] == "paid"
        })
        .await;
    assert_eq!(
        d["properties"]["commission_amount"], "250",
        "never the older value last: {d}"
    );
    let statuses =
        common::route_statuses(&t.sim, "/crm/objects/2026-03/{object_type}/batch/{action}").await;
    assert!(
        statuses.contains(&(503, 2)),
        "the failures happened: {statuses:?}"
    );

    // Echoes: HubSpot's webhooks for the app's own writes (each delivered twice) and a sync run
    // bring no new write.
    let writes = batch_writes(&t).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = t
        .http
        .post(format!("{}/api/sync/run", t.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        batch_writes(&t).await,
        writes,
        "no write came back from an echo"
    );
    let stats = t.admin("/api/stats").await;
    assert_eq!(stats["object_writes"]["pending"], 0, "{stats}");
    assert_eq!(stats["object_writes"]["dead"], 0, "{stats}");

    // Ownership: HubSpot's own field follows HubSpot; the app's field keeps the app's value
    // when someone edits it in HubSpot; a HubSpot-owned field is not the app's to change.
    t.hubspot(
        reqwest::Method::PATCH,
        &format!("/crm/objects/2026-03/deals/{deal}"),
        Some(json!({"properties": {"dealstage": "closedwon", "commission_amount": "999"}})),
    )
    .await;
    let local = t
        .wait_object(&format!("deals/{deal}"), "HubSpot's stage here", |d| {
            d["fields"]["stage"] == "closedwon"
        })
        .await;
    assert_eq!(
        local["fields"]["commission"], "250",
        "the app's value stands: {local}"
    );
    assert_eq!(
        local["properties"]["commission_amount"], "999",
        "HubSpot's is shown as HubSpot's"
    );
    let (status, body) = t
        .patch_fields(&format!("deals/{deal}"), json!({"stage": "closedlost"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["fields"]["fields.stage"]
            .as_str()
            .unwrap()
            .contains("owned by HubSpot"),
        "{body}"
    );
    let (status, _) = t
        .patch_fields("deals/12345", json!({"commission": "1"}))
        .await;
    assert_eq!(status, 404);
}
