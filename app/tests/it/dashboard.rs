//! The dashboard in a real browser (headless Chromium): sign in with the admin token, and the
//! page shows the live figures after real work against the simulator.

use crate::common;

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

/// One Chromium at a time: two at once, beside the rest of the suite, is when it has exited
/// without a DOM.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Headless Chromium (cut off after 60 s) with a profile of its own in `profile`.
fn headless(profile: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new("timeout");
    command.arg("60").arg(chromium()).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-breakpad",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Loads `url` (a page that signs in and lands on the dashboard) in headless Chromium, with a
/// profile of its own, and returns the final DOM. A browser that gives no DOM at all is tried
/// again, up to six times with pauses doubling from 2 s (a minute in all): in CI, with the
/// other tests of this binary running beside it, Chromium has exited 0 without a DOM within a
/// second, three times in a row (never alone, nor under a CPU load). Each attempt's time, exit
/// status and last stderr lines are in the panic.
fn browse(url: &str, profile: &std::path::Path) -> String {
    let _turn = one_at_a_time();
    let mut failures = Vec::new();
    for attempt in 1..=6 {
        if attempt > 1 {
            std::thread::sleep(std::time::Duration::from_secs(1 << (attempt - 1)));
        }
        let started = std::time::Instant::now();
        let out = headless(&profile.join(attempt.to_string()))
            .args(["--virtual-time-budget=5000", "--dump-dom"])
            .arg(url)
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&out.stdout).to_string();
        if !dom.trim().is_empty() {
            return dom;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("dbus"))
            .rev()
            .take(15)
            .collect();
        failures.push(format!(
            "attempt {attempt} ({:.1} s): {} and no DOM; stderr ends with:\n{}",
            started.elapsed().as_secs_f64(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    panic!("Chromium gave no DOM:\n{}", failures.join("\n"));
}

/// Saves a screenshot of `url` (1280 × 1600) at `out`, tried like [`browse`].
fn screenshot(url: &str, out: &std::path::Path, profile: &std::path::Path) {
    let _turn = one_at_a_time();
    for attempt in 1..=4 {
        let status = headless(&profile.join(format!("shot{attempt}")))
            .args([
                "--hide-scrollbars",
                "--window-size=1280,1600",
                // Less than the page's 5 s refresh, so the shot is not taken mid-reload.
                "--virtual-time-budget=2000",
            ])
            .arg(format!("--screenshot={}", out.display()))
            .arg(url)
            .output()
            .unwrap()
            .status;
        if out.exists() {
            return;
        }
        eprintln!("screenshot attempt {attempt}: {status} and no file");
        std::thread::sleep(std::time::Duration::from_secs(1 << attempt));
    }
    panic!("Chromium saved no screenshot of {url}");
}

/// Serves a page that signs in to the dashboard at `base` with the admin token, over http from
/// 127.0.0.1 like the app, so the browser sees an ordinary local form post (no file://
/// origin). Returns its URL.
async fn signin_page(base: &str) -> String {
    let signin = format!(
        r#"<form method="post" action="{base}/dashboard/login"><input name="token" value="{ADMIN}"></form><script>document.forms[0].submit()</script>"#
    );
    let pages = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/signin", pages.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/signin",
        axum::routing::get(move || async move { axum::response::Html(signin) }),
    );
    tokio::spawn(async move { axum::serve(pages, router).await });
    url
}

/// [`browse`] off the test's runtime: blocking on the browser there would block the app it is
/// browsing.
async fn browse_beside(url: String, profile: std::path::PathBuf) -> String {
    tokio::task::spawn_blocking(move || browse(&url, &profile))
        .await
        .unwrap()
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
    let state = app.state();
    tokio::spawn(app.run(std::future::pending()));
    let http = reqwest::Client::new();

    // Signed out: the sign-in page, 401; a wrong token is refused.
    let r = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Sign in with your token"));
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
    common::wait_all_sent(&http, &base, ADMIN, 120, std::time::Duration::from_secs(20)).await;
    // The sampler's next turn, now rather than in up to 10 s: the charts read the database.
    state.figures.sample().await.unwrap();

    let signin_url = signin_page(&base).await;

    let profile = std::env::temp_dir().join(format!("app-dashboard-{}", std::process::id()));
    let dom = browse_beside(signin_url, profile.clone()).await;
    assert!(dom.contains("HubSpot contact sync"), "{dom}");
    assert_eq!(figure(&dom, "outbox-sent"), "120");
    assert_eq!(figure(&dom, "outbox-dead"), "0");
    assert_eq!(
        figure(&dom, "hubspot-attempts"),
        "2",
        "two batch calls for 120 contacts"
    );
    assert_eq!(figure(&dom, "slot"), "local");
    assert_eq!(figure(&dom, "user"), "admin");
    assert!(
        dom.contains("id=\"flag-HUBSPOT_CACHE_ENABLED\""),
        "an admin sees the flags"
    );
    // The charts, drawn from the stored history: the two calls, nothing waiting.
    let chart = |id: &str| {
        let at = dom
            .find(&format!("id=\"chart-{id}\""))
            .unwrap_or_else(|| panic!("no chart {id} in {dom}"));
        let end = dom[at..].find("</figure>").unwrap();
        dom[at..at + end].to_string()
    };
    let calls = chart("hubspot");
    assert!(
        calls.contains("Over the last hour: calls: 2; 429s: 0."),
        "{calls}"
    );
    assert!(calls.contains("<svg"), "{calls}");
    assert!(
        chart("outbox-depth").contains("waiting writes: 0 now, 0 at most"),
        "{dom}"
    );
    for id in ["outbox-age", "events", "sync", "cache"] {
        assert!(chart(id).contains("<svg"), "{id}");
    }
    let _ = std::fs::remove_dir_all(&profile);
    // A look at it: the page as the browser draws it, for a person to check (the path is
    // printed; CI keeps it under target/).
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let (url, out) = (signin_page(&base).await, shot.clone());
    tokio::task::spawn_blocking(move || screenshot(&url, &out, &profile))
        .await
        .unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a drawn page, not a blank one: {} bytes",
        png.len()
    );
    eprintln!("dashboard screenshot: {}", shot.display());

    // A support user signs in with their own token and sees only what support may.
    let r = http
        .post(format!("{base}/api/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "sue", "role": "support"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = browser
        .post(format!("{base}/dashboard/login"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "signed in and sent on to the dashboard");
    let page = r.text().await.unwrap();
    assert_eq!(figure(&page, "user"), "sue");
    assert!(
        page.contains("id=\"cache-hit-rate\""),
        "support sees the cache"
    );
    assert!(
        !page.contains("outbox-sent") && !page.contains("flag-HUBSPOT"),
        "{page}"
    );
    // Revoked: the session ends with the token.
    let r = http
        .delete(format!("{base}/api/users/sue"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = browser
        .get(format!("{base}/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The text of a portal's state cell on the dashboard.
fn portal_state(dom: &str, portal: u64) -> String {
    portal_cell(dom, portal, "state")
}

/// The text of the cell of class `class` in a portal's row on the dashboard.
fn portal_cell(dom: &str, portal: u64, class: &str) -> String {
    let row = dom
        .find(&format!("id=\"portal-{portal}\""))
        .unwrap_or_else(|| panic!("no portal {portal} on the dashboard: {dom}"));
    let cell = &dom[row..][dom[row..].find(&format!("class=\"{class}")).unwrap()..];
    let open = cell.find('>').unwrap() + 1;
    let close = cell.find('<').unwrap();
    cell[open..close].trim().to_string()
}

/// The install dance in a real browser: the app's install link, the simulator's authorize page
/// (which sends the browser straight back, as HubSpot does for a single account), the callback;
/// then the dashboard lists the portal as connected.
#[tokio::test]
async fn a_portal_is_installed_in_a_browser_and_the_dashboard_shows_it() {
    let sim = hubspot_sim::spawn(SimConfig {
        oauth_clients: vec![("browser-app".into(), "browser-secret".into())],
        ..SimConfig::unthrottled()
    })
    .await
    .unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("app-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vars = [
        ("APP_LISTEN", format!("127.0.0.1:{port}")),
        ("HUBSPOT_ENABLED", "false".to_string()),
        ("HUBSPOT_BASE_URL", sim.base_url()),
        ("ADMIN_TOKEN", ADMIN.to_string()),
        ("DATABASE_URL", format!("sqlite://{}/app.db", dir.display())),
        ("SYNC_SCHEDULE", "off".to_string()),
        ("HUBSPOT_CLIENT_ID", "browser-app".to_string()),
        ("HUBSPOT_CLIENT_SECRET", "browser-secret".to_string()),
        (
            "HUBSPOT_REDIRECT_URI",
            format!("{base}/api/integrations/hubspot/callback"),
        ),
        (
            "HUBSPOT_AUTHORIZE_URL",
            format!("{}/oauth/authorize", sim.base_url()),
        ),
        ("TOKEN_ENCRYPTION_KEY", common::ENCRYPTION_KEY.to_string()),
    ];
    let app = Application::build(common::settings(&vars)).await.unwrap();
    tokio::spawn(app.run(std::future::pending()));

    let profile = std::env::temp_dir().join(format!("app-install-profile-{}", std::process::id()));
    let install = format!("{base}/api/integrations/hubspot/install");
    let dom = browse_beside(install, profile.clone()).await;
    assert!(dom.contains("Portal 62515 is connected"), "{dom}");

    // The dashboard, signed in the way an operator does.
    let signin_url = signin_page(&base).await;
    let dom = browse_beside(signin_url, profile.join("dashboard")).await;
    assert_eq!(portal_state(&dom, 62_515), "connected");
    assert_eq!(portal_cell(&dom, 62_515, "circuit"), "closed");
    assert_eq!(portal_cell(&dom, 62_515, "sync"), "idle (0 last run)");
    let _ = std::fs::remove_dir_all(profile);
    let _ = std::fs::remove_dir_all(dir);
}
