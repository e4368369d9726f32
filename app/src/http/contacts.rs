//! `/api/contacts…` (admin): read a contact by email, search, look up by phone (through the
//! cache), and queue writes in the outbox.
//!
//! `?portal=HUB_ID` names the portal a request acts in (unset: the single account of
//! `HUBSPOT_ACCESS_TOKEN`); a portal not connected here is a 404.
//!
//! May import: `http::{state, error, auth}`, `domain::{contact, portal}`, `store` (the audit),
//! `lookup`, `hubspot` (its search request builder and client).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::AdminAuth;
use super::error::{unreadable_body, ApiError};
use super::state::{AppState, Shared};
use std::sync::Arc;

use crate::domain::contact::{Contact, ContactInput, ContactRequest, Email};
use crate::domain::portal::PortalId;
use crate::hubspot::HubSpotClient;
use crate::lookup::PhoneLookup;
use crate::store::AuditSubject;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailQuery {
    /// The contact's email.
    #[param(example = "ada@example.com", format = "email")]
    email: String,
    /// The portal (hub id) to read from; unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
}

/// One contact by email (HubSpot's `idProperty=email` read, which does not lag like search).
#[utoipa::path(get, path = "/api/contacts", tag = "contacts", params(EmailQuery),
    security(("admin" = [])), responses(
    (status = 200, description = "The contact", body = Contact),
    (status = 400, description = "No or an invalid email", body = ApiError),
    (status = 401, description = "No or a wrong admin token", body = ApiError),
    (status = 404, description = "No contact has that email, or that portal is not connected here", body = ApiError),
    (status = 502, description = "HubSpot failed", body = ApiError),
    (status = 503, description = "Disabled (admin API or HubSpot), or calls to HubSpot paused after repeated failures", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn by_email(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<EmailQuery>, QueryRejection>,
) -> Result<Json<Contact>, ApiError> {
    let Query(q) = q.map_err(|_| {
        ApiError::invalid("email: missing; call /api/contacts?email=ada@example.com")
    })?;
    let email = Email::parse(&q.email).map_err(ApiError::invalid)?;
    let client = s.client_of(q.portal).await?;
    let found = client.contact_by_email(&email).await?;
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
    found
        .map(|object| Json(Contact::from_hubspot(&object)))
        .ok_or_else(|| ApiError::not_found("no contact has that email"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A name, an email or a phone number.
    #[param(example = "Lovelace", min_length = 1, max_length = 3000)]
    q: String,
    /// The portal (hub id) to search; unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// How `q` was read: `email`, `phone` or `name`.
    pub matched_by: &'static str,
    /// HubSpot's total for the query (it may exceed the results shown).
    pub total: u64,
    pub results: Vec<Contact>,
}

/// Search by email (exact), phone (normalized to E.164) or name (HubSpot's free-text query).
/// Results come from HubSpot's search index, which lags writes by a few seconds.
#[utoipa::path(get, path = "/api/contacts/search", tag = "contacts", params(SearchQuery),
    security(("admin" = [])), responses(
    (status = 200, description = "Matches (up to 100)", body = SearchResults),
    (status = 400, description = "No, an overlong or an invalid query", body = ApiError),
    (status = 401, description = "No or a wrong admin token", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 502, description = "HubSpot failed", body = ApiError),
    (status = 503, description = "Disabled (admin API or HubSpot), or calls to HubSpot paused after repeated failures", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn search(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<SearchResults>, ApiError> {
    use crate::hubspot::search::ContactSearch;
    let (raw, portal) = q.map(|Query(q)| (q.q, q.portal)).unwrap_or_default();
    let q = raw.trim().to_string();
    // The limit holds for `q` as sent (the contract says so), not for what trimming leaves.
    if q.is_empty() || raw.chars().count() > 3000 {
        return Err(ApiError::invalid(
            "q: give a name, an email or a phone number (at most 3000 characters)",
        ));
    }
    let (kind, subject, search) = if q.contains('@') {
        let email = Email::parse(&q).map_err(ApiError::invalid)?;
        let email = email.as_str().to_string();
        ("email", email.clone(), ContactSearch::Email(email))
    } else if q.chars().filter(char::is_ascii_digit).count() >= 7 {
        let phone = crate::domain::contact::normalize_phone(&q, s.settings.phone_region)
            .map_err(ApiError::invalid)?;
        ("phone", phone.clone(), ContactSearch::Text(phone))
    } else {
        ("name", q.clone(), ContactSearch::Text(q))
    };
    let found = s
        .client_of(portal)
        .await?
        .search_contacts(&search.request(100))
        .await?;
    let results: Vec<Contact> = found["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Contact::from_hubspot)
        .collect();
    let audited = match kind {
        "phone" => AuditSubject::Phone(&subject),
        "email" => AuditSubject::Email(&subject),
        _ => AuditSubject::Text(&subject),
    };
    s.db.audit(
        "admin",
        &format!("search by {kind}"),
        audited,
        &format!("{} results", results.len()),
    )
    .await;
    Ok(Json(SearchResults {
        matched_by: kind,
        total: found["total"].as_u64().unwrap_or(results.len() as u64),
        results,
    }))
}

/// Largest body `POST /api/contacts` accepts (up to [`MAX_ENQUEUE`] contacts).
pub const MAX_ENQUEUE_BODY: usize = 1024 * 1024;
pub const MAX_ENQUEUE: usize = 1000;

/// One contact, or many under `contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EnqueueBody {
    Many(ManyContacts),
    #[schema(value_type = ContactRequest)]
    One(Value),
}

/// Many contacts at once; nothing else beside them (an object with other fields is read as
/// one contact, and refused for its unknown fields).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManyContacts {
    /// 1 to 1000 contacts.
    #[schema(value_type = Vec<ContactRequest>, min_items = 1, max_items = 1000)]
    contacts: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// `queued`.
    pub status: &'static str,
    pub queued: usize,
    /// The outbox items, in the order of the contacts sent (a write merged into a waiting one
    /// for the same email shares its id).
    pub ids: Vec<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PortalQuery {
    /// The portal (hub id); unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
}

/// Validates the contacts, stores them in the outbox and answers at once; the worker sends
/// them to their portal, in order per contact.
#[utoipa::path(post, path = "/api/contacts", tag = "contacts", request_body = EnqueueBody,
    params(PortalQuery), security(("admin" = [])), responses(
    (status = 202, description = "Queued", body = Queued),
    (status = 400, description = "An invalid contact (`fields` names it) or portal; nothing was queued", body = ApiError),
    (status = 401, description = "No or a wrong admin token", body = ApiError),
    (status = 404, description = "That portal is not connected here (nor waiting for a reinstall); nothing was queued", body = ApiError),
    (status = 413, description = "Body over 1 MiB", body = ApiError),
    (status = 503, description = "Admin API off, or the database failed; nothing was queued", body = ApiError)))]
pub async fn enqueue(
    _: AdminAuth,
    State(s): State<Shared>,
    portal: Result<Query<PortalQuery>, QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let Query(PortalQuery { portal }) =
        portal.map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))?;
    let portal = portal.map(PortalId);
    if let Some(p) = portal {
        let known = s.portals.accepts_writes(p).await.map_err(|e| {
            ApiError::internal(
                &e,
                "reading connections",
                "could not check the portal; nothing was queued, send again",
            )
        })?;
        if !known {
            return Err(ApiError::portal_not_connected(p));
        }
    }
    let body =
        body.map_err(|r| unreadable_body(r, MAX_ENQUEUE_BODY, "send fewer contacts per request"))?;
    let parsed: EnqueueBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("body: {e}")))?;
    let (raw, many) = match parsed {
        EnqueueBody::Many(ManyContacts { contacts }) => (contacts, true),
        EnqueueBody::One(one) => (vec![one], false),
    };
    if raw.is_empty() || raw.len() > MAX_ENQUEUE {
        return Err(ApiError::invalid(format!(
            "contacts: send 1 to {MAX_ENQUEUE} contacts per request"
        )));
    }
    let mut inputs = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        let invalid = |m: String| {
            if many {
                ApiError::invalid_at("contacts", i, &m)
            } else {
                ApiError::invalid(m)
            }
        };
        let request: ContactRequest =
            serde_json::from_value(value).map_err(|e| invalid(format!("body: {e}")))?;
        inputs.push(ContactInput::from_request(request, s.settings.phone_region).map_err(invalid)?);
    }
    let ids = s.outbox.enqueue_to(portal, &inputs).await.map_err(|e| {
        ApiError::internal(
            &e,
            "outbox enqueue",
            "could not store the contacts; nothing was queued, send again",
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            status: "queued",
            queued: ids.len(),
            ids,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhoneQuery {
    /// With its country code, in any format.
    #[param(example = "+14155550100")]
    phone: String,
    /// The portal (hub id) to look in; unset: the single account of `HUBSPOT_ACCESS_TOKEN`.
    portal: Option<u64>,
}

async fn lookup_one(
    s: &AppState,
    (portal, client): &(Option<PortalId>, Option<Arc<HubSpotClient>>),
    raw: &str,
) -> Result<PhoneLookup, ApiError> {
    let phone = crate::domain::contact::normalize_phone(raw, s.settings.phone_region)
        .map_err(ApiError::invalid)?;
    let found = crate::lookup::phone(&s.cache, *portal, client.as_deref(), &phone).await?;
    let action = match portal {
        Some(p) => format!("lookup by phone in portal {p}"),
        None => "lookup by phone".into(),
    };
    s.db.audit(
        "admin",
        &action,
        AuditSubject::Phone(&phone),
        if found.found { "found" } else { "not found" },
    )
    .await;
    Ok(found)
}

/// From the cache, else HubSpot; a stale cache entry when HubSpot is down.
#[utoipa::path(get, path = "/api/contacts/lookup", tag = "contacts", params(PhoneQuery),
    security(("admin" = [])), responses(
    (status = 200, description = "The lookup (found or not)", body = PhoneLookup),
    (status = 400, description = "No or an invalid phone, or an invalid portal", body = ApiError),
    (status = 401, description = "No or a wrong admin token", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 502, description = "HubSpot failed and nothing is cached", body = ApiError),
    (status = 503, description = "Admin API off, or calls to HubSpot paused after repeated failures and nothing is cached", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn lookup_phone(
    _: AdminAuth,
    State(s): State<Shared>,
    q: Result<Query<PhoneQuery>, QueryRejection>,
) -> Result<Json<PhoneLookup>, ApiError> {
    let Query(q) = q.map_err(|_| {
        ApiError::invalid("phone: missing; call /api/contacts/lookup?phone=%2B14155550100")
    })?;
    let account = s.account(q.portal).await?;
    Ok(Json(lookup_one(&s, &account, &q.phone).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhonesBody {
    /// 1 to 100 phone numbers.
    #[schema(min_items = 1, max_items = 100)]
    phones: Vec<String>,
}

/// One phone's answer in a batch lookup: its match, or its error.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PhoneResult {
    Found(PhoneLookup),
    Failed(PhoneFailure),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneFailure {
    /// The phone as sent.
    pub phone: String,
    pub error: String,
    /// The status this phone alone would have had.
    pub status: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneResults {
    /// One per phone, in order.
    pub results: Vec<PhoneResult>,
}

/// Up to 100 lookups at once; one answer per phone, in order.
#[utoipa::path(post, path = "/api/contacts/lookup", tag = "contacts", request_body = PhonesBody,
    params(PortalQuery), security(("admin" = [])), responses(
    (status = 200, description = "One result per phone", body = PhoneResults),
    (status = 400, description = "Not 1 to 100 phones, or a malformed body or portal", body = ApiError),
    (status = 401, description = "No or a wrong admin token", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 503, description = "Admin API off", body = ApiError)))]
pub async fn lookup_phones(
    _: AdminAuth,
    State(s): State<Shared>,
    portal: Result<Query<PortalQuery>, QueryRejection>,
    body: Result<Json<PhonesBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<PhoneResults>, ApiError> {
    let Query(PortalQuery { portal }) =
        portal.map_err(|_| ApiError::invalid("portal: a hub id, like 62515"))?;
    let Json(body) = body.map_err(|e| ApiError::invalid(format!("body: {}", e.body_text())))?;
    if body.phones.is_empty() || body.phones.len() > 100 {
        return Err(ApiError::invalid("phones: send 1 to 100 phone numbers"));
    }
    let account = s.account(portal).await?;
    let mut results = Vec::with_capacity(body.phones.len());
    for raw in &body.phones {
        results.push(match lookup_one(&s, &account, raw).await {
            Ok(found) => PhoneResult::Found(found),
            Err(e) => PhoneResult::Failed(PhoneFailure {
                phone: raw.clone(),
                error: e.message,
                status: e.status,
            }),
        });
    }
    Ok(Json(PhoneResults { results }))
}
