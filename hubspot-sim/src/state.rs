//! The shared state every handler sees, and the small request helpers they share.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::Json;
use parking_lot::{MappedMutexGuard, Mutex, MutexGuard};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::oauth::OAuth;
use crate::ratelimit::RateLimiter;
use crate::stats::Stats;
use crate::store::{Change, Store};
use crate::webhooks::Webhooks;

#[derive(Debug)]
pub struct SimState {
    pub config: SimConfig,
    /// Each portal's records, made on first use; see [`SimState::store`].
    stores: Mutex<HashMap<u64, Store>>,
    pub limiter: RateLimiter,
    pub faults: Faults,
    pub stats: Stats,
    pub webhooks: Option<Webhooks>,
    pub oauth: OAuth,
}

pub type Shared = Arc<SimState>;

impl SimState {
    /// Builds the state; starts the webhook dispatcher when webhooks are configured (so this
    /// must run inside a Tokio runtime).
    pub fn new(config: SimConfig, shutdown: CancellationToken) -> Shared {
        let webhooks = config
            .webhooks
            .clone()
            .map(|w| Webhooks::spawn(w, config.app_id, shutdown));
        Arc::new(SimState {
            stores: Mutex::new(HashMap::new()),
            limiter: RateLimiter::new(
                config.rate_limit,
                config.search_rate_limit,
                config.daily_limit,
            ),
            faults: Faults::default(),
            stats: Stats::default(),
            webhooks,
            oauth: OAuth::default(),
            config,
        })
    }

    /// One portal's records (every portal has its own, as in HubSpot): the portal an OAuth
    /// token was installed in, or `--portal-id` for a private-app token (see [`Portal`]).
    pub fn store(&self, portal: u64) -> MappedMutexGuard<'_, Store> {
        MutexGuard::map(self.stores.lock(), |stores| {
            // Ids differ across portals, as HubSpot's do: the n-th portal's ids start n × 10¹⁰
            // above the first's, so a record read through the wrong portal is a 404, not a
            // stranger's record.
            let rank = self.config.portals().iter().position(|p| *p == portal);
            let id_offset = rank.unwrap_or(stores.len()) as u64 * 10_000_000_000;
            stores.entry(portal).or_insert_with(|| {
                Store::new(
                    portal,
                    id_offset,
                    self.config.search_lag,
                    &self.config.extra_properties,
                )
            })
        })
    }

    /// Hands changes to the webhook dispatcher (a no-op without webhooks).
    pub fn emit(&self, changes: Vec<Change>) {
        if let Some(w) = &self.webhooks {
            if !changes.is_empty() {
                w.emit(changes);
            }
        }
    }

    /// Back to a fresh simulator: no records, rules, counts, usage or delivery log.
    pub fn reset(&self) {
        self.stores.lock().clear();
        self.limiter.reset();
        self.faults.clear();
        self.stats.clear();
        self.oauth.reset();
        if let Some(w) = &self.webhooks {
            w.clear();
        }
    }
}

/// The portal (hub id) a request acts in, set by the gate: the installation's for an OAuth
/// token, `--portal-id` for a private-app token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Portal(pub u64);

/// `Json<T>` whose rejections are HubSpot-shaped 400s (or 415 for a wrong content type).
pub struct HsJson<T>(pub T);

impl<S, T> FromRequest<S> for HsJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(HsJson(value)),
            Err(rejection) => {
                let mut err =
                    ApiError::validation(format!("Invalid input JSON: {}", rejection.body_text()));
                err.status = rejection.status();
                Err(err)
            }
        }
    }
}

/// Query parameters the way HubSpot reads them: `properties` may be repeated and/or
/// comma-separated; other keys take their last value.
#[derive(Debug, Default)]
pub struct ReadParams {
    pub properties: Vec<String>,
    pub id_property: Option<String>,
    pub archived: bool,
    pub limit: Option<String>,
    pub after: Option<String>,
}

impl ReadParams {
    pub fn parse(query: Option<&str>) -> Self {
        let mut p = ReadParams::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "properties" => p.properties.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                ),
                "idProperty" => p.id_property = Some(v.into_owned()),
                "archived" => p.archived = v.eq_ignore_ascii_case("true"),
                "limit" => p.limit = Some(v.into_owned()),
                "after" => p.after = Some(v.into_owned()),
                _ => {}
            }
        }
        p
    }

    /// Which properties a read returns: the type's defaults, or the named ones plus the
    /// always-returned system properties.
    pub fn selection(&self, schema: &crate::model::ObjectSchema) -> Vec<String> {
        select_properties(&self.properties, schema)
    }
}

/// Shared by reads and batch reads: named properties plus system ones, or the defaults.
pub fn select_properties(named: &[String], schema: &crate::model::ObjectSchema) -> Vec<String> {
    if named.is_empty() {
        return schema
            .default_properties
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    let mut props = named.to_vec();
    for always in ["hs_object_id", "createdate", schema.last_modified_property] {
        if !props.iter().any(|p| p == always) {
            props.push(always.to_string());
        }
    }
    props
}
