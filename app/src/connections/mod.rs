//! Connected HubSpot portals, as a use case: the OAuth install (a single-use state in the shared
//! database, bound to the browser that started it), the callback that stores the portal's
//! tokens sealed, a client per portal whose tokens refresh themselves ([`tokens`]), the status
//! of every connection, uninstall, and key rotation.
//!
//! A private-app token (`HUBSPOT_ACCESS_TOKEN`) is one more connection: listed with its portal,
//! never refreshed.
//!
//! May not import: `axum`, `sqlx`, `crate::http`.

mod install;
mod rotate;
pub mod tokens;

pub use install::{Install, InstallError, STATE_TTL};

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::crypto::Keyring;
use crate::domain::portal::{ConnectionKind, PortalId};
use crate::hubspot::limiter::BudgetStore;
use crate::hubspot::oauth::OAuthClient;
use crate::hubspot::{HubSpotClient, HubSpotError, HubSpotSettings};
use crate::store::connections::{Connection, Connections};
use crate::store::oauth_states::OAuthStates;
use crate::store::StoreError;
use tokens::{context, OAuthTokens};

/// The app's connected portals.
#[derive(Debug, Clone)]
pub struct Portals {
    store: Connections,
    states: OAuthStates,
    settings: HubSpotSettings,
    oauth: Option<(Arc<OAuthClient>, Keyring)>,
    budget: Option<Arc<dyn BudgetStore>>,
    owner: String,
    clients: Arc<Mutex<HashMap<PortalId, Arc<HubSpotClient>>>>,
    /// The private-app token's client (`HUBSPOT_ACCESS_TOKEN`), one more connection.
    private: Option<Arc<HubSpotClient>>,
    /// Its portal, read from HubSpot once it is first needed.
    private_portal: Arc<tokio::sync::OnceCell<PortalId>>,
    /// Every client's calls, counted together (the figures' history).
    calls: Arc<crate::hubspot::CallStats>,
}

impl Portals {
    pub fn new(
        store: Connections,
        states: OAuthStates,
        settings: HubSpotSettings,
        oauth: Option<(Arc<OAuthClient>, Keyring)>,
        budget: Option<Arc<dyn BudgetStore>>,
        owner: String,
        private: Option<Arc<HubSpotClient>>,
    ) -> Self {
        Self {
            store,
            states,
            settings,
            oauth,
            budget,
            owner,
            clients: Arc::default(),
            private,
            private_portal: Arc::default(),
            calls: Arc::default(),
        }
    }

    /// The portals' clients count their calls into `calls` (which the private-app client, built
    /// before, should count into too).
    pub fn counting_calls_into(mut self, calls: Arc<crate::hubspot::CallStats>) -> Self {
        self.calls = calls;
        self
    }

    /// The calls of every client of this process.
    pub fn calls(&self) -> &Arc<crate::hubspot::CallStats> {
        &self.calls
    }

    /// The portal of the private-app token, asked of HubSpot once; `None` without one, or
    /// while HubSpot cannot say.
    pub async fn private_portal(&self) -> Option<PortalId> {
        let client = self.private.as_ref()?;
        self.private_portal
            .get_or_try_init(|| async {
                client
                    .account_details()
                    .await
                    .map(|(details, _)| PortalId(details.portal_id))
            })
            .await
            .ok()
            .copied()
    }

    /// Whether events of `portal` belong here: any portal for a single private-app account,
    /// otherwise the private app's portal or a connected one. `Err` when that cannot be told
    /// now (the database, or HubSpot asked for the private app's portal): then nothing is
    /// refused.
    pub async fn is_known(&self, portal: PortalId) -> Result<bool, StoreError> {
        if self.oauth.is_none() {
            return Ok(true);
        }
        if self.private.is_some() {
            match self.private_portal().await {
                Some(p) if p == portal => return Ok(true),
                Some(_) => {}
                None => return Ok(true),
            }
        }
        Ok(self
            .store
            .get(portal)
            .await?
            .is_some_and(|c| c.state == crate::domain::portal::ConnectionState::Connected))
    }

    /// Whether writes to `portal` are taken: a known portal, or one waiting for its customer
    /// to install again (its writes wait in the outbox, and go once it is connected).
    pub async fn accepts_writes(&self, portal: PortalId) -> Result<bool, StoreError> {
        if self.is_known(portal).await? {
            return Ok(true);
        }
        Ok(self.store.get(portal).await?.is_some_and(|c| {
            c.state == crate::domain::portal::ConnectionState::ReauthorizationRequired
        }))
    }

    /// The client for an event or a write of `portal` (`None`: the single account).
    pub async fn client_for(
        &self,
        portal: Option<PortalId>,
    ) -> Result<Arc<HubSpotClient>, HubSpotError> {
        Ok(self.connection_for(portal).await?.1)
    }

    /// [`client_for`](Self::client_for), with the portal its data is kept under: `None` when
    /// the private-app token serves it (its portal's data is the single account's), else the
    /// portal.
    pub async fn connection_for(
        &self,
        portal: Option<PortalId>,
    ) -> Result<(Option<PortalId>, Arc<HubSpotClient>), HubSpotError> {
        let not_connected = || {
            HubSpotError::NotConnected(format!(
                "portal {}: not connected here",
                portal.map_or("(none named)".into(), |p| p.to_string())
            ))
        };
        match (portal, &self.private, &self.oauth) {
            (None, Some(private), _) | (Some(_), Some(private), None) => {
                Ok((None, private.clone()))
            }
            (Some(p), Some(private), Some(_)) if self.private_portal().await == Some(p) => {
                Ok((None, private.clone()))
            }
            (Some(p), _, Some(_)) => Ok((Some(p), self.client(p)?)),
            _ => Err(not_connected()),
        }
    }

    pub fn oauth_enabled(&self) -> bool {
        self.oauth.is_some()
    }

    fn oauth(&self) -> Result<&(Arc<OAuthClient>, Keyring), HubSpotError> {
        self.oauth.as_ref().ok_or_else(|| {
            HubSpotError::NotConnected(
                "OAuth installs are off (set HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET, HUBSPOT_REDIRECT_URI and TOKEN_ENCRYPTION_KEY)".into(),
            )
        })
    }

    /// The client of a connected portal (one per portal per process, so its limiter and its
    /// token are shared by every caller here).
    pub fn client(&self, portal: PortalId) -> Result<Arc<HubSpotClient>, HubSpotError> {
        if let Some(client) = self.clients.lock().get(&portal) {
            return Ok(client.clone());
        }
        let (oauth, keyring) = self.oauth()?;
        let tokens = OAuthTokens::new(
            portal,
            self.store.clone(),
            oauth.clone(),
            keyring.clone(),
            self.owner.clone(),
        );
        let settings = HubSpotSettings {
            rate_limit: self.settings.oauth_rate_limit,
            ..self.settings.clone()
        };
        let mut client =
            HubSpotClient::with_tokens(&settings, Arc::new(tokens), format!("portal:{portal}"))
                .map_err(|e| HubSpotError::Unreachable(e.to_string()))?
                .counting_into(self.calls.clone());
        if let Some(budget) = &self.budget {
            client = client.with_shared_budget(budget.clone());
        }
        let client = Arc::new(client);
        self.clients.lock().insert(portal, client.clone());
        Ok(client)
    }

    /// The circuit breakers of the portals this process has called.
    pub fn circuits(
        &self,
    ) -> std::collections::BTreeMap<PortalId, crate::hubspot::breaker::CircuitState> {
        self.clients
            .lock()
            .iter()
            .map(|(portal, client)| (*portal, client.circuit()))
            .collect()
    }

    /// Every connection, for status: the private-app token's first (when its portal is
    /// known), then the stored ones.
    pub async fn list(&self) -> Result<Vec<Connection>, StoreError> {
        let mut all = self.store.list().await?;
        if let (Some(portal), Some(client)) = (self.private_portal.get(), &self.private) {
            all.insert(
                0,
                Connection {
                    portal_id: *portal,
                    kind: ConnectionKind::PrivateApp,
                    state: crate::domain::portal::ConnectionState::Connected,
                    scopes: Vec::new(),
                    expires_at: None,
                    refreshed_at: None,
                    error_count: client
                        .stats
                        .failures
                        .load(std::sync::atomic::Ordering::Relaxed)
                        as i64,
                    last_error: None,
                    account: None,
                    created_at: 0,
                    updated_at: 0,
                },
            );
        }
        Ok(all)
    }

    /// Uninstalls a portal: its tokens are deleted here and its refresh token revoked at
    /// HubSpot; with `purge`, its local data is deleted too. `Ok(None)` when no such portal
    /// was connected, else the rows purged.
    pub async fn disconnect(
        &self,
        portal: PortalId,
        purge: bool,
    ) -> Result<Option<u64>, InstallError> {
        let Some((refresh, purged)) = self.store.disconnect(portal, purge).await? else {
            return Ok(None);
        };
        self.clients.lock().remove(&portal);
        if let (Some(sealed), Ok((client, keyring))) = (refresh, self.oauth()) {
            match keyring.open(&sealed, &context("refresh_token", portal)) {
                Ok(refresh) => {
                    if let Err(e) = client.revoke(&refresh).await {
                        tracing::warn!(%portal, error = %e, "could not revoke the refresh token at HubSpot; it is deleted here");
                    }
                }
                Err(e) => {
                    tracing::warn!(%portal, error = %e, "the stored refresh token does not open; deleted without revoking")
                }
            }
        }
        tracing::info!(%portal, purge, purged, "a HubSpot portal was disconnected");
        Ok(Some(purged))
    }

    /// The accounts whose data this process keeps: the private-app token's (`None`) when there
    /// is one, then every connected portal.
    pub async fn accounts(&self) -> Result<Vec<Option<PortalId>>, StoreError> {
        let private = self.private.as_ref().map(|_| None);
        let connected = self
            .store
            .list()
            .await?
            .into_iter()
            .filter(|c| c.state == crate::domain::portal::ConnectionState::Connected);
        Ok(private
            .into_iter()
            .chain(connected.map(|c| Some(c.portal_id)))
            .collect())
    }
}
