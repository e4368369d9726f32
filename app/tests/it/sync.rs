//! The pull sync against the simulator: the first full listing, incremental runs that pick up
//! only what changed, the 10,000-result search cap with more than 10,000 contacts sharing one
//! timestamp, and a run killed mid-way that the next run resumes.

use crate::common;

use std::time::Duration;

use app::clock::Clock;
use app::domain::sync::RunState;
use app::Application;
use hubspot_sim::SimConfig;
use serde_json::{json, Value};

/// The app's clock starts here (2026-01-15), and moves only when a test advances it.
const START: i64 = 1_768_435_200_000;

struct T {
    state: app::http::Shared,
    clock: Clock,
    sim: hubspot_sim::RunningSim,
    http: reqwest::Client,
    /// The app's own address, `http://127.0.0.1:PORT`.
    base: String,
}

async fn spawn(sim: SimConfig) -> T {
    spawn_with(sim, &[]).await
}

async fn spawn_with(sim: SimConfig, extra: &[(&str, &str)]) -> T {
    let sim = hubspot_sim::spawn(sim).await.unwrap();
    let dir =
        std::env::temp_dir().join(format!("app-sync-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let vars = [
        ("APP_LISTEN", "127.0.0.1:0".to_string()),
        ("HUBSPOT_ACCESS_TOKEN", "pat-sync".to_string()),
        ("HUBSPOT_BASE_URL", sim.base_url()),
        ("HUBSPOT_RATE_LIMIT", "100000/10s".to_string()),
        ("DATABASE_URL", format!("sqlite://{}/app.db", dir.display())),
        ("SYNC_SCHEDULE", "off".to_string()),
        ("SYNC_OVERLAP", "1s".to_string()),
        ("ADMIN_TOKEN", ADMIN.to_string()),
    ];
    let settings = common::settings_with(&vars, extra);
    let clock = Clock::manual(START);
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .unwrap();
    let state = app.state();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(std::future::pending()));
    T {
        state,
        clock,
        sim,
        http: reqwest::Client::new(),
        base,
    }
}

const ADMIN: &str = "admin-sync-objects";

fn rand_suffix() -> u32 {
    rand::random()
}

impl T {
    async fn seed(&self, count: usize, prefix: &str, timestamp: &str) {
        let r = self
            .http
            .post(format!("{}/_sim/seed/contacts", self.sim.base_url()))
            .json(&json!({"count": count, "properties": {"email": format!("{prefix}{{n}}@example.com"), "firstname": prefix}, "timestamp": timestamp}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    async fn run(&self) -> usize {
        let client = self.state.hubspot.as_ref().unwrap();
        self.state.sync.run(client).await.unwrap()
    }

    async fn cached(&self) -> i64 {
        self.state.cache.len().await.unwrap()
    }

    async fn requests(&self, route: &str) -> u64 {
        common::route_statuses(&self.sim, route)
            .await
            .iter()
            .map(|(_, n)| n)
            .sum()
    }
}

#[tokio::test]
async fn first_run_lists_everything_then_runs_pick_up_only_changes() {
    let t = spawn(SimConfig::unthrottled()).await;
    t.seed(450, "old", "2026-01-01T00:00:00Z").await;
    assert_eq!(t.run().await, 450);
    assert_eq!(t.cached().await, 450);
    let status = t.state.sync.status().await.unwrap();
    assert_eq!(status.status, RunState::Idle);
    assert_eq!(status.cursor, Some(START), "the cursor is the run's start");
    assert_eq!(
        t.requests("/crm/objects/2026-03/{object_type}").await,
        6,
        "4.5 pages of 100, then one page of the archived listing (empty)"
    );

    // Nothing changed: an incremental run finds nothing.
    assert_eq!(t.run().await, 0);
    // Three contacts are new: the next run finds those, and only those.
    t.clock.advance(Duration::from_secs(60));
    let a_minute_later = chrono::DateTime::from_timestamp_millis(START + 60_000).unwrap();
    t.seed(3, "new", &a_minute_later.to_rfc3339()).await;
    assert_eq!(t.run().await, 3);
    assert_eq!(t.cached().await, 453);
    assert_eq!(t.state.sync.status().await.unwrap().synced_last_run, 3);
}

#[tokio::test]
async fn the_10k_search_cap_is_walked_even_when_more_than_10k_share_a_timestamp() {
    let t = spawn(SimConfig::unthrottled()).await;
    assert_eq!(t.run().await, 0, "an empty portal");
    // The cursor is now 2026-01-15. Twenty days pass; in them 10,500 contacts are modified at
    // one instant (2026-01-31) and 150 after them (2026-02-01).
    t.clock.advance(Duration::from_secs(20 * 24 * 3600));
    t.seed(10_500, "bulk", "2026-01-31T23:59:59Z").await;
    t.seed(150, "later", "2026-02-01T08:00:00Z").await;
    let synced = t.run().await;
    assert_eq!(t.cached().await, 10_650, "every contact arrived");
    assert!(synced >= 10_650, "{synced}");
    let status = t.state.sync.status().await.unwrap();
    assert_eq!(status.status, RunState::Idle);
    assert_eq!(
        status.cursor,
        Some(1_769_932_800_000),
        "the cursor is the last timestamp seen"
    );
}

#[tokio::test]
async fn a_run_killed_mid_way_is_resumed_from_its_last_page() {
    let t = spawn(SimConfig::unthrottled()).await;
    t.seed(2_000, "r", "2026-01-01T00:00:00Z").await;
    // Each listing page takes 100 ms at HubSpot; the run is killed after a few pages.
    t.http
        .post(format!("{}/_sim/faults", t.sim.base_url()))
        .json(&json!({"path": "/crm/objects/2026-03/contacts", "method": "GET", "times": 1000, "latency_ms": 100}))
        .send()
        .await
        .unwrap();
    let client = t.state.hubspot.clone().unwrap();
    let sync = t.state.sync.clone();
    let run = tokio::spawn(async move { sync.run(&client).await });
    // Killed once a few pages are committed (waiting for the first, not a fixed time: on a
    // loaded machine 650 ms may not hold one page).
    tokio::time::sleep(Duration::from_millis(650)).await;
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while t.cached().await == 0 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort(); // the process dies: nothing is cleaned up
    let _ = run.await;
    let partial = t.cached().await;
    assert!(partial > 0 && partial < 2_000, "{partial}");
    assert_eq!(
        t.state.sync.status().await.unwrap().status,
        RunState::Syncing
    );

    // A new process right away: the run looks alive, so it is not taken over yet.
    let client = t.state.hubspot.clone().unwrap();
    let err = t.state.sync.run(&client).await.unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
    // Two minutes without a committed page: the run is abandoned and taken over.
    t.clock.advance(Duration::from_secs(180));
    let before = t.requests("/crm/objects/2026-03/{object_type}").await;
    t.run().await;
    let after = t.requests("/crm/objects/2026-03/{object_type}").await;
    assert_eq!(t.cached().await, 2_000);
    let pages = after - before;
    assert!(
        pages <= 21 - (partial as u64 / 100) + 2,
        "resumed, not restarted: {pages} pages after {partial} contacts"
    );
    let status = t.state.sync.status().await.unwrap();
    assert_eq!(status.status, RunState::Idle);
}

/// Deals, companies, contacts and line items: what HubSpot holds and how they relate.
struct Crm {
    companies: Vec<String>,
    contacts: Vec<String>,
    deals: Vec<String>,
    items: Vec<String>,
}

impl T {
    async fn hubspot(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .bearer_auth("pat-sync")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn create(&self, object_type: &str, body: Value) -> String {
        let r = self
            .hubspot(
                reqwest::Method::POST,
                &format!("/crm/objects/2026-03/{object_type}"),
                body,
            )
            .await;
        r["id"].as_str().unwrap().to_string()
    }

    /// Two companies, three contacts, three deals (each with its company as primary and some
    /// contacts), four line items on the first two deals.
    async fn crm(&self) -> Crm {
        let mut c = Crm {
            companies: vec![],
            contacts: vec![],
            deals: vec![],
            items: vec![],
        };
        for name in ["Acme", "Globex"] {
            c.companies.push(
                self.create("companies", json!({"properties": {"name": name}}))
                    .await,
            );
        }
        for (i, email) in ["ada@acme.test", "bob@acme.test", "cy@globex.test"]
            .iter()
            .enumerate()
        {
            let company = &c.companies[i / 2];
            c.contacts.push(
                self.create(
                    "contacts",
                    json!({"properties": {"email": email},
                           "associations": [{"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}),
                )
                .await,
            );
        }
        for (i, (name, stage, amount)) in [
            ("Acme renewal", "closedwon", "1200"),
            ("Acme upsell", "appointmentscheduled", "300"),
            ("Globex pilot", "closedwon", "5000"),
        ]
        .iter()
        .enumerate()
        {
            let company = &c.companies[i / 2];
            let contacts: Vec<Value> = c.contacts[i.min(1) * 2 - i.min(1)..]
                .iter()
                .take(2)
                .map(|id| json!({"to": {"id": id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}))
                .collect();
            let mut associations = vec![
                json!({"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}),
            ];
            associations.extend(contacts);
            c.deals.push(
                self.create(
                    "deals",
                    json!({"properties": {"dealname": name, "dealstage": stage, "amount": amount},
                           "associations": associations}),
                )
                .await,
            );
        }
        for i in 0..4 {
            let deal = &c.deals[i / 2];
            c.items.push(
                self.create(
                    "line_items",
                    json!({"properties": {"name": format!("Seat {i}"), "quantity": "2", "price": "100"},
                           "associations": [{"to": {"id": deal}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}]}]}),
                )
                .await,
            );
        }
        c
    }

    async fn api(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn run_all(&self) -> usize {
        let client = self.state.hubspot.as_ref().unwrap();
        self.state.sync.run_all(client).await.unwrap()
    }
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn deals_sync_with_their_companies_contacts_and_line_items_and_read_back_locally() {
    let t = spawn_with(
        SimConfig::unthrottled(),
        &[("SYNC_OBJECTS", "contacts,companies,deals,line_items")],
    )
    .await;
    let crm = t.crm().await;
    assert_eq!(t.run_all().await, 2 + 3 + 3 + 4);

    // Listed locally, filtered on fields, paged.
    let (status, page) = t.api("/api/objects/deals?dealstage=closedwon").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        ids(&page["results"]),
        sorted(vec![crm.deals[0].clone(), crm.deals[2].clone()])
    );
    let (_, first) = t.api("/api/objects/line_items?limit=3").await;
    assert_eq!(first["results"].as_array().unwrap().len(), 3);
    let after = first["paging"]["next"]["after"].as_str().unwrap();
    let (_, rest) = t
        .api(&format!("/api/objects/line_items?limit=3&after={after}"))
        .await;
    assert_eq!(rest["results"].as_array().unwrap().len(), 1);
    assert!(rest.get("paging").is_none(), "{rest}");

    // One deal with every association, read from whichever side owns the pair.
    let (status, deal) = t.api(&format!("/api/objects/deals/{}", crm.deals[0])).await;
    assert_eq!(status, 200, "{deal}");
    assert_eq!(deal["properties"]["dealname"], "Acme renewal");
    assert_eq!(deal["associations_pending"], false, "{deal}");
    let a = &deal["associations"];
    assert_eq!(ids(&a["companies"]), vec![crm.companies[0].clone()]);
    assert_eq!(a["companies"][0]["types"][0]["label"], "Primary");
    assert_eq!(a["companies"][0]["types"][0]["typeId"], 5);
    assert_eq!(
        ids(&a["contacts"]),
        sorted(vec![crm.contacts[0].clone(), crm.contacts[1].clone()])
    );
    assert_eq!(
        ids(&a["line_items"]),
        sorted(vec![crm.items[0].clone(), crm.items[1].clone()]),
        "line items' edges are read from their side and shown from the deal's"
    );
    let (_, company) = t
        .api(&format!("/api/objects/companies/{}", crm.companies[0]))
        .await;
    assert_eq!(
        ids(&company["associations"]["deals"]),
        sorted(vec![crm.deals[0].clone(), crm.deals[1].clone()])
    );
    assert_eq!(
        ids(&company["associations"]["contacts"]),
        sorted(vec![crm.contacts[0].clone(), crm.contacts[1].clone()])
    );

    // An incremental run picks up a changed deal, and its edges as they are now. (The
    // simulator stamps writes with the real time; the app's clock moves past it.)
    let real_now = chrono::Utc::now().timestamp_millis();
    t.clock
        .advance(Duration::from_millis((real_now - START + 60_000) as u64));
    t.hubspot(
        reqwest::Method::POST,
        "/crm/associations/2026-03/deals/companies/batch/archive",
        json!({"inputs": [{"from": {"id": crm.deals[0]}, "to": [{"id": crm.companies[0]}]}]}),
    )
    .await;
    t.hubspot(
        reqwest::Method::PATCH,
        &format!("/crm/objects/2026-03/deals/{}", crm.deals[0]),
        json!({"properties": {"amount": "1300"}}),
    )
    .await;
    t.run_all().await;
    let (_, deal) = t.api(&format!("/api/objects/deals/{}", crm.deals[0])).await;
    assert_eq!(deal["properties"]["amount"], "1300");
    assert!(
        deal["associations"].get("companies").is_none(),
        "the archived edge is gone: {deal}"
    );
    assert_eq!(
        deal["associations"]["line_items"].as_array().unwrap().len(),
        2
    );

    // A deal deleted in HubSpot whose webhook never came: the next run's archived listing
    // archives it here, and its edges go with it.
    t.hubspot(
        reqwest::Method::DELETE,
        &format!("/crm/objects/2026-03/deals/{}", crm.deals[1]),
        json!({}),
    )
    .await;
    t.run_all().await;
    let (_, gone) = t.api(&format!("/api/objects/deals/{}", crm.deals[1])).await;
    assert!(gone["archived_at"].is_i64(), "{gone}");
    let (_, page) = t.api("/api/objects/deals").await;
    assert_eq!(
        ids(&page["results"]),
        sorted(vec![crm.deals[0].clone(), crm.deals[2].clone()])
    );
    let (_, company) = t
        .api(&format!("/api/objects/companies/{}", crm.companies[0]))
        .await;
    // Its deals were the archived edge's deal and the deleted one: none is left.
    assert!(company["associations"].get("deals").is_none(), "{company}");

    // Clear errors.
    let (status, body) = t.api("/api/objects/tickets").await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("line_items"),
        "{body}"
    );
    let (status, body) = t.api("/api/objects/deals?limit=500").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = t.api("/api/objects/deals/123").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_10k_search_cap_is_walked_for_deals_too() {
    let t = spawn_with(SimConfig::unthrottled(), &[("SYNC_OBJECTS", "deals")]).await;
    assert_eq!(t.run_all().await, 0, "an empty portal");
    t.clock.advance(Duration::from_secs(20 * 24 * 3600));
    for (count, prefix, at) in [
        (10_500, "bulk", "2026-01-31T23:59:59Z"),
        (150, "later", "2026-02-01T08:00:00Z"),
    ] {
        let r = t
            .http
            .post(format!("{}/_sim/seed/deals", t.sim.base_url()))
            .json(&json!({"count": count, "properties": {"dealname": format!("{prefix}{{n}}")}, "timestamp": at}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let synced = t.run_all().await;
    assert!(synced >= 10_650, "{synced}");
    let deals = t
        .state
        .objects
        .count(None, app::domain::object::ObjectType::Deals)
        .await
        .unwrap();
    assert_eq!(deals, 10_650, "every deal arrived");
    let status = t
        .state
        .sync
        .for_type(app::domain::object::ObjectType::Deals)
        .status()
        .await
        .unwrap();
    assert_eq!(status.status, RunState::Idle);
    assert_eq!(status.object_type, "deals");
    assert_eq!(status.cursor, Some(1_769_932_800_000));
}

impl T {
    async fn put_mappings(&self, object_type: &str, mappings: Value) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}/api/mappings/{object_type}", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "mappings": mappings }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

/// A portal with 300 custom deal properties, all mapped: the mappings are checked against the
/// portal's definitions (a misspelled property is refused, naming the real one), a calculated
/// field is computed locally, and the sync never sends a request HubSpot's URL limit refuses.
#[tokio::test]
async fn three_hundred_mapped_custom_properties_sync_within_hubspots_limits() {
    let t = spawn_with(SimConfig::unthrottled(), &[("SYNC_OBJECTS", "deals")]).await;
    let custom: Vec<String> = (0..300)
        .map(|i| format!("custom_commission_tracking_property_{i:03}"))
        .collect();
    for name in custom
        .iter()
        .chain(std::iter::once(&"contract_length_months".to_string()))
    {
        t.hubspot(
            reqwest::Method::POST,
            "/crm/properties/2026-03/deals",
            json!({"name": name, "label": name, "type": "number", "fieldType": "number"}),
        )
        .await;
    }
    // Naming all 300 in one GET is more than HubSpot's URL limit takes.
    let all = custom.join(",");
    let r = t
        .http
        .get(format!(
            "{}/crm/objects/2026-03/deals?properties={all}",
            t.sim.base_url()
        ))
        .bearer_auth("pat-sync")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);

    let mut properties = serde_json::Map::new();
    properties.insert("dealname".into(), json!("Deal {n}"));
    properties.insert("amount".into(), json!("1000"));
    properties.insert("contract_length_months".into(), json!("12"));
    for (i, name) in custom.iter().enumerate() {
        properties.insert(name.clone(), json!(i.to_string()));
    }
    let r = t
        .http
        .post(format!("{}/_sim/seed/deals", t.sim.base_url()))
        .json(&json!({"count": 250, "properties": properties}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // Refused, each problem named: a misspelled property (with the real name), a calculation
    // over a text property, an app-owned property HubSpot maintains.
    let (status, body) = t
        .put_mappings(
            "deals",
            json!([
                {"field": "amount", "hubspot": "amount"},
                {"field": "months", "hubspot": "contract_length_month"},
                {"field": "name", "hubspot": "dealname"},
                {"field": "odd", "calculated": "name * 2"},
                {"field": "modified", "hubspot": "hs_lastmodifieddate", "owner": "app"},
            ]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["fields"]["deals[1].hubspot"]
            .as_str()
            .unwrap()
            .contains("did you mean 'contract_length_months'"),
        "{body}"
    );
    assert!(body["fields"]["deals[3].calculated"].is_string(), "{body}");
    assert!(body["fields"]["deals[4].owner"].is_string(), "{body}");

    let mut mappings = vec![
        json!({"field": "amount", "hubspot": "amount"}),
        json!({"field": "months", "hubspot": "contract_length_months"}),
        json!({"field": "total_contract_value", "calculated": "amount * months"}),
    ];
    mappings.extend(
        custom
            .iter()
            .enumerate()
            .map(|(i, name)| json!({"field": format!("c{i:03}"), "hubspot": name})),
    );
    let (status, body) = t.put_mappings("deals", json!(mappings)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["relisting"], true);

    assert_eq!(t.run_all().await, 250);
    let (_, page) = t
        .api("/api/objects/deals?total_contract_value=12000&limit=200")
        .await;
    assert_eq!(
        page["results"].as_array().unwrap().len(),
        200,
        "filtered on a calculated field"
    );
    let deal = &page["results"][0];
    assert_eq!(deal["fields"]["total_contract_value"], "12000");
    assert_eq!(deal["fields"]["c299"], "299");
    assert_eq!(
        deal["properties"]["custom_commission_tracking_property_150"],
        "150"
    );
    let statuses = common::route_statuses(&t.sim, "/crm/objects/2026-03/{object_type}").await;
    assert!(
        statuses
            .iter()
            .all(|(status, n)| *status == 200 || (*status == 414 && *n == 1)),
        "every listing GET of the sync under the URL limit (the one 414 is this test's): {statuses:?}"
    );
    let listings: u64 = statuses
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, n)| n)
        .sum();
    assert!(
        listings >= 3 * 3,
        "3 pages, each read in 3+ property chunks: {listings}"
    );
}

/// Deal amounts are kept in their currency and normalized to the portal's company currency
/// with the portal's rate in force (HubSpot's multi-currency settings); no rate, no guess.
#[tokio::test]
async fn deal_amounts_are_normalized_to_the_company_currency_at_the_portals_rates() {
    let t = spawn_with(SimConfig::unthrottled(), &[("SYNC_OBJECTS", "deals")]).await;
    for (from, rate, at) in [
        ("EUR", 1.1, "2026-01-01T00:00:00Z"),
        ("EUR", 1.08, "2026-06-01T00:00:00Z"),
    ] {
        t.hubspot(
            reqwest::Method::POST,
            "/settings/currencies/2026-03/exchange-rates",
            json!({"fromCurrencyCode": from, "conversionRate": rate, "effectiveAt": at}),
        )
        .await;
    }
    let mut ids = Vec::new();
    for (amount, currency) in [("1000", Some("EUR")), ("500", None), ("100", Some("CHF"))] {
        let mut properties = json!({"dealname": "D", "amount": amount});
        if let Some(c) = currency {
            properties["deal_currency_code"] = json!(c);
        }
        ids.push(t.create("deals", json!({ "properties": properties })).await);
    }
    t.run_all().await;
    let field = |d: &Value, f: &str| d["fields"][f].as_str().map(String::from);
    let (_, eur) = t.api(&format!("/api/objects/deals/{}", ids[0])).await;
    assert_eq!(
        field(&eur, "amount_in_company_currency").as_deref(),
        Some("1080.00"),
        "{eur}"
    );
    assert_eq!(field(&eur, "company_currency").as_deref(), Some("USD"));
    assert_eq!(
        eur["properties"]["amount"], "1000",
        "kept in its own currency too"
    );
    let (_, usd) = t.api(&format!("/api/objects/deals/{}", ids[1])).await;
    assert_eq!(
        field(&usd, "amount_in_company_currency").as_deref(),
        Some("500.00")
    );
    let (_, chf) = t.api(&format!("/api/objects/deals/{}", ids[2])).await;
    assert_eq!(field(&chf, "amount_in_company_currency"), None, "{chf}");
    let (_, page) = t
        .api("/api/objects/deals?amount_in_company_currency=1080.00")
        .await;
    assert_eq!(self::ids(&page["results"]), vec![ids[0].clone()]);
}

/// A portal chooses its own types: the runs follow its choice, unknown types are refused
/// listing the valid ones, and `null` goes back to `SYNC_OBJECTS`.
#[tokio::test]
async fn a_portal_chooses_the_object_types_it_syncs() {
    let t = spawn_with(
        SimConfig::unthrottled(),
        &[("SYNC_OBJECTS", "contacts,deals")],
    )
    .await;
    t.create("companies", json!({"properties": {"name": "Chosen"}}))
        .await;
    t.create("deals", json!({"properties": {"dealname": "Not chosen"}}))
        .await;
    let put = |objects: Value| {
        let http = t.http.clone();
        let url = format!("{}/api/sync/objects", t.base);
        async move {
            let r = http
                .put(url)
                .bearer_auth(ADMIN)
                .json(&json!({ "objects": objects }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = put(json!(["companies", "tickets"])).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("line_items"),
        "{body}"
    );
    let (status, body) = put(json!(["companies"])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["objects"], json!(["companies"]));
    assert_eq!(t.run_all().await, 1, "the companies only");
    let (_, companies) = t.api("/api/objects/companies").await;
    assert_eq!(companies["results"].as_array().unwrap().len(), 1);
    let (_, deals) = t.api("/api/objects/deals").await;
    assert!(deals["results"].as_array().unwrap().is_empty(), "{deals}");
    let (_, stats) = t.api("/api/stats").await;
    let types: Vec<&str> = stats["syncs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["object_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["companies"]);
    let (status, body) = put(Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["objects"],
        json!(["contacts", "deals"]),
        "back to SYNC_OBJECTS"
    );
}
