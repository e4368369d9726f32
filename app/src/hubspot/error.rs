//! What a call to HubSpot fails with: [`HubSpotError`], and HubSpot's own error envelope.

use std::time::Duration;

use serde::Deserialize;

/// HubSpot's error envelope; every field optional, as HubSpot does not always send them all.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorBody {
    pub category: Option<String>,
    pub message: Option<String>,
    pub correlation_id: Option<String>,
    pub policy_name: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HubSpotError {
    #[error("HubSpot did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach HubSpot: {0}")]
    Unreachable(String),
    #[error("HubSpot answered {status}: {}", .body.message.as_deref().unwrap_or("(no message)"))]
    Api { status: u16, body: ApiErrorBody },
    #[error("HubSpot's answer could not be read: {0}")]
    Decode(String),
    /// The portal has no usable connection (never installed, uninstalled, or its refresh
    /// token refused): nothing was sent.
    #[error("{0}")]
    NotConnected(String),
    /// HubSpot kept failing: calls to this portal fail at once for a while (the circuit
    /// breaker); then one probe decides.
    #[error("HubSpot kept failing; calls are paused for {0:?} more")]
    CircuitOpen(Duration),
}

impl HubSpotError {
    /// Whether HubSpot looked down (no answer, a timeout, a 5xx), as opposed to answering.
    pub fn is_down(&self) -> bool {
        match self {
            HubSpotError::Timeout(_) | HubSpotError::Unreachable(_) => true,
            HubSpotError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// HubSpot's 401 for an OAuth access token past its expiry.
    pub fn is_expired_token(&self) -> bool {
        matches!(self, HubSpotError::Api { status: 401, body }
            if body.category.as_deref() == Some("EXPIRED_AUTHENTICATION"))
    }

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
