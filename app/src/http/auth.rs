//! Who may call a route. Every protected handler takes a [`Signed<R>`], whose type parameter
//! names the roles the route allows ([`Admins`], [`Staff`], [`Anyone`]): the bearer token
//! (`ADMIN_TOKEN`, the bootstrap admin, or a user's own token) or the dashboard's session
//! resolves to a caller ([`crate::access`]); no or an unknown token is a 401, a role the route
//! does not allow a 403 that names the roles it does. The caller's origin (nginx's `X-Real-IP`,
//! the user agent) comes along for the audit.
//!
//! May import: `http::{state, error}`, `access`, `domain::access`.

use std::marker::PhantomData;

use axum::http::{header, HeaderMap, StatusCode};

use super::error::{ApiError, ErrorCode};
use super::state::Shared;
use crate::access::{Caller, Origin};
use crate::domain::access::Role;

pub use crate::secret::same as same_secret;

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Where a request came from: nginx's `X-Real-IP` (it overwrites whatever the client sent),
/// else the first `X-Forwarded-For`; and the user agent.
pub fn origin(headers: &HeaderMap) -> Origin {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Origin {
        ip: text("x-real-ip").or_else(|| {
            text("x-forwarded-for").and_then(|f| f.split(',').next().map(|s| s.trim().to_string()))
        }),
        user_agent: text("user-agent"),
    }
}

/// A set of roles a route allows.
pub trait Roles: Send + Sync + 'static {
    const ALLOWED: &'static [Role];
}

/// Admins only: users, flags, the audit, privacy requests, portals, mappings, the admin probe.
pub struct Admins;
/// Admins and operators: the outbox, syncs, records, events, stats.
pub struct Staff;
/// Every role: lookups and searches (support sees contact details masked).
pub struct Anyone;

impl Roles for Admins {
    const ALLOWED: &'static [Role] = &[Role::Admin];
}
impl Roles for Staff {
    const ALLOWED: &'static [Role] = &[Role::Admin, Role::Operator];
}
impl Roles for Anyone {
    const ALLOWED: &'static [Role] = &[Role::Admin, Role::Operator, Role::Support];
}

/// A request from a caller whose role `R` allows.
pub struct Signed<R: Roles> {
    pub caller: Caller,
    pub origin: Origin,
    roles: PhantomData<R>,
}

impl<R: Roles> Signed<R> {
    pub fn role(&self) -> Role {
        self.caller.role
    }
}

/// The caller of a request: its bearer token, else the dashboard's session cookie.
pub async fn caller(state: &Shared, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <token> (ADMIN_TOKEN, or a user's token from `app users add`)",
        )
    };
    let found = match bearer(headers) {
        Some(token) => state.access.authenticate(token).await,
        None => match super::dashboard::session_token_hash(state, headers) {
            Some(hash) => state.access.authenticate_hash(&hash).await,
            None => return Err(unauthorized()),
        },
    };
    found
        .map_err(|e| {
            ApiError::internal(&e, "reading users", "could not check the token; try again")
        })?
        .ok_or_else(unauthorized)
}

impl<R: Roles> axum::extract::FromRequestParts<Shared> for Signed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared,
    ) -> Result<Self, ApiError> {
        let caller = caller(state, &parts.headers).await?;
        if !R::ALLOWED.contains(&caller.role) {
            let allowed: Vec<&str> = R::ALLOWED.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                format!(
                    "{} is {}; this route is for {} only: ask an admin",
                    caller.name,
                    caller.role,
                    allowed.join(" and ")
                ),
            ));
        }
        Ok(Signed {
            caller,
            origin: origin(&parts.headers),
            roles: PhantomData,
        })
    }
}

/// A lookup or search may go ahead: the caller's own rate limit (429 with `Retry-After`), then
/// the flags it needs.
pub fn admit<R: Roles>(
    s: &crate::http::state::AppState,
    who: &Signed<R>,
    flags: &[crate::domain::access::Flag],
) -> Result<(), ApiError> {
    s.limits.check(&who.caller.name).map_err(|wait| {
        ApiError::rate_limited(
            wait,
            format!(
                "{}: your lookups and searches are over USER_RATE_LIMIT; retry after the pause",
                who.caller.name
            ),
        )
    })?;
    for flag in flags {
        if !s.flags.is_on(*flag) {
            return Err(ApiError::disabled(format!(
                "{} is off (an admin turned it off: PUT /api/flags/{})",
                flag.name(),
                flag.name()
            )));
        }
    }
    Ok(())
}

/// A contact as `role` may see it.
pub fn shown(
    role: Role,
    contact: crate::domain::contact::Contact,
) -> crate::domain::contact::Contact {
    if role.sees_masked() {
        contact.masked()
    } else {
        contact
    }
}
