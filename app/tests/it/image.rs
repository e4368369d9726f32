//! The container image, for real: built by the project's script, started on the Docker engine,
//! answering `/health` and `/api/hubspot/test` (against an in-process simulator), reporting
//! healthy through its own HEALTHCHECK, running as non-root, and small.

use std::process::Command;
use std::time::{Duration, Instant};

use hubspot_sim::SimConfig;

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn image_builds_starts_and_answers_from_a_real_container() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let build = tokio::task::spawn_blocking(move || {
        Command::new(root.join("scripts/build-app-image.sh"))
            .arg("hubspot-app-test")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        build.status.success(),
        "image build failed: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let tag = String::from_utf8(build.stdout).unwrap().trim().to_string();

    let size: u64 = docker(&["image", "inspect", "--format", "{{.Size}}", &tag])
        .parse()
        .unwrap();
    assert!(
        size <= 25 * 1024 * 1024,
        "image is {size} bytes, over 25 MB"
    );
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Config.User}}", &tag]),
        "65532:65532"
    );

    let sim = hubspot_sim::spawn(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let name = format!("app-image-test-{port}");
    let _guard = Container(name.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &format!("APP_LISTEN=127.0.0.1:{port}"),
        "-e",
        "HUBSPOT_ACCESS_TOKEN=pat-image-test",
        "-e",
        &format!("HUBSPOT_BASE_URL={}", sim.base_url()),
        "-e",
        "APP_SLOT=green",
        &tag,
    ]);

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            if r.status() == 200 {
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["slot"], "green");
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no /health within 20 s: {}",
            docker(&["logs", &name])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = http
        .get(format!("{base}/api/hubspot/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["hubspot"]["portal_id"], 62_515);

    // Docker's own HEALTHCHECK (the binary probing itself) turns healthy.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = docker(&["inspect", "--format", "{{.State.Health.Status}}", &name]);
        if health == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "container health stayed '{health}'"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The token never reaches the logs.
    let logs = Command::new("docker")
        .args(["logs", &name])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    assert!(!all.contains("pat-image-test"), "{all}");
}
