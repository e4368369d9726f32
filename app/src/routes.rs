//! The HTTP API: `fn router(state) -> Router`, separate from serving so tests can drive it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::Settings;
use crate::contacts::{present, ContactInput, ContactRequest, Email};
use crate::db::AuditSubject;
use crate::hubspot::{HubSpotClient, HubSpotError};

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    /// `None` when HubSpot is disabled.
    pub hubspot: Option<Arc<HubSpotClient>>,
    pub db: crate::db::Db,
    pub outbox: crate::outbox::Outbox,
    pub inbox: crate::webhooks::Inbox,
    pub cache: crate::cache::Cache,
    pub sync: crate::sync::Sync,
    /// Open connections and the drain flag (see [`crate::serve`]).
    pub drain: std::sync::Arc<crate::serve::Drain>,
}

pub type Shared = Arc<AppState>;

/// Who may reach a route through the front door (nginx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Users, operators or HubSpot reach it from outside: nginx must proxy it.
    Public,
    /// For this machine only (scrapers, probes inside the network): nginx answers 404.
    Internal,
}

/// One route of the app: its path (axum syntax) and its exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub path: &'static str,
    pub exposure: Exposure,
}

/// The router and the table of its routes, built together so that no route can exist without
/// saying who may reach it (the nginx template is checked against this table).
struct Table {
    router: Router<Shared>,
    routes: Vec<RouteInfo>,
}

impl Table {
    fn route(
        mut self,
        path: &'static str,
        exposure: Exposure,
        method: axum::routing::MethodRouter<Shared>,
    ) -> Self {
        self.router = self.router.route(path, method);
        self.routes.push(RouteInfo { path, exposure });
        self
    }
}

fn table() -> Table {
    use axum::routing::post;
    use Exposure::{Internal, Public};
    Table {
        router: Router::new(),
        routes: Vec::new(),
    }
    .route("/health", Public, get(health))
    .route("/ready", Public, get(ready))
    .route(
        "/api/hubspot/test",
        Public,
        get(hubspot_test)
            .post(hubspot_test_upsert)
            .layer(DefaultBodyLimit::max(MAX_CONTACT_BODY)),
    )
    .route(
        "/api/contacts",
        Public,
        get(contact_by_email)
            .post(enqueue_contacts)
            .layer(DefaultBodyLimit::max(MAX_ENQUEUE_BODY)),
    )
    .route("/api/outbox", Public, get(list_outbox))
    .route(
        "/webhooks/hubspot",
        Public,
        post(webhook).layer(DefaultBodyLimit::max(crate::webhooks::MAX_BODY)),
    )
    .route(
        "/api/contacts/lookup",
        Public,
        get(lookup_phone).post(lookup_phones),
    )
    .route("/api/stats", Public, get(stats))
    .route("/api/sync/run", Public, post(run_sync))
    .route("/dashboard", Public, get(crate::dashboard::page))
    .route("/dashboard/login", Public, post(crate::dashboard::login))
    .route("/metrics", Internal, get(metrics))
    .route("/api/outbox/{id}/retry", Public, post(retry_outbox))
    .route("/api/contacts/search", Public, get(search_contacts))
}

/// Every route the app serves, with its exposure.
pub fn route_table() -> Vec<RouteInfo> {
    table().routes
}

pub fn router(state: Shared) -> Router {
    let drain = state.drain.clone();
    table()
        .router
        .layer(axum::middleware::from_fn_with_state(
            drain,
            crate::serve::close_when_draining,
        ))
        .layer(
            // Spans name the method and the path only: query strings (emails, phones) stay out.
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("request", method = %req.method(), path = %crate::mask::text(req.uri().path()))
                })
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

/// Liveness: answers at once, with what the deployer needs to see (version, slot, drain).
async fn health(State(s): State<Shared>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": s.settings.version,
        "slot": s.settings.slot,
        "draining": s.drain.is_draining(),
        "connections": s.drain.open_connections(),
    }))
}

/// Ready when the configuration is valid (it is, or the process would not have started), the
/// database answers and the process is not draining; 503 with the reasons otherwise. A HubSpot
/// outage makes the service degraded, never unready.
async fn ready(State(s): State<Shared>) -> (StatusCode, Json<Value>) {
    let mut reasons = Vec::new();
    if let Err(e) = s.db.ping(std::time::Duration::from_secs(2)).await {
        reasons.push(e);
    }
    if s.drain.is_draining() {
        reasons.push("draining: this process is shutting down".to_string());
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let database = if reasons.iter().any(|r| r.starts_with("database")) {
        "error"
    } else {
        "ok"
    };
    let body = json!({
        "ready": reasons.is_empty(),
        "reasons": reasons,
        "checks": {"config": "ok", "database": database},
        "version": s.settings.version,
        "slot": s.settings.slot,
    });
    (status, Json(body))
}

async fn hubspot_test(State(s): State<Shared>) -> (StatusCode, Json<Value>) {
    let (version, slot) = (&s.settings.version, &s.settings.slot);
    let Some(client) = &s.hubspot else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "disabled",
                "message": "HubSpot integration is disabled (HUBSPOT_ENABLED=false)",
                "hubspot": {"reachable": null, "authenticated": null},
                "version": version, "slot": slot,
            })),
        );
    };
    let budget = client.budget();
    let rate_limit = json!({
        "max": budget.max,
        "window_ms": budget.window.as_millis(),
        "used_in_window": budget.used,
    });
    match client.account_details().await {
        Ok((details, latency)) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "hubspot": {
                    "reachable": true,
                    "authenticated": true,
                    "portal_id": details.portal_id,
                    "latency_ms": latency.as_millis(),
                },
                "rate_limit": rate_limit,
                "version": version, "slot": slot,
            })),
        ),
        Err(err) => {
            let (status, mut body) = failure(&err);
            body["rate_limit"] = rate_limit;
            body["version"] = json!(version);
            body["slot"] = json!(slot);
            (status, Json(body))
        }
    }
}

/// How a failed HubSpot call is reported: 504 for a timeout, 502 otherwise, with a message that
/// says what to do and HubSpot's correlation id when there is one. Never echoes the token.
fn failure(err: &HubSpotError) -> (StatusCode, Value) {
    let (status, reachable, authenticated, message) = match err {
        HubSpotError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, false, Value::Null, err.to_string()),
        HubSpotError::Unreachable(_) => (StatusCode::BAD_GATEWAY, false, Value::Null, err.to_string()),
        e if e.is_auth() => (
            StatusCode::BAD_GATEWAY,
            true,
            Value::Bool(false),
            "HubSpot rejected the access token; check HUBSPOT_ACCESS_TOKEN and the private app's scopes".to_string(),
        ),
        _ => (StatusCode::BAD_GATEWAY, true, Value::Null, err.to_string()),
    };
    tracing::warn!(error = %crate::mask::text(&err.to_string()), "HubSpot call failed");
    let correlation_id = match err {
        HubSpotError::Api { body, .. } => body.correlation_id.clone(),
        _ => None,
    };
    (
        status,
        json!({
            "status": "error",
            "message": message,
            "hubspot": {"reachable": reachable, "authenticated": authenticated, "correlation_id": correlation_id},
        }),
    )
}

/// Largest body `POST /api/hubspot/test` accepts.
pub const MAX_CONTACT_BODY: usize = 16 * 1024;

/// A body that could not be read: 413 when it is over `limit` (the honest status: the request
/// is fine but too big), 400 otherwise.
fn unreadable_body(
    rejection: axum::extract::rejection::BytesRejection,
    limit: usize,
) -> (StatusCode, Json<Value>) {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({
                "status": "too_large",
                "message": format!("body: larger than {} KiB; send less (for many contacts, POST /api/contacts takes up to 1000 at once)", limit / 1024),
            })),
        )
    } else {
        bad_input(format!("body: {}", rejection.body_text()))
    }
}

fn bad_input(message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "invalid", "message": message.into()})),
    )
}

/// `POST /api/hubspot/test`: upserts one contact by email and answers `{id, created}`.
async fn hubspot_test_upsert(
    State(s): State<Shared>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> (StatusCode, Json<Value>) {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return unreadable_body(rejection, MAX_CONTACT_BODY),
    };
    let request: ContactRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_input(format!("body: {e}")),
    };
    let contact = match ContactInput::from_request(request, s.settings.phone_region) {
        Ok(c) => c,
        Err(message) => return bad_input(message),
    };
    let Some(client) = &s.hubspot else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "disabled", "message": "HubSpot integration is disabled (HUBSPOT_ENABLED=false)"}),
            ),
        );
    };
    if !s.settings.hubspot.send_live {
        tracing::info!("dry run: contact validated, not sent (HUBSPOT_SEND_LIVE=false)");
        return (
            StatusCode::OK,
            Json(json!({"id": null, "created": false, "dry_run": true})),
        );
    }
    match client.upsert_contacts(std::slice::from_ref(&contact)).await {
        Ok(mut results) => match results.pop() {
            Some(Ok(done)) => (
                StatusCode::OK,
                Json(json!({"id": done.id, "created": done.created})),
            ),
            Some(Err(message)) => bad_input(format!("HubSpot refused the contact: {message}")),
            None => (
                StatusCode::BAD_GATEWAY,
                Json(json!({"status": "error", "message": "HubSpot returned no result"})),
            ),
        },
        Err(err) => {
            let (status, body) = failure(&err);
            (status, Json(body))
        }
    }
}

type Reply = (StatusCode, Json<Value>);

/// Admin routes need `Authorization: Bearer $ADMIN_TOKEN`, compared in constant time.
fn admin(s: &AppState, headers: &HeaderMap) -> Result<(), Reply> {
    let Some(expected) = &s.settings.admin_token else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "disabled", "message": "admin API is off: set ADMIN_TOKEN to enable it"}),
            ),
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        expected.expose().as_bytes(),
    )) {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"status": "unauthorized", "message": "send Authorization: Bearer <ADMIN_TOKEN>"}),
            ),
        ))
    }
}

/// Extracting it admits only requests carrying the admin token.
pub struct AdminAuth;

impl axum::extract::FromRequestParts<Shared> for AdminAuth {
    type Rejection = Reply;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared,
    ) -> Result<Self, Reply> {
        admin(state, &parts.headers).map(|()| AdminAuth)
    }
}

fn hubspot_client(s: &AppState) -> Result<&Arc<HubSpotClient>, Reply> {
    s.hubspot.as_ref().ok_or_else(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "disabled", "message": "HubSpot integration is disabled (HUBSPOT_ENABLED=false)"})),
        )
    })
}

fn hubspot_failure(err: &HubSpotError) -> Reply {
    let (status, body) = failure(err);
    (status, Json(body))
}

#[derive(Debug, serde::Deserialize)]
struct EmailQuery {
    email: String,
}

/// `GET /api/contacts?email=…`: one contact by email (HubSpot's `idProperty=email` read, which
/// does not lag like search).
async fn contact_by_email(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<EmailQuery>, QueryRejection>,
) -> Result<Reply, Reply> {
    let Query(q) =
        q.map_err(|_| bad_input("email: missing; call /api/contacts?email=ada@example.com"))?;
    let email = Email::parse(&q.email).map_err(bad_input)?;
    let found = hubspot_client(&s)?
        .contact_by_email(&email)
        .await
        .map_err(|e| hubspot_failure(&e))?;
    let outcome = if found.is_some() {
        "found"
    } else {
        "not found"
    };
    s.db.audit(
        "admin",
        "lookup",
        AuditSubject::Email(email.as_str()),
        outcome,
    )
    .await;
    Ok(match found {
        Some(object) => (StatusCode::OK, Json(present(&object))),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"status": "not_found", "message": "no contact has that email"})),
        ),
    })
}

#[derive(Debug, serde::Deserialize)]
struct SearchQuery {
    q: String,
}

/// `GET /api/contacts/search?q=…`: by email (exact), by phone (normalized to E.164), or by
/// name (HubSpot's free-text query). Results come from HubSpot's search index, which lags.
async fn search_contacts(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Reply, Reply> {
    let q = q.map(|Query(q)| q.q.trim().to_string()).unwrap_or_default();
    if q.is_empty() || q.chars().count() > 3000 {
        return Err(bad_input(
            "q: give a name, an email or a phone number (at most 3000 characters)",
        ));
    }
    let properties: Vec<&str> = crate::contacts::READ_PROPERTIES.split(',').collect();
    let (kind, subject, request) = if q.contains('@') {
        let email = Email::parse(&q).map_err(bad_input)?;
        (
            "email",
            email.as_str().to_string(),
            json!({
                "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email.as_str()}]}],
                "properties": properties, "limit": 100,
            }),
        )
    } else if q.chars().filter(char::is_ascii_digit).count() >= 7 {
        let phone =
            crate::contacts::normalize_phone(&q, s.settings.phone_region).map_err(bad_input)?;
        (
            "phone",
            phone.clone(),
            json!({"query": phone, "properties": properties, "limit": 100}),
        )
    } else {
        (
            "name",
            q.clone(),
            json!({"query": q, "properties": properties, "limit": 100}),
        )
    };
    let found = hubspot_client(&s)?
        .search_contacts(&request)
        .await
        .map_err(|e| hubspot_failure(&e))?;
    let results: Vec<Value> = found["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(present)
        .collect();
    let subject = match kind {
        "phone" => AuditSubject::Phone(&subject),
        "email" => AuditSubject::Email(&subject),
        _ => AuditSubject::Text(&subject),
    };
    s.db.audit(
        "admin",
        &format!("search by {kind}"),
        subject,
        &format!("{} results", results.len()),
    )
    .await;
    Ok((
        StatusCode::OK,
        Json(json!({"matched_by": kind, "total": found["total"], "results": results})),
    ))
}

/// Largest body `POST /api/contacts` accepts (up to [`MAX_ENQUEUE`] contacts).
pub const MAX_ENQUEUE_BODY: usize = 1024 * 1024;
pub const MAX_ENQUEUE: usize = 1000;

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum EnqueueBody {
    Many { contacts: Vec<Value> },
    One(Value),
}

/// `POST /api/contacts`: one contact, or `{"contacts": [...]}` (≤ 1000). Validated, stored in the
/// outbox, answered 202 at once; the worker sends them.
async fn enqueue_contacts(
    _: AdminAuth,
    State(s): State<Shared>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Reply, Reply> {
    let body = body.map_err(|rejection| unreadable_body(rejection, MAX_ENQUEUE_BODY))?;
    let parsed: EnqueueBody =
        serde_json::from_slice(&body).map_err(|e| bad_input(format!("body: {e}")))?;
    let raw = match parsed {
        EnqueueBody::Many { contacts } => contacts,
        EnqueueBody::One(one) => vec![one],
    };
    if raw.is_empty() || raw.len() > MAX_ENQUEUE {
        return Err(bad_input(format!(
            "contacts: send 1 to {MAX_ENQUEUE} contacts per request"
        )));
    }
    let mut inputs = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        let where_ = |m: String| {
            if inputs.capacity() > 1 {
                bad_input(format!("contacts[{i}]: {m}"))
            } else {
                bad_input(m)
            }
        };
        let request: ContactRequest =
            serde_json::from_value(value).map_err(|e| where_(format!("body: {e}")))?;
        inputs.push(ContactInput::from_request(request, s.settings.phone_region).map_err(where_)?);
    }
    let ids = s.outbox.enqueue(&inputs).await.map_err(|e| {
        tracing::error!(error = %e, "outbox enqueue failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "message": "could not store the contacts; nothing was queued, send again"})),
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "queued", "queued": ids.len(), "ids": ids})),
    ))
}

#[derive(Debug, serde::Deserialize)]
struct OutboxQuery {
    #[serde(default = "dead")]
    state: String,
}

fn dead() -> String {
    "dead".into()
}

/// `GET /api/outbox?state=dead|pending|sent`: items and the queue's depth.
async fn list_outbox(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Reply, Reply> {
    let state = q.map(|Query(q)| q.state).unwrap_or_else(|_| dead());
    if !["dead", "pending", "sent"].contains(&state.as_str()) {
        return Err(bad_input("state: one of dead, pending, sent"));
    }
    let internal = |e: anyhow::Error| {
        tracing::error!(error = %e, "outbox read failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "message": "database unavailable"})),
        )
    };
    let items = s.outbox.list(&state, 200).await.map_err(internal)?;
    let depth = s.outbox.depth().await.map_err(internal)?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "depth": depth,
            "items": items.iter().map(crate::outbox::present).collect::<Vec<_>>(),
        })),
    ))
}

/// `POST /api/outbox/{id}/retry`: a dead item's write is queued again as the newest write to its
/// contact, less what later writes set (it never overwrites a newer value).
async fn retry_outbox(
    _: AdminAuth,
    State(s): State<Shared>,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Result<Reply, Reply> {
    let replayed = s.outbox.replay(id).await.map_err(|e| {
        tracing::error!(error = %e, "outbox retry failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "message": "database unavailable"})),
        )
    })?;
    if let Some(r) = replayed {
        let status = if r.queued_as.is_some() {
            "queued"
        } else {
            "superseded"
        };
        Ok((
            StatusCode::OK,
            Json(json!({
                "status": status,
                "id": id,
                "queued_as": r.queued_as,
                "kept": r.kept,
                "superseded": r.superseded,
            })),
        ))
    } else {
        Err((
            StatusCode::CONFLICT,
            Json(
                json!({"status": "not_dead", "message": format!("outbox item {id} does not exist or is not dead; only dead items can be retried")}),
            ),
        ))
    }
}

/// `POST /webhooks/hubspot`: verify, record durably, answer at once (processing is async).
async fn webhook(
    State(s): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Reply {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = &s.inbox.stats;
    let reject = |status: StatusCode, message: String| {
        stats.rejected.fetch_add(1, Relaxed);
        tracing::warn!(%status, %message, "webhook rejected");
        (
            status,
            Json(json!({"status": "rejected", "message": message})),
        )
    };
    let Some(secret) = &s.settings.webhook_secret else {
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are off: set HUBSPOT_CLIENT_SECRET to the HubSpot app's client secret".into(),
        );
    };
    let body = match body {
        Ok(b) => b,
        Err(_) => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body: larger than {} KiB", crate::webhooks::MAX_BODY / 1024),
            )
        }
    };
    let public = crate::webhooks::public_uri(&headers, &uri);
    if let Err(e) = crate::webhooks::verify(
        secret.expose(),
        &s.settings.webhook_versions,
        &method,
        &public,
        &headers,
        &body,
        crate::outbox::now_ms(),
    ) {
        return reject(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let events = match crate::webhooks::parse(&body) {
        Ok(e) => e,
        Err(message) => return reject(StatusCode::BAD_REQUEST, message),
    };
    match s.inbox.record(&events).await {
        Ok((new, duplicates)) => {
            stats.accepted.fetch_add(new as u64, Relaxed);
            stats.duplicates.fetch_add(duplicates as u64, Relaxed);
            (
                StatusCode::OK,
                Json(json!({"status": "accepted", "accepted": new, "duplicates": duplicates})),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record webhook events");
            // Not recorded: a 5xx makes HubSpot deliver again.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"status": "error", "message": "could not record the events; HubSpot will retry"}),
                ),
            )
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct PhoneQuery {
    phone: String,
}

async fn lookup_one(s: &AppState, raw: &str) -> Result<Value, Reply> {
    let phone =
        crate::contacts::normalize_phone(raw, s.settings.phone_region).map_err(bad_input)?;
    let found = s
        .cache
        .lookup_phone(s.hubspot.as_deref(), &phone)
        .await
        .map_err(|e| hubspot_failure(&e))?;
    s.db.audit(
        "admin",
        "lookup by phone",
        AuditSubject::Phone(&phone),
        if found["found"] == true {
            "found"
        } else {
            "not found"
        },
    )
    .await;
    Ok(found)
}

/// `GET /api/contacts/lookup?phone=…`: from the cache, else HubSpot; stale cache when HubSpot
/// is down.
async fn lookup_phone(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<PhoneQuery>, QueryRejection>,
) -> Result<Reply, Reply> {
    let Query(q) =
        q.map_err(|_| bad_input("phone: missing; call /api/contacts/lookup?phone=%2B14155550100"))?;
    Ok((StatusCode::OK, Json(lookup_one(&s, &q.phone).await?)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PhonesBody {
    phones: Vec<String>,
}

/// `POST /api/contacts/lookup` with `{"phones": [...]}` (≤ 100): one answer per phone, in order.
async fn lookup_phones(
    _: AdminAuth,
    State(s): State<Shared>,
    body: Result<Json<PhonesBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Reply, Reply> {
    let Json(body) = body.map_err(|e| bad_input(format!("body: {}", e.body_text())))?;
    if body.phones.is_empty() || body.phones.len() > 100 {
        return Err(bad_input("phones: send 1 to 100 phone numbers"));
    }
    let mut results = Vec::with_capacity(body.phones.len());
    for raw in &body.phones {
        results.push(match lookup_one(&s, raw).await {
            Ok(v) => v,
            Err((status, Json(e))) => {
                json!({"phone": raw, "error": e["message"], "status": status.as_u16()})
            }
        });
    }
    Ok((StatusCode::OK, Json(json!({"results": results}))))
}

/// The figures `/api/stats`, `/metrics` and the dashboard show.
pub async fn collect_stats(s: &AppState) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let depth = s.outbox.depth().await.ok();
    let w = &s.inbox.stats;
    let c = s.cache.stats();
    let (hits, misses) = (c.hits.load(Relaxed), c.misses.load(Relaxed));
    json!({
        "version": s.settings.version,
        "slot": s.settings.slot,
        "outbox": depth,
        "webhooks": {
            "accepted": w.accepted.load(Relaxed),
            "duplicates": w.duplicates.load(Relaxed),
            "rejected": w.rejected.load(Relaxed),
            "processed": w.processed.load(Relaxed),
        },
        "cache": {
            "entries": s.cache.len().await.ok(),
            "hits": hits,
            "misses": misses,
            "stale_served": c.stale_served.load(Relaxed),
            "hit_rate": if hits + misses == 0 { Value::Null } else { json!(hits as f64 / (hits + misses) as f64) },
        },
        "sync": s.sync.status().await.ok(),
        "hubspot": s.hubspot.as_ref().map(|h| {
            let st = &h.stats;
            let attempts = st.attempts.load(Relaxed);
            json!({
                "attempts": attempts,
                "failures": st.failures.load(Relaxed),
                "rate_limited": st.rate_limited.load(Relaxed),
                "latency_mean_ms": if attempts == 0 { 0.0 } else { (st.latency_total_us.load(Relaxed) as f64 / attempts as f64 / 100.0).round() / 10.0 },
                "latency_max_ms": (st.latency_max_us.load(Relaxed) as f64 / 100.0).round() / 10.0,
            })
        }).unwrap_or_else(|| json!({"attempts": 0, "failures": 0, "rate_limited": 0, "latency_mean_ms": 0, "latency_max_ms": 0})),
        "connections": s.drain.open_connections(),
    })
}

/// `POST /api/sync/run` (admin): starts a pull sync now; 202, or 409 when one is running.
async fn run_sync(_: AdminAuth, State(s): State<Shared>) -> Result<Reply, Reply> {
    let client = hubspot_client(&s)?.clone();
    let status = s.sync.status().await.map_err(|e| {
        tracing::error!(error = %e, "sync status");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "message": "database unavailable"})),
        )
    })?;
    if status.status == "syncing" {
        return Err((
            StatusCode::CONFLICT,
            Json(
                json!({"status": "running", "message": "a sync is already running", "sync": status}),
            ),
        ));
    }
    let sync = s.sync.clone();
    tokio::spawn(async move {
        if let Err(e) = sync.run(&client).await {
            tracing::warn!(error = %crate::mask::text(&e.to_string()), "requested sync did not finish");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "started"}))))
}

/// `GET /api/stats` (admin): the service's figures as JSON.
async fn stats(_: AdminAuth, State(s): State<Shared>) -> Json<Value> {
    Json(collect_stats(&s).await)
}

/// `GET /metrics`: the same figures in Prometheus' text format.
async fn metrics(State(s): State<Shared>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let v = collect_stats(&s).await;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, Value)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            if let Some(n) = value.as_f64() {
                out.push_str(&format!("{name}{labels} {n}\n"));
            }
        }
    };
    let o = &v["outbox"];
    metric(
        "app_outbox_items",
        "gauge",
        "Outbox items by state.",
        ["pending", "leased", "sent", "dead"]
            .iter()
            .map(|st| (format!("{{state=\"{st}\"}}"), o[st].clone()))
            .collect(),
    );
    let w = &v["webhooks"];
    metric(
        "app_webhook_events_total",
        "counter",
        "Webhook events by outcome.",
        ["accepted", "duplicates", "rejected", "processed"]
            .iter()
            .map(|k| (format!("{{outcome=\"{k}\"}}"), w[k].clone()))
            .collect(),
    );
    let c = &v["cache"];
    metric(
        "app_cache_lookups_total",
        "counter",
        "Phone lookups by cache outcome.",
        [
            ("hit", "hits"),
            ("miss", "misses"),
            ("stale", "stale_served"),
        ]
        .iter()
        .map(|(l, k)| (format!("{{result=\"{l}\"}}"), c[k].clone()))
        .collect(),
    );
    metric(
        "app_cache_entries",
        "gauge",
        "Contacts in the cache.",
        vec![(String::new(), c["entries"].clone())],
    );
    metric(
        "app_open_connections",
        "gauge",
        "Open client connections.",
        vec![(String::new(), v["connections"].clone())],
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
}
