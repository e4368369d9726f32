//! Who may do what: the users' [`Role`]s and the runtime feature [`Flag`]s.
//!
//! Pure: no database, no HTTP. The roles each route allows are declared at the route
//! (`http::auth`); the flags' values live in the database (`store::flags`) with the
//! environment's as defaults.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role. Admins may do everything; operators run the integration (the outbox, syncs,
/// records, events); support looks contacts up and searches, and sees contact details masked.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    Support,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Support];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Support => "support",
        }
    }

    /// Whether this role sees contacts' emails and phones masked (the support desk sees enough
    /// to recognise a caller, not to copy their details).
    pub fn sees_masked(self) -> bool {
        self == Role::Support
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("'{s}' is not a role; use admin, operator or support"))
    }
}

/// A feature that can be turned off at runtime, the rollback plan of the integration.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Flag {
    /// Off: nothing calls HubSpot on a user's behalf (lookups serve the cache only, searches
    /// and reads are refused); the outbox keeps its items until it is on again.
    HubspotIntegrationEnabled,
    /// Off: phone lookups do not call HubSpot; cached answers still serve.
    HubspotInboundLookup,
    /// Off: contact search is refused (503).
    HubspotOutboundSearch,
    /// Off: the contact cache is neither read nor written by lookups.
    HubspotCacheEnabled,
    /// Off: lookups and searches are not audited (admin, privacy, flag and user actions
    /// always are).
    HubspotAuditEnabled,
}

impl Flag {
    pub const ALL: [Flag; 5] = [
        Flag::HubspotIntegrationEnabled,
        Flag::HubspotInboundLookup,
        Flag::HubspotOutboundSearch,
        Flag::HubspotCacheEnabled,
        Flag::HubspotAuditEnabled,
    ];

    /// The name, as in the environment and the API.
    pub fn name(self) -> &'static str {
        match self {
            Flag::HubspotIntegrationEnabled => "HUBSPOT_INTEGRATION_ENABLED",
            Flag::HubspotInboundLookup => "HUBSPOT_INBOUND_LOOKUP",
            Flag::HubspotOutboundSearch => "HUBSPOT_OUTBOUND_SEARCH",
            Flag::HubspotCacheEnabled => "HUBSPOT_CACHE_ENABLED",
            Flag::HubspotAuditEnabled => "HUBSPOT_AUDIT_ENABLED",
        }
    }

    pub fn index(self) -> usize {
        Flag::ALL.iter().position(|f| *f == self).expect("listed")
    }
}

impl FromStr for Flag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Flag::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Flag::ALL.iter().map(|f| f.name()).collect();
                format!("'{s}' is not a flag; use one of {}", names.join(", "))
            })
    }
}

/// Whether a user name is acceptable: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a user name: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_flags_read_back_from_their_names_and_refuse_others_by_name() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root"
            .parse::<Role>()
            .unwrap_err()
            .contains("admin, operator or support"));
        for f in Flag::ALL {
            assert_eq!(f.name().parse::<Flag>().unwrap(), f);
            assert_eq!(Flag::ALL[f.index()], f);
        }
        assert!("HUBSPOT_X"
            .parse::<Flag>()
            .unwrap_err()
            .contains("HUBSPOT_CACHE_ENABLED"));
        assert!(Role::Support.sees_masked() && !Role::Operator.sees_masked());
        assert!(check_user_name("ada.l@ops").is_ok());
        assert!(check_user_name("ada lovelace").is_err());
        assert!(check_user_name("").is_err());
    }
}
