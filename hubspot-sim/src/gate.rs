//! The gate every HubSpot route passes through, in HubSpot's order: injected faults, then
//! authentication, then rate limits; on the way out, rate-limit headers and request counts.
//! `/_sim/` routes do not pass through it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::faults::FaultAction;
use crate::oauth::Bearer;
use crate::ratelimit::{Bucket, Decision};
use crate::state::{Portal, Shared};

/// Cancelling it closes the request's connection without an answer (set by the server).
#[derive(Debug, Clone)]
pub struct ConnectionKill(pub CancellationToken);

/// Status recorded in the stats for a dropped connection.
pub const DROPPED: u16 = 0;

fn bearer(req: &Request) -> Option<&str> {
    let value = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn bucket(method: &Method, path: &str) -> Bucket {
    if method == Method::POST && path.ends_with("/search") {
        Bucket::Search
    } else {
        Bucket::General
    }
}

/// The longest request URI (path and query) HubSpot accepts, as measured by its users.
pub const MAX_URI: usize = 8_192;

pub async fn gate(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |m| m.as_str().to_string());
    let response = if req.uri().to_string().len() > MAX_URI {
        // HubSpot's front end refuses long URLs (many properties named in a GET) before
        // anything else looks at the request.
        Some(
            ApiError::new(
                axum::http::StatusCode::URI_TOO_LONG,
                "URI_TOO_LONG",
                format!("The request URI is longer than {MAX_URI} bytes; name fewer properties per request."),
            )
            .into_response(),
        )
    } else {
        pass(&state, req, next, &method, &path).await
    };
    let status = response.as_ref().map_or(DROPPED, |r| r.status().as_u16());
    state.stats.record(method.as_str(), &route, status);
    match response {
        Some(r) => r,
        None => std::future::pending().await,
    }
}

/// `None` means the connection is being dropped and no answer must be sent.
async fn pass(
    state: &Shared,
    mut req: Request,
    next: Next,
    method: &Method,
    path: &str,
) -> Option<Response> {
    if let Some(fault) = state.faults.take(method.as_str(), path) {
        if !fault.latency.is_zero() {
            tokio::time::sleep(fault.latency).await;
        }
        match fault.action {
            FaultAction::PassThrough => {}
            FaultAction::Drop => {
                return match req.extensions().get::<ConnectionKill>() {
                    Some(kill) => {
                        kill.0.cancel();
                        None
                    }
                    None => Some(
                        ApiError::new(
                            StatusCode::BAD_GATEWAY,
                            "INTERNAL_ERROR",
                            "connection drop requested but not possible here",
                        )
                        .into_response(),
                    ),
                };
            }
            FaultAction::Respond {
                status,
                body,
                headers,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut err = ApiError::injected(status);
                if let Some(body) = body {
                    err.body = body;
                }
                for (k, v) in headers {
                    if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                        err.headers.push((k, v));
                    }
                }
                return Some(err.into_response());
            }
        }
    }

    let Some(token) = bearer(&req).map(str::to_string) else {
        return Some(ApiError::unauthorized().into_response());
    };
    // An OAuth access token stands for an app installed in a portal, whose windows it shares
    // with every other token of that installation; anything else is a private-app token.
    let (bucket, now) = (bucket(method, path), Instant::now());
    let decision = match state.oauth.bearer(&token) {
        Bearer::Expired(by) => return Some(ApiError::expired(by).into_response()),
        Bearer::Live(install) => {
            let key = format!("oauth:{}:{}", install.client_id, install.hub_id);
            req.extensions_mut().insert(Portal(install.hub_id));
            req.extensions_mut().insert(install);
            state
                .limiter
                .check_with(&key, bucket, now, state.config.oauth_rate_limit)
        }
        Bearer::Other => {
            if !state.config.tokens.is_empty() && !state.config.tokens.contains(&token) {
                return Some(ApiError::unauthorized().into_response());
            }
            req.extensions_mut().insert(Portal(state.config.portal_id));
            state.limiter.check(&token, bucket, now)
        }
    };
    let (usage, limited) = match decision {
        Decision::Allowed(usage) => (usage, None),
        Decision::Limited(policy, usage) => (usage, Some(policy)),
    };
    let mut response = match limited {
        Some(policy) => ApiError::rate_limited(policy).into_response(),
        None => next.run(req).await,
    };
    if let Some(usage) = usage {
        response.headers_mut().extend(usage.headers());
    }
    Some(response)
}
