//! `/api/contacts/lookup` (every role): phone lookups for messaging, one or up to 100, through
//! the encrypted cache ([`crate::lookup`]); audited per user, rate-limited per user, honouring
//! the flags (`HUBSPOT_CACHE_ENABLED`, `HUBSPOT_INBOUND_LOOKUP`: off, cached answers still
//! serve); support sees the contacts masked.
//!
//! May import: `http::{state, error, auth, contacts}`, `lookup`, `access`, `domain`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{admit, Anyone, Signed};
use super::contacts::PortalQuery;
use super::error::ApiError;
use super::state::{AppState, Shared};
use crate::access::audit::{About, Kind};
use crate::domain::access::Flag;
use crate::domain::contact::Contact;
use crate::domain::portal::PortalId;
use crate::domain::privacy::PersonKey;
use crate::hubspot::HubSpotClient;
use crate::lookup::PhoneLookup;

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
    who: &Signed<Anyone>,
    (portal, client): &(Option<PortalId>, Option<Arc<HubSpotClient>>),
    raw: &str,
) -> Result<PhoneLookup, ApiError> {
    let phone = crate::domain::contact::normalize_phone(raw, s.settings.phone_region)
        .map_err(ApiError::invalid)?;
    let policy = crate::lookup::Policy {
        cache: s.flags.is_on(Flag::HubspotCacheEnabled),
        hubspot: s.flags.is_on(Flag::HubspotIntegrationEnabled)
            && s.flags.is_on(Flag::HubspotInboundLookup),
    };
    let mut found = crate::lookup::phone(&s.cache, *portal, client.as_deref(), &phone, policy)
        .await
        .map_err(|e| match (policy.hubspot, client) {
            (false, Some(_)) => ApiError::disabled(
                "nothing cached, and lookups in HubSpot are off (HUBSPOT_INTEGRATION_ENABLED or HUBSPOT_INBOUND_LOOKUP)",
            ),
            _ => ApiError::from(e),
        })?;
    let about = About::person(PersonKey::Phone(phone))
        .in_portal(*portal)
        .with_hubspot_id(found.contacts.first().and_then(|c| c.id.clone()));
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Lookup,
            "lookup by phone",
            about,
            if found.found { "found" } else { "not found" },
        )
        .await;
    if who.role().sees_masked() {
        found.contacts = found.contacts.into_iter().map(Contact::masked).collect();
        found.phone = crate::domain::privacy::mask_phone(&found.phone);
    }
    Ok(found)
}

/// From the cache, else HubSpot; a stale cache entry when HubSpot is down.
#[utoipa::path(get, path = "/api/contacts/lookup", tag = "contacts", params(PhoneQuery),
    security(("admin" = [])), responses(
    (status = 200, description = "The lookup (found or not)", body = PhoneLookup),
    (status = 400, description = "No or an invalid phone, or an invalid portal", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 502, description = "HubSpot failed and nothing is cached", body = ApiError),
    (status = 429, description = "The caller's own limit (USER_RATE_LIMIT) is used up; see Retry-After", body = ApiError),
    (status = 503, description = "HubSpot off (or its flags) and nothing is cached, or calls to HubSpot paused after repeated failures and nothing is cached", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn lookup_phone(
    who: Signed<Anyone>,
    State(s): State<Shared>,
    q: Result<Query<PhoneQuery>, QueryRejection>,
) -> Result<Json<PhoneLookup>, ApiError> {
    let Query(q) = q.map_err(|_| {
        ApiError::invalid("phone: missing; call /api/contacts/lookup?phone=%2B14155550100")
    })?;
    admit(&s, &who, &[])?;
    let account = s.account(q.portal).await?;
    Ok(Json(lookup_one(&s, &who, &account, &q.phone).await?))
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
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 429, description = "The caller's own limit (USER_RATE_LIMIT) is used up; see Retry-After", body = ApiError)))]
pub async fn lookup_phones(
    who: Signed<Anyone>,
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
    admit(&s, &who, &[])?;
    let account = s.account(portal).await?;
    let mut results = Vec::with_capacity(body.phones.len());
    for raw in &body.phones {
        results.push(match lookup_one(&s, &who, &account, raw).await {
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
