//! A connected HubSpot portal: its id and where its connection stands.

use serde::{Deserialize, Serialize};

/// A HubSpot account (hub id).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct PortalId(pub u64);

impl std::fmt::Display for PortalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How the app holds a portal's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// Installed by OAuth: an access token that expires and a refresh token.
    Oauth,
    /// `HUBSPOT_ACCESS_TOKEN`: one private-app token that does not expire.
    PrivateApp,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Connected,
    /// HubSpot refused the refresh token (revoked, or the app uninstalled): the customer must
    /// install again. Its writes wait.
    ReauthorizationRequired,
    /// Uninstalled here: no tokens are kept.
    Disconnected,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::ReauthorizationRequired => "reauthorization_required",
            Self::Disconnected => "disconnected",
        }
    }
}

impl std::str::FromStr for ConnectionState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Connected,
            Self::ReauthorizationRequired,
            Self::Disconnected,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| format!("'{s}' is not a connection state"))
    }
}
