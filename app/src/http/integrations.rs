//! `/api/integrations/hubspot/…`: customers connect their HubSpot portals by OAuth, operators
//! see and remove the connections.
//!
//! - `GET …/install` (public): a 302 to HubSpot's install page with a single-use `state`, and
//!   a cookie that binds the install to this browser.
//! - `GET …/callback` (public; HubSpot sends the browser here): a page saying the portal is
//!   connected, or what went wrong (denied, an unknown, used or expired state, another
//!   browser, a refused code). Nothing is stored on any error.
//! - `GET …/status` (admin): every connection, without its tokens.
//! - `DELETE …/portals/{portalId}[?purge=true]` (admin): uninstall (revoked at HubSpot,
//!   deleted here; the portal's local data kept, or purged when asked).
//!
//! May import: `http::{state, error, auth}`, `connections`, `domain::portal`, `store` (the
//! connection's and the sync status's shapes), `jobs::sync`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admins, Signed, Staff};
use super::error::ApiError;
use super::state::Shared;
use crate::connections::InstallError;
use crate::domain::portal::PortalId;
use crate::store::connections::Connection;

/// The cookie that binds an install to the browser that started it.
const BROWSER_COOKIE: &str = "hubspot_install";
const COOKIE_PATH: &str = "/api/integrations/hubspot";

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>{t}</title><h1>{t}</h1><p id=\"result\">{}</p>\
             <p><a href=\"/api/integrations/hubspot/install\">Connect a HubSpot account</a> · <a href=\"/dashboard\">Dashboard</a></p>",
            escape(text),
            t = escape(title)
        )),
    )
        .into_response()
}

fn https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Starts connecting a HubSpot portal: redirects to HubSpot's install page.
#[utoipa::path(get, path = "/api/integrations/hubspot/install", tag = "integrations", responses(
    (status = 302, description = "To HubSpot's install page; sets the install cookie"),
    (status = 503, description = "OAuth installs are off, or the database failed", body = ApiError)))]
pub async fn install(State(s): State<Shared>, headers: HeaderMap, jar: CookieJar) -> Response {
    match s.portals.begin_install().await {
        Ok(install) => {
            let cookie = Cookie::build((BROWSER_COOKIE, install.browser.expose().to_string()))
                .path(COOKIE_PATH)
                .http_only(true)
                .secure(https(&headers))
                .same_site(SameSite::Lax)
                .max_age(time::Duration::seconds(
                    crate::connections::STATE_TTL.as_secs() as i64,
                ));
            (
                StatusCode::FOUND,
                jar.add(cookie),
                [(header::LOCATION, install.authorize_url.to_string())],
            )
                .into_response()
        }
        Err(InstallError::HubSpot(e)) => ApiError::disabled(e.to_string()).into_response(),
        Err(e) => ApiError::internal(
            &e,
            "starting an install",
            "the install could not start; try again",
        )
        .into_response(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// `access_denied` when the customer said no.
    error: Option<String>,
}

/// Where HubSpot sends the browser after the install: stores the connection.
#[utoipa::path(get, path = "/api/integrations/hubspot/callback", tag = "integrations",
    params(CallbackQuery), responses(
    (status = 200, description = "A page: the portal is connected", content_type = "text/html"),
    (status = 400, description = "A page: denied, or an unknown, used or expired install", content_type = "text/html"),
    (status = 502, description = "A page: HubSpot failed", content_type = "text/html"),
    (status = 503, description = "A page: OAuth installs are off or the database failed", content_type = "text/html")))]
pub async fn callback(
    State(s): State<Shared>,
    Query(q): Query<CallbackQuery>,
    jar: CookieJar,
) -> Response {
    let browser = jar.get(BROWSER_COOKIE).map(|c| c.value().to_string());
    let outcome = s
        .portals
        .finish_install(
            q.code.as_deref(),
            q.state.as_deref(),
            q.error.as_deref(),
            browser.as_deref(),
        )
        .await;
    let jar = jar.remove(Cookie::build(BROWSER_COOKIE).path(COOKIE_PATH));
    if let Ok(connection) = &outcome {
        // Its writes that waited for the reinstall go now.
        if let Err(e) = s.outbox.resume(connection.portal_id).await {
            tracing::warn!(error = %e, "could not resume a portal's waiting writes; they go at their next try");
        }
    }
    let answer = match outcome {
        Ok(connection) => page(
            StatusCode::OK,
            "HubSpot connected",
            &format!("Portal {} is connected.", connection.portal_id),
        ),
        Err(e @ (InstallError::HubSpot(_) | InstallError::Store(_))) => {
            tracing::warn!(error = %crate::mask::text(&e.to_string()), "an install's callback failed");
            let status = match e {
                InstallError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                InstallError::HubSpot(crate::hubspot::HubSpotError::NotConnected(_)) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            page(
                status,
                "HubSpot not connected",
                &format!("{e} Nothing was stored; try again."),
            )
        }
        Err(e) => {
            tracing::info!(error = %crate::mask::text(&e.to_string()), "an install was refused");
            page(
                StatusCode::BAD_REQUEST,
                "HubSpot not connected",
                &e.to_string(),
            )
        }
    };
    (jar, answer).into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Integrations {
    /// Whether customers can connect portals by OAuth here.
    pub oauth: bool,
    pub connections: Vec<Connection>,
    /// The circuit breaker of each portal this process has called, by portal id: `open` while
    /// HubSpot keeps failing for it (its calls fail at once until a probe succeeds).
    pub circuits: std::collections::BTreeMap<String, crate::hubspot::breaker::CircuitState>,
    /// The pull sync of each account kept here (`portalId` null: the private-app token's).
    pub syncs: Vec<crate::store::sync::Status>,
}

/// Every connected portal: state, scopes, token expiry, last refresh, errors.
#[utoipa::path(get, path = "/api/integrations/hubspot/status", tag = "integrations",
    security(("admin" = [])), responses(
    (status = 200, description = "The connections", body = Integrations),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "Admin API off, or the database failed", body = ApiError)))]
pub async fn status(
    _: Signed<Staff>,
    State(s): State<Shared>,
) -> Result<Json<Integrations>, ApiError> {
    let unreadable = |e: crate::store::StoreError| {
        ApiError::internal(
            &e,
            "listing connections",
            "the connections could not be read; try again",
        )
    };
    let connections = s.portals.list().await.map_err(unreadable)?;
    let mut syncs = Vec::new();
    for account in s.portals.accounts().await.map_err(unreadable)? {
        syncs.extend(
            s.sync
                .for_portal(account)
                .statuses()
                .await
                .map_err(unreadable)?,
        );
    }
    Ok(Json(Integrations {
        syncs,
        oauth: s.portals.oauth_enabled(),
        connections,
        circuits: s
            .portals
            .circuits()
            .into_iter()
            .map(|(portal, state)| (portal.to_string(), state))
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Disconnected {
    pub portal_id: PortalId,
    /// Local rows deleted (cached contacts, sync state, outbox items, webhook events): 0
    /// unless `purge=true` was asked.
    pub purged: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DisconnectQuery {
    /// Also delete the portal's local data (cached contacts, sync state, outbox items, webhook
    /// events). Unset or `false`: kept, for a reinstall to find.
    #[serde(default)]
    purge: bool,
}

/// Uninstalls a portal: its refresh token is revoked at HubSpot and its tokens deleted here;
/// its local data is kept unless `purge=true`.
#[utoipa::path(delete, path = "/api/integrations/hubspot/portals/{portalId}", tag = "integrations",
    security(("admin" = [])),
    params(("portalId" = u64, Path, description = "The portal's hub id"), DisconnectQuery),
    responses(
    (status = 200, description = "Disconnected", body = Disconnected),
    (status = 400, description = "Not a hub id", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "No such connection", body = ApiError),
    (status = 503, description = "Admin API off, or the database failed", body = ApiError)))]
pub async fn disconnect(
    _: Signed<Admins>,
    State(s): State<Shared>,
    portal: Result<Path<u64>, axum::extract::rejection::PathRejection>,
    q: Result<Query<DisconnectQuery>, QueryRejection>,
) -> Result<Json<Disconnected>, ApiError> {
    let Path(portal) = portal.map_err(|_| ApiError::invalid("portalId: a hub id, like 62515"))?;
    let Query(q) = q.map_err(|_| ApiError::invalid("purge: true or false"))?;
    let portal = PortalId(portal);
    match s.portals.disconnect(portal, q.purge).await {
        Ok(Some(purged)) => Ok(Json(Disconnected {
            portal_id: portal,
            purged,
        })),
        Ok(None) => Err(ApiError::not_found(format!(
            "portal {portal} is not connected here"
        ))),
        Err(e) => Err(ApiError::internal(
            &e,
            "disconnecting a portal",
            "the portal could not be disconnected; try again",
        )),
    }
}
