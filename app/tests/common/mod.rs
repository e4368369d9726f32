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
