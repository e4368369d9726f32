//! HubSpot's OAuth, as an app that customers install sees it.
//!
//! - `GET /oauth/authorize`: the install. With a `portal` query parameter, or when the
//!   simulator has one portal, it redirects at once to `redirect_uri?code=…&state=…`; otherwise
//!   it shows a page to choose the portal (plain links, followable by a browser or by curl).
//!   `deny=1` (or choosing "Deny" on the page) redirects with `error=access_denied`.
//! - `POST /oauth/2026-03/token` and the legacy `POST /oauth/v1/token` (form body):
//!   `authorization_code` (a code is single-use, lives [`CODE_TTL`], and is bound to its client
//!   and `redirect_uri`) and `refresh_token` (the refresh token stays; a new access token,
//!   living `--access-token-ttl`, is issued). Errors are RFC 6749's (`invalid_request`,
//!   `invalid_client`, `invalid_grant`, `unsupported_grant_type`); the legacy path also says
//!   `BAD_REFRESH_TOKEN` for a refresh token it does not accept, as HubSpot's did.
//! - `POST /oauth/2026-03/token/introspect` (RFC 7662) and `/token/revoke` (RFC 7009: revoking
//!   a refresh token ends its access tokens too).
//! - `GET /oauth/v1/access-tokens/{token}`: the token-info call HubSpot's official clients make.
//!
//! Every access token belongs to one portal (hub id) and one client: the [`gate`](crate::gate)
//! resolves it to an [`Installation`] and applies that installation's rate windows; an expired
//! one gets HubSpot's `EXPIRED_AUTHENTICATION` 401.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, RawForm, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::Shared;

/// How long an authorization code can be exchanged.
pub const CODE_TTL: Duration = Duration::from_secs(300);

/// One app installed in one portal: what an access token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Installation {
    pub client_id: String,
    pub hub_id: u64,
}

#[derive(Debug, Clone)]
struct Code {
    install: Installation,
    redirect_uri: String,
    scopes: Vec<String>,
    issued: Instant,
    used: bool,
}

#[derive(Debug, Clone)]
struct Access {
    install: Installation,
    scopes: Vec<String>,
    expires: Instant,
    refresh: String,
}

#[derive(Debug, Clone)]
struct Refresh {
    install: Installation,
    scopes: Vec<String>,
    revoked: bool,
}

/// What a bearer token is, to the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// A live OAuth access token.
    Live(Installation),
    /// An OAuth access token past its expiry, by this much.
    Expired(Duration),
    /// Not an OAuth token (a private-app token, or nothing the simulator issued).
    Other,
}

/// The OAuth server's state: issued codes and tokens.
#[derive(Debug, Default)]
pub struct OAuth {
    inner: Mutex<Tokens>,
}

#[derive(Debug, Default)]
struct Tokens {
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    /// Token grants answered, by grant type (for tests counting refreshes).
    grants: HashMap<String, u64>,
}

fn random_token(prefix: &str) -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

impl OAuth {
    /// What `token` is now.
    pub fn bearer(&self, token: &str) -> Bearer {
        let tokens = self.inner.lock();
        match tokens.access.get(token) {
            None => Bearer::Other,
            Some(a) => {
                let now = Instant::now();
                let revoked = tokens.refresh.get(&a.refresh).is_none_or(|r| r.revoked);
                if revoked {
                    Bearer::Expired(Duration::ZERO)
                } else if now >= a.expires {
                    Bearer::Expired(now - a.expires)
                } else {
                    Bearer::Live(a.install.clone())
                }
            }
        }
    }

    /// Token grants answered so far, by grant type (`/_sim/oauth`).
    pub fn grants(&self) -> HashMap<String, u64> {
        self.inner.lock().grants.clone()
    }

    /// Every access token issued: (token, its refresh token, hub id), for tests that look for
    /// tokens where they must not be.
    pub fn issued(&self) -> Vec<Value> {
        let tokens = self.inner.lock();
        tokens
            .access
            .iter()
            .map(|(token, a)| {
                json!({"access_token": token, "refresh_token": a.refresh, "hub_id": a.install.hub_id})
            })
            .collect()
    }

    pub fn reset(&self) {
        *self.inner.lock() = Tokens::default();
    }
}

/// RFC 6749's error answer.
fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let description = description.into();
    (
        status,
        Json(json!({
            "error": error,
            "error_description": description,
            "status": if error == "invalid_grant" { "BAD_REFRESH_TOKEN" } else { "error" },
            "message": description,
            "correlationId": crate::error::correlation_id(),
        })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    optional_scopes: Option<String>,
    state: Option<String>,
    portal: Option<u64>,
    deny: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /oauth/authorize`.
pub async fn authorize(State(state): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    let bad = |message: &str| {
        (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<!doctype html><title>Install failed</title><h1>Install failed</h1><p>{}</p>",
                escape(message)
            )),
        )
            .into_response()
    };
    let Some(client_id) = q.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return bad("client_id is missing.");
    };
    if !state
        .config
        .oauth_clients
        .iter()
        .any(|(id, _)| id == client_id)
    {
        return bad(&format!("No app has the client_id '{client_id}'."));
    }
    let Some(redirect) = q
        .redirect_uri
        .as_deref()
        .and_then(|r| reqwest::Url::parse(r).ok())
    else {
        return bad("redirect_uri is missing or not a URL.");
    };
    let scopes: Vec<String> = q
        .scope
        .iter()
        .chain(q.optional_scopes.iter())
        .flat_map(|s| s.split([' ', '+', ',']))
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let back = |params: &[(&str, &str)]| {
        let mut url = redirect.clone();
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in params {
                pairs.append_pair(k, v);
            }
            if let Some(s) = &q.state {
                pairs.append_pair("state", s);
            }
        }
        (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
    };
    if q.deny.is_some() {
        return back(&[
            ("error", "access_denied"),
            ("error_description", "The user denied the install."),
        ]);
    }
    let portals = state.config.portals();
    let chosen = match (q.portal, portals.as_slice()) {
        (Some(p), _) if portals.contains(&p) => p,
        (Some(p), _) => return bad(&format!("There is no portal {p}.")),
        (None, [only]) => *only,
        (None, _) => {
            // The choice: the same request again, with a portal (or a denial) named.
            let mut links = String::new();
            let base = format!(
                "/oauth/authorize?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", client_id)
                    .append_pair("redirect_uri", redirect.as_str())
                    .append_pair("scope", q.scope.as_deref().unwrap_or_default())
                    .append_pair("state", q.state.as_deref().unwrap_or_default())
                    .finish()
            );
            for p in &portals {
                links.push_str(&format!(
                    "<li><a class=\"portal\" href=\"{}&amp;portal={p}\">Portal {p}</a></li>",
                    escape(&base)
                ));
            }
            return Html(format!(
                "<!doctype html><title>Choose an account</title><h1>Choose an account</h1>\
                 <p>The app asks for: {}</p><ul>{links}</ul>\
                 <p><a class=\"deny\" href=\"{}&amp;deny=1\">Deny</a></p>",
                escape(&scopes.join(", ")),
                escape(&base)
            ))
            .into_response();
        }
    };
    let code = random_token("code");
    state.oauth.inner.lock().codes.insert(
        code.clone(),
        Code {
            install: Installation {
                client_id: client_id.to_string(),
                hub_id: chosen,
            },
            redirect_uri: redirect.to_string(),
            scopes,
            issued: Instant::now(),
            used: false,
        },
    );
    back(&[("code", &code)])
}

/// The form of a token request (RFC 6749 §4.1.3, §6).
fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `POST /oauth/2026-03/token` and `POST /oauth/v1/token`.
pub async fn token(State(state): State<Shared>, RawForm(body): RawForm) -> Response {
    let f = form(&body);
    let get = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("client_id").is_none() || get("client_secret").is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and client_secret are required in the form body",
        );
    }
    let Some(client) = client_of(&state, &f) else {
        return bad_client();
    };
    let client_id = client.as_str();
    let ttl = state.config.access_token_ttl;
    let mut tokens = state.oauth.inner.lock();
    let grant = get("grant_type").unwrap_or_default().to_string();
    let (install, scopes, refresh) = match grant.as_str() {
        "authorization_code" => {
            let Some(code) = get("code") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code is required",
                );
            };
            let Some(c) = tokens.codes.get_mut(code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
            };
            if c.used {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code already used",
                );
            }
            if c.issued.elapsed() >= CODE_TTL {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code expired");
            }
            if c.install.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code was issued to another client",
                );
            }
            if get("redirect_uri") != Some(c.redirect_uri.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri does not match the one the code was issued for",
                );
            }
            c.used = true;
            let (install, scopes) = (c.install.clone(), c.scopes.clone());
            let refresh = random_token("refresh");
            tokens.refresh.insert(
                refresh.clone(),
                Refresh {
                    install: install.clone(),
                    scopes: scopes.clone(),
                    revoked: false,
                },
            );
            (install, scopes, refresh)
        }
        "refresh_token" => {
            let Some(r) = get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            match tokens.refresh.get(r) {
                Some(found) if !found.revoked && found.install.client_id == client_id => {
                    (found.install.clone(), found.scopes.clone(), r.to_string())
                }
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "missing or unknown refresh token",
                    )
                }
            }
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                "grant_type '{other}' is not supported; use authorization_code or refresh_token"
            ),
            )
        }
    };
    let access = random_token("access");
    tokens.access.insert(
        access.clone(),
        Access {
            install: install.clone(),
            scopes,
            expires: Instant::now() + ttl,
            refresh: refresh.clone(),
        },
    );
    *tokens.grants.entry(grant).or_default() += 1;
    Json(json!({
        "token_type": "bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": ttl.as_secs(),
        "hub_id": install.hub_id,
    }))
    .into_response()
}

/// Whether the form's `client_id` and `client_secret` name a configured app; its id if so.
fn client_of(state: &Shared, f: &HashMap<String, String>) -> Option<String> {
    let id = f.get("client_id")?;
    let secret = f.get("client_secret")?;
    state
        .config
        .oauth_clients
        .iter()
        .any(|(i, s)| i == id && s == secret)
        .then(|| id.clone())
}

fn bad_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "unknown client_id or wrong client_secret",
    )
}

/// `POST /oauth/2026-03/token/introspect` (RFC 7662).
pub async fn introspect(State(state): State<Shared>, RawForm(body): RawForm) -> Response {
    let f = form(&body);
    let Some(client) = client_of(&state, &f) else {
        return bad_client();
    };
    let token = f.get("token").cloned().unwrap_or_default();
    let tokens = state.oauth.inner.lock();
    let now = Instant::now();
    let answer = if let Some(a) = tokens.access.get(&token) {
        let live = now < a.expires && tokens.refresh.get(&a.refresh).is_some_and(|r| !r.revoked);
        (live && a.install.client_id == client).then(|| {
            let exp = chrono::Utc::now().timestamp() + (a.expires - now).as_secs() as i64;
            json!({"active": true, "token_type": "access_token", "client_id": client,
                   "hub_id": a.install.hub_id, "scope": a.scopes.join(" "), "exp": exp})
        })
    } else if let Some(r) = tokens.refresh.get(&token) {
        (!r.revoked && r.install.client_id == client).then(|| {
            json!({"active": true, "token_type": "refresh_token", "client_id": client,
                   "hub_id": r.install.hub_id, "scope": r.scopes.join(" ")})
        })
    } else {
        None
    };
    Json(answer.unwrap_or_else(|| json!({"active": false}))).into_response()
}

/// `POST /oauth/2026-03/token/revoke` (RFC 7009): 200 whether or not the token was known.
pub async fn revoke(State(state): State<Shared>, RawForm(body): RawForm) -> Response {
    let f = form(&body);
    let Some(client) = client_of(&state, &f) else {
        return bad_client();
    };
    let token = f.get("token").cloned().unwrap_or_default();
    let mut tokens = state.oauth.inner.lock();
    if let Some(r) = tokens.refresh.get_mut(&token) {
        if r.install.client_id == client {
            r.revoked = true; // its access tokens die with it (see `bearer`)
        }
    } else if tokens
        .access
        .get(&token)
        .is_some_and(|a| a.install.client_id == client)
    {
        tokens.access.remove(&token);
    }
    StatusCode::OK.into_response()
}

/// `GET /oauth/v1/access-tokens/{token}`: what the official clients ask about a token.
pub async fn token_info(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tokens = state.oauth.inner.lock();
    let a = tokens
        .access
        .get(&token)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Token not found"))?;
    let now = Instant::now();
    if now >= a.expires {
        return Err(ApiError::expired(now - a.expires));
    }
    let app_id = state.config.app_id;
    Ok(Json(json!({
        "token": token,
        "user": "installer@example.com",
        "hub_domain": format!("portal-{}.hubspot.example", a.install.hub_id),
        "scopes": a.scopes,
        "hub_id": a.install.hub_id,
        "app_id": app_id,
        "expires_in": (a.expires - now).as_secs(),
        "user_id": 1,
        "token_type": "access",
    })))
}

/// `GET /_sim/oauth`: token grants by type, and the tokens issued.
pub async fn admin_grants(State(state): State<Shared>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "grants": state.oauth.grants(), "issued": state.oauth.issued() })),
    )
}
