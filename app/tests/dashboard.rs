//! The dashboard in a real browser (headless Chromium): sign in with the admin token, and the
//! page shows the live figures after real work against the simulator.

mod common;

use std::time::{Duration, Instant};

use app::Application;
use hubspot_sim::SimConfig;
use serde_json::{json, Value};

const ADMIN: &str = "admin-for-the-dashboard";

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new("which")
            .arg(name)
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name;
        }
    }
    panic!("no Chromium found: run scripts/setup.sh (it installs Debian's chromium)");
}

/// Loads `page` (a file that signs in and lands on the dashboard) and returns the final DOM.
fn browse(page: &std::path::Path) -> String {
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn figure(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let rest = &dom[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find('<').unwrap();
    rest[open..close].trim().to_string()
}

#[tokio::test]
async fn the_dashboard_renders_live_figures_in_a_browser() {
    let sim = hubspot_sim::spawn(SimConfig::unthrottled()).await.unwrap();
    let vars = [
        ("APP_LISTEN", "127.0.0.1:0".to_string()),
        ("HUBSPOT_ACCESS_TOKEN", "pat-dashboard".to_string()),
        ("HUBSPOT_BASE_URL", sim.base_url()),
        ("ADMIN_TOKEN", ADMIN.to_string()),
        ("DATABASE_URL", "sqlite::memory:".to_string()),
        ("SYNC_SCHEDULE", "off".to_string()),
    ];
    let settings = common::settings(&vars);
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(std::future::pending()));
    let http = reqwest::Client::new();

    // Signed out: the sign-in page, 401; a wrong token is refused.
    let r = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Sign in with the admin token"));
    let r = http
        .post(format!("{base}/dashboard/login"))
        .form(&[("token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Real work: 120 contacts through the outbox to the simulator.
    let contacts: Vec<Value> = (0..120)
        .map(|i| json!({"email": format!("dash{i}@example.com")}))
        .collect();
    let r = http
        .post(format!("{base}/api/contacts"))
        .bearer_auth(ADMIN)
        .json(&json!({"contacts": contacts}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats: Value = http
            .get(format!("{base}/api/stats"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["outbox"]["sent"] == 120 {
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dir = std::env::temp_dir().join(format!("app-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("signin.html");
    std::fs::write(
        &page,
        format!(r#"<form method="post" action="{base}/dashboard/login"><input name="token" value="{ADMIN}"></form><script>document.forms[0].submit()</script>"#),
    )
    .unwrap();
    // Blocking on the browser here would block the app it is browsing: run it on its own thread.
    let dom = tokio::task::spawn_blocking({
        let page = page.clone();
        move || browse(&page)
    })
    .await
    .unwrap();
    assert!(dom.contains("HubSpot contact sync"), "{dom}");
    assert_eq!(figure(&dom, "outbox-sent"), "120");
    assert_eq!(figure(&dom, "outbox-dead"), "0");
    assert_eq!(
        figure(&dom, "hubspot-attempts"),
        "2",
        "two batch calls for 120 contacts"
    );
    assert_eq!(figure(&dom, "slot"), "local");
    std::fs::remove_dir_all(dir).unwrap();
}
