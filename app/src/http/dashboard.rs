//! `GET /dashboard`: the service's figures as a page (server-rendered with tera), for operators.
//! Access: `Authorization: Bearer $ADMIN_TOKEN`, or a session cookie set by signing in with the
//! token at `POST /dashboard/login`. The cookie is signed (`axum-extra`'s `SignedCookieJar`)
//! with a key derived from the token and holds the time of sign-in: no server state, a session
//! ends after [`SESSION`] whatever the browser keeps, and changing ADMIN_TOKEN ends them all.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use super::auth::{bearer, same_secret};
use super::state::{AppState, Shared};

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

/// The cookies' signing key: 64 bytes derived from the admin token.
fn session_key(token: &str) -> Key {
    let derived = Sha512::new()
        .chain_update(b"dashboard-session-v2\0")
        .chain_update(token.as_bytes())
        .finalize();
    Key::from(&derived)
}

fn signed_in(s: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &s.settings.admin_token else {
        return false;
    };
    if bearer(headers).is_some_and(|b| same_secret(b, token.expose())) {
        return true;
    }
    session_valid(token.expose(), headers, s.db.now_ms())
}

/// Whether `headers` carry a session cookie signed with `token`'s key and signed in less than
/// [`SESSION`] before `now` (epoch ms; a minute of clock skew is allowed the other way).
fn session_valid(token: &str, headers: &HeaderMap, now: i64) -> bool {
    SignedCookieJar::from_headers(headers, session_key(token))
        .get(COOKIE)
        .and_then(|c| c.value().parse::<i64>().ok())
        .is_some_and(|signed_in_at| {
            signed_in_at <= now + 60_000 && now - signed_in_at < SESSION.as_millis() as i64
        })
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

/// The operators' page: outbox, webhooks, cache, sync and HubSpot figures, and recent errors.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", security(("admin" = []), ("session" = [])), responses(
    (status = 200, description = "The dashboard", content_type = "text/html"),
    (status = 401, description = "Not signed in: the sign-in page", content_type = "text/html"),
    (status = 503, description = "Off (no ADMIN_TOKEN)", content_type = "text/html")))]
pub async fn page(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if s.settings.admin_token.is_none() {
        return login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The dashboard is off: set ADMIN_TOKEN to enable it.",
        );
    }
    if !signed_in(&s, &headers) {
        return login_page(StatusCode::UNAUTHORIZED, "Sign in with the admin token.");
    }
    let mut v = json!(super::system::collect_stats(&s).await);
    decorate(&mut v, &s).await;
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
    /// The admin token.
    token: String,
}

/// Signs in with the admin token: sets the session cookie and goes to the dashboard.
#[utoipa::path(post, path = "/dashboard/login", tag = "dashboard",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
    (status = 303, description = "Signed in: the session cookie is set, on to /dashboard"),
    (status = 400, description = "No token in the form", content_type = "text/html"),
    (status = 401, description = "Not the admin token", content_type = "text/html"),
    (status = 503, description = "Off (no ADMIN_TOKEN)", content_type = "text/html")))]
pub async fn login(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(expected) = &s.settings.admin_token else {
        return login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The dashboard is off: set ADMIN_TOKEN to enable it.",
        );
    };
    let Ok(axum::Form(form)) = form else {
        return login_page(StatusCode::BAD_REQUEST, "Send the admin token in the form.");
    };
    if !same_secret(form.token.trim(), expected.expose()) {
        tracing::warn!("dashboard sign-in refused");
        return login_page(StatusCode::UNAUTHORIZED, "That is not the admin token.");
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = Cookie::build((COOKIE, s.db.now_ms().to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .max_age(time::Duration::seconds(SESSION.as_secs() as i64));
    let jar = SignedCookieJar::new(session_key(expected.expose())).add(cookie);
    (jar, Redirect::to("/dashboard")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Cookie` header a browser sends back after signing in at `at` with `token`.
    fn cookie_from(token: &str, at: i64) -> HeaderMap {
        let jar = SignedCookieJar::new(session_key(token)).add(Cookie::new(COOKIE, at.to_string()));
        let set = jar.into_response();
        let value = set.headers()[header::SET_COOKIE].to_str().unwrap();
        let pair = value.split(';').next().unwrap().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, pair.parse().unwrap());
        headers
    }

    #[test]
    fn a_session_is_signed_by_the_token_and_ends_after_twelve_hours() {
        let at = 1_800_000_000_000;
        let headers = cookie_from("token-a", at);
        assert!(session_valid("token-a", &headers, at + 1_000));
        assert!(session_valid(
            "token-a",
            &headers,
            at + SESSION.as_millis() as i64 - 1
        ));
        assert!(!session_valid(
            "token-a",
            &headers,
            at + SESSION.as_millis() as i64
        ));
        // Another token (ADMIN_TOKEN changed) does not accept it.
        assert!(!session_valid("token-b", &headers, at + 1_000));
        // A cookie whose value was edited (a later sign-in time) fails its signature.
        let forged = headers[header::COOKIE]
            .to_str()
            .unwrap()
            .replace(&at.to_string(), &(at + 3_600_000).to_string());
        let mut edited = HeaderMap::new();
        edited.insert(header::COOKIE, forged.parse().unwrap());
        assert!(!session_valid("token-a", &edited, at + 1_000));
        // The unsigned value alone is refused.
        let mut plain = HeaderMap::new();
        plain.insert(header::COOKIE, format!("{COOKIE}={at}").parse().unwrap());
        assert!(!session_valid("token-a", &plain, at + 1_000));
    }
}
