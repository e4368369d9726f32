//! An OAuth connection's access token, kept fresh: the [`TokenSource`] of a portal's client.
//!
//! The token is refreshed ahead of its expiry ([`EARLY`] before it, or a tenth of its lifetime
//! when that is shorter), and at once when HubSpot says it expired. At most one process
//! refreshes a portal at a time: it takes the row's refresh lease; the others wait for the row
//! to carry a newer token and use it. So one expiry costs one refresh call, however many
//! processes and calls meet it.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::crypto::Keyring;
use crate::domain::portal::{ConnectionState, PortalId};
use crate::hubspot::oauth::{BoxFuture, OAuthClient, OAuthError, TokenSource};
use crate::hubspot::HubSpotError;
use crate::secret::Secret;
use crate::store::connections::{Connections, SealedTokens};

/// Refresh this long before the access token expires (or sooner for short-lived tokens).
pub const EARLY: Duration = Duration::from_secs(300);
/// How long a refresh lease lasts: longer than a token request can take.
const LEASE: Duration = Duration::from_secs(30);
/// How often a process waiting for another's refresh looks at the row again.
const POLL: Duration = Duration::from_millis(50);

/// The token store failed: the call cannot tell which token to send.
fn store_error(e: crate::store::StoreError) -> HubSpotError {
    HubSpotError::Unreachable(format!("the token store: {e}"))
}

/// Where a sealed token of a portal lives, for the keyring's associated data.
pub fn context(kind: &str, portal: PortalId) -> String {
    format!("{kind}:{portal}")
}

#[derive(Debug)]
pub struct OAuthTokens {
    portal: PortalId,
    store: Connections,
    oauth: Arc<OAuthClient>,
    keyring: Keyring,
    owner: String,
    /// The token in use.
    current: Mutex<Option<Held>>,
    /// One renewal at a time in this process: callers that meet an old token together wait
    /// for the first one's renewal and reuse it.
    renewing: tokio::sync::Mutex<()>,
}

/// An access token and its lifetime (epoch ms).
#[derive(Debug, Clone)]
struct Held {
    token: Secret,
    issued_at: i64,
    expires_at: i64,
}

impl OAuthTokens {
    pub fn new(
        portal: PortalId,
        store: Connections,
        oauth: Arc<OAuthClient>,
        keyring: Keyring,
        owner: String,
    ) -> Self {
        Self {
            portal,
            store,
            oauth,
            keyring,
            owner,
            current: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether `held` is good for a while yet: more than [`EARLY`], or a tenth of its
    /// lifetime when that is shorter, before its expiry.
    fn fresh(&self, held: &Held) -> bool {
        let margin = (EARLY.as_millis() as i64).min((held.expires_at - held.issued_at) / 10);
        held.expires_at - self.store.now_ms() > margin
    }

    fn not_connected(&self, why: &str) -> HubSpotError {
        HubSpotError::NotConnected(format!("portal {}: {why}", self.portal))
    }

    fn open(&self, kind: &str, sealed: &str) -> Result<Secret, HubSpotError> {
        self.keyring
            .open(sealed, &context(kind, self.portal))
            .map_err(|e| self.not_connected(&format!("its stored {kind} does not open: {e}")))
    }

    /// The stored access token, if it is fresh and not `stale` (the one HubSpot refused).
    async fn stored(&self, stale: Option<&Secret>) -> Result<Option<Held>, HubSpotError> {
        let Some(tokens) = self.store.tokens(self.portal).await.map_err(store_error)? else {
            let state = self
                .store
                .get(self.portal)
                .await
                .map_err(store_error)?
                .map(|c| c.state);
            return Err(self.not_connected(match state {
                Some(ConnectionState::ReauthorizationRequired) => {
                    "reauthorization required (install the app again)"
                }
                _ => "not connected (install the app again)",
            }));
        };
        let held = Held {
            token: self.open("access_token", &tokens.access)?,
            issued_at: tokens.refreshed_at.unwrap_or_default(),
            expires_at: tokens.expires_at.unwrap_or(i64::MAX),
        };
        let refused = stale.is_some_and(|s| s.expose() == held.token.expose());
        Ok((!refused && self.fresh(&held)).then_some(held))
    }

    /// A fresh access token: the stored one, another process's refresh, or this one's.
    async fn renew(&self, stale: Option<&Secret>) -> Result<Held, HubSpotError> {
        let deadline = self.store.now_ms() + 2 * LEASE.as_millis() as i64;
        loop {
            if let Some(found) = self.stored(stale).await? {
                return Ok(found);
            }
            let until = self.store.now_ms() + LEASE.as_millis() as i64;
            let taken = self
                .store
                .take_refresh(self.portal, &self.owner, until)
                .await
                .map_err(store_error)?;
            if taken {
                // Another process may have refreshed between the read and the lease.
                if let Some(found) = self.stored(stale).await? {
                    let _ = self
                        .store
                        .refresh_failed(
                            self.portal,
                            &self.owner,
                            "refreshed by another process",
                            None,
                        )
                        .await;
                    return Ok(found);
                }
                return self.refresh().await;
            }
            if self.store.now_ms() > deadline {
                return Err(HubSpotError::Unreachable(format!(
                    "portal {}: another process's token refresh did not finish",
                    self.portal
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Refreshes under this process's lease and records the outcome.
    async fn refresh(&self) -> Result<Held, HubSpotError> {
        let sealed = self
            .store
            .tokens(self.portal)
            .await
            .map_err(store_error)?
            .and_then(|t| t.refresh)
            .ok_or_else(|| self.not_connected("no refresh token stored"))?;
        let refresh = self.open("refresh_token", &sealed)?;
        match self.oauth.refresh(&refresh).await {
            Ok(grant) => {
                let issued_at = self.store.now_ms();
                let expires_at = issued_at + grant.expires_in as i64 * 1000;
                let rotated = (grant.refresh_token.expose() != refresh.expose()).then(|| {
                    self.keyring
                        .seal(&grant.refresh_token, &context("refresh_token", self.portal))
                });
                let tokens = SealedTokens {
                    access: self
                        .keyring
                        .seal(&grant.access_token, &context("access_token", self.portal)),
                    refresh: rotated,
                    expires_at: Some(expires_at),
                    refreshed_at: Some(issued_at),
                };
                self.store
                    .refreshed(self.portal, &self.owner, &tokens)
                    .await
                    .map_err(store_error)?;
                tracing::info!(portal = %self.portal, expires_in = grant.expires_in, "refreshed a HubSpot access token");
                Ok(Held {
                    token: grant.access_token,
                    issued_at,
                    expires_at,
                })
            }
            Err(OAuthError::InvalidGrant(why)) => {
                let _ = self
                    .store
                    .refresh_failed(
                        self.portal,
                        &self.owner,
                        &format!("HubSpot refused the refresh token: {why}"),
                        Some(ConnectionState::ReauthorizationRequired),
                    )
                    .await;
                tracing::warn!(portal = %self.portal, "HubSpot refused the refresh token: the portal must be installed again");
                Err(self.not_connected("reauthorization required (install the app again)"))
            }
            Err(e) => {
                let _ = self
                    .store
                    .refresh_failed(self.portal, &self.owner, &e.to_string(), None)
                    .await;
                Err(match e {
                    OAuthError::Transport(t) => t,
                    other => HubSpotError::Unreachable(other.to_string()),
                })
            }
        }
    }
}

impl TokenSource for OAuthTokens {
    fn bearer(&self) -> BoxFuture<'_, Result<Secret, HubSpotError>> {
        Box::pin(async move {
            let fresh = || self.current.lock().clone().filter(|h| self.fresh(h));
            if let Some(held) = fresh() {
                return Ok(held.token);
            }
            let _turn = self.renewing.lock().await;
            if let Some(held) = fresh() {
                return Ok(held.token); // renewed while this caller waited its turn
            }
            let held = self.renew(None).await?;
            let token = held.token.clone();
            *self.current.lock() = Some(held);
            Ok(token)
        })
    }

    fn expired(&self, used: &Secret) -> BoxFuture<'_, ()> {
        let used = used.clone();
        Box::pin(async move {
            let _turn = self.renewing.lock().await;
            let current = self.current.lock().clone();
            if current.is_some_and(|h| h.token.expose() != used.expose() && self.fresh(&h)) {
                return; // another caller here renewed it already
            }
            match self.renew(Some(&used)).await {
                Ok(fresh) => *self.current.lock() = Some(fresh),
                Err(e) => {
                    tracing::warn!(portal = %self.portal, error = %e, "could not renew an expired access token");
                    *self.current.lock() = None;
                }
            }
        })
    }
}
