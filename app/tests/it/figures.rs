//! The figures' history (the dashboard's charts) against the real simulator and one SQLite
//! file shared by two app processes, blue and green, each on its own manual clock: what each
//! counted lands in the same minutes, both read the same history back, and what the old slot
//! did in its last seconds is stored when it stops.

use std::time::Duration;

use app::clock::Clock;
use app::Application;
use hubspot_sim::SimConfig;
use serde_json::{json, Value};

use crate::common;

const ADMIN: &str = "admin-for-the-figures";
/// 2026-01-01T00:00:00Z: a minute's start.
const T0: i64 = 1_767_225_600_000;

struct Slot {
    base: String,
    clock: Clock,
    stop: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(slot: &str, db: &str, sim: &hubspot_sim::RunningSim) -> Slot {
    let settings = common::settings(&[
        ("APP_LISTEN", "127.0.0.1:0".to_string()),
        ("APP_SLOT", slot.to_string()),
        ("HUBSPOT_ACCESS_TOKEN", "pat-figures".to_string()),
        ("HUBSPOT_BASE_URL", sim.base_url()),
        ("HUBSPOT_RATE_LIMIT", "100000/10s".to_string()),
        ("ADMIN_TOKEN", ADMIN.to_string()),
        ("DATABASE_URL", db.to_string()),
        ("SYNC_SCHEDULE", "off".to_string()),
        // The test's client keeps its connections open: stopping does not wait for them.
        ("APP_DRAIN_TIMEOUT", "1ms".to_string()),
    ]);
    let clock = Clock::manual(T0);
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    Slot {
        base,
        clock,
        stop,
        run,
    }
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A history line's points.
fn line(history: &Value, name: &str) -> Value {
    history["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {history}"))["values"]
        .clone()
}

/// The sum of a history line's known points.
fn total(history: &Value, name: &str) -> f64 {
    line(history, name)
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .sum()
}

/// Polls `base`'s hour until `ready` holds of it (the sampler has run), up to 10 s.
async fn hour_when(http: &reqwest::Client, base: &str, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (status, h) = get(http, format!("{base}/api/stats/history?window=hour")).await;
        assert_eq!(status, 200, "{h}");
        if ready(&h) {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, h) = get(http, format!("{base}/api/stats/history?window=hour")).await;
    panic!("the history never got there: {h}");
}

#[tokio::test]
async fn blue_and_green_draw_one_history_and_the_old_slot_keeps_its_last_seconds() {
    let sim = hubspot_sim::spawn(SimConfig {
        search_lag: Duration::ZERO,
        ..SimConfig::unthrottled()
    })
    .await
    .unwrap();
    let db = common::temp_db_url("figures");
    let http = reqwest::Client::new();
    let blue = start("blue", &db, &sim).await;
    let green = start("green", &db, &sim).await;

    // A contact with a phone written through blue; HubSpot answers the first upsert with a 429.
    common::sim_fault(
        &sim,
        json!({"path": "/crm/objects/2026-03/contacts/batch/upsert", "status": 429, "times": 1,
               "headers": {"Retry-After": "1"}}),
    )
    .await;
    let r = http
        .post(format!("{}/api/contacts", blue.base))
        .bearer_auth(ADMIN)
        .json(&json!({"contacts": [{"email": "ada@example.com", "phone": "+14155550100", "firstname": "Ada"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    common::wait_all_sent(&http, &blue.base, ADMIN, 1, Duration::from_secs(15)).await;
    // A lookup on blue (HubSpot, then cached), two on green (the shared cache).
    let lookup = |base: &str| {
        http.get(format!("{base}/api/contacts/lookup?phone=%2B14155550100"))
            .bearer_auth(ADMIN)
            .send()
    };
    for base in [&blue.base, &green.base, &green.base] {
        assert_eq!(lookup(base).await.unwrap().status(), 200);
    }
    let calls = |stats: &Value| stats["hubspot"]["attempts"].as_f64().unwrap();
    let (_, blue_stats) = get(&http, format!("{}/api/stats", blue.base)).await;
    let (_, green_stats) = get(&http, format!("{}/api/stats", green.base)).await;
    // Either process's worker may have sent it (both work the one outbox).
    let limited = |s: &Value| s["hubspot"]["rate_limited"].as_u64().unwrap();
    assert_eq!(
        limited(&blue_stats) + limited(&green_stats),
        1,
        "{blue_stats} {green_stats}"
    );
    let all_calls = calls(&blue_stats) + calls(&green_stats);
    let lookups = |s: &Value, k: &str| s["cache"][k].as_f64().unwrap();
    let hits = lookups(&blue_stats, "hits") + lookups(&green_stats, "hits");
    let misses = lookups(&blue_stats, "misses") + lookups(&green_stats, "misses");
    assert_eq!(hits + misses, 3.0, "{blue_stats} {green_stats}");

    // Ten seconds on: both sample into the same minute.
    blue.clock.advance(Duration::from_secs(10));
    green.clock.advance(Duration::from_secs(10));
    let from_blue = hour_when(&http, &blue.base, |h| {
        total(h, "hubspot_calls") == all_calls && total(h, "cache_hits") == hits
    })
    .await;
    assert_eq!(total(&from_blue, "hubspot_429"), 1.0, "{from_blue}");
    assert_eq!(total(&from_blue, "cache_misses"), misses);
    let calls_line = line(&from_blue, "hubspot_calls");
    assert_eq!(
        calls_line[59].as_f64(),
        Some(all_calls),
        "the current minute is the hour's last point: {calls_line}"
    );
    assert!(calls_line[58].is_null(), "nothing before: {calls_line}");
    let rate = total(&from_blue, "cache_hit_rate");
    assert!((rate - hits / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(total(&from_blue, "outbox_depth"), 0.0, "everything sent");
    // Green reads the very same history.
    let (_, from_green) = get(&http, format!("{}/api/stats/history", green.base)).await;
    assert_eq!(from_green, from_blue);
    // The day: the same counts, in its quarter-hour point.
    let (_, day) = get(
        &http,
        format!("{}/api/stats/history?window=day", green.base),
    )
    .await;
    assert_eq!(day["step_minutes"], 15);
    assert_eq!(total(&day, "hubspot_calls"), all_calls);
    let (status, bad) = get(
        &http,
        format!("{}/api/stats/history?window=week", blue.base),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        bad["message"].as_str().unwrap().contains("hour or day"),
        "{bad}"
    );

    // A minute later blue looks the phone up once more and is stopped (a deploy switched away
    // from it) before its next sample: the lookup is in the history all the same.
    blue.clock.advance(Duration::from_secs(60));
    green.clock.advance(Duration::from_secs(60));
    assert_eq!(lookup(&blue.base).await.unwrap().status(), 200);
    let _ = blue.stop.send(());
    blue.run.await.unwrap().unwrap();
    let h = hour_when(&http, &green.base, |h| total(h, "cache_hits") == hits + 1.0).await;
    let hits_line = line(&h, "cache_hits");
    assert_eq!(
        (hits_line[58].as_f64(), hits_line[59].as_f64()),
        (Some(hits), Some(1.0)),
        "two minutes, each with its own counts: {hits_line}"
    );
    let _ = green.stop.send(());
    green.run.await.unwrap().unwrap();
}
