//! The official HubSpot Python client against the simulator: it must work for the everyday
//! calls and see exactly the errors HubSpot would give it.

use std::path::PathBuf;
use std::process::Command;

use hubspot_sim::SimConfig;

use crate::helpers::TestSim;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_api_client_python_works_against_the_simulator() {
    let root = repo_root();
    let setup = Command::new(root.join("scripts/ensure-python-client.sh"))
        .output()
        .expect("setup script runs");
    assert!(
        setup.status.success(),
        "could not set up the Python client:\n{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = String::from_utf8(setup.stdout).unwrap().trim().to_string();

    // HubSpot's real defaults: 100 requests / 10 s and 5 searches / s per token.
    let t = TestSim::with(SimConfig {
        oauth_clients: vec![("proof-client".into(), "proof-secret".into())],
        extra_portals: vec![4_242],
        ..SimConfig::default()
    })
    .await;
    let base = t.sim.base_url();
    let script = root.join("hubspot-sim/tests/official_client.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg("--base-url")
            .arg(base)
            .args([
                "--oauth-client",
                "proof-client:proof-secret",
                "--portal",
                "4242",
            ])
            .output()
    })
    .await
    .unwrap()
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "official client checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("20 passed, 0 failed"), "{stdout}");
}
