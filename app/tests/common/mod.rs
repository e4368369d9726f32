//! Helpers shared by the app's test binaries (each binary uses some of them).
#![allow(dead_code)]

use app::config::Settings;
use serde_json::Value;

/// Settings from `(VARIABLE, value)` pairs, as if they were the environment.
pub fn settings<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> Settings {
    Settings::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| n.as_ref() == k)
            .map(|(_, v)| v.as_ref().to_string())
    })
    .unwrap()
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
    let deadline = std::time::Instant::now() + within;
    loop {
        let r: Value = http
            .get(format!("{base}/api/outbox?state=sent"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["depth"]["sent"] == count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all sent: {}",
            r["depth"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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
