//! Liveness, readiness, the figures (`/api/stats`, `/metrics`) and the API's own contract
//! (`/openapi.json`).
//!
//! May import: `http::{state, error, auth}` and the parts whose figures it reads.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Signed, Staff};
use super::error::ApiError;
use super::state::{AppState, Shared};

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: &'static str,
    pub version: String,
    /// `blue` or `green` (empty outside a deploy).
    pub slot: String,
    /// Shutting down: finishing open connections before it exits.
    pub draining: bool,
    pub connections: u64,
}

/// Liveness: answers at once, with what the deployer needs to see (version, slot, drain).
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn health(State(s): State<Shared>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: s.settings.version.clone(),
        slot: s.settings.slot.clone(),
        draining: s.drain.is_draining(),
        connections: s.drain.open_connections() as u64,
    })
}

/// `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Why it is not ready (empty when it is).
    pub reasons: Vec<String>,
    pub checks: ReadyChecks,
    pub version: String,
    pub slot: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyChecks {
    /// `ok`: the process would not have started with an invalid configuration.
    pub config: &'static str,
    /// `ok` or `error`.
    pub database: &'static str,
}

/// Ready when the database answers and the process is not draining; 503 with the reasons
/// otherwise. A HubSpot outage makes the service degraded, never unready.
#[utoipa::path(get, path = "/ready", tag = "system", responses(
    (status = 200, description = "Ready for traffic", body = Readiness),
    (status = 503, description = "Not ready: the reasons say why", body = Readiness)))]
pub async fn ready(State(s): State<Shared>) -> (StatusCode, Json<Readiness>) {
    let database = s.db.ping(std::time::Duration::from_secs(2)).await;
    let mut reasons = Vec::new();
    if let Err(e) = &database {
        reasons.push(e.clone());
    }
    if s.drain.is_draining() {
        reasons.push("draining: this process is shutting down".to_string());
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready: reasons.is_empty(),
        reasons,
        checks: ReadyChecks {
            config: "ok",
            database: if database.is_ok() { "ok" } else { "error" },
        },
        version: s.settings.version.clone(),
        slot: s.settings.slot.clone(),
    };
    (status, Json(body))
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 description, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi_json())
}

/// The figures of `/api/stats` (and the dashboard).
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub version: String,
    pub slot: String,
    /// `null` when the database could not be read.
    pub outbox: Option<crate::store::outbox::Depth>,
    pub webhooks: WebhookStats,
    pub cache: CacheStats,
    /// `null` when the database could not be read.
    pub sync: Option<crate::store::sync::Status>,
    /// The pull sync of each type of `SYNC_OBJECTS` (`sync` is the contacts' one); empty when
    /// the database could not be read.
    pub syncs: Vec<crate::store::sync::Status>,
    /// Local changes of app-owned fields on their way to HubSpot; `null` when the database
    /// could not be read.
    pub object_writes: Option<crate::store::object_writes::WriteDepth>,
    /// Lifecycle events stored and their subjects' deliveries; `null` when the database could
    /// not be read.
    pub lifecycle: Option<crate::store::lifecycle::LifecycleDepth>,
    pub hubspot: HubSpotStats,
    pub connections: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub processed: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStats {
    pub entries: Option<i64>,
    pub hits: u64,
    pub misses: u64,
    pub stale_served: u64,
    /// hits / (hits + misses); `null` before the first lookup.
    pub hit_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HubSpotStats {
    pub attempts: u64,
    pub failures: u64,
    pub rate_limited: u64,
    pub latency_mean_ms: f64,
    pub latency_max_ms: f64,
    /// The circuit breaker of the private-app client (`closed` when HubSpot is off).
    pub circuit: crate::hubspot::breaker::CircuitState,
}

/// The figures `/api/stats`, `/metrics` and the dashboard show.
pub async fn collect_stats(s: &AppState) -> Stats {
    use std::sync::atomic::Ordering::Relaxed;
    let w = &s.inbox.stats;
    let c = s.cache.stats();
    let (hits, misses) = (c.hits.load(Relaxed), c.misses.load(Relaxed));
    let ms = |us: f64| (us / 100.0).round() / 10.0;
    Stats {
        version: s.settings.version.clone(),
        slot: s.settings.slot.clone(),
        outbox: s.outbox.depth().await.ok(),
        webhooks: WebhookStats {
            accepted: w.accepted.load(Relaxed),
            duplicates: w.duplicates.load(Relaxed),
            rejected: w.rejected.load(Relaxed),
            processed: w.processed.load(Relaxed),
        },
        cache: CacheStats {
            entries: s.cache.len().await.ok(),
            hits,
            misses,
            stale_served: c.stale_served.load(Relaxed),
            hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        },
        sync: s.sync.status().await.ok(),
        syncs: s.sync.statuses().await.unwrap_or_default(),
        object_writes: s.object_writes.depth().await.ok(),
        lifecycle: s.lifecycle.depth().await.ok(),
        hubspot: match &s.hubspot {
            Some(h) => {
                let st = &h.stats;
                let attempts = st.attempts.load(Relaxed);
                HubSpotStats {
                    attempts,
                    failures: st.failures.load(Relaxed),
                    rate_limited: st.rate_limited.load(Relaxed),
                    latency_mean_ms: if attempts == 0 {
                        0.0
                    } else {
                        ms(st.latency_total_us.load(Relaxed) as f64 / attempts as f64)
                    },
                    latency_max_ms: ms(st.latency_max_us.load(Relaxed) as f64),
                    circuit: h.circuit(),
                }
            }
            None => HubSpotStats {
                attempts: 0,
                failures: 0,
                rate_limited: 0,
                latency_mean_ms: 0.0,
                latency_max_ms: 0.0,
                circuit: crate::hubspot::breaker::CircuitState::Closed,
            },
        },
        connections: s.drain.open_connections() as u64,
    }
}

/// `GET /api/stats` (admin): the service's figures as JSON.
#[utoipa::path(get, path = "/api/stats", tag = "system", security(("admin" = [])), responses(
    (status = 200, description = "The figures", body = Stats),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "The admin API is off (no ADMIN_TOKEN)", body = ApiError)))]
pub async fn stats(_: Signed<Staff>, State(s): State<Shared>) -> Json<Stats> {
    Json(collect_stats(&s).await)
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `hour` (a point a minute; the default) or `day` (a point every 15 minutes).
    window: Option<String>,
}

/// `GET /api/stats/history` (staff): the figures over the last hour or day, as stored by every
/// process in the database (the dashboard's charts): counters summed per point over the
/// processes, gauges at their highest, `null` where nothing was stored.
#[utoipa::path(get, path = "/api/stats/history", tag = "system", params(HistoryQuery), security(("admin" = [])), responses(
    (status = 200, description = "One line per series over the window", body = crate::domain::figures::History),
    (status = 400, description = "Not a window this app knows", body = ApiError),
    (status = 401, description = "No or an unknown token", body = ApiError),
    (status = 403, description = "The caller's role may not use this route", body = ApiError),
    (status = 503, description = "The database failed", body = ApiError)))]
pub async fn history(
    _: Signed<Staff>,
    State(s): State<Shared>,
    q: Result<axum::extract::Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<crate::domain::figures::History>, ApiError> {
    let axum::extract::Query(q) =
        q.map_err(|e| ApiError::invalid(format!("query: {}", e.body_text())))?;
    let window = q
        .window
        .as_deref()
        .unwrap_or("hour")
        .parse()
        .map_err(|e: String| ApiError::invalid(format!("window: {e}")))?;
    let history = s.figures.history(window).await.map_err(|e| {
        ApiError::internal(
            &e,
            "reading the figures' history",
            "the history could not be read; try again",
        )
    })?;
    Ok(Json(history))
}

/// `GET /metrics` (internal: nginx does not serve it): the same figures in the OpenMetrics
/// text format (Prometheus reads it), encoded by `prometheus-client`.
#[utoipa::path(get, path = "/metrics", tag = "system", responses(
    (status = 200, description = "OpenMetrics text exposition", content_type = "application/openmetrics-text")))]
pub async fn metrics(
    State(s): State<Shared>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let text = exposition(&collect_stats(&s).await).map_err(|e| {
        ApiError::internal(
            &e,
            "encoding the metrics",
            "the metrics could not be encoded; try again",
        )
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

/// The figures as metric families, in a registry made for this scrape (the figures are read
/// from the database and the parts' counters, not kept twice).
fn exposition(v: &Stats) -> Result<String, std::fmt::Error> {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    type Labels = Vec<(&'static str, &'static str)>;

    let mut registry = prometheus_client::registry::Registry::default();
    let gauges = |pairs: &[(&'static str, &'static str, i64)]| {
        let family = Family::<Labels, Gauge>::default();
        for (label, value, n) in pairs {
            family.get_or_create(&vec![(*label, *value)]).set(*n);
        }
        family
    };
    let counters = |pairs: &[(&'static str, &'static str, u64)]| {
        let family = Family::<Labels, Counter>::default();
        for (label, value, n) in pairs {
            family.get_or_create(&vec![(*label, *value)]).inc_by(*n);
        }
        family
    };
    if let Some(o) = &v.outbox {
        registry.register(
            "app_outbox_items",
            "Outbox items by state",
            gauges(&[
                ("state", "pending", o.pending),
                ("state", "leased", o.leased),
                ("state", "sent", o.sent),
                ("state", "dead", o.dead),
                ("state", "replayed", o.replayed),
            ]),
        );
    }
    let w = &v.webhooks;
    registry.register(
        "app_webhook_events",
        "Webhook events by outcome",
        counters(&[
            ("outcome", "accepted", w.accepted),
            ("outcome", "duplicates", w.duplicates),
            ("outcome", "rejected", w.rejected),
            ("outcome", "processed", w.processed),
        ]),
    );
    let c = &v.cache;
    registry.register(
        "app_cache_lookups",
        "Phone lookups by cache outcome",
        counters(&[
            ("result", "hit", c.hits),
            ("result", "miss", c.misses),
            ("result", "stale", c.stale_served),
        ]),
    );
    if let Some(entries) = c.entries {
        let g = Gauge::<i64>::default();
        g.set(entries);
        registry.register("app_cache_entries", "Contacts in the cache", g);
    }
    let h = &v.hubspot;
    registry.register(
        "app_hubspot_calls",
        "HubSpot call attempts by outcome",
        counters(&[
            ("outcome", "attempted", h.attempts),
            ("outcome", "failed", h.failures),
            ("outcome", "rate_limited", h.rate_limited),
        ]),
    );
    let open = Gauge::<i64>::default();
    open.set(v.connections as i64);
    registry.register("app_open_connections", "Open client connections", open);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}
