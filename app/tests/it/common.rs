//! Helpers shared by the app's integration test modules (each uses some of them).

/// A `TOKEN_ENCRYPTION_KEY` for tests (32 bytes of 0x01, base64).
pub const ENCRYPTION_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

use app::config::Settings;
use serde_json::Value;

/// A fresh SQLite database file for one test (`name` keeps tests apart; the pid keeps runs apart).
pub fn temp_db_url(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("app-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}/app.db", dir.display())
}

/// Settings from `(VARIABLE, value)` pairs, as if they were the environment; with
/// [`ENCRYPTION_KEY`] unless they set `TOKEN_ENCRYPTION_KEY` (to `""` for none), as every
/// deployment has one.
pub fn settings<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> Settings {
    Settings::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| n.as_ref() == k)
            .map(|(_, v)| v.as_ref().to_string())
            .or_else(|| (k == "TOKEN_ENCRYPTION_KEY").then(|| ENCRYPTION_KEY.to_string()))
    })
    .unwrap()
}

/// Settings from `base`, with `extra` replacing (or adding to) it: a test's defaults and one
/// test's own variables.
pub fn settings_with(base: &[(&str, String)], extra: &[(&str, &str)]) -> Settings {
    let mut vars: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    settings(&vars)
}

/// Builds the app (in this process) and serves it until the test ends; returns its base URL.
pub async fn serve(settings: Settings) -> String {
    let app = app::Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(std::future::pending()));
    base
}

/// What the simulator answered on `route` (its route pattern), as (status, count) by status.
pub async fn route_statuses(sim: &hubspot_sim::RunningSim, route: &str) -> Vec<(u64, u64)> {
    let stats: Value = reqwest::get(format!("{}/_sim/stats", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["byRoute"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["route"] == route)
        .map(|r| (r["status"].as_u64().unwrap(), r["count"].as_u64().unwrap()))
        .collect()
}

/// Starts the real `app` binary on `port` with the outbox worker running.
pub fn app_process(
    port: u16,
    db: &str,
    sim: &hubspot_sim::RunningSim,
    admin: &str,
) -> std::process::Child {
    app_command(port, db, sim, admin).spawn().unwrap()
}

/// The command [`app_process`] runs, to add variables or redirect its output.
pub fn app_command(
    port: u16,
    db: &str,
    sim: &hubspot_sim::RunningSim,
    admin: &str,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_app"));
    command
        .env_clear()
        .env("APP_LISTEN", format!("127.0.0.1:{port}"))
        .env("HUBSPOT_ACCESS_TOKEN", "pat-process")
        .env("HUBSPOT_BASE_URL", sim.base_url())
        .env("HUBSPOT_TIMEOUT", "5s")
        .env("HUBSPOT_RATE_LIMIT", "100000/10s")
        .env("OUTBOX_LEASE", "6s")
        .env("ADMIN_TOKEN", admin)
        .env("TOKEN_ENCRYPTION_KEY", ENCRYPTION_KEY)
        .env("DATABASE_URL", db)
        .env("SYNC_SCHEDULE", "off")
        .env("RUST_LOG", "warn");
    command
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Waits (up to 10 s) until the app at `base` answers `/ready` with 200.
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if http
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("app at {base} not ready");
}

/// Waits (up to `within`) until the outbox of the app at `base` reports `count` items sent.
pub async fn wait_all_sent(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    count: u64,
    within: std::time::Duration,
) {
    wait_outbox(http, base, admin, within, "not all sent", |d| {
        d["sent"] == count
    })
    .await;
}

/// GETs `url` (with `bearer` as its token, if any) and reads the answer as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> Value {
    let mut request = http.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// Polls the outbox depth of the app at `base` until `done` holds (at most `within`, else
/// panics with `what`); returns the depth.
async fn wait_outbox(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    within: std::time::Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let r = get_json(http, &format!("{base}/api/outbox?state=dead"), Some(admin)).await;
        if done(&r["depth"]) {
            return r["depth"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {}",
            r["depth"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every live record of `object_type` in the simulator's default portal
/// (`GET /_sim/records/{type}`).
pub async fn sim_records(sim: &hubspot_sim::RunningSim, object_type: &str) -> Value {
    sim_records_in(sim, object_type, None).await
}

/// [`sim_records`] of one portal (`None`: the default one).
pub async fn sim_records_in(
    sim: &hubspot_sim::RunningSim,
    object_type: &str,
    portal: Option<u64>,
) -> Value {
    let query = portal.map_or(String::new(), |p| format!("?portal={p}"));
    reqwest::get(format!(
        "{}/_sim/records/{object_type}{query}",
        sim.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

/// A valid contact write with a first name.
pub fn contact(email: &str, firstname: &str) -> app::domain::contact::ContactInput {
    app::domain::contact::ContactInput::try_from(app::domain::contact::ContactRequest {
        email: email.into(),
        firstname: Some(firstname.into()),
        lastname: None,
        phone: None,
        company: None,
    })
    .unwrap()
}

/// Adds a fault rule to the simulator (`POST /_sim/faults`); returns the rule (with its `id`).
pub async fn sim_fault(sim: &hubspot_sim::RunningSim, rule: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Posts 1,000 contacts (`{prefix}{i}x{n}@example.com`) to each app of `bases` in turn (`i` is
/// the turn); every answer must be 202.
pub async fn enqueue_thousands(http: &reqwest::Client, bases: &[&str], admin: &str, prefix: &str) {
    for (i, base) in bases.iter().enumerate() {
        let contacts: Vec<Value> = (0..1000)
            .map(|n| serde_json::json!({"email": format!("{prefix}{i}x{n}@example.com")}))
            .collect();
        let r = http
            .post(format!("{base}/api/contacts"))
            .bearer_auth(admin)
            .json(&serde_json::json!({"contacts": contacts}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
}

/// Waits (up to `within`) until the outbox of the app at `base` has nothing pending or leased;
/// returns its depth.
pub async fn wait_settled(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    within: std::time::Duration,
) -> Value {
    wait_outbox(http, base, admin, within, "not settled", |d| {
        d["pending"] == 0 && d["leased"] == 0
    })
    .await
}

/// What [`interleaved_writes_scenario`] measured.
#[derive(Debug)]
pub struct ScenarioFigures {
    pub contacts: usize,
    pub updated: usize,
    pub batch_calls_ok: u64,
    pub batch_calls_429: u64,
    pub batch_calls_503: u64,
    pub kill_to_settled: std::time::Duration,
}

/// Issue 9's scenario, on the database at `db`: two real app processes started together on a
/// fresh database, 3,000 contacts (`lastname` v1) posted across both, updates (`lastname` v2)
/// for every seventh contact posted while the first wave is being sent, a real 429 storm from a
/// neighbour on the same token, injected 503s, and one process killed with SIGKILL midway and
/// restarted. Asserts on the simulator that every contact exists once and ends with the last
/// write accepted for it; returns the figures.
pub async fn interleaved_writes_scenario(db: &str) -> ScenarioFigures {
    use std::time::{Duration, Instant};
    let sim = hubspot_sim::spawn(hubspot_sim::SimConfig {
        rate_limit: hubspot_sim::config::RateSpec::new(50, Duration::from_secs(1)),
        ..hubspot_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let admin = "admin-scenario";
    let start = |port: u16| {
        app_command(port, db, &sim, admin)
            .env("HUBSPOT_RATE_LIMIT", "50/1s")
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (free_port(), free_port());
    let (ba, bb) = (
        format!("http://127.0.0.1:{pa}"),
        format!("http://127.0.0.1:{pb}"),
    );
    let (mut a, mut b) = (start(pa), start(pb)); // together, on a fresh database
    wait_ready(&http, &ba).await;
    wait_ready(&http, &bb).await;

    // The neighbour: 150 requests/s for 3 s on the same token, three times the budget.
    let neighbour = tokio::spawn({
        let url = format!("{}/crm/objects/2026-03/contacts?limit=1", sim.base_url());
        async move {
            let http = reqwest::Client::new();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let _ = http.get(&url).bearer_auth("pat-process").send().await;
                tokio::time::sleep(Duration::from_millis(6)).await;
            }
        }
    });
    sim_fault(
        &sim,
        serde_json::json!({"path": "/crm/objects/2026-03/contacts/batch/upsert", "times": 4, "status": 503}),
    )
    .await;
    let post = |base: String, contacts: Vec<Value>| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("{base}/api/contacts"))
                .bearer_auth(admin)
                .json(&serde_json::json!({ "contacts": contacts }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        }
    };
    let contact = |n: usize, version: &str| serde_json::json!({"email": format!("c{n}@example.com"), "firstname": format!("F{n}"), "lastname": version});
    const N: usize = 3000;
    for (i, base) in [&ba, &bb, &ba].into_iter().enumerate() {
        post(
            base.clone(),
            (i * 1000..(i + 1) * 1000)
                .map(|n| contact(n, "v1"))
                .collect(),
        )
        .await;
    }
    // Updates for every seventh contact, in six chunks, alternating between the processes.
    let updated: Vec<usize> = (0..N).step_by(7).collect();
    let chunks: Vec<Vec<usize>> = updated
        .chunks(updated.len() / 6 + 1)
        .map(<[usize]>::to_vec)
        .collect();
    let mut killed_at = None;
    for (i, chunk) in chunks.iter().enumerate() {
        let base = if i % 2 == 0 { &bb } else { &ba };
        post(
            base.clone(),
            chunk.iter().map(|n| contact(*n, "v2")).collect(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        if i == 2 {
            a.kill().unwrap(); // SIGKILL, whatever it holds
            a.wait().unwrap();
            killed_at = Some(Instant::now());
            a = start(pa);
            wait_ready(&http, &ba).await;
        }
    }
    neighbour.await.unwrap();
    let depth = wait_settled(&http, &bb, admin, Duration::from_secs(90)).await;
    let kill_to_settled = killed_at.unwrap().elapsed();
    for p in [&mut a, &mut b] {
        p.kill().unwrap();
        p.wait().unwrap();
    }
    assert_eq!(depth["dead"], 0, "{depth}");

    let records = sim_records(&sim, "contacts").await;
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    for r in records["results"].as_array().unwrap() {
        let p = &r["properties"];
        let email = p["email"].as_str().unwrap().to_string();
        let lastname = p["lastname"].as_str().unwrap_or_default().to_string();
        assert!(
            last.insert(email.clone(), lastname).is_none(),
            "{email} twice in HubSpot"
        );
    }
    assert_eq!(last.len(), N, "every contact in HubSpot");
    let wrong: Vec<String> = (0..N)
        .filter_map(|n| {
            let want = if n % 7 == 0 { "v2" } else { "v1" };
            let email = format!("c{n}@example.com");
            (last[&email] != want).then(|| format!("{email}: {} (want {want})", last[&email]))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} contacts end with an older write: {wrong:?}",
        wrong.len()
    );
    let calls = route_statuses(&sim, "/crm/objects/2026-03/{object_type}/batch/{action}").await;
    let count = |status| calls.iter().find(|(s, _)| *s == status).map_or(0, |c| c.1);
    ScenarioFigures {
        contacts: N,
        updated: updated.len(),
        batch_calls_ok: count(200),
        batch_calls_429: count(429),
        batch_calls_503: count(503),
        kill_to_settled,
    }
}
