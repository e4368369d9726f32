//! HubSpot's OAuth endpoints, from the app's side: the install URL, the code exchange, the
//! refresh and the revocation (`/oauth/2026-03/token…`, form bodies, RFC 6749 errors), and the
//! [`TokenSource`] the client asks for a bearer before each call.
//!
//! Token requests are never retried here: a refresh that may have reached HubSpot is settled
//! by the caller (which holds the refresh lease), and a code is single-use.

use std::time::Duration;

use serde::Deserialize;

use super::{HubSpotError, HubSpotSettings};
use crate::secret::Secret;

pub use crate::domain::budget::BoxFuture;

/// Where the client gets its bearer token: fixed (a private-app token) or an OAuth connection
/// that refreshes itself.
pub trait TokenSource: Send + Sync + std::fmt::Debug + 'static {
    /// The token to send now.
    fn bearer(&self) -> BoxFuture<'_, Result<Secret, HubSpotError>>;
    /// HubSpot said `used` has expired: get a newer one before the next call.
    fn expired(&self, used: &Secret) -> BoxFuture<'_, ()>;
}

/// A private-app token: it does not expire.
#[derive(Debug, Clone)]
pub struct Fixed(pub Secret);

impl TokenSource for Fixed {
    fn bearer(&self) -> BoxFuture<'_, Result<Secret, HubSpotError>> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }

    fn expired(&self, _: &Secret) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The app's OAuth registration with HubSpot (`HUBSPOT_CLIENT_ID`, …).
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub authorize_url: url::Url,
}

/// What HubSpot's token endpoint grants.
#[derive(Debug, Clone, Deserialize)]
pub struct Grant {
    #[serde(deserialize_with = "secret")]
    pub access_token: Secret,
    #[serde(deserialize_with = "secret")]
    pub refresh_token: Secret,
    pub expires_in: u64,
    #[serde(default)]
    pub hub_id: Option<u64>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

/// Why a token request failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is no good (used, expired, revoked, or the app uninstalled):
    /// the customer must install again.
    #[error("HubSpot refused the grant: {0}")]
    InvalidGrant(String),
    /// The app's client id or secret is wrong: a configuration error.
    #[error("HubSpot refused the app's credentials (check HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET): {0}")]
    InvalidClient(String),
    #[error("HubSpot's token endpoint answered {status} {error}: {description}")]
    Other {
        status: u16,
        error: String,
        description: String,
    },
    #[error(transparent)]
    Transport(#[from] HubSpotError),
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Talks to HubSpot's token endpoints.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    base: url::Url,
    app: OAuthApp,
    api_version: String,
    timeout: Duration,
}

impl OAuthClient {
    pub fn new(settings: &HubSpotSettings, app: OAuthApp) -> Result<Self, HubSpotError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("hubspot-contact-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HubSpotError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            base: settings.base_url.clone(),
            app,
            api_version: settings.api_version.clone(),
            timeout: settings.timeout,
        })
    }

    pub fn app(&self) -> &OAuthApp {
        &self.app
    }

    /// Where to send the customer's browser to install the app, carrying `state`.
    pub fn authorize_url(&self, state: &str) -> url::Url {
        let mut url = self.app.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.app.client_id)
            .append_pair("redirect_uri", &self.app.redirect_uri)
            .append_pair("scope", &self.app.scopes.join(" "))
            .append_pair("state", state);
        url
    }

    fn path(&self, tail: &str) -> url::Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/oauth/{}/token{tail}", self.api_version));
        url
    }

    async fn post(
        &self,
        tail: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, OAuthError> {
        let mut body: Vec<(&str, &str)> = vec![
            ("client_id", &self.app.client_id),
            ("client_secret", self.app.client_secret.expose()),
        ];
        body.extend_from_slice(form);
        let r = self
            .http
            .post(self.path(tail))
            .form(&body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    HubSpotError::Timeout(self.timeout)
                } else {
                    HubSpotError::Unreachable(e.without_url().to_string())
                }
            })?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status().as_u16();
        let e: ErrorBody = r.json().await.unwrap_or_default();
        Err(match e.error.as_str() {
            "invalid_grant" => OAuthError::InvalidGrant(e.error_description),
            "invalid_client" => OAuthError::InvalidClient(e.error_description),
            _ => OAuthError::Other {
                status,
                error: e.error,
                description: e.error_description,
            },
        })
    }

    async fn grant(&self, form: &[(&str, &str)]) -> Result<Grant, OAuthError> {
        let r = self.post("", form).await?;
        r.json()
            .await
            .map_err(|e| OAuthError::Transport(HubSpotError::Decode(e.to_string())))
    }

    /// Exchanges an install's code.
    pub async fn exchange(&self, code: &str) -> Result<Grant, OAuthError> {
        self.grant(&[
            ("grant_type", "authorization_code"),
            ("redirect_uri", &self.app.redirect_uri),
            ("code", code),
        ])
        .await
    }

    /// A new access token for a refresh token.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<Grant, OAuthError> {
        self.grant(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ])
        .await
    }

    /// Revokes a refresh token (the install ends at HubSpot).
    pub async fn revoke(&self, refresh_token: &Secret) -> Result<(), OAuthError> {
        self.post("/revoke", &[("token", refresh_token.expose())])
            .await
            .map(drop)
    }
}
