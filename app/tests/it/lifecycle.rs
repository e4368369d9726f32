//! Lifecycle events against the real app (two processes on one SQLite file where it matters)
//! and the simulator: 100,000 events of 10,000 users delivered twice and shuffled while
//! HubSpot fails batches end exactly as a reference computed here; the stage is set once; an
//! anonymous user identified later is one contact; a dry run names what HubSpot would refuse
//! and sends nothing; timeline occurrences go once; bad input is named.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use hubspot_sim::SimConfig;
use serde_json::{json, Value};

use crate::common;

const ADMIN: &str = "admin-lifecycle";
const TOKEN: &str = "pat-lifecycle";

async fn app(sim: &hubspot_sim::RunningSim, db: &str, extra: &[(&str, &str)]) -> String {
    let settings = common::settings_with(
        &[
            ("APP_LISTEN", "127.0.0.1:0".to_string()),
            ("HUBSPOT_ACCESS_TOKEN", TOKEN.to_string()),
            ("HUBSPOT_BASE_URL", sim.base_url()),
            ("DATABASE_URL", db.to_string()),
            ("ADMIN_TOKEN", ADMIN.to_string()),
            ("SYNC_SCHEDULE", "off".to_string()),
            ("HUBSPOT_TIMEOUT", "3s".to_string()),
        ],
        extra,
    );
    common::serve(settings).await
}

async fn post(http: &reqwest::Client, base: &str, body: &Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(ADMIN)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits until every subject is delivered (sent, or previewed in a dry run) and no timeline
/// occurrence is due; returns the figures.
async fn wait_delivered(http: &reqwest::Client, base: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let stats = common::get_json(http, &format!("{base}/api/stats"), Some(ADMIN)).await;
        let l = &stats["lifecycle"];
        if l["subjects_pending"] == 0 && l["timeline_due"] == 0 && l["events"].as_i64() > Some(0) {
            return l.clone();
        }
        assert!(Instant::now() < deadline, "not delivered in time: {l}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every live contact in the simulator, by the product user id (or, without one, by email).
async fn contacts(sim: &hubspot_sim::RunningSim) -> HashMap<String, Value> {
    let all = common::sim_records(sim, "contacts").await;
    all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let p = &c["properties"];
            let key = p["product_user_id"]
                .as_str()
                .or(p["email"].as_str())
                .unwrap()
                .to_string();
            (key, c.clone())
        })
        .collect()
}

fn event(id: &str, t: &str, at: i64, subject: Value, data: Value) -> Value {
    json!({"event_id": id, "type": t, "occurred_at": at, "subject": subject, "data": data})
}

/// A small deterministic generator (xorshift), so the run is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a user's events must make of their contact, computed here from the events
/// themselves (not with the app's adapters).
#[derive(Default, Debug)]
struct Expected {
    earned: u64,
    redeemed: u64,
    redemptions: u64,
    exclusives: std::collections::BTreeSet<String>,
    first_install: Option<i64>,
}

#[tokio::test]
async fn a_hundred_thousand_events_twice_shuffled_through_failures_end_as_the_reference() {
    twice_shuffled_scenario(&common::temp_db_url("lifecycle-many"), 10_000, 100_000).await;
}

/// `EVENTS` events of `USERS` users, each delivered twice, shuffled, in batches of 500 that
/// alternate between two app processes on the database `db`, while HubSpot fails 25 batch
/// upserts: every contact must end as a reference computed here from the events.
pub async fn twice_shuffled_scenario(db: &str, users: u64, events: u64) {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let bases = [app(&sim, db, &[]).await, app(&sim, db, &[]).await];
    let http = reqwest::Client::new();
    #[allow(non_snake_case)]
    let (USERS, EVENTS) = (users, events);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut expected: HashMap<String, Expected> = HashMap::new();
    let mut events = Vec::with_capacity(EVENTS as usize);
    for n in 0..EVENTS {
        let user = format!("user-{}", rng.below(USERS));
        let at = 1_790_000_000_000 + rng.below(10_000_000) as i64;
        let x = expected.entry(user.clone()).or_default();
        let subject = json!({"external_id": user});
        let id = format!("ev-{n}");
        let e = match rng.below(5) {
            0 => {
                let amount = 1 + rng.below(100);
                x.earned += amount;
                event(&id, "nova_earned", at, subject, json!({"amount": amount}))
            }
            1 => {
                let amount = 1 + rng.below(50);
                x.redeemed += amount;
                event(&id, "nova_redeemed", at, subject, json!({"amount": amount}))
            }
            2 => {
                x.redemptions += 1;
                event(
                    &id,
                    "redemption",
                    at,
                    subject,
                    json!({"merchant_id": format!("m-{}", rng.below(20))}),
                )
            }
            3 => {
                let exclusive = format!("x-{}", rng.below(5));
                x.exclusives.insert(exclusive.clone());
                event(
                    &id,
                    "exclusive_completed",
                    at,
                    subject,
                    json!({"exclusive_id": exclusive}),
                )
            }
            _ => {
                x.first_install = Some(x.first_install.map_or(at, |f| f.min(at)));
                event(
                    &id,
                    "wallet_pass_installed",
                    at,
                    subject,
                    json!({"platform": "apple"}),
                )
            }
        };
        events.push(e);
    }
    // Twice, shuffled (Fisher–Yates), in batches of 500 alternating between the two processes,
    // while HubSpot fails some batch upserts.
    let mut twice: Vec<Value> = events.iter().chain(events.iter()).cloned().collect();
    for i in (1..twice.len()).rev() {
        twice.swap(i, rng.below(i as u64 + 1) as usize);
    }
    common::sim_fault(
        &sim,
        json!({"path": "/crm/objects/2026-03/contacts/batch/upsert", "status": 503, "times": 25}),
    )
    .await;
    let started = Instant::now();
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    for (i, chunk) in twice.chunks(500).enumerate() {
        let (status, body) = post(&http, &bases[i % 2], &json!({"events": chunk})).await;
        assert_eq!(status, 202, "{body}");
        accepted += body["accepted"].as_u64().unwrap();
        duplicates += body["duplicates"].as_u64().unwrap();
    }
    assert_eq!(
        (accepted, duplicates),
        (EVENTS, EVENTS),
        "each event stored once"
    );
    let figures = wait_delivered(&http, &bases[0], Duration::from_secs(300)).await;
    eprintln!(
        "{} events delivered twice, in {:?}: {figures}",
        EVENTS,
        started.elapsed()
    );
    assert_eq!(figures["subjects_dead"], 0, "{figures}");

    let found = contacts(&sim).await;
    assert_eq!(found.len(), expected.len(), "one contact per user");
    let mut wrong = Vec::new();
    for (user, x) in &expected {
        let p = &found[user]["properties"];
        let want: BTreeMap<&str, String> = [
            (
                "nova_balance",
                (x.earned as i64 - x.redeemed as i64).to_string(),
            ),
            ("nova_earned_total", x.earned.to_string()),
            ("nova_redeemed_total", x.redeemed.to_string()),
            ("total_redemptions", x.redemptions.to_string()),
            ("exclusives_completed", x.exclusives.len().to_string()),
        ]
        .into_iter()
        .collect();
        for (k, v) in &want {
            if p[*k].as_str() != Some(v.as_str()) {
                wrong.push(format!("{user}.{k}: want {v}, got {}", p[*k]));
            }
        }
        let stage = if x.exclusives.is_empty() {
            None
        } else {
            Some("engaged_driver")
        };
        if p["driver_stage"].as_str() != stage {
            wrong.push(format!(
                "{user}.driver_stage: want {stage:?}, got {}",
                p["driver_stage"]
            ));
        }
        let installed = x.first_install.map(|ms| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .timestamp_millis()
        });
        let got = p["wallet_pass_installed_at"].as_str().map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        });
        if got != installed {
            wrong.push(format!(
                "{user}.wallet_pass_installed_at: want {installed:?}, got {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[tokio::test]
async fn the_first_exclusive_sets_the_stage_once_and_later_ones_do_not_reset_it() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let base = app(&sim, &common::temp_db_url("lifecycle-stage"), &[]).await;
    let http = reqwest::Client::new();
    let u = json!({"external_id": "driver-1"});
    let (s, _) = post(
        &http,
        &base,
        &event(
            "x1",
            "exclusive_completed",
            1_000,
            u.clone(),
            json!({"exclusive_id": "a"}),
        ),
    )
    .await;
    assert_eq!(s, 202);
    wait_delivered(&http, &base, Duration::from_secs(20)).await;
    let c = &contacts(&sim).await["driver-1"];
    assert_eq!(c["properties"]["driver_stage"], "engaged_driver");
    // Someone moves the driver on in HubSpot.
    let id = c["id"].as_str().unwrap();
    let r = http
        .patch(format!(
            "{}/crm/objects/2026-03/contacts/{id}",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"driver_stage": "churned"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A later completion, and one delivered late that happened before the first.
    for (id, at, x) in [("x2", 2_000, "b"), ("x0", 500, "c")] {
        let (s, _) = post(
            &http,
            &base,
            &event(
                id,
                "exclusive_completed",
                at,
                u.clone(),
                json!({"exclusive_id": x}),
            ),
        )
        .await;
        assert_eq!(s, 202);
    }
    wait_delivered(&http, &base, Duration::from_secs(20)).await;
    let c = &contacts(&sim).await["driver-1"];
    assert_eq!(c["properties"]["driver_stage"], "churned", "not reset");
    assert_eq!(c["properties"]["exclusives_completed"], "3");
    // The changes of an event are what it adds to the history before it: x0, delivered last,
    // happened first, so the stage is its change now, and x1 only counted.
    let view = common::get_json(&http, &format!("{base}/api/events/x0"), Some(ADMIN)).await;
    assert_eq!(view["changes"]["driver_stage"], "engaged_driver", "{view}");
    let view = common::get_json(&http, &format!("{base}/api/events/x1"), Some(ADMIN)).await;
    assert_eq!(
        view["changes"],
        json!({"exclusives_completed": "2"}),
        "{view}"
    );
    assert_eq!(view["delivery"]["state"], "sent");
    assert_eq!(view["delivery"]["hubspot_id"], id);
}

#[tokio::test]
async fn an_anonymous_user_identified_later_by_email_is_one_contact_either_way() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let base = app(&sim, &common::temp_db_url("lifecycle-identity"), &[]).await;
    let http = reqwest::Client::new();
    // Anonymous first: known by the product's user id only.
    let anon = json!({"external_id": "anon-7"});
    post(
        &http,
        &base,
        &event(
            "a1",
            "nova_earned",
            1_000,
            anon.clone(),
            json!({"amount": 40}),
        ),
    )
    .await;
    wait_delivered(&http, &base, Duration::from_secs(20)).await;
    assert_eq!(common::sim_records(&sim, "contacts").await["count"], 1);
    // Then signs up with an email.
    post(
        &http,
        &base,
        &event(
            "a2",
            "user_signup",
            2_000,
            anon,
            json!({"email": "Seven@Example.com", "firstname": "Seven"}),
        ),
    )
    .await;
    // Email first, the product's id later (with the email): the same subject.
    post(
        &http,
        &base,
        &event(
            "b1",
            "otp_verified",
            1_000,
            json!({"email": "eight@example.com"}),
            json!({}),
        ),
    )
    .await;
    wait_delivered(&http, &base, Duration::from_secs(20)).await;
    post(
        &http,
        &base,
        &event(
            "b2",
            "nova_earned",
            3_000,
            json!({"external_id": "user-8", "email": "eight@example.com"}),
            json!({"amount": 5}),
        ),
    )
    .await;
    post(
        &http,
        &base,
        &event(
            "b3",
            "nova_earned",
            4_000,
            json!({"external_id": "user-8"}),
            json!({"amount": 6}),
        ),
    )
    .await;
    wait_delivered(&http, &base, Duration::from_secs(20)).await;

    let all = common::sim_records(&sim, "contacts").await;
    assert_eq!(all["count"], 2, "{all}");
    let found = contacts(&sim).await;
    let seven = &found["anon-7"]["properties"];
    assert_eq!(seven["email"], "seven@example.com");
    assert_eq!(seven["firstname"], "Seven");
    assert_eq!(seven["nova_balance"], "40");
    let eight = &found["user-8"]["properties"];
    assert_eq!(eight["email"], "eight@example.com");
    assert_eq!(eight["nova_balance"], "11");
    assert!(eight["otp_verified_at"].as_str().is_some(), "{eight}");
    let view = common::get_json(&http, &format!("{base}/api/events/b3"), Some(ADMIN)).await;
    assert_eq!(
        view["delivery"]["id_property"], "email",
        "keyed as it was first: {view}"
    );
}

#[tokio::test]
async fn a_dry_run_names_an_option_hubspot_would_refuse_and_sends_nothing() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let http = reqwest::Client::new();
    // The portal already has the platform property, with one option only.
    let r = http
        .post(format!(
            "{}/crm/properties/2026-03/contacts",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": "wallet_pass_platform", "label": "Platform", "type": "enumeration",
                      "fieldType": "select", "options": [{"label": "Apple", "value": "apple"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let base = app(
        &sim,
        &common::temp_db_url("lifecycle-dry"),
        &[("HUBSPOT_SEND_LIVE", "false")],
    )
    .await;
    let u = json!({"external_id": "dry-1"});
    post(
        &http,
        &base,
        &event(
            "d1",
            "wallet_pass_installed",
            1_000,
            u.clone(),
            json!({"platform": "google"}),
        ),
    )
    .await;
    post(
        &http,
        &base,
        &event("d2", "nova_earned", 2_000, u, json!({"amount": 3})),
    )
    .await;
    let figures = wait_delivered(&http, &base, Duration::from_secs(20)).await;
    assert_eq!(figures["subjects_previewed"], 1, "{figures}");
    let view = common::get_json(&http, &format!("{base}/api/events/d1"), Some(ADMIN)).await;
    assert_eq!(view["delivery"]["state"], "previewed", "{view}");
    let problems = view["delivery"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{view}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains("wallet_pass_platform: 'google' is not one of its options (apple)"),
        "{view}"
    );
    assert_eq!(view["delivery"]["payload"]["nova_balance"], "3");
    assert_eq!(view["changes"]["wallet_pass_platform"], "google");
    // Nothing reached HubSpot: no contact, no property created.
    assert_eq!(common::sim_records(&sim, "contacts").await["count"], 0);
    let r = http
        .get(format!(
            "{}/crm/properties/2026-03/contacts/product_user_id",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn timeline_occurrences_go_once_per_event_and_the_api_names_bad_input() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let base = app(
        &sim,
        &common::temp_db_url("lifecycle-timeline"),
        &[("LIFECYCLE_TIMELINE", "nova_earned")],
    )
    .await;
    let http = reqwest::Client::new();
    let u = json!({"external_id": "t-1", "email": "t1@example.com"});
    let batch = json!({"events": [
        event("t1", "nova_earned", 1_000, u.clone(), json!({"amount": 10})),
        event("t2", "nova_redeemed", 2_000, u.clone(), json!({"amount": 4})),
        event("t3", "nova_earned", 3_000, u.clone(), json!({"amount": 1})),
    ]});
    let (s, body) = post(&http, &base, &batch).await;
    assert_eq!((s, body["accepted"].clone()), (202, json!(3)), "{body}");
    let (s, body) = post(&http, &base, &batch).await;
    assert_eq!((s, body["duplicates"].clone()), (202, json!(3)), "{body}");
    wait_delivered(&http, &base, Duration::from_secs(20)).await;
    let contact = contacts(&sim).await["t-1"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hub = common::get_json(
        &http,
        &format!("{}/account-info/2026-03/details", sim.base_url()),
        Some(TOKEN),
    )
    .await["portalId"]
        .as_u64()
        .unwrap();
    let occurrences = common::get_json(
        &http,
        &format!(
            "{}/events/2026-03/events?objectType=contact&objectId={contact}",
            sim.base_url()
        ),
        Some(TOKEN),
    )
    .await;
    let results = occurrences["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        2,
        "nova_earned only, once each: {occurrences}"
    );
    assert_eq!(results[0]["eventType"], format!("pe{hub}_nova_earned"));
    assert_eq!(results[0]["properties"]["amount"], "10");
    let view = common::get_json(&http, &format!("{base}/api/events/t1"), Some(ADMIN)).await;
    assert_eq!(view["delivery"]["timeline"], "sent");
    assert!(
        !view["subject"]["email"].as_str().unwrap().contains("t1@"),
        "masked: {view}"
    );

    // Bad input: the field named, nothing stored.
    for (body, field, says) in [
        (
            json!({"events": [event("ok", "otp_verified", 1, u.clone(), json!({})), event("bad", "nova_earned", 1, u.clone(), json!({"amount": -2}))]}),
            "events[1].data.amount",
            "positive integer",
        ),
        (
            event("bad", "teleported", 1, u.clone(), json!({})),
            "type",
            "nova_redeemed",
        ),
        (
            event(
                "bad",
                "redemption",
                1,
                json!({}),
                json!({"merchant_id": "m"}),
            ),
            "subject",
            "external_id",
        ),
    ] {
        let (s, e) = post(&http, &base, &body).await;
        assert_eq!(s, 400, "{e}");
        assert!(
            e["fields"][field]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{field}: {e}"
        );
    }
    let r = http
        .get(format!("{base}/api/events/ok"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "the valid event of a refused batch was not stored"
    );
    let r = http
        .post(format!("{base}/api/events"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_merchant_s_company_is_upserted_by_its_id_and_associated_with_its_users() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let base = app(&sim, &common::temp_db_url("lifecycle-merchant"), &[]).await;
    let http = reqwest::Client::new();
    let enable = |id: &str, at, user: &str, name: &str, x: &str| {
        event(
            id,
            "merchant_exclusive_enabled",
            at,
            json!({"external_id": user}),
            json!({"merchant_id": "m-1", "merchant_name": name, "exclusive_id": x}),
        )
    };
    // Two of the merchant's users, the second one's event first; one exclusive twice.
    let (s, body) = post(
        &http,
        &base,
        &json!({"events": [
            enable("m2", 2_000, "owner-2", "Cafe Nova", "x2"),
            enable("m1", 1_000, "owner-1", "Cafe", "x1"),
            enable("m3", 3_000, "owner-1", "Cafe Nova", "x1"),
        ]}),
    )
    .await;
    assert_eq!(s, 202, "{body}");
    wait_delivered(&http, &base, Duration::from_secs(20)).await;
    let companies = common::sim_records(&sim, "companies").await;
    assert_eq!(companies["count"], 1, "{companies}");
    let company = &companies["results"][0];
    assert_eq!(company["properties"]["product_merchant_id"], "m-1");
    assert_eq!(
        company["properties"]["name"], "Cafe Nova",
        "the latest name"
    );
    assert_eq!(company["properties"]["exclusives_enabled"], "2");
    let company_id = company["id"].as_str().unwrap();
    // The app made the merchant id property, unique, in the companies' own group.
    let definition = common::get_json(
        &http,
        &format!(
            "{}/crm/properties/2026-03/companies/product_merchant_id",
            sim.base_url()
        ),
        Some(TOKEN),
    )
    .await;
    assert_eq!(definition["hasUniqueValue"], true, "{definition}");
    assert_eq!(
        definition["groupName"], "companyinformation",
        "{definition}"
    );
    let users = contacts(&sim).await;
    for user in ["owner-1", "owner-2"] {
        let id = users[user]["id"].as_str().unwrap();
        let r: Value = http
            .post(format!(
                "{}/crm/associations/2026-03/contacts/companies/batch/read",
                sim.base_url()
            ))
            .bearer_auth(TOKEN)
            .json(&json!({"inputs": [{"id": id}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let to: Vec<String> = r["results"][0]["to"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|t| t["toObjectId"].to_string().trim_matches('"').to_string())
            .collect();
        assert_eq!(to, vec![company_id.to_string()], "{user}: {r}");
    }
}

#[tokio::test]
async fn code_inside_the_app_tracks_events_with_the_same_checks() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let settings = common::settings(&[
        ("APP_LISTEN", "127.0.0.1:0".to_string()),
        ("HUBSPOT_ACCESS_TOKEN", TOKEN.to_string()),
        ("HUBSPOT_BASE_URL", sim.base_url()),
        ("DATABASE_URL", common::temp_db_url("lifecycle-track")),
        ("ADMIN_TOKEN", ADMIN.to_string()),
        ("SYNC_SCHEDULE", "off".to_string()),
    ]);
    let app = app::Application::build(settings).await.unwrap();
    let events = &app.state().events;
    let bad = events
        .track(&event(
            "in-1",
            "nova_earned",
            1,
            json!({"external_id": "in-user"}),
            json!({"amount": "ten"}),
        ))
        .await
        .unwrap_err();
    match bad {
        app::events::TrackError::Invalid(i) => assert_eq!(i.field, "data.amount"),
        other => panic!("{other}"),
    }
    let good = event(
        "in-1",
        "nova_earned",
        1,
        json!({"external_id": "in-user"}),
        json!({"amount": 10}),
    );
    assert!(!events.track(&good).await.unwrap().duplicate);
    assert!(
        events.track(&good).await.unwrap().duplicate,
        "the same event_id again"
    );
    let view = events.show(None, "in-1").await.unwrap().unwrap();
    assert_eq!(view.changes["nova_balance"], "10");
    assert_eq!(
        view.delivery.state, "pending",
        "no worker runs: stored, not sent"
    );
}

/// A process killed (SIGKILL) while a lifecycle batch is in flight: the next process releases
/// the dead one's leases and delivers everything, each contact with its full history.
#[tokio::test]
async fn a_process_killed_mid_delivery_leaves_nothing_behind() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let db = common::temp_db_url("lifecycle-killed");
    let port = common::free_port();
    let start = || common::app_process(port, &db, &sim, ADMIN);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // The first batch upsert hangs for 3 s at HubSpot: the kill lands while it is in flight.
    common::sim_fault(
        &sim,
        json!({"path": "/crm/objects/2026-03/contacts/batch/upsert", "times": 1, "latency_ms": 3000}),
    )
    .await;
    let mut app = start();
    common::wait_ready(&http, &base).await;
    let events: Vec<Value> = (0..300)
        .flat_map(|u| {
            let who = json!({"external_id": format!("k-{u}")});
            [
                event(
                    &format!("k{u}-a"),
                    "nova_earned",
                    1_000,
                    who.clone(),
                    json!({"amount": 7}),
                ),
                event(
                    &format!("k{u}-b"),
                    "nova_redeemed",
                    2_000,
                    who,
                    json!({"amount": 2}),
                ),
            ]
        })
        .collect();
    for chunk in events.chunks(500) {
        let (s, body) = post(&http, &base, &json!({"events": chunk})).await;
        assert_eq!(s, 202, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.kill().unwrap(); // SIGKILL, mid-batch
    app.wait().unwrap();

    let started = Instant::now();
    let mut app = start();
    common::wait_ready(&http, &base).await;
    let figures = wait_delivered(&http, &base, Duration::from_secs(30)).await;
    let took = started.elapsed();
    app.kill().unwrap();
    app.wait().unwrap();
    assert_eq!(figures["subjects_sent"], 300, "{figures}");
    let found = contacts(&sim).await;
    assert_eq!(found.len(), 300, "one contact per user, none twice");
    assert!(found
        .values()
        .all(|c| c["properties"]["nova_balance"] == "5"));
    // Within the lease (6 s here) plus a margin: the dead worker's leases were released.
    assert!(took < Duration::from_secs(6), "took {took:?}");
}
