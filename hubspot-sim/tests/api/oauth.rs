//! OAuth against the simulator, as an installed app meets it: the install redirect (and the
//! choice between portals, and denial), the code exchange with its single use and its bound
//! `redirect_uri`, access tokens that expire into HubSpot's 401, refresh, revocation,
//! introspection, token info, the date-based paths, and rate windows per installation.

use std::time::Duration;

use hubspot_sim::{RateSpec, SimConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::TestSim;

const CLIENT: &str = "client-1";
const SECRET: &str = "secret-1";
const REDIRECT: &str = "https://app.example/api/integrations/hubspot/callback";

pub(crate) fn config() -> SimConfig {
    SimConfig {
        oauth_clients: vec![(CLIENT.into(), SECRET.into())],
        extra_portals: vec![777],
        ..SimConfig::default()
    }
}

/// A client that does not follow redirects: the install answers are what is tested.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Installs into `portal`; returns the redirect's query pairs.
async fn install(t: &TestSim, extra: &str) -> (StatusCode, Vec<(String, String)>, String) {
    let url = t.url(&format!(
        "/oauth/authorize?client_id={CLIENT}&redirect_uri={}&scope=crm.objects.contacts.write%20oauth&state=s-42{extra}",
        urlencoding(REDIRECT)
    ));
    let r = browser().get(url).send().await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    let pairs = reqwest::Url::parse(&location)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (
        status,
        pairs,
        if location.is_empty() { body } else { location },
    )
}

fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn token(t: &TestSim, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = t.http.post(t.url(path)).form(form).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn exchange(t: &TestSim, code: &str) -> (StatusCode, Value) {
    token(
        t,
        "/oauth/2026-03/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("redirect_uri", REDIRECT),
            ("code", code),
        ],
    )
    .await
}

pub(crate) async fn code_for(t: &TestSim, portal: u64) -> String {
    let (status, pairs, location) = install(t, &format!("&portal={portal}")).await;
    assert_eq!(status, StatusCode::FOUND, "{location}");
    assert_eq!(get(&pairs, "state"), Some("s-42"));
    get(&pairs, "code").expect("a code").to_string()
}

#[tokio::test]
async fn the_install_dance_gives_tokens_for_the_chosen_portal() {
    let t = TestSim::with(config()).await;
    // Two portals and none named: a page to choose, with a link per portal and one to deny.
    let (status, _, page) = install(&t, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("portal=62515") && page.contains("portal=777"),
        "{page}"
    );
    assert!(page.contains("deny=1"), "{page}");

    let code = code_for(&t, 777).await;
    let (status, tokens) = exchange(&t, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 1800, "30 minutes by default");
    let access = tokens["access_token"].as_str().unwrap();
    // The token reads its portal's account, on the numeric and the date-based path.
    for path in ["/account-info/v3/details", "/account-info/2026-03/details"] {
        let r = t.call_as(Some(access), Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["portalId"], 777, "{path}");
    }
    let created = t
        .call_as(
            Some(access),
            Method::POST,
            "/crm/objects/2026-03/contacts",
            Some(json!({"properties": {"email": "dated@example.com"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let read = t
        .call_as(
            Some(access),
            Method::GET,
            &format!("/crm/v3/objects/contacts/{id}"),
            None,
        )
        .await;
    assert_eq!(read.body["properties"]["email"], "dated@example.com");

    // Token info, as the official clients ask for it.
    let info: Value = t
        .http
        .get(t.url(&format!("/oauth/v1/access-tokens/{access}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["hub_id"], 777);
    assert_eq!(
        info["scopes"],
        json!(["crm.objects.contacts.write", "oauth"])
    );
    assert!(info["expires_in"].as_u64().unwrap() > 1700);
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_their_client_and_redirect() {
    let t = TestSim::with(config()).await;
    let code = code_for(&t, 62_515).await;
    // A wrong redirect_uri is refused and does not use the code up.
    let (status, body) = token(
        &t,
        "/oauth/2026-03/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("redirect_uri", "https://evil.example/cb"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("redirect_uri"));
    // A wrong secret is the client's fault.
    let (status, body) = token(
        &t,
        "/oauth/2026-03/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("client_secret", "guess"),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // The right exchange works once.
    assert_eq!(exchange(&t, &code).await.0, StatusCode::OK);
    let (status, body) = exchange(&t, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(body["error_description"], "code already used");
    // An unknown grant type is named.
    let (status, body) = token(
        &t,
        "/oauth/2026-03/token",
        &[
            ("grant_type", "password"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn a_denied_install_redirects_with_access_denied_and_its_state() {
    let t = TestSim::with(config()).await;
    let (status, pairs, _) = install(&t, "&deny=1").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(get(&pairs, "error"), Some("access_denied"));
    assert_eq!(get(&pairs, "state"), Some("s-42"));
    assert_eq!(get(&pairs, "code"), None);
    // An unknown client gets a page, not a redirect to wherever it asked.
    let r = browser()
        .get(t.url("/oauth/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fx.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("nobody"));
}

#[tokio::test]
async fn access_tokens_expire_into_hubspots_401_and_refresh_on_both_token_paths() {
    let t = TestSim::with(SimConfig {
        access_token_ttl: Duration::from_secs(1),
        ..config()
    })
    .await;
    let code = code_for(&t, 62_515).await;
    let (_, tokens) = exchange(&t, &code).await;
    let (access, refresh) = (
        tokens["access_token"].as_str().unwrap().to_string(),
        tokens["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_eq!(tokens["expires_in"], 1);
    let ok = t
        .call_as(Some(&access), Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = t
        .call_as(Some(&access), Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.body["category"], "EXPIRED_AUTHENTICATION");
    assert!(expired.body["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    for path in ["/oauth/2026-03/token", "/oauth/v1/token"] {
        let (status, fresh) = token(
            &t,
            path,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("refresh_token", &refresh),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {fresh}");
        assert_eq!(
            fresh["refresh_token"],
            refresh.as_str(),
            "the refresh token stays"
        );
        let access = fresh["access_token"].as_str().unwrap();
        let r = t
            .call_as(Some(access), Method::GET, "/crm/v3/objects/contacts", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let grants: Value = t
        .http
        .get(t.url("/_sim/oauth"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(grants["grants"]["refresh_token"], 2);
    assert_eq!(grants["grants"]["authorization_code"], 1);
}

#[tokio::test]
async fn revoking_the_refresh_token_ends_the_installation() {
    let t = TestSim::with(config()).await;
    let code = code_for(&t, 62_515).await;
    let (_, tokens) = exchange(&t, &code).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let creds = [("client_id", CLIENT), ("client_secret", SECRET)];
    let introspect = |tok: String| {
        let t = &t;
        async move {
            let mut form = creds.to_vec();
            form.push(("token", &tok));
            token(t, "/oauth/2026-03/token/introspect", &form).await.1
        }
    };
    let live = introspect(access.clone()).await;
    assert_eq!(live["active"], true);
    assert_eq!(live["hub_id"], 62_515);
    assert_eq!(
        introspect(refresh.clone()).await["token_type"],
        "refresh_token"
    );

    let mut form = creds.to_vec();
    form.push(("token", &refresh));
    assert_eq!(
        token(&t, "/oauth/2026-03/token/revoke", &form).await.0,
        StatusCode::OK
    );
    assert_eq!(introspect(access.clone()).await, json!({"active": false}));
    let r = t
        .call_as(Some(&access), Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "its access tokens died with it"
    );
    // The legacy path's refusal also carries HubSpot's old status.
    let (status, body) = token(
        &t,
        "/oauth/v1/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["status"], "BAD_REFRESH_TOKEN");
}

/// Each installation has its own windows (110/10s by default; 3 here): two access tokens of
/// one installation share one, another portal's installation has its own.
#[tokio::test]
async fn rate_windows_are_per_app_per_portal() {
    let t = TestSim::with(SimConfig {
        oauth_rate_limit: RateSpec::new(3, Duration::from_secs(10)),
        ..config()
    })
    .await;
    let refresh_pair = |tokens: &Value| {
        (
            tokens["access_token"].as_str().unwrap().to_string(),
            tokens["refresh_token"].as_str().unwrap().to_string(),
        )
    };
    let (a1, refresh) = refresh_pair(&exchange(&t, &code_for(&t, 62_515).await).await.1);
    let (_, again) = token(
        &t,
        "/oauth/2026-03/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    let a2 = again["access_token"].as_str().unwrap().to_string();
    let (b, _) = refresh_pair(&exchange(&t, &code_for(&t, 777).await).await.1);
    let list = "/crm/v3/objects/contacts";
    for tok in [&a1, &a2, &a1] {
        let r = t.call_as(Some(tok), Method::GET, list, None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let limited = t.call_as(Some(&a2), Method::GET, list, None).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "one window for the installation"
    );
    assert_eq!(limited.headers["x-hubspot-ratelimit-max"], "3");
    let other = t.call_as(Some(&b), Method::GET, list, None).await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "the other portal's window is its own"
    );
}

#[tokio::test]
async fn each_portal_keeps_its_own_records() {
    let t = TestSim::with(config()).await;
    let access = |tokens: Value| tokens["access_token"].as_str().unwrap().to_string();
    let a = access(exchange(&t, &code_for(&t, 62_515).await).await.1);
    let b = access(exchange(&t, &code_for(&t, 777).await).await.1);
    let create = |tok: String, name: &'static str| {
        let t = &t;
        async move {
            let body = json!({"properties": {"email": "same@example.com", "firstname": name}});
            let r = t
                .call_as(
                    Some(&tok),
                    Method::POST,
                    "/crm/objects/2026-03/contacts",
                    Some(body),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
    };
    // The same email in both portals: no conflict, since neither sees the other's records.
    create(a.clone(), "Ann").await;
    create(b.clone(), "Bea").await;
    let read = |tok: String| {
        let t = &t;
        async move {
            let path = "/crm/objects/2026-03/contacts/same@example.com?idProperty=email&properties=firstname";
            let r = t.call_as(Some(&tok), Method::GET, path, None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["properties"]["firstname"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(read(a).await, "Ann");
    assert_eq!(read(b).await, "Bea");
    // A private-app token acts in --portal-id (62515 here): the same portal, the same records.
    let list = t
        .get("/crm/objects/2026-03/contacts?properties=firstname")
        .await;
    let names: Vec<&Value> = list.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["properties"]["firstname"])
        .collect();
    assert_eq!(names, [&json!("Ann")]);
    for (portal, name) in [(62_515, "Ann"), (777, "Bea")] {
        let admin = t
            .get(&format!("/_sim/records/contacts?portal={portal}"))
            .await;
        assert_eq!(admin.body["count"], 1, "{}", admin.body);
        assert_eq!(admin.body["results"][0]["properties"]["firstname"], name);
    }
}
