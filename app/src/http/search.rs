//! `POST /api/contacts/search` (every role): the outbound flow's contact search, by name or
//! phone, with the caller's recent searches; support sees emails and phones masked. Audited
//! and rate-limited per user like the lookups; off with `HUBSPOT_OUTBOUND_SEARCH`.
//!
//! May import: `http::{state, error, auth, contacts}`, `outbound`, `access`,
//! `domain::{search, access}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{admit, Anyone, Signed};
use super::error::ApiError;
use super::state::Shared;
use crate::access::audit::{About, Kind};
use crate::domain::access::Flag;
use crate::domain::portal::PortalId;
use crate::domain::search::{FoundContact, SearchQuery};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// A name (or its start), an email or a phone number.
    #[schema(example = "ada lov", min_length = 1, max_length = 100)]
    query: String,
    /// 1 to 50 (default 10).
    #[schema(minimum = 1, maximum = 50)]
    limit: Option<usize>,
    /// Also return the caller's recent searches.
    #[serde(default)]
    include_recent: bool,
    /// The portal (hub id); unset: the private-app account.
    portal: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    pub contacts: Vec<FoundContact>,
    /// The caller's latest distinct queries, newest first (with `include_recent`).
    pub recent: Vec<String>,
    /// Answered from the short-lived search cache rather than HubSpot.
    pub cached: bool,
}

/// Searches contacts by name or phone; typed prefixes and repeats are answered from a
/// short-lived cache, so HubSpot's 5 searches a second are not the bottleneck.
#[utoipa::path(post, path = "/api/contacts/search", tag = "contacts", request_body = SearchRequest,
    security(("admin" = [])), responses(
    (status = 200, description = "Matches", body = SearchAnswer),
    (status = 400, description = "An empty or overlong query, a limit outside 1 to 50, or a malformed body", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 404, description = "That portal is not connected here", body = ApiError),
    (status = 429, description = "The caller's own limit (USER_RATE_LIMIT) is used up; see Retry-After", body = ApiError),
    (status = 502, description = "HubSpot failed", body = ApiError),
    (status = 503, description = "Off (HubSpot, HUBSPOT_INTEGRATION_ENABLED or HUBSPOT_OUTBOUND_SEARCH), or calls to HubSpot paused", body = ApiError),
    (status = 504, description = "HubSpot did not answer in time", body = ApiError)))]
pub async fn outbound(
    who: Signed<Anyone>,
    State(s): State<Shared>,
    body: Result<Json<SearchRequest>, JsonRejection>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::invalid(format!(
            "body: {}; send {{\"query\": \"ada\", \"limit\": 10, \"include_recent\": true}}",
            e.body_text()
        ))
    })?;
    let limit = body.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::invalid("limit: 1 to 50"));
    }
    let query =
        SearchQuery::parse(&body.query, s.settings.phone_region).map_err(ApiError::invalid)?;
    admit(
        &s,
        &who,
        &[Flag::HubspotIntegrationEnabled, Flag::HubspotOutboundSearch],
    )?;
    let (portal, client) = s.account(body.portal).await?;
    let client = client.ok_or_else(ApiError::hubspot_disabled)?;
    let answer = s
        .outbound
        .search(&who.caller.name, portal, &client, &query, limit)
        .await?;
    let about = match &query.person {
        Some(p) => About::person(p.clone()),
        None => About::thing("name query"),
    };
    s.auditor
        .record(
            &who.caller,
            &who.origin,
            Kind::Lookup,
            "search",
            about.in_portal(portal.or(body.portal.map(PortalId))),
            &format!(
                "{} results{}",
                answer.contacts.len(),
                if answer.cached { ", cached" } else { "" }
            ),
        )
        .await;
    let recent = if body.include_recent {
        s.outbound
            .history()
            .recent(&who.caller.name, 10)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let contacts = if who.role().sees_masked() {
        answer
            .contacts
            .into_iter()
            .map(FoundContact::masked)
            .collect()
    } else {
        answer.contacts
    };
    Ok(Json(SearchAnswer {
        contacts,
        recent,
        cached: answer.cached,
    }))
}
