//! The schema contract with the deployer: `app schema` names the newest migration and the
//! oldest schema the release's code runs on, and a release starts on a database a newer release
//! already migrated further (what a rollback does).

use std::process::Command;

use app::store::Db;

fn migration_versions(backend: &str) -> Vec<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.split('_').next().unwrap().parse().unwrap()
        })
        .collect();
    versions.sort();
    versions
}

#[test]
fn app_schema_prints_the_newest_migration_and_the_oldest_compatible_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_app"))
        .arg("schema")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sqlite = migration_versions("sqlite");
    assert_eq!(
        sqlite,
        migration_versions("postgres"),
        "both backends have the same versions"
    );
    assert_eq!(schema["version"], *sqlite.last().unwrap());
    let oldest = schema["oldest_compatible"].as_i64().unwrap();
    assert!((1..=*sqlite.last().unwrap()).contains(&oldest), "{schema}");
}

#[tokio::test]
async fn a_release_starts_on_a_database_a_newer_release_migrated_further() {
    let url = crate::common::temp_db_url("schema");
    let db = Db::connect(&url).await.unwrap();
    // A newer release applied migration 9999 (it only added a table), then was rolled back.
    sqlx::query("CREATE TABLE from_the_future (id INTEGER PRIMARY KEY)")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer release', TRUE, X'00', 0)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    drop(db);
    let db = Db::connect(&url).await;
    assert!(
        db.is_ok(),
        "this release runs on the newer schema: {:?}",
        db.err()
    );
}
