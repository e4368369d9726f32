//! The state every handler shares: settings and the app's parts, built once by
//! [`crate::Application`].
//!
//! May import: the app's parts it holds. Nothing imports it but `http` and `Application`.

use std::sync::Arc;

use crate::config::Settings;
use crate::domain::portal::PortalId;
use crate::hubspot::{HubSpotClient, HubSpotError};

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    /// `None` when HubSpot is disabled.
    pub hubspot: Option<Arc<HubSpotClient>>,
    pub db: crate::store::Db,
    pub outbox: crate::store::outbox::Outbox,
    pub inbox: crate::store::inbox::Inbox,
    pub cache: crate::store::cache::Cache,
    pub objects: crate::store::objects::Objects,
    pub object_writes: crate::store::object_writes::ObjectWrites,
    pub sync: crate::jobs::sync::Sync,
    /// The portals connected by OAuth.
    pub portals: crate::connections::Portals,
    /// Lifecycle events: the store (the worker delivers from it) and the use case.
    pub lifecycle: crate::store::lifecycle::Lifecycle,
    pub events: crate::events::Events,
    /// Who calls (users, tokens), the audit, the runtime flags, per-user limits.
    pub access: crate::access::Access,
    pub auditor: crate::access::Auditor,
    pub flags: Arc<crate::access::Flags>,
    pub limits: crate::access::limits::UserLimits,
    /// Contact search for the outbound flow, and GDPR export and erasure.
    pub outbound: crate::outbound::Outbound,
    pub privacy: crate::privacy::Privacy,
    /// Seals personal data (`None`: no `TOKEN_ENCRYPTION_KEY`).
    pub sealer: Option<crate::domain::privacy::SharedSealer>,
    /// The figures' history (the dashboard's charts).
    pub figures: crate::jobs::figures::Figures,
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

    /// The account a request names by `?portal=`, with its client: the private-app token's
    /// when unset (no client when there is none), else a connected portal's (`None` as the
    /// account when the private-app token serves that portal); 404 for a portal not
    /// connected here.
    pub async fn account(
        &self,
        portal: Option<u64>,
    ) -> Result<(Option<PortalId>, Option<Arc<HubSpotClient>>), super::ApiError> {
        let Some(p) = portal.map(PortalId) else {
            return Ok((None, self.hubspot.clone()));
        };
        let known = self.portals.is_known(p).await.map_err(|e| {
            super::ApiError::internal(
                &e,
                "reading connections",
                "could not check the portal; try again",
            )
        })?;
        if !known {
            return Err(super::ApiError::portal_not_connected(p));
        }
        match self.portals.connection_for(Some(p)).await {
            Ok((kept_as, client)) => Ok((kept_as, Some(client))),
            Err(HubSpotError::NotConnected(_)) => Err(super::ApiError::portal_not_connected(p)),
            Err(e) => Err(e.into()),
        }
    }

    /// [`account`](Self::account)'s client; 503 when HubSpot is off for the single account.
    pub async fn client_of(
        &self,
        portal: Option<u64>,
    ) -> Result<Arc<HubSpotClient>, super::ApiError> {
        self.account(portal)
            .await?
            .1
            .ok_or_else(super::ApiError::hubspot_disabled)
    }
}
