//! The pull sync against the simulator: the first full listing, incremental runs that pick up
//! only what changed, the 10,000-result search cap with more than 10,000 contacts sharing one
//! timestamp, and a run killed mid-way that the next run resumes.

use crate::common;

use std::time::Duration;

use app::clock::Clock;
use app::domain::sync::RunState;
use app::Application;
use hubspot_sim::SimConfig;
use serde_json::json;

/// The app's clock starts here (2026-01-15), and moves only when a test advances it.
const START: i64 = 1_768_435_200_000;

struct T {
    state: app::http::Shared,
    clock: Clock,
    sim: hubspot_sim::RunningSim,
    http: reqwest::Client,
}

async fn spawn(sim: SimConfig) -> T {
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
    ];
    let settings = common::settings(&vars);
    let clock = Clock::manual(START);
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .unwrap();
    let state = app.state();
    tokio::spawn(app.run(std::future::pending()));
    T {
        state,
        clock,
        sim,
        http: reqwest::Client::new(),
    }
}

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
        5,
        "4.5 pages of 100"
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
        pages <= 21 - (partial as u64 / 100) + 1,
        "resumed, not restarted: {pages} pages after {partial} contacts"
    );
    let status = t.state.sync.status().await.unwrap();
    assert_eq!(status.status, RunState::Idle);
}
