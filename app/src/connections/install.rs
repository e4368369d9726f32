//! The OAuth install of a portal: a single-use state in the shared database, bound to the
//! browser that started it, then the callback that exchanges the code and stores the portal's
//! tokens sealed.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::tokens::context;
use super::Portals;
use crate::domain::portal::{ConnectionKind, PortalId};
use crate::hubspot::oauth::OAuthError;
use crate::hubspot::{HubSpotClient, HubSpotError};
use crate::secret::Secret;
use crate::store::connections::{Connection, SealedTokens};
use crate::store::oauth_states::StateRefused;
use crate::store::StoreError;

/// How long an install may take, from the install link to the callback.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// Why an install's callback stored nothing. Each is shown to the customer as a page.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("HubSpot says the install was not allowed ({0}).")]
    Denied(String),
    #[error("This install link is not known here; start the install again.")]
    UnknownState,
    #[error("This install link was already used; start the install again.")]
    UsedState,
    #[error("This install link expired (installs must finish within 10 minutes); start again.")]
    ExpiredState,
    #[error("This install was started in another browser; start it again in this one.")]
    OtherBrowser,
    #[error("HubSpot did not accept the install's code ({0}); start the install again.")]
    Refused(String),
    #[error("HubSpot could not be asked: {0}")]
    HubSpot(#[from] HubSpotError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn random() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Where to send the browser to install, and the cookie that binds the install to it.
#[derive(Debug, Clone)]
pub struct Install {
    pub authorize_url: url::Url,
    pub browser: Secret,
}

impl Portals {
    /// Starts an install: a fresh state, stored hashed and bound to a fresh browser secret.
    pub async fn begin_install(&self) -> Result<Install, InstallError> {
        let (client, _) = self.oauth()?;
        let (state, browser) = (random(), random());
        let expires = self.store.now_ms() + STATE_TTL.as_millis() as i64;
        self.states
            .new_state(&hash(&state), &hash(&browser), expires)
            .await?;
        Ok(Install {
            authorize_url: client.authorize_url(&state),
            browser: Secret::new(browser),
        })
    }

    /// Finishes an install: checks the state (once, in the browser that started it),
    /// exchanges the code, reads the portal's account and stores the connection.
    pub async fn finish_install(
        &self,
        code: Option<&str>,
        state: Option<&str>,
        error: Option<&str>,
        browser: Option<&str>,
    ) -> Result<Connection, InstallError> {
        let (client, keyring) = self.oauth()?;
        if let Some(error) = error {
            return Err(InstallError::Denied(error.chars().take(100).collect()));
        }
        let (Some(code), Some(state)) = (code, state) else {
            return Err(InstallError::UnknownState);
        };
        let checked = self
            .states
            .use_state(&hash(state), &hash(browser.unwrap_or_default()))
            .await?;
        checked.map_err(|refused| match refused {
            StateRefused::Unknown => InstallError::UnknownState,
            StateRefused::Used => InstallError::UsedState,
            StateRefused::Expired => InstallError::ExpiredState,
            StateRefused::OtherBrowser => InstallError::OtherBrowser,
        })?;
        let grant = client.exchange(code).await.map_err(|e| match e {
            OAuthError::Transport(t) => InstallError::HubSpot(t),
            other => InstallError::Refused(other.to_string()),
        })?;
        // The portal is the account the new token reads.
        let probe = HubSpotClient::new(&self.settings, grant.access_token.clone())
            .map_err(|e| HubSpotError::Unreachable(e.to_string()))?;
        let (details, _) = probe.account_details().await?;
        let portal = PortalId(details.portal_id);
        let now = self.store.now_ms();
        let sealed = SealedTokens {
            access: keyring.seal(&grant.access_token, &context("access_token", portal)),
            refresh: Some(keyring.seal(&grant.refresh_token, &context("refresh_token", portal))),
            expires_at: Some(now + grant.expires_in as i64 * 1000),
            refreshed_at: Some(now),
        };
        let account = serde_json::to_value(&details).ok();
        self.store
            .connect(
                portal,
                ConnectionKind::Oauth,
                &client.app().scopes,
                &sealed,
                account.as_ref(),
            )
            .await?;
        self.clients.lock().remove(&portal);
        // HubSpot counted the probe's call in the portal's window: so does the portal's budget
        // (else the first window's burst goes one call over, into a 429).
        if let Ok(client) = self.client(portal) {
            tokio::spawn(async move { drop(client.reserve().await) });
        }
        tracing::info!(%portal, "a HubSpot portal was connected");
        Ok(self.store.get(portal).await?.expect("just stored"))
    }
}
