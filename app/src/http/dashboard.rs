//! `GET /dashboard`: the service's figures as a page (server-rendered with tera), per user and
//! role: support sees the cache, operators everything and the flags, admins also switch the
//! flags (`POST /dashboard/flags`). Access: a bearer token, or a session cookie set by signing
//! in with one's own token (or `ADMIN_TOKEN`) at `POST /dashboard/login`. The cookie is signed
//! (`axum-extra`'s `SignedCookieJar`) with a key derived from `ADMIN_TOKEN` (else the key
//! ring) and holds the time of sign-in and the token's SHA-256, never the token: a session
//! ends after [`SESSION`] whatever the browser keeps, and revoking the user ends theirs at once.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use super::state::{AppState, Shared};
use crate::domain::access::{Flag, Role};
use crate::domain::figures::Window;

const COOKIE: &str = "dashboard_session";

static TEMPLATES: LazyLock<tera::Tera> = LazyLock::new(|| {
    let mut t = tera::Tera::default();
    t.add_raw_templates([
        (
            "dashboard",
            include_str!("../../templates/dashboard.html.tera"),
        ),
        ("login", include_str!("../../templates/login.html.tera")),
    ])
    .expect("the dashboard templates parse");
    t
});

/// How long a sign-in lasts.
pub const SESSION: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// The cookies' signing key: 64 bytes derived from `ADMIN_TOKEN`, else from the key ring (a
/// keyed hash, the same in every process); `None`: no way to sign sessions, the dashboard is
/// off.
fn session_key(s: &AppState) -> Option<Key> {
    let secret = match (&s.settings.admin_token, &s.sealer) {
        (Some(token), _) => token.expose().to_string(),
        (None, Some(sealer)) => sealer.blind("dashboard-session-key").swap_remove(0),
        (None, None) => return None,
    };
    Some(key_from(&secret))
}

fn key_from(secret: &str) -> Key {
    let derived = Sha512::new()
        .chain_update(b"dashboard-session-v3\0")
        .chain_update(secret.as_bytes())
        .finalize();
    Key::from(&derived)
}

/// The token hash of a valid session cookie (the caller is then looked up by it).
pub fn session_token_hash(s: &AppState, headers: &HeaderMap) -> Option<String> {
    session_valid(&session_key(s)?, headers, s.db.now_ms())
}

/// The token hash in `headers`' session cookie, when it is signed with `key` and signed in less
/// than [`SESSION`] before `now` (epoch ms; a minute of clock skew is allowed the other way).
fn session_valid(key: &Key, headers: &HeaderMap, now: i64) -> Option<String> {
    let value = SignedCookieJar::from_headers(headers, key.clone())
        .get(COOKIE)?
        .value()
        .to_string();
    let (at, hash) = value.split_once('.')?;
    let signed_in_at = at.parse::<i64>().ok()?;
    (signed_in_at <= now + 60_000 && now - signed_in_at < SESSION.as_millis() as i64)
        .then(|| hash.to_string())
}

fn login_page(status: StatusCode, message: &str) -> Response {
    let html = TEMPLATES
        .render(
            "login",
            &tera::Context::from_serialize(json!({"message": message})).expect("context"),
        )
        .unwrap_or_else(|e| format!("template error: {e}"));
    (status, Html(html)).into_response()
}

/// The operators' page: outbox, webhooks, cache, sync and HubSpot figures, their charts over
/// the last hour or day (`?window=`), and recent errors.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", params(PageQuery), security(("admin" = []), ("session" = [])), responses(
    (status = 200, description = "The dashboard", content_type = "text/html"),
    (status = 400, description = "Not a window (use hour or day)", content_type = "text/html"),
    (status = 401, description = "Not signed in: the sign-in page", content_type = "text/html"),
    (status = 503, description = "Off (no ADMIN_TOKEN)", content_type = "text/html")))]
pub async fn page(
    State(s): State<Shared>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if session_key(&s).is_none() {
        return login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The dashboard is off: set ADMIN_TOKEN or TOKEN_ENCRYPTION_KEY to enable sign-in.",
        );
    }
    let Ok(caller) = super::auth::caller(&s, &headers).await else {
        return login_page(StatusCode::UNAUTHORIZED, "Sign in with your token.");
    };
    let window = match query.map(|q| q.0.window.as_deref().unwrap_or("hour").parse::<Window>()) {
        Ok(Ok(window)) => window,
        Ok(Err(e)) => return login_page(StatusCode::BAD_REQUEST, &e),
        Err(e) => return login_page(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let mut v = json!(super::system::collect_stats(&s).await);
    decorate(&mut v, &s).await;
    v["user"] = json!(caller.name);
    v["role"] = json!(caller.role);
    v["window"] = json!(window);
    v["window_text"] = json!(match window {
        Window::Hour => "the last hour (a point a minute, UTC)",
        Window::Day => "the last day (a point every 15 minutes, UTC)",
    });
    match s.figures.history(window).await {
        Ok(history) => v["charts"] = json!(super::charts::charts(&history, caller.role)),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: the figures' history could not be read");
            v["charts"] = json!([]);
            v["history_error"] = json!("The history could not be read from the database; it shows again on the next refresh.");
        }
    }
    v["flags"] = json!(s.flags.refresh().await.unwrap_or_default());
    match tera::Context::from_serialize(&v).and_then(|ctx| TEMPLATES.render("dashboard", &ctx)) {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the dashboard could not be rendered",
            )
                .into_response()
        }
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The charts' span: `hour` (the default) or `day`.
    window: Option<String>,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct FlagForm {
    /// The flag's name (`HUBSPOT_CACHE_ENABLED`, …).
    name: String,
    /// `true` or `false`.
    enabled: bool,
}

/// An admin switches a flag from the dashboard (audited); back to the dashboard.
#[utoipa::path(post, path = "/dashboard/flags", tag = "dashboard", security(("admin" = []), ("session" = [])),
    request_body(content = FlagForm, content_type = "application/x-www-form-urlencoded"),
    responses(
    (status = 303, description = "Set: on to /dashboard"),
    (status = 400, description = "Not a flag, or not true/false", content_type = "text/html"),
    (status = 401, description = "Not signed in", content_type = "text/html"),
    (status = 403, description = "Not an admin", content_type = "text/html"),
    (status = 503, description = "The database failed", content_type = "text/html")))]
pub async fn set_flag(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<axum::Form<FlagForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(caller) = super::auth::caller(&s, &headers).await else {
        return login_page(StatusCode::UNAUTHORIZED, "Sign in with your token.");
    };
    if caller.role != Role::Admin {
        return login_page(StatusCode::FORBIDDEN, "Only admins switch flags.");
    }
    let Ok(axum::Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            "Send a flag name and enabled=true|false.",
        );
    };
    let Ok(flag) = form.name.parse::<Flag>() else {
        return login_page(StatusCode::BAD_REQUEST, "Not a flag this app knows.");
    };
    if let Err(e) = super::flags::set(
        &s,
        &caller,
        &super::auth::origin(&headers),
        flag,
        form.enabled,
    )
    .await
    {
        return login_page(e.status_code(), &e.message);
    }
    Redirect::to("/dashboard").into_response()
}

/// Display-ready values the template shows as text.
async fn decorate(v: &mut Value, s: &AppState) {
    let when = |ms: &Value| {
        ms.as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "never".into())
    };
    if v["sync"].is_null() {
        v["sync"] = json!({});
    }
    v["sync"]["last_success_text"] = json!(when(&v["sync"]["last_success"]));
    v["cache"]["hit_rate_text"] = json!(v["cache"]["hit_rate"]
        .as_f64()
        .map(|r| format!("{:.1} %", r * 100.0))
        .unwrap_or_else(|| "no lookups yet".into()));
    if v["outbox"].is_null() {
        v["outbox"] = json!({"pending": "?", "leased": "?", "sent": "?", "dead": 0});
    }
    let mut errors = Vec::new();
    if let Some(e) = v["sync"]["last_error"].as_str() {
        errors.push(json!({"source": "sync", "message": e}));
    }
    if let Ok(dead) = s
        .outbox
        .list(crate::domain::outbox::ItemState::Dead, 5)
        .await
    {
        for item in dead {
            errors.push(json!({
                "source": format!("outbox #{} ({})", item.id, crate::mask::email(&item.email)),
                "message": item.last_error.unwrap_or_default(),
            }));
        }
    }
    v["errors"] = json!(errors);
    let portals = s.portals.list().await.unwrap_or_default();
    let circuits = s.portals.circuits();
    v["oauth"] = json!(s.portals.oauth_enabled());
    let mut rows = Vec::new();
    for p in &portals {
        let mut row = json!(p);
        row["expires_text"] = json!(when(&json!(p.expires_at)));
        row["refreshed_text"] = json!(when(&json!(p.refreshed_at)));
        row["circuit"] = json!(circuits.get(&p.portal_id));
        // The private-app token's portal keeps its data as the single account's.
        let account =
            (p.kind != crate::domain::portal::ConnectionKind::PrivateApp).then_some(p.portal_id);
        if let Ok(sync) = s.sync.for_portal(account).status().await {
            let state = json!(sync.status);
            let errors = if sync.error_count > 0 {
                format!(", {} errors", sync.error_count)
            } else {
                String::new()
            };
            row["sync_text"] = json!(format!(
                "{} ({} last run{errors})",
                state.as_str().unwrap_or_default(),
                sync.synced_last_run
            ));
        }
        rows.push(row);
    }
    v["portals"] = json!(rows);
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    /// Your token (or `ADMIN_TOKEN`).
    token: String,
}

/// Signs in with one's token: sets the session cookie and goes to the dashboard.
#[utoipa::path(post, path = "/dashboard/login", tag = "dashboard",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
    (status = 303, description = "Signed in: the session cookie is set, on to /dashboard"),
    (status = 400, description = "No token in the form", content_type = "text/html"),
    (status = 401, description = "An unknown or revoked token", content_type = "text/html"),
    (status = 503, description = "Off (neither ADMIN_TOKEN nor TOKEN_ENCRYPTION_KEY), or the database failed", content_type = "text/html")))]
pub async fn login(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(key) = session_key(&s) else {
        return login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The dashboard is off: set ADMIN_TOKEN or TOKEN_ENCRYPTION_KEY to enable sign-in.",
        );
    };
    let Ok(axum::Form(form)) = form else {
        return login_page(StatusCode::BAD_REQUEST, "Send your token in the form.");
    };
    let token = form.token.trim();
    let caller = match s.access.authenticate(token).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            tracing::warn!("dashboard sign-in refused");
            return login_page(
                StatusCode::UNAUTHORIZED,
                "That token is unknown or revoked.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard sign-in: reading users failed");
            return login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Could not check the token; try again.",
            );
        }
    };
    s.auditor
        .record(
            &caller,
            &super::auth::origin(&headers),
            crate::access::audit::Kind::Always,
            "dashboard sign-in",
            crate::access::audit::About::default(),
            "signed in",
        )
        .await;
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let value = format!("{}.{}", s.db.now_ms(), crate::access::token_hash(token));
    let cookie = Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .max_age(time::Duration::seconds(SESSION.as_secs() as i64));
    let jar = SignedCookieJar::new(key).add(cookie);
    (jar, Redirect::to("/dashboard")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Cookie` header a browser sends back after signing in at `at` under `secret`'s key.
    fn cookie_from(secret: &str, at: i64) -> HeaderMap {
        let jar =
            SignedCookieJar::new(key_from(secret)).add(Cookie::new(COOKIE, format!("{at}.h4sh")));
        let set = jar.into_response();
        let value = set.headers()[header::SET_COOKIE].to_str().unwrap();
        let pair = value.split(';').next().unwrap().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, pair.parse().unwrap());
        headers
    }

    #[test]
    fn a_session_is_signed_holds_only_the_token_hash_and_ends_after_twelve_hours() {
        let at = 1_800_000_000_000;
        let key = key_from("secret-a");
        let headers = cookie_from("secret-a", at);
        assert_eq!(
            session_valid(&key, &headers, at + 1_000).as_deref(),
            Some("h4sh")
        );
        let end = at + SESSION.as_millis() as i64;
        assert!(session_valid(&key, &headers, end - 1).is_some());
        assert!(session_valid(&key, &headers, end).is_none());
        // Another key (ADMIN_TOKEN changed) does not accept it.
        assert!(session_valid(&key_from("secret-b"), &headers, at + 1_000).is_none());
        // A cookie whose value was edited (a later sign-in time) fails its signature.
        let forged = headers[header::COOKIE]
            .to_str()
            .unwrap()
            .replace(&at.to_string(), &(at + 3_600_000).to_string());
        let mut edited = HeaderMap::new();
        edited.insert(header::COOKIE, forged.parse().unwrap());
        assert!(session_valid(&key, &edited, at + 1_000).is_none());
        // The unsigned value alone is refused.
        let mut plain = HeaderMap::new();
        plain.insert(
            header::COOKIE,
            format!("{COOKIE}={at}.h4sh").parse().unwrap(),
        );
        assert!(session_valid(&key, &plain, at + 1_000).is_none());
    }
}
