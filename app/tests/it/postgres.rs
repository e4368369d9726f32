//! The PostgreSQL store, against a real server (scripts/ensure-postgres.sh starts one; set
//! TEST_POSTGRES_URL to use another): the same migrations and code as SQLite, and two real app
//! processes on one database sending each outbox item exactly once.

use std::time::Duration;

use app::store::Db;
use hubspot_sim::SimConfig;
use serde_json::json;
use sqlx::Connection;

use crate::common;

/// A fresh database of its own on the test server; returns its URL.
async fn fresh_database(name: &str) -> String {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://app:app@127.0.0.1:5432/app_test".into());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("no PostgreSQL at {admin}: {e}; run scripts/ensure-postgres.sh (scripts/setup.sh does)")
    });
    let db = format!(
        "app_{name}_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}

#[tokio::test]
async fn migrations_run_twice_and_the_store_works() {
    let url = fresh_database("migrate").await;
    let db = Db::connect(&url).await.unwrap();
    assert_eq!(db.backend(), app::store::Backend::Postgres);
    drop(db);
    let db = Db::connect(&url).await.unwrap();
    db.ping(Duration::from_secs(2)).await.unwrap();
    let audit = app::store::audit::Audit::new(db.clone());
    audit
        .record(&app::store::audit::Record {
            actor: "ada".into(),
            role: "support".into(),
            action: "lookup by phone".into(),
            subject: "phone".into(),
            subject_hash: Some("b1.k.h".into()),
            outcome: "found".into(),
            ip: Some("203.0.113.9".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let rows = audit
        .list(&app::store::audit::Filter {
            subject_hashes: vec!["b1.k.h".into()],
            action: Some("lookup".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].ip.as_deref(), Some("203.0.113.9"));
    // The figures' history: counters add up per process and minute, gauges keep the last.
    use app::domain::figures::Series;
    let figures = app::store::figures::FigureStore::new(db.clone());
    for (process, calls, depth) in [("blue", 3.0, 7.0), ("blue", 2.0, 4.0), ("green", 1.0, 5.0)] {
        figures
            .add(
                process,
                100,
                &[(Series::HubspotCalls, calls), (Series::OutboxDepth, depth)],
            )
            .await
            .unwrap();
    }
    figures
        .add("green", 90, &[(Series::SyncRuns, 1.0)])
        .await
        .unwrap();
    let mut minutes = figures.minutes(95).await.unwrap();
    minutes.sort_by_key(|m| m.series);
    let got: Vec<_> = minutes
        .iter()
        .map(|m| (m.minute, m.series, m.sum, m.max))
        .collect();
    assert_eq!(
        got,
        vec![
            (100, Series::HubspotCalls, 6.0, 5.0),
            (100, Series::OutboxDepth, 9.0, 5.0),
        ]
    );
    assert_eq!(figures.cleanup(100).await.unwrap(), 1);
    // The sampler's outbox reading: nothing waits on a fresh database.
    let outbox = app::store::outbox::Outbox::new(db.clone(), Default::default());
    assert_eq!(outbox.waiting().await.unwrap(), (0, None));
    // A bad password is a clear error that does not echo it.
    let bad = url.replacen("app:app@", "app:wrong-secret@", 1);
    let err = format!("{:#}", Db::connect(&bad).await.unwrap_err());
    assert!(
        err.contains("cannot connect to DATABASE_URL") && !err.contains("wrong-secret"),
        "{err}"
    );
}

#[tokio::test]
async fn two_app_processes_on_one_postgres_database_send_each_item_once() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let db = fresh_database("outbox").await;
    let http = reqwest::Client::new();
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    // Both start at once: the migrations take PostgreSQL's advisory lock, one runs them.
    let mut apps: Vec<_> = ports
        .iter()
        .map(|p| common::app_process(*p, &db, &sim, "admin-pg"))
        .collect();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    for base in &bases {
        common::wait_ready(&http, base).await;
    }
    let (a, b) = (bases[0].as_str(), bases[1].as_str());
    common::enqueue_thousands(&http, &[a, b, a], "admin-pg", "pg").await;
    common::wait_all_sent(&http, b, "admin-pg", 3000, Duration::from_secs(30)).await;
    for app in &mut apps {
        app.kill().unwrap();
        app.wait().unwrap();
    }
    let calls =
        common::route_statuses(&sim, "/crm/objects/2026-03/{object_type}/batch/{action}").await;
    assert_eq!(calls, [(200, 30)], "30 full batches: no item sent twice");
    let records = common::sim_records(&sim, "contacts").await;
    assert_eq!(records["count"], 3000);
}

#[tokio::test]
async fn webhook_events_are_recorded_once_on_postgres_too() {
    use app::domain::event::Event;
    use app::store::inbox::Inbox;
    let db = Db::connect(&fresh_database("webhooks").await)
        .await
        .unwrap();
    let inbox = Inbox::new(db);
    // Events 1–3 of portal 7, connected; event 4 of portal 8, which is not.
    let event = |id: u64| {
        (
            Event {
                event_id: id,
                subscription_type: "contact.propertyChange".into(),
                object_id: 900 + id,
                occurred_at: 1_700_000_000_000,
                portal_id: Some(if id == 4 { 8 } else { 7 }),
            },
            json!({"eventId": id}),
        )
    };
    let refuse =
        |e: &Event| (e.portal_id == Some(8)).then(|| "portal 8 is not connected here".to_string());
    // One delivery repeating an event, then a redelivery overlapping it.
    assert_eq!(
        inbox
            .record(&[event(1), event(2), event(1)], refuse)
            .await
            .unwrap(),
        (2, 1)
    );
    assert_eq!(
        inbox
            .record(&[event(2), event(3), event(4)], refuse)
            .await
            .unwrap(),
        (2, 1)
    );
    let pending = inbox.unprocessed(10, &[]).await.unwrap();
    assert_eq!(
        pending.len(),
        3,
        "the refused event is recorded, not pending"
    );
    assert!(pending.iter().all(|e| e.portal_id == Some(7)));
    assert_eq!(inbox.refused_since(0).await.unwrap(), vec![(Some(8), 1)]);
    let ids: Vec<i64> = pending.iter().map(|e| e.id).collect();
    inbox.mark_processed(&ids[..2]).await.unwrap();
    assert_eq!(inbox.unprocessed(10, &[]).await.unwrap()[0].id, ids[2]);
    // A resting portal's events are passed over, on PostgreSQL's NOT IN as on SQLite's.
    assert!(inbox.unprocessed(10, &[Some(7)]).await.unwrap().is_empty());
    assert_eq!(
        inbox.unprocessed(10, &[None, Some(9)]).await.unwrap().len(),
        1
    );
}

/// Issue 9's scenario on one PostgreSQL database (see `common::interleaved_writes_scenario`):
/// two processes, a `kill -9`, a 429 storm, 503s, updates racing the first wave. Every contact
/// ends with its last accepted write.
#[tokio::test]
async fn interleaved_writes_across_two_processes_a_crash_and_a_storm_end_with_the_last_write() {
    let figures = common::interleaved_writes_scenario(&fresh_database("scenario").await).await;
    eprintln!("postgres scenario: {figures:?}");
    assert!(figures.batch_calls_ok <= 60, "{figures:?}");
}

/// Lifecycle events on PostgreSQL: 20,000 events of 2,000 users, twice, shuffled, through two
/// processes and 25 failed batches, end exactly as the reference (`lifecycle.rs`'s scenario).
#[tokio::test]
async fn lifecycle_events_twice_shuffled_through_two_processes_end_as_the_reference_on_postgres() {
    let url = fresh_database("lifecycle").await;
    crate::lifecycle::twice_shuffled_scenario(&url, 2_000, 20_000).await;
}

/// GDPR export and erasure on PostgreSQL: the same scenario as on SQLite (`privacy.rs`), whose
/// statements (`UPDATE … RETURNING`, `INSERT … SELECT … WHERE NOT EXISTS`, the leased delete
/// queue) are each dialect's own to get right.
#[tokio::test]
async fn export_and_erasure_are_complete_on_postgres_too() {
    let url = fresh_database("gdpr").await;
    crate::privacy::gdpr_flow("gdpr-pg", &[("DATABASE_URL", &url)]).await;
}
