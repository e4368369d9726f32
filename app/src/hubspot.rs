//! The one place that talks to HubSpot: owns the HTTP client, the token and the timeout, and
//! turns HubSpot's answers into typed results. (Retries and client-side rate limiting come with
//! the contact operations.)

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{HubSpotSettings, Secret};

/// HubSpot's error envelope; every field optional, as HubSpot does not always send them all.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorBody {
    pub category: Option<String>,
    pub message: Option<String>,
    pub correlation_id: Option<String>,
    pub policy_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubSpotError {
    #[error("HubSpot did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach HubSpot: {0}")]
    Unreachable(String),
    #[error("HubSpot answered {status}: {}", .body.message.as_deref().unwrap_or("(no message)"))]
    Api { status: u16, body: ApiErrorBody },
    #[error("HubSpot's answer could not be read: {0}")]
    Decode(String),
}

impl HubSpotError {
    /// 401 / 403: the token is missing, wrong, expired or lacks scopes.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            HubSpotError::Api {
                status: 401 | 403,
                ..
            }
        )
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetails {
    pub portal_id: u64,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HubSpotClient {
    http: reqwest::Client,
    base: reqwest::Url,
    token: Secret,
    timeout: Duration,
}

impl HubSpotClient {
    pub fn new(settings: &HubSpotSettings, token: Secret) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("hubspot-contact-sync/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: settings.base_url.clone(),
            token,
            timeout: settings.timeout,
        })
    }

    fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    fn classify(&self, e: reqwest::Error) -> HubSpotError {
        if e.is_timeout() {
            HubSpotError::Timeout(self.timeout)
        } else {
            HubSpotError::Unreachable(e.without_url().to_string())
        }
    }

    /// `GET /account-info/v3/details`: proves reachability and the token. Returns the details
    /// and the round-trip time.
    pub async fn account_details(&self) -> Result<(AccountDetails, Duration), HubSpotError> {
        let started = Instant::now();
        let resp = self
            .http
            .get(self.url("/account-info/v3/details"))
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.classify(e))?;
        let elapsed = started.elapsed();
        if !status.is_success() {
            let body = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(HubSpotError::Api {
                status: status.as_u16(),
                body,
            });
        }
        let details =
            serde_json::from_slice(&bytes).map_err(|e| HubSpotError::Decode(e.to_string()))?;
        Ok((details, elapsed))
    }
}
