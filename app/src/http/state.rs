//! The state every handler shares: settings and the app's parts, built once by
//! [`crate::Application`].
//!
//! May import: the app's parts it holds. Nothing imports it but `http` and `Application`.

use std::sync::Arc;

use crate::config::Settings;
use crate::hubspot::HubSpotClient;

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    /// `None` when HubSpot is disabled.
    pub hubspot: Option<Arc<HubSpotClient>>,
    pub db: crate::store::Db,
    pub outbox: crate::store::outbox::Outbox,
    pub inbox: crate::store::inbox::Inbox,
    pub cache: crate::store::cache::Cache,
    pub sync: crate::jobs::sync::Sync,
    /// The portals connected by OAuth.
    pub portals: crate::connections::Portals,
    /// Open connections and the drain flag (see [`crate::serve`]).
    pub drain: Arc<crate::serve::Drain>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// The HubSpot client, or the 503 that says the integration is off.
    pub fn hubspot(&self) -> Result<&Arc<HubSpotClient>, super::ApiError> {
        self.hubspot
            .as_ref()
            .ok_or_else(super::ApiError::hubspot_disabled)
    }
}
