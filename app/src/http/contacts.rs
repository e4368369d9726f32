//! `/api/contacts…`: read a contact by email, search (every role), and queue writes in the
//! outbox (staff). The phone lookups are [`super::lookup`].
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

use super::auth::{admit, shown, Anyone, Signed, Staff};
use super::error::{unreadable_body, ApiError};
use super::state::Shared;

use crate::access::audit::{About, Kind};
use crate::domain::access::Flag;
use crate::domain::contact::{Contact, ContactInput, ContactRequest, Email};
use crate::domain::portal::PortalId;
use crate::domain::privacy::PersonKey;

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
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "No contact has that email, or that portal is not connected here", body = ApiError),
    (status = 502, description = "HubSpot failed", body = ApiError),
    (status = 429, description = "The caller's own limit (USER_RATE_LIMIT) is used up; see Retry-After", body = ApiError),
    (status = 503, description = "Disabled (HubSpot, or a flag: HUBSPOT_INTEGRATION_ENABLED, HUBSPOT_OUTBOUND_SEARCH), or calls to HubSpot paused after repeated failures", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn by_email(
    who: Signed<Anyone>,
    State(s): State<Shared>,
    q: Result<Query<EmailQuery>, QueryRejection>,
) -> Result<Json<Contact>, ApiError> {
    let Query(q) = q.map_err(|_| {
        ApiError::invalid("email: missing; call /api/contacts?email=ada@example.com")
    })?;
    let email = Email::parse(&q.email).map_err(ApiError::invalid)?;
    admit(&s, &who, &[Flag::HubspotIntegrationEnabled])?;
    let client = s.client_of(q.portal).await?;
    let found = client.contact_by_email(&email).await?;
    let about = About::person(PersonKey::Email(email.as_str().to_string()))
        .in_portal(q.portal.map(PortalId))
        .with_hubspot_id(
            found
                .as_ref()
                .and_then(|o| o["id"].as_str().map(str::to_string)),
        );
    let outcome = if found.is_some() {
        "found"
    } else {
        "not found"
    };
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Lookup,
            "lookup by email",
            about,
            outcome,
        )
        .await;
    found
        .map(|object| Json(shown(who.role(), Contact::from_hubspot(&object))))
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
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 502, description = "HubSpot failed", body = ApiError),
    (status = 429, description = "The caller's own limit (USER_RATE_LIMIT) is used up; see Retry-After", body = ApiError),
    (status = 503, description = "Disabled (HubSpot, or a flag: HUBSPOT_INTEGRATION_ENABLED, HUBSPOT_OUTBOUND_SEARCH), or calls to HubSpot paused after repeated failures", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn search(
    who: Signed<Anyone>,
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
    let (kind, person, search) = if q.contains('@') {
        let email = Email::parse(&q).map_err(ApiError::invalid)?;
        let email = email.as_str().to_string();
        (
            "email",
            Some(PersonKey::Email(email.clone())),
            ContactSearch::Email(email),
        )
    } else if q.chars().filter(char::is_ascii_digit).count() >= 7 {
        let phone = crate::domain::contact::normalize_phone(&q, s.settings.phone_region)
            .map_err(ApiError::invalid)?;
        (
            "phone",
            Some(PersonKey::Phone(phone.clone())),
            ContactSearch::Text(phone),
        )
    } else {
        ("name", None, ContactSearch::Text(q))
    };
    admit(
        &s,
        &who,
        &[Flag::HubspotIntegrationEnabled, Flag::HubspotOutboundSearch],
    )?;
    let found = s
        .client_of(portal)
        .await?
        .search_contacts(&search.request(100))
        .await?;
    let results: Vec<Contact> = found["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| shown(who.role(), Contact::from_hubspot(o)))
        .collect();
    let about = match person {
        Some(p) => About::person(p),
        None => About::thing("name query"),
    };
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Lookup,
            &format!("search by {kind}"),
            about.in_portal(portal.map(PortalId)),
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
    pub portal: Option<u64>,
}

/// Validates the contacts, stores them in the outbox and answers at once; the worker sends
/// them to their portal, in order per contact.
#[utoipa::path(post, path = "/api/contacts", tag = "contacts", request_body = EnqueueBody,
    params(PortalQuery), security(("admin" = [])), responses(
    (status = 202, description = "Queued", body = Queued),
    (status = 400, description = "An invalid contact (`fields` names it) or portal; nothing was queued", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here (nor waiting for a reinstall); nothing was queued", body = ApiError),
    (status = 413, description = "Body over 1 MiB", body = ApiError),
    (status = 503, description = "The database failed; nothing was queued", body = ApiError)))]
pub async fn enqueue(
    _: Signed<Staff>,
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
