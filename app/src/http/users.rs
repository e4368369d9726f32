//! `/api/users` and `/api/audit` (admins): named users with a role and their tokens (the
//! token is shown once, when made), and the audit log, filtered and paged. Every user change
//! is audited; no route edits or deletes audit entries.
//!
//! May import: `http::{state, error, auth}`, `access`, `domain::{access, privacy}`, `store`'s
//! listed types.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admins, Signed};
use super::error::ApiError;
use super::state::Shared;
use crate::access::audit::{About, Kind};
use crate::access::UserError;
use crate::domain::access::Role;
use crate::domain::privacy::PersonKey;
use crate::store::audit::{AuditEntry, Filter};
use crate::store::users::User;

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Invalid(m) => ApiError::invalid(format!("name: {m}")),
            UserError::Conflict(m) => ApiError::conflict(m),
            UserError::NotFound(m) => ApiError::not_found(m),
            UserError::Store(e) => ApiError::internal(
                &e,
                "users",
                "could not change users; nothing changed, try again",
            ),
        }
    }
}

/// Every user, revoked ones too.
#[utoipa::path(get, path = "/api/users", tag = "access", security(("admin" = [])), responses(
    (status = 200, description = "The users", body = Vec<User>),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "The database failed", body = ApiError)))]
pub async fn list(_: Signed<Admins>, State(s): State<Shared>) -> Result<Json<Vec<User>>, ApiError> {
    s.access
        .users()
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(&e, "listing users", "could not list users; try again"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 64 letters, digits, `.`, `_`, `-`, `@`.
    #[schema(example = "ada")]
    pub name: String,
    pub role: Role,
}

/// A new token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    pub name: String,
    /// `Authorization: Bearer <token>`; stored only as its hash.
    pub token: String,
}

/// Adds a user with a role and their first token.
#[utoipa::path(post, path = "/api/users", tag = "access", request_body = NewUser, security(("admin" = [])), responses(
    (status = 201, description = "Added; the token is shown this once", body = IssuedToken),
    (status = 400, description = "A malformed body, a bad name or an unknown role", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 409, description = "The name is taken (or reserved)", body = ApiError),
    (status = 503, description = "The database failed; nothing changed", body = ApiError)))]
pub async fn add(
    who: Signed<Admins>,
    State(s): State<Shared>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "body: {}; send {{\"name\": \"ada\", \"role\": \"admin|operator|support\"}}",
            e.body_text()
        ))
    })?;
    let result = s
        .access
        .add_user(&body.name, body.role, &who.caller.name)
        .await;
    let outcome = match &result {
        Ok(_) => format!("added as {}", body.role),
        Err(e) => format!("refused: {e}"),
    };
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Always,
            "user add",
            About::thing(format!("user {}", body.name.trim())),
            &outcome,
        )
        .await;
    let token = result?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            name: body.name.trim().to_string(),
            token: token.expose().to_string(),
        }),
    ))
}

/// Another token for a user.
#[utoipa::path(post, path = "/api/users/{name}/tokens", tag = "access", security(("admin" = [])),
    params(("name" = String, Path, description = "The user")), responses(
    (status = 201, description = "Made; shown this once", body = IssuedToken),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "No active user of that name", body = ApiError),
    (status = 503, description = "The database failed; nothing changed", body = ApiError)))]
pub async fn add_token(
    who: Signed<Admins>,
    State(s): State<Shared>,
    name: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let Path(name) = name.map_err(|_| ApiError::invalid("name: a user name"))?;
    let result = s.access.add_token(&name).await;
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Always,
            "user token",
            About::thing(format!("user {name}")),
            if result.is_ok() { "issued" } else { "refused" },
        )
        .await;
    let token = result?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            name,
            token: token.expose().to_string(),
        }),
    ))
}

/// Revokes a user and every token of theirs, at once.
#[utoipa::path(delete, path = "/api/users/{name}", tag = "access", security(("admin" = [])),
    params(("name" = String, Path, description = "The user")), responses(
    (status = 204, description = "Revoked"),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "No active user of that name", body = ApiError),
    (status = 503, description = "The database failed; nothing changed", body = ApiError)))]
pub async fn revoke(
    who: Signed<Admins>,
    State(s): State<Shared>,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = name.map_err(|_| ApiError::invalid("name: a user name"))?;
    let result = s.access.revoke(&name).await;
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Always,
            "user revoke",
            About::thing(format!("user {name}")),
            if result.is_ok() { "revoked" } else { "refused" },
        )
        .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this user's entries.
    user: Option<String>,
    /// Only actions starting with this (`lookup`, `search`, `privacy`, `user`, `flag`).
    action: Option<String>,
    /// Only entries about this person (matched by its keyed hash).
    email: Option<String>,
    /// Only entries about this phone (any format with a country code).
    phone: Option<String>,
    /// From (ms since the epoch).
    since: Option<i64>,
    /// Until, excluded (ms since the epoch).
    until: Option<i64>,
    /// Entries older than this id (the previous page's `next_before`).
    before: Option<i64>,
    /// 1 to 500 (default 100).
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

/// The audit log, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/audit", tag = "access", params(AuditQuery), security(("admin" = [])), responses(
    (status = 200, description = "A page of entries", body = AuditPage),
    (status = 400, description = "A malformed filter", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "The database failed", body = ApiError)))]
pub async fn audit(
    _: Signed<Admins>,
    State(s): State<Shared>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit: 1 to 500"));
    }
    let mut hashes = Vec::new();
    if let Some(e) = &q.email {
        let email = crate::domain::contact::Email::parse(e).map_err(ApiError::invalid)?;
        hashes.extend(
            s.auditor
                .hashes(&PersonKey::Email(email.as_str().to_string())),
        );
    }
    if let Some(p) = &q.phone {
        let phone = crate::domain::contact::normalize_phone(p, s.settings.phone_region)
            .map_err(ApiError::invalid)?;
        hashes.extend(s.auditor.hashes(&PersonKey::Phone(phone)));
    }
    if (q.email.is_some() || q.phone.is_some()) && hashes.is_empty() {
        return Err(ApiError::disabled(
            "audit entries name no subject without TOKEN_ENCRYPTION_KEY",
        ));
    }
    let entries = s
        .auditor
        .list(&Filter {
            actor: q.user,
            action: q.action,
            subject_hashes: hashes,
            since_ms: q.since,
            until_ms: q.until,
            before_id: q.before,
            limit: limit + 1,
        })
        .await
        .map_err(|e| {
            ApiError::internal(
                &e,
                "reading the audit",
                "could not read the audit; try again",
            )
        })?;
    let more = entries.len() as i64 > limit;
    let entries: Vec<AuditEntry> = entries.into_iter().take(limit as usize).collect();
    Ok(Json(AuditPage {
        next_before: more.then(|| entries.last().map(|e| e.id)).flatten(),
        entries,
    }))
}
