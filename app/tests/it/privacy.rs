//! Privacy and access against the real app, the simulator and SQLite: every protected route ×
//! every role, no phone or email in clear in the database file, GDPR export and erasure
//! complete (HubSpot's GDPR delete sent once, counted on the simulator; a `privacyDeletion`
//! webhook erases), a flag flipped through one process seen by another, per-user rate limits.

use crate::common;

use std::time::{Duration, Instant};

use hubspot_sim::{SignatureVersion, SimConfig, WebhookConfig};
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN: &str = "admin-for-privacy-tests";
const SECRET: &str = "client-secret-privacy";

struct T {
    base: String,
    db: String,
    sim: hubspot_sim::RunningSim,
    http: reqwest::Client,
}

/// The app and the simulator; with `webhooks`, the simulator's signed deliveries reach the app.
async fn spawn(name: &str, webhooks: bool, extra: &[(&str, &str)]) -> T {
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let sim = hubspot_sim::spawn(SimConfig {
        search_lag: Duration::ZERO,
        webhooks: webhooks.then(|| WebhookConfig {
            url: format!("{base}/webhooks/hubspot"),
            secret: SECRET.into(),
            signature: SignatureVersion::V3,
            duplicate_probability: 0.0,
            timeout: Duration::from_secs(5),
            retry_delay: Duration::from_millis(100),
            max_attempts: 5,
            batch_window: Duration::from_millis(20),
            ca_pem: None,
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let db = common::temp_db_url(name);
    let settings = common::settings_with(
        &[
            ("APP_LISTEN", format!("127.0.0.1:{port}")),
            ("HUBSPOT_ACCESS_TOKEN", "pat-privacy".into()),
            ("HUBSPOT_BASE_URL", sim.base_url()),
            ("HUBSPOT_CLIENT_SECRET", SECRET.into()),
            ("ADMIN_TOKEN", ADMIN.into()),
            ("HUBSPOT_TIMEOUT", "3s".into()),
            ("HUBSPOT_RATE_LIMIT", "100000/10s".into()),
            ("SYNC_SCHEDULE", "off".into()),
            ("DATABASE_URL", db.clone()),
        ],
        extra,
    );
    common::serve(settings).await;
    T {
        base,
        db,
        sim,
        http: reqwest::Client::new(),
    }
}

impl T {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("user-agent", "privacy-tests/1");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn user(&self, name: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/users",
                Some(ADMIN),
                Some(json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    async fn contact(&self, email: &str, phone: &str, firstname: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/hubspot/test",
                None,
                Some(json!({"email": email, "phone": phone, "firstname": firstname, "lastname": "Lovelace"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    fn file_bytes(&self) -> Vec<u8> {
        let path = self.db.strip_prefix("sqlite://").unwrap().to_string();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every route the contract marks as protected, with the roles that may use it. A route added
/// without a line here fails the test.
const MATRIX: &[(&str, &str, &[&str])] = &[
    ("get", "/api/contacts", &["admin", "operator", "support"]),
    ("post", "/api/contacts", &["admin", "operator"]),
    (
        "get",
        "/api/contacts/search",
        &["admin", "operator", "support"],
    ),
    (
        "post",
        "/api/contacts/search",
        &["admin", "operator", "support"],
    ),
    (
        "get",
        "/api/contacts/lookup",
        &["admin", "operator", "support"],
    ),
    (
        "post",
        "/api/contacts/lookup",
        &["admin", "operator", "support"],
    ),
    ("get", "/api/users", &["admin"]),
    ("post", "/api/users", &["admin"]),
    ("delete", "/api/users/{name}", &["admin"]),
    ("post", "/api/users/{name}/tokens", &["admin"]),
    ("get", "/api/audit", &["admin"]),
    ("get", "/api/flags", &["admin", "operator"]),
    ("put", "/api/flags/{name}", &["admin"]),
    ("get", "/api/privacy/subjects", &["admin"]),
    ("delete", "/api/privacy/subjects", &["admin"]),
    ("get", "/api/outbox", &["admin", "operator"]),
    ("post", "/api/outbox/{id}/retry", &["admin", "operator"]),
    ("post", "/api/events", &["admin", "operator"]),
    ("get", "/api/events/{event_id}", &["admin", "operator"]),
    ("get", "/api/stats", &["admin", "operator"]),
    ("get", "/api/stats/history", &["admin", "operator"]),
    ("post", "/api/sync/run", &["admin", "operator"]),
    ("get", "/api/sync/objects", &["admin", "operator"]),
    ("put", "/api/sync/objects", &["admin"]),
    ("get", "/api/objects/{type}", &["admin", "operator"]),
    ("get", "/api/objects/{type}/{id}", &["admin", "operator"]),
    ("patch", "/api/objects/{type}/{id}", &["admin", "operator"]),
    ("get", "/api/mappings/{type}", &["admin", "operator"]),
    ("put", "/api/mappings/{type}", &["admin"]),
    (
        "get",
        "/api/integrations/hubspot/status",
        &["admin", "operator"],
    ),
    (
        "delete",
        "/api/integrations/hubspot/portals/{portalId}",
        &["admin"],
    ),
];

fn concrete(path: &str) -> String {
    path.replace("{name}", "nobody")
        .replace("{id}", "1")
        .replace("{event_id}", "e-1")
        .replace("{type}", "contacts")
        .replace("{portalId}", "1")
}

#[tokio::test]
async fn every_protected_route_answers_each_role_as_the_matrix_says() {
    let t = spawn("roles", false, &[("USER_RATE_LIMIT", "100000/1s")]).await;
    // Every operation the contract marks as protected (but the dashboard's pages) is listed.
    let doc = common::get_json(&t.http, &format!("{}/openapi.json", t.base), None).await;
    let mut protected = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_some() && !path.starts_with("/dashboard") {
                protected.push((method.clone(), path.clone()));
            }
        }
    }
    for (method, path) in &protected {
        assert!(
            MATRIX.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} is protected but not in the role matrix"
        );
    }
    assert_eq!(
        protected.len(),
        MATRIX.len(),
        "the matrix lists a route the contract does not"
    );
    let mut tokens = vec![("admin", ADMIN.to_string())];
    for role in ["operator", "support"] {
        tokens.push((role, t.user(&format!("{role}-1"), role).await));
    }
    for (method, path, allowed) in MATRIX {
        let method: Method = method.to_uppercase().parse().unwrap();
        let url = concrete(path);
        let (status, body) = t.call(method.clone(), &url, None, None).await;
        assert_eq!(status, 401, "{method} {url} without a token: {body}");
        let (status, _) = t
            .call(method.clone(), &url, Some("apt_not-a-real-token"), None)
            .await;
        assert_eq!(status, 401, "{method} {url} with an unknown token");
        for (role, token) in &tokens {
            let (status, body) = t.call(method.clone(), &url, Some(token), None).await;
            if allowed.contains(role) {
                assert!(
                    status != 401 && status != 403,
                    "{method} {url} as {role}: {status} {body}"
                );
            } else {
                assert_eq!(status, 403, "{method} {url} as {role}: {body}");
                assert!(
                    body["message"].as_str().unwrap().contains(allowed[0]),
                    "{body}"
                );
            }
        }
    }
    // Revoked: that token stops at once.
    let (status, _) = t
        .call(Method::DELETE, "/api/users/support-1", Some(ADMIN), None)
        .await;
    assert_eq!(status, 204);
    let support = &tokens[2].1;
    let (status, _) = t
        .call(
            Method::GET,
            "/api/contacts/lookup?phone=%2B14155550100",
            Some(support),
            None,
        )
        .await;
    assert_eq!(status, 401);
    // The command line makes users too, on the same database; their token works at once.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_app"))
            .env_clear()
            .env("DATABASE_URL", &t.db)
            .env("HUBSPOT_ENABLED", "false")
            .env("TOKEN_ENCRYPTION_KEY", common::ENCRYPTION_KEY)
            .arg("users")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = cli(&["add", "carol", "--role", "operator"]);
    assert_eq!(code, Some(0), "{err}");
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("apt_"), "{out}");
    let (status, _) = t.call(Method::GET, "/api/outbox", Some(&token), None).await;
    assert_eq!(status, 200, "an operator from the CLI reads the outbox");
    let (code, _, err) = cli(&["add", "carol", "--role", "admin"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = cli(&["add", "dave", "--role", "root"]);
    assert!(
        code == Some(1) && err.contains("admin, operator or support"),
        "{err}"
    );
    assert_eq!(cli(&["frobnicate"]).0, Some(2));
    let (code, _, _) = cli(&["revoke", "carol"]);
    assert_eq!(code, Some(0));
    let (status, _) = t.call(Method::GET, "/api/outbox", Some(&token), None).await;
    assert_eq!(status, 401, "revoked from the CLI: refused at once");
    let (_, listed, _) = cli(&["list"]);
    assert!(listed.contains("carol\toperator\trevoked"), "{listed}");
    // Every user change is in the audit, with who did it.
    let (_, page) = t
        .call(Method::GET, "/api/audit?action=user", Some(ADMIN), None)
        .await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"user revoke") && actions.contains(&"user add"),
        "{page}"
    );
}

#[tokio::test]
async fn lookups_are_audited_per_user_masked_for_support_and_nothing_personal_is_in_the_file() {
    let t = spawn("bytes", false, &[("USER_RATE_LIMIT", "5/60s")]).await;
    let (email, phone) = ("grace.hopper@navy.example", "+12025550147");
    let id = t.contact(email, phone, "Grace").await;
    let support = t.user("sam", "support").await;
    let operator = t.user("olga", "operator").await;
    // The operator looks up the phone (HubSpot, then the cache), and searches by email.
    let url = "/api/contacts/lookup?phone=%2B12025550147";
    let (status, first) = t.call(Method::GET, url, Some(&operator), None).await;
    assert_eq!(
        (status, first["source"].as_str()),
        (200, Some("hubspot")),
        "{first}"
    );
    let (_, again) = t.call(Method::GET, url, Some(&operator), None).await;
    assert_eq!(again["source"], "cache", "{again}");
    assert_eq!(again["contacts"][0]["email"], email);
    let (status, found) = t
        .call(
            Method::POST,
            "/api/contacts/search",
            Some(&operator),
            Some(json!({"query": "grace", "include_recent": true})),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["contacts"][0]["id"], id.as_str());
    assert_eq!(found["contacts"][0]["phone"], phone);
    assert_eq!(found["recent"][0], "grace");
    // Support sees the same contact masked.
    let (_, masked) = t.call(Method::GET, url, Some(&support), None).await;
    let shown = masked.to_string();
    assert!(
        !shown.contains(email) && !shown.contains("2025550147"),
        "{shown}"
    );
    assert!(
        masked["contacts"][0]["phone"]
            .as_str()
            .unwrap()
            .ends_with("47"),
        "{masked}"
    );
    // Support's own limit: 5 a minute; the 429 says when to come back.
    let mut limited = None;
    for _ in 0..6 {
        let r = t
            .http
            .get(format!("{}{url}", t.base))
            .bearer_auth(&support)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            break;
        }
    }
    assert!(
        limited.is_some_and(|s| (1..=12).contains(&s)),
        "{limited:?}"
    );
    let (status, _) = t.call(Method::GET, url, Some(&operator), None).await;
    assert_eq!(status, 200, "another user is not held back");
    // The audit: who, what, the subject hashed, the HubSpot id, where from.
    let q = "/api/audit?phone=%2B12025550147&user=olga";
    let (_, page) = t.call(Method::GET, q, Some(ADMIN), None).await;
    let entries = page["entries"].as_array().unwrap();
    assert!(entries.len() >= 3, "{page}");
    let e = &entries[0];
    assert_eq!(
        (e["actor"].as_str(), e["role"].as_str()),
        (Some("olga"), Some("operator"))
    );
    assert_eq!(e["hubspot_id"], id.as_str());
    assert!(e["subject_hash"].as_str().unwrap().starts_with("b1."));
    assert_eq!(e["user_agent"], "privacy-tests/1");
    // Nothing in clear in the database file (with its WAL): no email, no phone in any format.
    // (Contacts synced as CRM records are kept in clear for their field filters; this app's
    // lookups, searches, cache, history and audit never are, and nothing here syncs.)
    let bytes = t.file_bytes();
    for needle in [email, "grace.hopper", phone, "2025550147", "202-555-0147"] {
        assert!(
            !contains(&bytes, needle),
            "'{needle}' is in the database file in clear"
        );
    }
    assert!(contains(&bytes, "v1."), "the cache holds sealed values");
}

async fn wait_until(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn export_finds_everything_and_erasure_leaves_nothing_and_asks_hubspot_once() {
    gdpr_flow("gdpr", &[]).await;
}

/// The export and erasure scenario on the database `extra` names (a SQLite file of its own,
/// after `name`, by default; `postgres.rs` runs it on PostgreSQL).
pub async fn gdpr_flow(name: &str, extra: &[(&str, &str)]) {
    let t = spawn(name, true, extra).await;
    let (email, phone) = ("ada@lovelace.example", "+14155550123");
    let id = t.contact(email, phone, "Ada").await;
    let operator = t.user("olga", "operator").await;
    // Held about Ada: a cached contact, audit entries, a search, a queued write, an event.
    t.call(
        Method::GET,
        "/api/contacts/lookup?phone=%2B14155550123",
        Some(&operator),
        None,
    )
    .await;
    t.call(
        Method::POST,
        "/api/contacts/search",
        Some(&operator),
        Some(json!({"query": "ada"})),
    )
    .await;
    let (status, _) = t
        .call(
            Method::POST,
            "/api/contacts",
            Some(&operator),
            Some(json!({"email": email, "company": "Analytical"})),
        )
        .await;
    assert_eq!(status, 202);
    let event = json!({"event_id": "e-ada-1", "type": "user_signup", "occurred_at": 1_793_527_200_000i64,
        "subject": {"external_id": "u-ada", "email": email}, "data": {"email": email, "firstname": "Ada"}});
    let (status, body) = t
        .call(Method::POST, "/api/events", Some(&operator), Some(event))
        .await;
    assert_eq!(status, 202, "{body}");
    // Exported by phone: the phone finds the cached contact, whose email finds the rest.
    let export_url = "/api/privacy/subjects?phone=%2B14155550123";
    let (status, export) = t.call(Method::GET, export_url, Some(ADMIN), None).await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["cache"][0]["hubspot_id"], id.as_str(), "{export}");
    for part in [
        "outbox",
        "audit",
        "search_history",
        "lifecycle_events",
        "lifecycle_subjects",
    ] {
        assert!(
            !export[part].as_array().unwrap().is_empty(),
            "{part} missing: {export}"
        );
    }
    assert_eq!(export["outbox"][0]["email"], email);
    // Erased here first (HubSpot keeps the contact): whatever is in flight or comes next (the
    // queued write reaching HubSpot, a change made in HubSpot and its webhook, a lookup that
    // reads HubSpot) must not bring Ada back.
    let (status, local) = t.call(Method::DELETE, export_url, Some(ADMIN), None).await;
    assert_eq!(status, 200, "{local}");
    assert_eq!(local["erased"]["hubspot_deletes_queued"], 0, "{local}");
    let r = t
        .http
        .patch(format!("{}/crm/v3/objects/contacts/{id}", t.sim.base_url()))
        .bearer_auth("pat-privacy")
        .json(&json!({"properties": {"company": "Difference Engines"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = t
        .call(
            Method::GET,
            "/api/contacts/lookup?phone=%2B14155550123",
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(status, 200, "HubSpot still answers for Ada");
    // The simulator delivers within ~50 ms and the app processes within a second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, still) = t.call(Method::GET, export_url, Some(ADMIN), None).await;
    assert!(
        still["cache"].as_array().unwrap().is_empty()
            && still["records"].as_array().unwrap().is_empty(),
        "Ada came back after her erasure: {still}"
    );
    // The lookup just made is a new access, audited under her phone: erased by phone too.
    let (status, _) = t.call(Method::DELETE, export_url, Some(ADMIN), None).await;
    assert_eq!(status, 200);
    // Then HubSpot's GDPR delete too (by email: nothing here knows her contact any more).
    let (status, erased) = t
        .call(
            Method::DELETE,
            "/api/privacy/subjects?email=ada@lovelace.example&hubspot=true",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{erased}");
    assert!(erased["reference"].as_str().unwrap().starts_with("erased:"));
    assert_eq!(erased["erased"]["hubspot_deletes_queued"], 1, "{erased}");
    let (_, after) = t.call(Method::GET, export_url, Some(ADMIN), None).await;
    for part in [
        "cache",
        "outbox",
        "audit",
        "search_history",
        "lifecycle_events",
        "lifecycle_subjects",
        "records",
    ] {
        assert!(
            after[part].as_array().unwrap().is_empty(),
            "{part} still holds Ada: {after}"
        );
    }
    let (_, by_email) = t
        .call(
            Method::GET,
            "/api/privacy/subjects?email=ada@lovelace.example",
            Some(ADMIN),
            None,
        )
        .await;
    assert!(
        by_email["audit"].as_array().unwrap().is_empty(),
        "{by_email}"
    );
    let sim = &t.sim;
    let route = "/crm/objects/2026-03/{object_type}/gdpr-delete";
    wait_until(
        "HubSpot's GDPR delete",
        Duration::from_secs(10),
        async || !common::route_statuses(sim, route).await.is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        common::route_statuses(sim, route).await,
        [(204, 1)],
        "sent once"
    );
    // The audit keeps the erasure, pointing at no one.
    let (_, page) = t
        .call(
            Method::GET,
            "/api/audit?action=privacy%20erase",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(page["entries"][0]["subject"], erased["reference"]);

    // A contact deleted in HubSpot by GDPR request: its privacyDeletion webhook erases here.
    let bob = t.contact("bob@example.org", "+14155550199", "Bob").await;
    t.call(
        Method::GET,
        "/api/contacts/lookup?phone=%2B14155550199",
        Some(&operator),
        None,
    )
    .await;
    let bob_url = "/api/privacy/subjects?email=bob@example.org";
    let (_, held) = t.call(Method::GET, bob_url, Some(ADMIN), None).await;
    assert_eq!(held["cache"][0]["hubspot_id"], bob.as_str());
    let r = t
        .http
        .post(format!(
            "{}/crm/objects/2026-03/contacts/gdpr-delete",
            t.sim.base_url()
        ))
        .bearer_auth("pat-privacy")
        .json(&json!({"objectId": bob}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (http, base) = (&t.http, &t.base);
    wait_until(
        "the privacyDeletion webhook's erasure",
        Duration::from_secs(10),
        async || {
            let v = common::get_json(http, &format!("{base}{bob_url}"), Some(ADMIN)).await;
            v["cache"].as_array().unwrap().is_empty() && v["audit"].as_array().unwrap().is_empty()
        },
    )
    .await;
}

#[tokio::test]
async fn a_flag_set_through_one_process_holds_in_another_within_seconds() {
    let sim = hubspot_sim::spawn(SimConfig {
        search_lag: Duration::ZERO,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let db = common::temp_db_url("flags");
    let http = reqwest::Client::new();
    let ports = [common::free_port(), common::free_port()];
    let mut children: Vec<_> = ports
        .iter()
        .map(|port| {
            common::app_command(*port, &db, &sim, ADMIN)
                .env("FLAGS_REFRESH", "1s")
                .spawn()
                .unwrap()
        })
        .collect();
    let [blue, green] = ports.map(|p| format!("http://127.0.0.1:{p}"));
    common::wait_ready(&http, &blue).await;
    common::wait_ready(&http, &green).await;
    let search = |base: &str| {
        http.post(format!("{base}/api/contacts/search"))
            .bearer_auth(ADMIN)
            .json(&json!({"query": "ada"}))
            .send()
    };
    assert_eq!(search(&green).await.unwrap().status(), 200);
    let r = http
        .put(format!("{blue}/api/flags/HUBSPOT_OUTBOUND_SEARCH"))
        .bearer_auth(ADMIN)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        search(&blue).await.unwrap().status(),
        503,
        "at once where it was set"
    );
    let took = wait_until("green sees the flag", Duration::from_secs(3), async || {
        search(&green).await.unwrap().status() == 503
    })
    .await;
    eprintln!("flag seen by the other process after {took:?}");
    let r = http
        .put(format!("{green}/api/flags/hubspot_outbound_search"))
        .bearer_auth(ADMIN)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_until("blue sees it back on", Duration::from_secs(3), async || {
        search(&blue).await.unwrap().status() == 200
    })
    .await;
    let flags: Value = http
        .get(format!("{blue}/api/flags"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let f = flags
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "HUBSPOT_OUTBOUND_SEARCH")
        .unwrap();
    assert_eq!(
        (f["enabled"].as_bool(), f["updated_by"].as_str()),
        (Some(true), Some("admin"))
    );
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Eight people type the same name at once: HubSpot is searched once (the others wait for its
/// answer rather than queueing behind the 5/s search limit), and all eight get the contact.
#[tokio::test]
async fn the_same_search_at_once_asks_hubspot_once() {
    let t = spawn("single-flight", false, &[]).await;
    let id = t
        .contact("linus@example.com", "+14155550142", "Linus")
        .await;
    // A slow search, so the eight overlap.
    common::sim_fault(
        &t.sim,
        json!({"path": "/crm/objects/2026-03/contacts/search", "latency_ms": 400}),
    )
    .await;
    let searches = (0..8).map(|_| {
        t.call(
            Method::POST,
            "/api/contacts/search",
            Some(ADMIN),
            Some(json!({"query": "linus"})),
        )
    });
    let answers = futures_util::future::join_all(searches).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["contacts"][0]["id"], id.as_str(), "{body}");
    }
    let fresh = answers.iter().filter(|(_, b)| b["cached"] == false).count();
    assert_eq!(fresh, 1, "one answer came from HubSpot: {answers:?}");
    let searched: u64 = common::route_statuses(&t.sim, "/crm/objects/2026-03/{object_type}/search")
        .await
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(searched, 1);
}
