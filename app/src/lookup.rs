//! The read-through phone lookup, a use case of its own: the cache when fresh, else HubSpot's
//! search (which refreshes the cache), else a stale cache entry marked `stale` rather than
//! nothing. It joins the store and HubSpot for a request, as the jobs do in the background.
//!
//! May not import: `axum`, `sqlx`, `crate::http`.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::domain::contact::Contact;
use crate::domain::portal::PortalId;
use crate::hubspot::search::ContactSearch;
use crate::hubspot::{HubSpotClient, HubSpotError};
use crate::store::cache::Cache;

/// What the runtime flags allow a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Read and fill the cache (`HUBSPOT_CACHE_ENABLED`).
    pub cache: bool,
    /// Ask HubSpot (`HUBSPOT_INTEGRATION_ENABLED` and `HUBSPOT_INBOUND_LOOKUP`); off, cached
    /// answers still serve, fresh or stale.
    pub hubspot: bool,
}

/// Looks up contacts by an E.164 phone: the cache when fresh, else HubSpot's search (which
/// refreshes the cache), else a stale cache entry marked `stale`.
/// `portal` is the account whose cache is read and filled (`None`: the private-app token's);
/// `client` is that account's.
pub async fn phone(
    cache: &Cache,
    portal: Option<PortalId>,
    client: Option<&HubSpotClient>,
    phone: &str,
    policy: Policy,
) -> Result<PhoneLookup, HubSpotError> {
    let client = client.filter(|_| policy.hubspot);
    let cached = if policy.cache {
        cache.by_phone(portal, phone).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cache read failed");
            None
        })
    } else {
        None
    };
    let answer = |source: &'static str, stale: bool, contacts: Vec<Contact>| PhoneLookup {
        phone: phone.to_string(),
        found: !contacts.is_empty(),
        source,
        stale,
        contacts,
    };
    let stale = match cached {
        Some((contacts, true)) => {
            cache.stats().hits.fetch_add(1, Ordering::Relaxed);
            return Ok(answer("cache", false, contacts));
        }
        Some((contacts, false)) => Some(contacts),
        None => None,
    };
    cache.stats().misses.fetch_add(1, Ordering::Relaxed);
    let fallback = |err: HubSpotError| match stale {
        Some(contacts) => {
            cache.stats().stale_served.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %crate::mask::text(&err.to_string()), "HubSpot unavailable; serving a stale cache entry");
            Ok(answer("cache", true, contacts))
        }
        None => Err(err),
    };
    let Some(client) = client else {
        return fallback(HubSpotError::Unreachable(
            "HubSpot integration is disabled".into(),
        ));
    };
    let request = ContactSearch::Phone(phone.to_string()).request(10);
    match client.search_contacts(&request).await {
        Ok(found) => {
            let results = found["results"].as_array().cloned().unwrap_or_default();
            if policy.cache {
                if let Err(e) = cache.put_all(portal, &results).await {
                    tracing::warn!(error = %e, "cache write failed");
                }
            }
            let contacts = results.iter().map(Contact::from_hubspot).collect();
            Ok(answer("hubspot", false, contacts))
        }
        Err(e) => fallback(e),
    }
}

/// A phone lookup's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneLookup {
    /// The phone in E.164.
    pub phone: String,
    pub found: bool,
    /// `cache` or `hubspot`.
    pub source: &'static str,
    /// Served from the cache past its TTL because HubSpot could not be reached.
    pub stale: bool,
    pub contacts: Vec<Contact>,
}
