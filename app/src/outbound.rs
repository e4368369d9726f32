//! Contact search for the outbound flow, a use case: a typed query ([`SearchQuery`]) answered
//! from a short-lived answer cache when it can be, else by HubSpot's search (5 requests a
//! second per account, which the client's limiter keeps), and remembered in the user's history.
//!
//! Debounce-friendly: people type `a`, `ad`, `ada`, `ada l`… A query seen within
//! `SEARCH_CACHE_TTL` is answered again from memory; so is a longer one, when a shorter query's
//! answer was complete (HubSpot had no more than it returned): narrowing only removes contacts,
//! and [`crate::domain::search::matches`] applies HubSpot's own rule to what is held. The same
//! query asked again while HubSpot is answering it waits for that answer (one search, not two).
//!
//! May not import: `axum`, `sqlx`, `crate::http`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::domain::portal::PortalId;
use crate::domain::search::{matches, FoundContact, SearchQuery};
use crate::hubspot::search::ContactSearch;
use crate::hubspot::{HubSpotClient, HubSpotError};
use crate::store::history::History;
use crate::store::portal_key;

/// How many contacts HubSpot is asked for per query (its search pages hold up to 200); an
/// answer with fewer than its total is not complete, so never narrowed locally.
const FETCH: u32 = 100;

/// What HubSpot answered a query, held for `SEARCH_CACHE_TTL`.
#[derive(Debug)]
struct Held {
    results: Vec<Value>,
    complete: bool,
}

#[derive(Clone)]
pub struct Outbound {
    held: moka::future::Cache<(i64, String), Arc<Held>>,
    history: History,
    region: phonenumber::country::Id,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("held", &self.held.entry_count())
            .finish()
    }
}

/// A search's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub contacts: Vec<FoundContact>,
    /// Whether it came from memory rather than HubSpot.
    pub cached: bool,
}

impl Outbound {
    pub fn new(history: History, ttl: Duration, region: phonenumber::country::Id) -> Self {
        Self {
            held: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
            history,
            region,
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Answers `query` for `user` in `portal` (through `client`), up to `limit` contacts, and
    /// records it in the user's history.
    pub async fn search(
        &self,
        user: &str,
        portal: Option<PortalId>,
        client: &HubSpotClient,
        query: &SearchQuery,
        limit: usize,
    ) -> Result<Answer, HubSpotError> {
        let key = portal_key(portal);
        let (held, cached) = match self.held_answer(key, query).await {
            Some(held) => (held, true),
            None => {
                // One HubSpot search per query at a time: callers of the same query meanwhile
                // (people typing the same name) wait for its answer instead of queueing
                // behind the 5/s limit with their own.
                let asked = std::sync::atomic::AtomicBool::new(false);
                let held = self
                    .held
                    .try_get_with((key, query.text.clone()), async {
                        asked.store(true, std::sync::atomic::Ordering::Relaxed);
                        self.ask(client, &query.text).await.map(Arc::new)
                    })
                    .await
                    .map_err(|e| (*e).clone())?;
                (held, !asked.into_inner())
            }
        };
        let contacts: Vec<FoundContact> = held
            .results
            .iter()
            .filter(|o| !cached || matches(&query.text, &o["properties"]))
            .take(limit)
            .map(|o| FoundContact::from_hubspot(o, self.region))
            .collect();
        let ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
        let indexed = query
            .person
            .as_ref()
            .map_or_else(|| format!("query:{}", query.text), |p| p.indexed());
        if let Err(e) = self
            .history
            .record(user, key, &query.text, &indexed, &ids)
            .await
        {
            tracing::warn!(error = %e, "could not record the search in the user's history");
        }
        Ok(Answer { contacts, cached })
    }

    /// The held answer of this query, or of a narrower one that was complete.
    async fn held_answer(&self, key: i64, query: &SearchQuery) -> Option<Arc<Held>> {
        if let Some(held) = self.held.get(&(key, query.text.clone())).await {
            return Some(held);
        }
        for shorter in query.narrower_of() {
            if let Some(held) = self.held.get(&(key, shorter)).await {
                if held.complete {
                    return Some(held);
                }
            }
        }
        None
    }

    async fn ask(&self, client: &HubSpotClient, text: &str) -> Result<Held, HubSpotError> {
        let request = ContactSearch::Outbound(text.to_string()).request(FETCH);
        let found = client.search_contacts(&request).await?;
        let results = found["results"].as_array().cloned().unwrap_or_default();
        let total = found["total"].as_u64().unwrap_or(u64::MAX);
        Ok(Held {
            complete: total <= results.len() as u64,
            results,
        })
    }
}
