//! The HTTP edge (axum only): the route table, the shared state, admin auth, the one
//! [`ApiError`], one module per resource, and the OpenAPI document generated from them.
//!
//! Layer rule: nothing outside `http` imports it (except [`crate::Application`], which builds
//! the state and serves the router); `http` may import every inner part. No SQL here: handlers
//! call the parts' methods. Checked by `app/tests/it/layers.rs`.

pub mod auth;
pub mod charts;
pub mod contacts;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod flags;
pub mod integrations;
pub mod lookup;
pub mod mappings;
pub mod objects;
pub mod outbox;
pub mod privacy;
pub mod probe;
pub mod search;
pub mod state;
pub mod sync;
pub mod system;
pub mod users;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use utoipa::OpenApi;

pub use error::ApiError;
pub use state::{AppState, Shared};

/// Who may reach a route through the front door (nginx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Users, operators or HubSpot reach it from outside: nginx must proxy it.
    Public,
    /// For this machine only (scrapers, probes inside the network): nginx answers 404.
    Internal,
}

/// One route of the app: its path (axum syntax) and its exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub path: &'static str,
    pub exposure: Exposure,
}

/// The router and the table of its routes, built together so that no route can exist without
/// saying who may reach it (the nginx template and the OpenAPI document are checked against
/// this table).
struct Table {
    router: Router<Shared>,
    routes: Vec<RouteInfo>,
}

impl Table {
    fn route(
        mut self,
        path: &'static str,
        exposure: Exposure,
        method: MethodRouter<Shared>,
    ) -> Self {
        self.router = self.router.route(path, method);
        self.routes.push(RouteInfo { path, exposure });
        self
    }
}

fn table() -> Table {
    use Exposure::{Internal, Public};
    Table {
        router: Router::new(),
        routes: Vec::new(),
    }
    .route("/health", Public, get(system::health))
    .route("/ready", Public, get(system::ready))
    .route("/openapi.json", Public, get(system::openapi))
    .route(
        "/api/hubspot/test",
        Public,
        get(probe::check)
            .post(probe::upsert)
            .layer(DefaultBodyLimit::max(probe::MAX_CONTACT_BODY)),
    )
    .route(
        "/api/contacts",
        Public,
        get(contacts::by_email)
            .post(contacts::enqueue)
            .layer(DefaultBodyLimit::max(contacts::MAX_ENQUEUE_BODY)),
    )
    .route(
        "/api/contacts/search",
        Public,
        get(contacts::search).post(search::outbound),
    )
    .route(
        "/api/contacts/lookup",
        Public,
        get(lookup::lookup_phone).post(lookup::lookup_phones),
    )
    .route(
        "/api/events",
        Public,
        post(events::track).layer(DefaultBodyLimit::max(events::MAX_BODY)),
    )
    .route("/api/events/{event_id}", Public, get(events::show))
    .route("/api/users", Public, get(users::list).post(users::add))
    .route(
        "/api/users/{name}",
        Public,
        axum::routing::delete(users::revoke),
    )
    .route("/api/users/{name}/tokens", Public, post(users::add_token))
    .route("/api/audit", Public, get(users::audit))
    .route("/api/flags", Public, get(flags::list))
    .route("/api/flags/{name}", Public, axum::routing::put(flags::put))
    .route(
        "/api/privacy/subjects",
        Public,
        get(privacy::export).delete(privacy::erase),
    )
    .route("/api/outbox", Public, get(outbox::list))
    .route("/api/outbox/{id}/retry", Public, post(outbox::retry))
    .route("/api/stats", Public, get(system::stats))
    .route("/api/stats/history", Public, get(system::history))
    .route("/api/sync/run", Public, post(sync::run))
    .route(
        "/api/sync/objects",
        Public,
        get(sync::objects).put(sync::set_objects),
    )
    .route("/api/objects/{type}", Public, get(objects::list))
    .route(
        "/api/objects/{type}/{id}",
        Public,
        get(objects::get).patch(objects::change),
    )
    .route(
        "/api/mappings/{type}",
        Public,
        get(mappings::get).put(mappings::put),
    )
    .route(
        "/webhooks/hubspot",
        Public,
        post(webhooks::receive).layer(DefaultBodyLimit::max(crate::domain::event::MAX_BODY)),
    )
    .route(
        "/api/integrations/hubspot/install",
        Public,
        get(integrations::install),
    )
    .route(
        "/api/integrations/hubspot/callback",
        Public,
        get(integrations::callback),
    )
    .route(
        "/api/integrations/hubspot/status",
        Public,
        get(integrations::status),
    )
    .route(
        "/api/integrations/hubspot/portals/{portalId}",
        Public,
        axum::routing::delete(integrations::disconnect),
    )
    .route("/dashboard", Public, get(dashboard::page))
    .route("/dashboard/login", Public, post(dashboard::login))
    .route("/dashboard/flags", Public, post(dashboard::set_flag))
    .route("/metrics", Internal, get(system::metrics))
}

/// The response header naming the slot that answered (`APP_SLOT`).
pub const SLOT_HEADER: &str = "x-app-slot";

/// Every route the app serves, with its exposure.
pub fn route_table() -> Vec<RouteInfo> {
    table().routes
}

pub fn router(state: Shared) -> Router {
    let drain = state.drain.clone();
    // Which slot answered: nginx logs it for the deployer's bake and switch figures, and hides
    // it from clients. A slot name that is not a header value is sent as "unknown".
    let slot = axum::http::HeaderValue::from_str(&state.settings.slot)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("unknown"));
    table()
        .router
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            axum::http::HeaderName::from_static(SLOT_HEADER),
            slot,
        ))
        .layer(axum::middleware::from_fn_with_state(
            drain,
            crate::serve::close_when_draining,
        ))
        .layer(
            // Spans name the method and the path only: query strings (emails, phones) stay out.
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("request", method = %req.method(), path = %crate::mask::text(req.uri().path()))
                })
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

/// The API's contract, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "HubSpot integration service",
        description = "CRM sync with HubSpot (contacts, companies, deals, line items, activities): a durable outbox, signed webhooks, an encrypted phone-lookup cache, contact search, GDPR tools and a dashboard. Protected routes take `Authorization: Bearer <token>`: a user's own (`app users add NAME --role admin|operator|support`) or the bootstrap `ADMIN_TOKEN`; each route says which roles it allows (403 otherwise). Every error has one shape: `ApiError`."
    ),
    paths(
        system::health, system::ready, system::openapi, system::stats, system::history, system::metrics,
        probe::check, probe::upsert,
        contacts::by_email, contacts::search, contacts::enqueue, lookup::lookup_phone,
        lookup::lookup_phones, search::outbound,
        users::list, users::add, users::add_token, users::revoke, users::audit,
        flags::list, flags::put, privacy::export, privacy::erase,
        outbox::list, outbox::retry,
        events::track, events::show,
        sync::run, sync::objects, sync::set_objects,
        objects::list, objects::get, objects::change, mappings::get, mappings::put,
        webhooks::receive,
        integrations::install, integrations::callback, integrations::status,
        integrations::disconnect,
        dashboard::page, dashboard::login, dashboard::set_flag,
    ),
    modifiers(&Security),
    tags(
        (name = "system", description = "Health, readiness, figures, this contract"),
        (name = "hubspot", description = "Is HubSpot reachable with our token"),
        (name = "contacts", description = "Reads, searches, phone lookups, queued writes"),
        (name = "outbox", description = "The queue of writes to HubSpot"),
        (name = "events", description = "The product's lifecycle events, and what they changed in HubSpot"),
        (name = "sync", description = "The pull sync from HubSpot"),
        (name = "objects", description = "The synced CRM records and their associations"),
        (name = "webhooks", description = "HubSpot's signed event deliveries"),
        (name = "integrations", description = "HubSpot portals connected by OAuth"),
        (name = "dashboard", description = "The operators' page"),
        (name = "access", description = "Users and their roles, the audit, the runtime feature flags"),
        (name = "privacy", description = "GDPR access and erasure"),
    )
)]
pub struct ApiDoc;

/// Declares the admin bearer token and the dashboard's session cookie.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a user's token, or ADMIN_TOKEN"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("dashboard_session"))),
        );
    }
}

/// The OpenAPI document as served at `/openapi.json` (built once).
pub fn openapi_json() -> serde_json::Value {
    static DOC: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
    });
    DOC.clone()
}
