//! `/api/privacy/subjects` (admins): GDPR access (`GET`: everything held about a person, as
//! JSON) and erasure (`DELETE`: purged here; with `hubspot=true`, HubSpot's GDPR delete of
//! each of their contacts queued, sent by the worker). Both audited, the person hashed.
//!
//! May import: `http::{state, error, auth}`, `privacy`, `access`, `domain::{contact, privacy}`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admins, Signed};
use super::error::ApiError;
use super::state::{AppState, Shared};
use crate::access::audit::{About, Kind};
use crate::domain::privacy::PersonKey;
use crate::privacy::Export;
use crate::store::privacy::Erased;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubjectQuery {
    /// The person's email.
    #[param(example = "ada@example.com")]
    email: Option<String>,
    /// Or their phone, with its country code.
    #[param(example = "+14155550100")]
    phone: Option<String>,
    /// `DELETE` only: also ask HubSpot to delete their contacts for good (GDPR delete).
    hubspot: Option<bool>,
    /// `DELETE` with `hubspot=true`, when no contact of theirs is known here: the portal to
    /// ask by email (unset: the private-app account's).
    portal: Option<u64>,
}

fn person(s: &AppState, q: &SubjectQuery) -> Result<PersonKey, ApiError> {
    if s.sealer.is_none() {
        return Err(ApiError::disabled(
            "privacy requests need TOKEN_ENCRYPTION_KEY (personal data is found by its keyed hash)",
        ));
    }
    match (&q.email, &q.phone) {
        (Some(e), None) => {
            let email = crate::domain::contact::Email::parse(e).map_err(ApiError::invalid)?;
            Ok(PersonKey::Email(email.as_str().to_string()))
        }
        (None, Some(p)) => crate::domain::contact::normalize_phone(p, s.settings.phone_region)
            .map(PersonKey::Phone)
            .map_err(ApiError::invalid),
        _ => Err(ApiError::invalid(
            "email: name the person by email=… or phone=… (one of them)",
        )),
    }
}

fn query(q: Result<Query<SubjectQuery>, QueryRejection>) -> Result<SubjectQuery, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::invalid(format!("query: {}", e.body_text())))
}

/// Everything held about a person: cached contacts, outbox writes, lifecycle events, synced
/// records, audit entries about them, searches that named or found them.
#[utoipa::path(get, path = "/api/privacy/subjects", tag = "privacy", params(SubjectQuery), security(("admin" = [])), responses(
    (status = 200, description = "The export (empty lists when nothing is held)", body = Export),
    (status = 400, description = "Neither or both of email and phone, or an invalid one", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "No TOKEN_ENCRYPTION_KEY, or the database failed", body = ApiError)))]
pub async fn export(
    who: Signed<Admins>,
    State(s): State<Shared>,
    q: Result<Query<SubjectQuery>, QueryRejection>,
) -> Result<Json<Export>, ApiError> {
    let q = query(q)?;
    let person = person(&s, &q)?;
    let export = s.privacy.export(&person).await.map_err(|e| {
        ApiError::internal(
            &e,
            "privacy export",
            "could not read what is held; try again",
        )
    })?;
    let outcome = if export.is_empty() {
        "nothing held"
    } else {
        "exported"
    };
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Always,
            "privacy export",
            About::person(person),
            outcome,
        )
        .await;
    Ok(Json(export))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Erasure {
    /// What the audit's entries about the person now point at.
    pub reference: String,
    pub erased: Erased,
}

/// Erases a person here (in one transaction) and, with `hubspot=true`, queues HubSpot's GDPR
/// delete of each of their contacts.
#[utoipa::path(delete, path = "/api/privacy/subjects", tag = "privacy", params(SubjectQuery), security(("admin" = [])), responses(
    (status = 200, description = "Erased; what was removed, by kind", body = Erasure),
    (status = 400, description = "Neither or both of email and phone, or an invalid one", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "No TOKEN_ENCRYPTION_KEY, or the database failed (nothing was erased)", body = ApiError)))]
pub async fn erase(
    who: Signed<Admins>,
    State(s): State<Shared>,
    q: Result<Query<SubjectQuery>, QueryRejection>,
) -> Result<Json<Erasure>, ApiError> {
    let q = query(q)?;
    let person = person(&s, &q)?;
    let fallback = q.portal.map_or(0, |p| p as i64);
    let (reference, erased) = s
        .privacy
        .erase(&person, q.hubspot.unwrap_or(false), fallback)
        .await
        .map_err(|e| {
            ApiError::internal(
                &e,
                "privacy erasure",
                "could not erase; nothing was erased, try again",
            )
        })?;
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Always,
            "privacy erase",
            About::thing(reference.clone()),
            &format!(
                "erased; {} HubSpot deletes queued",
                erased.hubspot_deletes_queued
            ),
        )
        .await;
    Ok(Json(Erasure { reference, erased }))
}
