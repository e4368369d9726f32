//! The privacy and access part of the settings: the key ring that seals personal data (and
//! tokens), the audit's retention, the feature flags' defaults and refresh, the per-user rate
//! limit on lookups and searches, and the search cache.

use std::time::Duration;

use super::{bad, parse_bool, parse_duration, parse_rate, ConfigError};
use crate::crypto::Keyring;
use crate::domain::access::Flag;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct PrivacySettings {
    /// Seals tokens and personal data at rest (`TOKEN_ENCRYPTION_KEY`, retired keys in
    /// `TOKEN_ENCRYPTION_OLD_KEYS`). Unset: nothing personal is cached (lookups always ask
    /// HubSpot) and audit entries record no subject.
    pub keyring: Option<Keyring>,
    /// How long audit entries are kept (`AUDIT_RETENTION`, default 365d).
    pub audit_retention: Duration,
    /// The flags' values when the database holds none (`HUBSPOT_INTEGRATION_ENABLED` and the
    /// other four, default true), in [`Flag::ALL`] order.
    pub flag_defaults: [bool; 5],
    /// How often each process reads the flags (`FLAGS_REFRESH`, default 2s).
    pub flags_refresh: Duration,
    /// Lookups and searches per user (`USER_RATE_LIMIT`, default 20/10s), per process.
    pub user_rate: (u32, Duration),
    /// How long a search's answer is reused for the same or a longer query
    /// (`SEARCH_CACHE_TTL`, default 30s).
    pub search_cache_ttl: Duration,
}

/// The key ring of `TOKEN_ENCRYPTION_KEY` and `TOKEN_ENCRYPTION_OLD_KEYS`; `None` when unset.
pub fn keyring(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Keyring>, ConfigError> {
    let Some(key) = get("TOKEN_ENCRYPTION_KEY").map(Secret::new) else {
        return Ok(None);
    };
    let old = get("TOKEN_ENCRYPTION_OLD_KEYS").map(Secret::new);
    Keyring::new(&key, old.as_ref()).map(Some).map_err(|e| {
        let var = if e.to_string().starts_with("TOKEN_ENCRYPTION_OLD_KEYS") {
            "TOKEN_ENCRYPTION_OLD_KEYS"
        } else {
            "TOKEN_ENCRYPTION_KEY"
        };
        bad(var, e.to_string())
    })
}

pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<PrivacySettings, ConfigError> {
    let duration = |var: &'static str, default: Duration| match get(var) {
        None => Ok(default),
        Some(raw) => parse_duration(&raw).ok_or_else(|| {
            bad(
                var,
                format!("'{raw}' is not a duration; write e.g. 30s, 10m or 365d"),
            )
        }),
    };
    let mut flag_defaults = [true; 5];
    for flag in Flag::ALL {
        if let Some(raw) = get(flag.name()) {
            flag_defaults[flag.index()] = parse_bool(flag.name(), &raw)?;
        }
    }
    let user_rate = match get("USER_RATE_LIMIT") {
        None => (20, Duration::from_secs(10)),
        Some(raw) => parse_rate(&raw).ok_or_else(|| {
            bad(
                "USER_RATE_LIMIT",
                format!("'{raw}' is not a rate; write COUNT/WINDOW, e.g. 20/10s"),
            )
        })?,
    };
    Ok(PrivacySettings {
        keyring: keyring(get)?,
        audit_retention: duration("AUDIT_RETENTION", Duration::from_secs(365 * 86_400))?,
        flag_defaults,
        flags_refresh: duration("FLAGS_REFRESH", Duration::from_secs(2))?,
        user_rate,
        search_cache_ttl: duration("SEARCH_CACHE_TTL", Duration::from_secs(30))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<PrivacySettings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_named_errors() {
        let s = read(&[]).unwrap();
        assert!(s.keyring.is_none());
        assert_eq!(s.flag_defaults, [true; 5]);
        assert_eq!(s.user_rate, (20, Duration::from_secs(10)));
        let s = read(&[("HUBSPOT_OUTBOUND_SEARCH", "false")]).unwrap();
        assert!(!s.flag_defaults[Flag::HubspotOutboundSearch.index()]);
        let err = read(&[("HUBSPOT_CACHE_ENABLED", "maybe")]).unwrap_err();
        assert_eq!(err.var, "HUBSPOT_CACHE_ENABLED");
        let err = read(&[("USER_RATE_LIMIT", "lots")]).unwrap_err();
        assert_eq!(err.var, "USER_RATE_LIMIT");
        let err = read(&[("TOKEN_ENCRYPTION_KEY", "short")]).unwrap_err();
        assert_eq!(err.var, "TOKEN_ENCRYPTION_KEY");
        let err = read(&[("AUDIT_RETENTION", "forever")]).unwrap_err();
        assert!(err.problem.contains("365d"), "{err}");
    }
}
