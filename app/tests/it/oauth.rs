//! Portals connected by OAuth, against the simulator's OAuth: the install dance as a browser
//! does it (without following redirects, so every hop is checked), a refused state in each of
//! its ways, tokens sealed in the database file, refresh ahead of expiry, exactly one refresh
//! per expiry across two processes, a revoked refresh token, uninstall, and key rotation.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use app::domain::portal::{ConnectionState, PortalId};
use app::Application;
use hubspot_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "oauth-admin";
const CLIENT: &str = "app-client";
const SECRET: &str = "app-client-secret";
const PORTAL: u64 = 62_515;

struct T {
    sim: hubspot_sim::RunningSim,
    dir: std::path::PathBuf,
    apps: Vec<(String, app::http::Shared)>,
    browser: reqwest::Client,
}

fn vars(sim: &hubspot_sim::RunningSim, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("APP_LISTEN", "127.0.0.1:0".into()),
        ("ADMIN_TOKEN", ADMIN.into()),
        ("HUBSPOT_BASE_URL", sim.base_url()),
        ("HUBSPOT_ENABLED", "false".into()),
        ("DATABASE_URL", format!("sqlite://{}/app.db", dir.display())),
        ("SYNC_SCHEDULE", "off".into()),
        // Not about the budget: calls as fast as the tests make them.
        ("HUBSPOT_RATE_LIMIT", "100000/10s".into()),
        ("HUBSPOT_CLIENT_ID", CLIENT.into()),
        ("HUBSPOT_CLIENT_SECRET", SECRET.into()),
        // The callback's host is only a name here: the test carries the browser over.
        (
            "HUBSPOT_REDIRECT_URI",
            "https://app.example/api/integrations/hubspot/callback".into(),
        ),
        (
            "HUBSPOT_AUTHORIZE_URL",
            format!("{}/oauth/authorize", sim.base_url()),
        ),
        ("TOKEN_ENCRYPTION_KEY", common::ENCRYPTION_KEY.into()),
    ]
}

impl T {
    /// A simulator whose access tokens live `ttl`, and `processes` apps on one database.
    async fn start(ttl: Duration, processes: usize) -> T {
        Self::start_with(ttl, processes, Vec::new()).await
    }

    /// [`start`](Self::start), the simulator holding `extra_portals` besides 62515.
    async fn start_with(ttl: Duration, processes: usize, extra_portals: Vec<u64>) -> T {
        let sim = hubspot_sim::spawn(SimConfig {
            oauth_clients: vec![(CLIENT.into(), SECRET.into())],
            access_token_ttl: ttl,
            extra_portals,
            ..SimConfig::unthrottled()
        })
        .await
        .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "app-oauth-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = T {
            sim,
            dir,
            apps: Vec::new(),
            browser: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
        };
        for _ in 0..processes {
            t.add_app(&[]).await;
        }
        t
    }

    async fn add_app(&mut self, extra: &[(&str, &str)]) {
        let settings = common::settings_with(&vars(&self.sim, &self.dir), extra);
        let app = Application::build(settings).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let state = app.state();
        tokio::spawn(app.run(std::future::pending()));
        self.apps.push((base, state));
    }

    fn base(&self) -> &str {
        &self.apps[0].0
    }

    /// The install as a browser does it: the app's link, HubSpot's page, back to the callback.
    /// Returns the callback's status and page.
    async fn install(&self, tamper: impl FnOnce(&mut url::Url)) -> (StatusCode, String) {
        self.install_into(None, tamper).await
    }

    /// [`install`](Self::install), choosing `portal` on HubSpot's page.
    async fn install_into(
        &self,
        portal: Option<u64>,
        tamper: impl FnOnce(&mut url::Url),
    ) -> (StatusCode, String) {
        let mut back = self.to_callback(portal).await;
        tamper(&mut back);
        self.callback(&self.browser, &back).await
    }

    /// The first two hops of the install in this test's browser: the app's link, then
    /// HubSpot's page (choosing `portal`). Returns where HubSpot sends the browser back.
    async fn to_callback(&self, portal: Option<u64>) -> url::Url {
        let start = self
            .browser
            .get(format!("{}/api/integrations/hubspot/install", self.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::FOUND);
        let mut to_hubspot = start.headers()["location"].to_str().unwrap().to_string();
        assert!(to_hubspot.starts_with(&format!("{}/oauth/authorize?", self.sim.base_url())));
        if let Some(portal) = portal {
            to_hubspot.push_str(&format!("&portal={portal}"));
        }
        let hubspot = self.browser.get(&to_hubspot).send().await.unwrap();
        assert_eq!(hubspot.status(), StatusCode::FOUND);
        let back = hubspot.headers()["location"].to_str().unwrap();
        let back = url::Url::parse(back).unwrap();
        assert_eq!(back.path(), "/api/integrations/hubspot/callback");
        back
    }

    /// The callback HubSpot redirected to (`back`), asked of the app by `browser`.
    async fn callback(&self, browser: &reqwest::Client, back: &url::Url) -> (StatusCode, String) {
        let callback = format!(
            "{}{}?{}",
            self.base(),
            back.path(),
            back.query().unwrap_or_default()
        );
        let r = browser.get(callback).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn status(&self) -> Value {
        common::get_json(
            &reqwest::Client::new(),
            &format!("{}/api/integrations/hubspot/status", self.base()),
            Some(ADMIN),
        )
        .await
    }

    async fn sim_oauth(&self) -> Value {
        reqwest::get(format!("{}/_sim/oauth", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The first tokens the simulator issued: (access, refresh).
    async fn first_tokens(&self) -> (String, String) {
        let issued = self.sim_oauth().await["issued"].clone();
        let field = |k: &str| issued[0][k].as_str().unwrap().to_string();
        (field("access_token"), field("refresh_token"))
    }

    /// One app process, a simulator with portals 62515 and 777, both installed.
    async fn with_two_portals() -> T {
        let t = Self::start_with(Duration::from_secs(1800), 1, vec![777]).await;
        for portal in [PORTAL, 777] {
            assert_eq!(t.install_into(Some(portal), |_| {}).await.0, StatusCode::OK);
        }
        t
    }

    /// Creates a contact in `portal` at HubSpot, through that portal's token; its id.
    async fn create_at_hubspot(&self, portal: u64, properties: Value) -> u64 {
        let created: Value = reqwest::Client::new()
            .post(format!(
                "{}/crm/objects/2026-03/contacts",
                self.sim.base_url()
            ))
            .bearer_auth(self.access_token_of(portal).await)
            .json(&json!({ "properties": properties }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["id"].as_str().unwrap().parse().unwrap()
    }

    /// How many contacts `portal` holds at HubSpot.
    async fn contacts_at_hubspot(&self, portal: u64) -> u64 {
        common::sim_records_in(&self.sim, "contacts", Some(portal)).await["count"]
            .as_u64()
            .unwrap()
    }

    /// Delivers `events` to the app's webhook endpoint as HubSpot does (signed v3); its answer.
    async fn deliver(&self, events: &[Value]) -> Value {
        let now = chrono::Utc::now().timestamp_millis();
        let body = serde_json::to_vec(events).unwrap();
        let uri = format!("{}/webhooks/hubspot", self.base());
        let headers = hubspot_sim::webhooks::sign(
            hubspot_sim::SignatureVersion::V3,
            SECRET,
            "POST",
            &uri,
            &body,
            now,
        );
        let mut request = reqwest::Client::new().post(&uri).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// An access token HubSpot issued for `portal`.
    async fn access_token_of(&self, portal: u64) -> String {
        let issued = self.sim_oauth().await["issued"].clone();
        let grant = issued
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["hub_id"] == portal);
        grant.expect("a token for that portal")["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The customer's install ends at HubSpot: the refresh token is revoked there.
    async fn revoke_at_hubspot(&self, refresh: &str) {
        let revoked = reqwest::Client::new()
            .post(format!(
                "{}/oauth/2026-03/token/revoke",
                self.sim.base_url()
            ))
            .form(&[
                ("token", refresh),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
    }

    async fn refreshes(&self) -> u64 {
        self.sim_oauth().await["grants"]["refresh_token"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// Reads the portal's account through a process's client for it.
async fn read_portal(
    state: &app::http::Shared,
) -> Result<(app::hubspot::AccountDetails, Duration), app::hubspot::HubSpotError> {
    state
        .portals
        .client(PortalId(PORTAL))
        .unwrap()
        .account_details()
        .await
}

#[tokio::test]
async fn a_portal_installed_by_oauth_is_connected_and_its_tokens_are_sealed() {
    let t = T::start(Duration::from_secs(1800), 1).await;
    let (status, page) = t.install(|_| {}).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!("Portal {PORTAL} is connected")),
        "{page}"
    );

    let status = t.status().await;
    assert_eq!(status["oauth"], true);
    let c = &status["connections"][0];
    assert_eq!(c["portal_id"], PORTAL);
    assert_eq!(c["kind"], "oauth");
    assert_eq!(c["state"], "connected");
    assert_eq!(c["scopes"][0], "oauth");
    assert!(c["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp_millis() + 1_700_000);
    assert!(
        !status.to_string().contains("access-"),
        "no token in the status: {status}"
    );

    // The portal's client works with the stored (sealed) token.
    let client = t.apps[0].1.portals.client(PortalId(PORTAL)).unwrap();
    let (details, _) = client.account_details().await.unwrap();
    assert_eq!(details.portal_id, PORTAL);

    // Neither token is in the database files in clear.
    let (access, refresh) = t.first_tokens().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&t.dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("v1."), "the sealed tokens are there");
    assert!(
        !text.contains(&access) && !text.contains(&refresh),
        "a token in clear in the database file"
    );
}

#[tokio::test]
async fn a_refused_install_stores_nothing_and_says_why() {
    let t = T::start(Duration::from_secs(1800), 1).await;
    // The customer says no.
    let r = t
        .browser
        .get(format!(
            "{}/api/integrations/hubspot/callback?error=access_denied&state=x",
            t.base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("not allowed"));
    // A state nobody issued.
    let (status, page) = t
        .install(|u| {
            let code = u
                .query_pairs()
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .to_string();
            u.set_query(Some(&format!("code={code}&state=forged")));
        })
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not known here"), "{page}");
    // The right state, from another browser (no install cookie).
    let back = t.to_callback(None).await;
    let (status, page) = t.callback(&reqwest::Client::new(), &back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("another browser"), "{page}");
    // ... and that state is not used up by the attempt: the right browser still finishes it.
    assert_eq!(t.callback(&t.browser, &back).await.0, StatusCode::OK);
    // A replayed callback: the state was used.
    assert_eq!(
        t.callback(&t.browser, &back).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.status().await["connections"].as_array().unwrap().len(),
        1,
        "only the good install"
    );
}

#[tokio::test]
async fn access_tokens_are_refreshed_ahead_of_expiry_once_per_expiry_across_two_processes() {
    // Tokens of 2 s: refreshed when a tenth of their life is left.
    let t = T::start(Duration::from_secs(2), 2).await;
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    let clients: Vec<_> = t
        .apps
        .iter()
        .map(|(_, s)| s.portals.client(PortalId(PORTAL)).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Both processes call HubSpot continuously for 5 s: 2 s tokens, so two or three expiries.
    let mut tasks = Vec::new();
    for client in clients {
        for _ in 0..3 {
            let (client, calls) = (client.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                while started.elapsed() < Duration::from_secs(5) {
                    client
                        .account_details()
                        .await
                        .expect("no call fails across an expiry");
                    calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let refreshes = t.refreshes().await;
    println!(
        "{refreshes} refreshes, {} calls, {:?}",
        calls.load(std::sync::atomic::Ordering::Relaxed),
        started.elapsed()
    );
    // One refresh per expiry whatever the number of callers: 5 s / (2 s less the margin).
    assert!(
        (2..=3).contains(&refreshes),
        "{refreshes} refreshes for ~{} calls",
        calls.load(std::sync::atomic::Ordering::Relaxed)
    );
    let expired: u64 = common::route_statuses(&t.sim, "/account-info/2026-03/details")
        .await
        .iter()
        .filter(|(s, _)| *s == 401)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(expired, 0, "refreshed ahead: no call met an expired token");
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_reauthorization_and_a_reinstall_resumes() {
    let t = T::start(Duration::from_secs(1), 1).await;
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    t.revoke_at_hubspot(&t.first_tokens().await.1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let client = t.apps[0].1.portals.client(PortalId(PORTAL)).unwrap();
    let err = client.account_details().await.unwrap_err();
    assert!(
        err.to_string().contains("reauthorization required"),
        "{err}"
    );
    let c = &t.status().await["connections"][0];
    assert_eq!(c["state"], "reauthorization_required");
    assert!(c["last_error"]
        .as_str()
        .unwrap()
        .contains("refused the refresh token"));
    // The customer installs again: connected, and the same client works.
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    let client = t.apps[0].1.portals.client(PortalId(PORTAL)).unwrap();
    assert_eq!(client.account_details().await.unwrap().0.portal_id, PORTAL);
    let connection = t.apps[0].1.portals.list().await.unwrap();
    assert_eq!(connection[0].state, ConnectionState::Connected);
}

#[tokio::test]
async fn uninstall_revokes_at_hubspot_and_forgets_the_tokens() {
    let t = T::start(Duration::from_secs(1800), 1).await;
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    let (access, _) = t.first_tokens().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}/api/integrations/hubspot/portals/{p}", t.base());
    let r = http
        .delete(url("62515"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http.delete(url("62515")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "admin only");
    let r = http
        .delete(url("999"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .delete(url("not-a-hub"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(t.status().await["connections"][0]["state"], "disconnected");
    // HubSpot ended the install: the old access token no longer works there.
    let r = http
        .get(format!("{}/crm/objects/2026-03/contacts", t.sim.base_url()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let err = read_portal(&t.apps[0].1).await.unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");
}

/// Rotation while another process runs on the old key list: everything is re-sealed under the
/// new key, both processes keep working, and a tampered token is a clear error.
#[tokio::test]
async fn keys_rotate_while_two_processes_run_and_tampering_is_refused() {
    let mut t = T::start(Duration::from_secs(1800), 1).await;
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    let new_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    t.add_app(&[
        ("TOKEN_ENCRYPTION_KEY", new_key),
        ("TOKEN_ENCRYPTION_OLD_KEYS", common::ENCRYPTION_KEY),
    ])
    .await;
    let (old, new) = (&t.apps[0].1, &t.apps[1].1);
    // `app keys rotate`, the real binary, while both processes run.
    let mut env = vars(&t.sim, &t.dir);
    env.retain(|(k, _)| *k != "TOKEN_ENCRYPTION_KEY");
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_app"))
        .args(["keys", "rotate"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("TOKEN_ENCRYPTION_KEY", new_key)
        .env("TOKEN_ENCRYPTION_OLD_KEYS", common::ENCRYPTION_KEY)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(said.contains("1 portal(s)"), "{said}");
    assert_eq!(
        new.portals.rotate_keys().await.unwrap(),
        0,
        "nothing left to re-seal"
    );
    assert_eq!(read_portal(new).await.unwrap().0.portal_id, PORTAL);
    // The process still on the old key alone cannot open the new seals: a clear error.
    let err = read_portal(old).await.unwrap_err();
    assert!(err.to_string().contains("does not open"), "{err}");
    // A flipped byte in the stored token: refused, named, no crash and no plaintext.
    let db = &new.db;
    let sealed: String = sqlx::query_scalar("SELECT access_token FROM hubspot_connections")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let mut chars: Vec<char> = sealed.chars().collect();
    let at = chars.len() - 5;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let forged: String = chars.into_iter().collect();
    sqlx::query("UPDATE hubspot_connections SET access_token = $1")
        .bind(&forged)
        .execute(db.pool())
        .await
        .unwrap();
    t.add_app(&[("TOKEN_ENCRYPTION_KEY", new_key)]).await;
    let fresh = &t.apps[2].1;
    let err = read_portal(fresh).await.unwrap_err();
    assert!(err.to_string().contains("tampered"), "{err}");
}

/// Webhook events name their portal: each is read back through its own portal's connection,
/// and the events of a portal that is not connected here are recorded and refused.
#[tokio::test]
async fn webhook_events_are_routed_by_portal_and_unknown_portals_are_refused() {
    let t = T::with_two_portals().await;
    // A contact in each portal at HubSpot (the third in 62515, though its event claims 999,
    // which is not connected here).
    let mut ids = Vec::new();
    for (email, portal) in [
        ("p1@example.com", PORTAL),
        ("p2@example.com", 777),
        ("p3@example.com", PORTAL),
    ] {
        let properties = json!({"email": email, "phone": "+14155550199"});
        ids.push(t.create_at_hubspot(portal, properties).await);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let events: Vec<Value> = [(ids[0], 62_515), (ids[1], 777), (ids[2], 999)]
        .iter()
        .enumerate()
        .map(|(i, (object, portal))| {
            serde_json::json!({"eventId": 100 + i, "subscriptionType": "contact.creation",
                "objectId": object, "occurredAt": now, "portalId": portal})
        })
        .collect();
    let answer = t.deliver(&events).await;
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(answer["refused"], 1, "{answer}");
    // The two connected portals' contacts reach the cache; the refused one never does.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cached = t.apps[0].1.cache.len().await.unwrap();
        if cached >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{cached} cached");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        t.apps[0].1.cache.len().await.unwrap(),
        2,
        "the unknown portal's event is not applied"
    );
    let read_by: Vec<(u64, u64)> =
        common::route_statuses(&t.sim, "/crm/objects/2026-03/{object_type}/{id}").await;
    assert_eq!(
        read_by.iter().map(|(_, n)| n).sum::<u64>(),
        2,
        "{read_by:?}"
    );
    // Each was read through its own portal's client.
    let used: Vec<PortalId> = t.apps[0].1.portals.circuits().into_keys().collect();
    assert_eq!(used, vec![PortalId(777), PortalId(PORTAL)]);
}

/// Contact writes to a portal go through its connection; when HubSpot refuses its refresh token
/// they wait (not dead, no attempt counted), and the reinstall sends them: none lost, none
/// written twice.
#[tokio::test]
async fn writes_wait_for_a_reinstall_and_then_go_none_lost_or_duplicated() {
    let t = T::start(Duration::from_secs(1), 1).await;
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    let http = reqwest::Client::new();
    let write = |first: usize, n: usize| {
        let contacts: Vec<Value> = (first..first + n)
            .map(|i| serde_json::json!({"email": format!("held{i}@example.com"), "firstname": "H"}))
            .collect();
        http.post(format!("{}/api/contacts?portal={PORTAL}", t.base()))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"contacts": contacts}))
            .send()
    };
    let sim_count = || async {
        let records = common::sim_records(&t.sim, "contacts").await;
        let emails: std::collections::BTreeSet<String> = records["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["properties"]["email"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            emails.len(),
            records["results"].as_array().unwrap().len(),
            "a duplicate"
        );
        emails.len()
    };
    let until = |what: &'static str, n: usize| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while sim_count().await < n {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(write(0, 50).await.unwrap().status(), StatusCode::ACCEPTED);
    until("the first 50 sent", 50).await;

    // The customer's install ends at HubSpot; the access token runs out.
    t.revoke_at_hubspot(&t.first_tokens().await.1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(write(50, 30).await.unwrap().status(), StatusCode::ACCEPTED);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = t.status().await["connections"][0]["state"].clone();
        let held = common::get_json(
            &http,
            &format!("{}/api/outbox?state=pending", t.base()),
            Some(ADMIN),
        )
        .await;
        if state == "reauthorization_required" && held["items"].as_array().unwrap().len() == 30 {
            let item = &held["items"][0];
            assert_eq!(item["attempts"], 0, "waiting is not an attempt: {item}");
            assert!(
                item["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("reauthorization required"),
                "{item}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{state} {held}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim_count().await, 50, "nothing sent while disconnected");
    // Writes to a portal never connected here are refused outright.
    let r = http
        .post(format!("{}/api/contacts?portal=424242", t.base()))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The customer installs again: the 30 go at once.
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    until("the held 30 sent after the reinstall", 80).await;
    // HubSpot has them; the outbox records it a moment later, in the batch's settle.
    let depth = common::wait_settled(&http, t.base(), ADMIN, Duration::from_secs(10)).await;
    assert_eq!(
        (&depth["sent"], &depth["dead"]),
        (&Value::from(80), &Value::from(0)),
        "{depth}"
    );
}

/// Two portals at HubSpot, each with its own contacts (one phone in both): each portal's sync
/// fills only its own cache, a lookup sees only the portal it names, status shows each
/// portal's sync, and an uninstall keeps the portal's data unless asked to purge it.
#[tokio::test]
async fn each_portal_has_its_own_cache_and_sync_and_an_uninstall_purges_when_asked() {
    let t = T::with_two_portals().await;
    let http = reqwest::Client::new();
    for (portal, count) in [(PORTAL, 30), (777, 12)] {
        let seeded = http
            .post(format!(
                "{}/_sim/seed/contacts?portal={portal}",
                t.sim.base_url()
            ))
            .json(&serde_json::json!({"count": count, "properties": {
                "email": format!("p{portal}-{{n}}@example.com"), "phone": "+14155550142"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(seeded.status(), StatusCode::CREATED);
    }
    let admin = |req: reqwest::RequestBuilder| req.bearer_auth(ADMIN);
    for portal in [PORTAL, 777] {
        let r = admin(http.post(format!("{}/api/sync/run?portal={portal}", t.base())))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            r.text().await.unwrap()
        );
    }
    let cache = &t.apps[0].1.cache;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cache.len().await.unwrap() < 42 {
        assert!(std::time::Instant::now() < deadline, "syncs did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let of = |p: u64| cache.len_of(Some(PortalId(p)));
    assert_eq!(
        (of(PORTAL).await.unwrap(), of(777).await.unwrap()),
        (30, 12)
    );
    // A portal not connected here is refused, named.
    let r = admin(http.post(format!("{}/api/sync/run?portal=999", t.base())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The same phone in both portals: each lookup answers from its own portal's cache.
    for (portal, count) in [(PORTAL, 30), (777, 12)] {
        let found = common::get_json(
            &http,
            &format!(
                "{}/api/contacts/lookup?phone=%2B14155550142&portal={portal}",
                t.base()
            ),
            Some(ADMIN),
        )
        .await;
        assert_eq!(found["source"], "cache", "{found}");
        let contacts = found["contacts"].as_array().unwrap();
        assert_eq!(contacts.len(), count);
        let prefix = format!("p{portal}-");
        assert!(contacts
            .iter()
            .all(|c| c["email"].as_str().unwrap().starts_with(&prefix)));
    }
    // The runs end after their listing (associations, the archived listing): wait for both.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = t.status().await;
        let idle = status["syncs"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["status"] == "idle"));
        if idle || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let syncs: Vec<(Value, Value, Value)> = status["syncs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["portal_id"].clone(),
                s["status"].clone(),
                s["synced_last_run"].clone(),
            )
        })
        .collect();
    assert_eq!(
        syncs,
        vec![
            (json!(777), json!("idle"), json!(12)),
            (json!(PORTAL), json!("idle"), json!(30))
        ],
        "by portal id: {status}"
    );

    // Uninstalling 62515 keeps its data; uninstalling 777 with purge=true deletes its data.
    let uninstall = |portal: u64, query: &'static str| {
        admin(http.delete(format!(
            "{}/api/integrations/hubspot/portals/{portal}{query}",
            t.base()
        )))
        .send()
    };
    let kept: Value = uninstall(PORTAL, "").await.unwrap().json().await.unwrap();
    assert_eq!(kept["purged"], 0, "{kept}");
    let purged: Value = uninstall(777, "?purge=true")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        purged["purged"].as_u64() > Some(12 + 1 + 12),
        "12 cached contacts, a sync state, 12 synced records and their fields: {purged}"
    );
    assert_eq!((of(PORTAL).await.unwrap(), of(777).await.unwrap()), (30, 0));
    let objects = &t.apps[0].1.objects;
    let synced =
        |p: u64| objects.count(Some(PortalId(p)), app::domain::object::ObjectType::Contacts);
    assert_eq!(
        (synced(PORTAL).await.unwrap(), synced(777).await.unwrap()),
        (30, 0),
        "the purged portal's synced records are gone, the other's kept"
    );
    let bad = uninstall(PORTAL, "?purge=maybe").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// Fair across portals: portal 62515 has a 20,000-contact backfill queued first, at 10 calls/s
/// (20 s of sending); a write for portal 777 queued after it still reaches HubSpot within a
/// couple of seconds, while the backfill keeps going. (A worker serving the oldest head first
/// would send it after the whole backfill.)
#[tokio::test]
async fn one_portals_backfill_does_not_hold_up_another_portals_write() {
    let mut t = T::start_with(Duration::from_secs(1800), 0, vec![777]).await;
    t.add_app(&[("HUBSPOT_RATE_LIMIT", "10/1s")]).await;
    for portal in [PORTAL, 777] {
        assert_eq!(t.install_into(Some(portal), |_| {}).await.0, StatusCode::OK);
    }
    let outbox = &t.apps[0].1.outbox;
    let backfill: Vec<_> = (0..20_000)
        .map(|i| common::contact(&format!("fill{i}@example.com"), "F"))
        .collect();
    for chunk in backfill.chunks(5_000) {
        outbox
            .enqueue_to(Some(PortalId(PORTAL)), chunk)
            .await
            .unwrap();
    }
    // The backfill is under way before the other portal's write arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while t.contacts_at_hubspot(PORTAL).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the backfill never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued = std::time::Instant::now();
    outbox
        .enqueue_to(
            Some(PortalId(777)),
            &[common::contact("urgent@example.com", "F")],
        )
        .await
        .unwrap();
    while t.contacts_at_hubspot(777).await == 0 {
        assert!(
            queued.elapsed() < Duration::from_secs(3),
            "portal 777's write waited behind portal 62515's backfill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waited = queued.elapsed();
    let backfilled = t.contacts_at_hubspot(PORTAL).await;
    eprintln!("portal 777's write reached HubSpot {waited:?} after it was queued; the backfill had sent {backfilled} of 20000");
    assert!(
        backfilled < 10_000,
        "the backfill was still going: {backfilled}"
    );
}

/// Access tokens of 2 s while 50,000 contacts drain through one portal: nothing lost or
/// written twice, no expired-token 401 reaches the outbox (no item needs a second attempt),
/// and the refreshes number about the drain time over the refresh period (a token is renewed
/// when a tenth of its life is left: every 1.8 s).
#[tokio::test]
async fn short_lived_tokens_during_a_50000_contact_drain_lose_nothing() {
    let t = T::start(Duration::from_secs(2), 1).await;
    assert_eq!(t.install(|_| {}).await.0, StatusCode::OK);
    let contacts: Vec<_> = (0..50_000)
        .map(|i| common::contact(&format!("drain{i}@example.com"), "D"))
        .collect();
    let state = &t.apps[0].1;
    let before = t.refreshes().await;
    let started = std::time::Instant::now();
    for chunk in contacts.chunks(10_000) {
        state
            .outbox
            .enqueue_to(Some(PortalId(PORTAL)), chunk)
            .await
            .unwrap();
    }
    let deadline = started + Duration::from_secs(240);
    loop {
        let depth = state.outbox.depth().await.unwrap();
        if depth.sent == 50_000 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{depth:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = started.elapsed();
    let refreshes = t.refreshes().await - before;
    assert_eq!(
        t.contacts_at_hubspot(PORTAL).await,
        50_000,
        "nothing lost, nothing written twice"
    );
    let retried: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE attempts > 1")
        .fetch_one(state.db.pool())
        .await
        .unwrap();
    assert_eq!(retried, 0, "no item needed a second attempt");
    assert_eq!(state.outbox.depth().await.unwrap().dead, 0);
    let expected = drained.as_secs_f64() / 1.8;
    eprintln!("50,000 contacts drained in {drained:?} with 2 s tokens: {refreshes} refreshes (drain / 1.8 s = {expected:.1})");
    assert!(
        (refreshes as f64) >= expected * 0.5 - 1.0 && (refreshes as f64) <= expected * 1.5 + 2.0,
        "{refreshes} refreshes in {drained:?}"
    );
}

/// A portal whose HubSpot keeps failing does not hold up the others' webhook events: 150 events
/// of portal 62515 (more than a processing round takes) wait while every read of its contacts
/// gets a 500, and an event of portal 777 that arrived after them is applied within seconds.
/// Once 62515's HubSpot answers again, its events are applied too.
#[tokio::test]
async fn a_failing_portals_webhook_events_do_not_hold_up_another_portals() {
    let t = T::with_two_portals().await;
    let mine = t
        .create_at_hubspot(PORTAL, json!({"email": "a@example.com"}))
        .await;
    let theirs = t
        .create_at_hubspot(777, json!({"email": "b@example.com"}))
        .await;
    // Every read of 62515's contacts (their ids start 37765…; 777's 47765…) gets a 500.
    let fault = common::sim_fault(
        &t.sim,
        json!({"path": "/crm/objects/2026-03/contacts/37765", "status": 500}),
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let event = |n: u64, object: u64, portal: u64| {
        json!({"eventId": n, "subscriptionType": "contact.propertyChange", "objectId": object,
            "occurredAt": now, "portalId": portal, "propertyName": "email", "propertyValue": "x"})
    };
    let first: Vec<Value> = (0..150).map(|n| event(n, mine + n, PORTAL)).collect();
    for delivery in first.chunks(75) {
        let answer = t.deliver(delivery).await;
        assert_eq!(answer["accepted"], 75, "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = std::time::Instant::now();
    assert_eq!(t.deliver(&[event(1_000, theirs, 777)]).await["accepted"], 1);
    let cache = &t.apps[0].1.cache;
    while cache.len_of(Some(PortalId(777))).await.unwrap() == 0 {
        assert!(
            sent.elapsed() < Duration::from_secs(4),
            "portal 777's event waited behind 62515's failing ones"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(cache.len_of(Some(PortalId(PORTAL))).await.unwrap(), 0);
    reqwest::Client::new()
        .delete(format!("{}/_sim/faults/{}", t.sim.base_url(), fault["id"]))
        .send()
        .await
        .unwrap();
    // Back: 62515's events are applied (its one real contact cached; the rest are gone at
    // HubSpot, so nothing is cached for them).
    let back = std::time::Instant::now();
    while cache.len_of(Some(PortalId(PORTAL))).await.unwrap() == 0 {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "62515's events were not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
