//! `GET /dashboard`: the service's figures as a page (server-rendered with tera), for operators.
//! Access: `Authorization: Bearer $ADMIN_TOKEN`, or a session cookie set by signing in with the
//! token at `POST /dashboard/login`. The cookie holds an HMAC of the token (no server state;
//! changing ADMIN_TOKEN ends every session).

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

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

fn session_value(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(b"dashboard-session-v1");
    hex::encode(mac.finalize().into_bytes())
}

fn signed_in(s: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &s.settings.admin_token else {
        return false;
    };
    if bearer(headers).is_some_and(|b| same_secret(b, token.expose())) {
        return true;
    }
    let expected = session_value(token.expose());
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")))
        .any(|v| same_secret(v, &expected))
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
    if let Ok(dead) = s.outbox.list("dead", 5).await {
        for item in dead {
            errors.push(json!({
                "source": format!("outbox #{} ({})", item.id, crate::mask::email(&item.email)),
                "message": item.last_error.unwrap_or_default(),
            }));
        }
    }
    v["errors"] = json!(errors);
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
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200{}",
        session_value(expected.expose()),
        if https { "; Secure" } else { "" }
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
}
