//! The OAuth part of the settings: the app's registration with HubSpot and the token keyring.
//! All or nothing: `HUBSPOT_CLIENT_ID` turns it on, and then the rest must be right.

use super::{bad, ConfigError};
use crate::crypto::Keyring;
use crate::hubspot::oauth::OAuthApp;
use crate::secret::Secret;

/// HubSpot's install page.
pub const AUTHORIZE_URL: &str = "https://app.hubspot.com/oauth/authorize";
/// What the app asks for unless `HUBSPOT_SCOPES` says otherwise.
pub const DEFAULT_SCOPES: &str = "oauth crm.objects.contacts.read crm.objects.contacts.write";

/// Customers connect their portals by OAuth.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub app: OAuthApp,
    /// Seals tokens at rest (`TOKEN_ENCRYPTION_KEY`, `TOKEN_ENCRYPTION_OLD_KEYS`).
    pub keyring: Keyring,
}

/// Reads the OAuth settings through `get`; `None` when `HUBSPOT_CLIENT_ID` is unset.
pub fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<OAuthSettings>, ConfigError> {
    let Some(client_id) = get("HUBSPOT_CLIENT_ID") else {
        return Ok(None);
    };
    let need = |var: &'static str| {
        get(var).ok_or_else(|| bad(var, "required with HUBSPOT_CLIENT_ID (OAuth installs)"))
    };
    let client_secret = Secret::new(need("HUBSPOT_CLIENT_SECRET")?.trim());
    let redirect_uri = need("HUBSPOT_REDIRECT_URI")?.trim().to_string();
    url::Url::parse(&redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            bad(
                "HUBSPOT_REDIRECT_URI",
                format!("'{redirect_uri}' is not an http(s) URL; write the public URL of /api/integrations/hubspot/callback"),
            )
        })?;
    let authorize_raw = get("HUBSPOT_AUTHORIZE_URL").unwrap_or_else(|| AUTHORIZE_URL.into());
    let authorize_url = url::Url::parse(authorize_raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            bad(
                "HUBSPOT_AUTHORIZE_URL",
                format!("'{authorize_raw}' is not an http(s) URL"),
            )
        })?;
    let scopes: Vec<String> = get("HUBSPOT_SCOPES")
        .unwrap_or_else(|| DEFAULT_SCOPES.into())
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let keyring = super::privacy::keyring(get)?.ok_or_else(|| {
        bad(
            "TOKEN_ENCRYPTION_KEY",
            "required with HUBSPOT_CLIENT_ID (OAuth installs); make one with `openssl rand -base64 32`",
        )
    })?;
    Ok(Some(OAuthSettings {
        app: OAuthApp {
            client_id: client_id.trim().to_string(),
            client_secret,
            redirect_uri,
            scopes,
            authorize_url,
        },
        keyring,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Option<OAuthSettings>, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn oauth_is_all_or_nothing_with_named_errors() {
        assert!(read(&[]).unwrap().is_none());
        let err = read(&[("HUBSPOT_CLIENT_ID", "c")]).unwrap_err();
        assert_eq!(err.var, "HUBSPOT_CLIENT_SECRET");
        let base = [
            ("HUBSPOT_CLIENT_ID", "c"),
            ("HUBSPOT_CLIENT_SECRET", "s"),
            (
                "HUBSPOT_REDIRECT_URI",
                "https://app.example/api/integrations/hubspot/callback",
            ),
        ];
        let err = read(&base).unwrap_err();
        assert_eq!(err.var, "TOKEN_ENCRYPTION_KEY");
        let mut bad_key = base.to_vec();
        bad_key.push(("TOKEN_ENCRYPTION_KEY", "short"));
        let err = read(&bad_key).unwrap_err();
        assert!(err.problem.contains("32 bytes"), "{err}");
        let mut good = base.to_vec();
        good.push((
            "TOKEN_ENCRYPTION_KEY",
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        ));
        let s = read(&good).unwrap().unwrap();
        assert_eq!(
            s.app.scopes,
            [
                "oauth",
                "crm.objects.contacts.read",
                "crm.objects.contacts.write"
            ]
        );
        assert_eq!(s.app.authorize_url.as_str(), AUTHORIZE_URL);
        assert!(
            !format!("{s:?}").contains("AQEB"),
            "no key material in Debug"
        );
    }
}
