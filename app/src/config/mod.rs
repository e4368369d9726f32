//! Settings from the environment, validated once at start with errors that name the variable
//! and the fix. Secrets are wrapped in [`Secret`], whose `Debug` never shows the value.

use std::net::SocketAddr;
use std::time::Duration;

mod lifecycle;
mod oauth;
mod privacy;

pub use crate::hubspot::HubSpotSettings;
pub use crate::secret::Secret;
pub use oauth::OAuthSettings;
pub use privacy::PrivacySettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Also serve on this Unix socket (the deployer's zero-downtime switch points nginx at it).
    pub socket: Option<std::path::PathBuf>,
    /// On SIGTERM, how long to wait for open connections to close before stopping anyway.
    pub drain_timeout: Duration,
    /// `sqlite://…` (default `sqlite://app.db`, created if missing) or `postgres://…`.
    /// May carry a PostgreSQL password: a [`Secret`].
    pub database_url: Secret,
    /// Run the outbox worker in this process (`OUTBOX_WORKER`, default true).
    pub outbox_worker: bool,
    /// Attempts before an outbox item is dead (`OUTBOX_MAX_ATTEMPTS`, default 8).
    pub outbox_max_attempts: i64,
    /// How long a claimed outbox item stays with its worker (`OUTBOX_LEASE`, default 60s); it
    /// must exceed HUBSPOT_TIMEOUT, so a live worker never loses an item it is sending.
    pub outbox_lease: Duration,
    /// Outbox batches in flight at once, each a different portal's (`OUTBOX_CONCURRENCY`,
    /// default 16).
    pub outbox_concurrency: usize,
    /// The HubSpot app's client secret, which signs webhooks (`HUBSPOT_CLIENT_SECRET`); unset:
    /// `/webhooks/hubspot` answers 503.
    pub webhook_secret: Option<Secret>,
    /// Accepted signature versions (`WEBHOOK_SIGNATURE_VERSIONS`, default `v3`).
    pub webhook_versions: Vec<crate::hubspot::signature::Version>,
    /// How long a cached contact is fresh (`CACHE_TTL`, default 24h).
    pub cache_ttl: Duration,
    /// When the pull sync runs (`SYNC_SCHEDULE`, cron, default every 30 minutes; `off` for never).
    pub sync_schedule: Option<cron::Schedule>,
    /// Also run a sync at start (`SYNC_ON_START`, default false).
    pub sync_on_start: bool,
    /// How far before the cursor each incremental search starts (`SYNC_OVERLAP`, default 5m),
    /// so contacts HubSpot's lagging search index had not shown yet are not missed.
    pub sync_overlap: Duration,
    /// The object types the pull sync keeps (`SYNC_OBJECTS`, comma-separated, default
    /// `contacts`): contacts, companies, deals, line_items, notes, calls, emails, meetings, tasks.
    pub sync_objects: Vec<crate::domain::object::ObjectType>,
    /// The default property mappings of every portal (`MAPPINGS_FILE`, YAML: `{deals: [{field,
    /// hubspot?, owner?, calculated?}]}`); a portal's own, set through the API, replace them.
    pub mappings: Vec<crate::domain::mapping::MappingSet>,
    /// Lifecycle events: property names, the external id property, the timeline types
    /// (`LIFECYCLE_FILE`, YAML; `LIFECYCLE_TIMELINE=nova_earned,redemption` sets the timeline
    /// types on top).
    pub lifecycle: crate::domain::lifecycle::config::LifecycleConfig,
    pub hubspot: HubSpotSettings,
    /// Customers connect portals by OAuth (`HUBSPOT_CLIENT_ID` and the rest); `None`: only the
    /// private-app token of `HUBSPOT_ACCESS_TOKEN`.
    pub oauth: Option<OAuthSettings>,
    /// Users, audit, flags, the key ring for personal data.
    pub privacy: PrivacySettings,
    pub version: String,
    pub slot: String,
    /// Guards the admin routes (`/api/contacts*`); unset means they answer 503.
    pub admin_token: Option<Secret>,
    /// Region for phone numbers written without a country code (`DEFAULT_PHONE_REGION`).
    pub phone_region: phonenumber::country::Id,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// The API host HubSpot documents for a data-hosting region (account info's
/// `dataHostingLocation`): `na1` (the default) or `eu1`.
fn region_base_url(region: &str) -> Result<&'static str, ConfigError> {
    match region.trim().to_ascii_lowercase().as_str() {
        "na1" => Ok("https://api.hubapi.com"),
        "eu1" => Ok("https://api-eu1.hubapi.com"),
        other => Err(bad(
            "HUBSPOT_REGION",
            format!("'{other}' is not a region this app knows; use na1 or eu1, or set HUBSPOT_BASE_URL to the host HubSpot gives for it"),
        )),
    }
}

fn parse_bool(var: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(bad(
            var,
            format!("'{other}' is not a boolean; use true or false"),
        )),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (the environment in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let listen = match get("APP_LISTEN") {
            None => SocketAddr::from(([0, 0, 0, 0], 3000)),
            Some(raw) => raw.trim().parse().map_err(|_| {
                bad(
                    "APP_LISTEN",
                    format!("'{raw}' is not an address like 0.0.0.0:3000"),
                )
            })?,
        };
        let api_version = get("HUBSPOT_API_VERSION").unwrap_or_else(|| "2026-03".into());
        let api_version = api_version.trim().to_string();
        let dated = api_version.len() == 7
            && chrono::NaiveDate::parse_from_str(&format!("{api_version}-01"), "%Y-%m-%d").is_ok();
        if !dated {
            return Err(bad(
                "HUBSPOT_API_VERSION",
                format!("'{api_version}' is not a date-based version like 2026-03"),
            ));
        }
        let enabled =
            get("HUBSPOT_ENABLED").map_or(Ok(true), |v| parse_bool("HUBSPOT_ENABLED", &v))?;
        let send_live =
            get("HUBSPOT_SEND_LIVE").map_or(Ok(true), |v| parse_bool("HUBSPOT_SEND_LIVE", &v))?;
        let base_raw = match (get("HUBSPOT_BASE_URL"), get("HUBSPOT_REGION")) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "HUBSPOT_REGION",
                    "set HUBSPOT_REGION or HUBSPOT_BASE_URL, not both (the base URL names the host itself)",
                ))
            }
            (Some(base), None) => base,
            (None, region) => region_base_url(region.as_deref().unwrap_or("na1"))?.into(),
        };
        let base_url = url::Url::parse(base_raw.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                bad(
                    "HUBSPOT_BASE_URL",
                    format!("'{base_raw}' is not an http(s) URL"),
                )
            })?;
        let timeout = match get("HUBSPOT_TIMEOUT") {
            None => Duration::from_secs(10),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                bad(
                    "HUBSPOT_TIMEOUT",
                    format!("'{raw}' is not a duration; use seconds (10) or 10s / 500ms"),
                )
            })?,
        };
        let region_raw = get("DEFAULT_PHONE_REGION").unwrap_or_else(|| "US".into());
        let phone_region = region_raw
            .trim()
            .to_uppercase()
            .parse::<phonenumber::country::Id>()
            .map_err(|_| {
                bad(
                    "DEFAULT_PHONE_REGION",
                    format!("'{region_raw}' is not a two-letter country code like US or GB"),
                )
            })?;
        let configured_rate = get("HUBSPOT_RATE_LIMIT")
            .map(|raw| {
                parse_rate(&raw).ok_or_else(|| {
                    bad(
                        "HUBSPOT_RATE_LIMIT",
                        format!("'{raw}' is not a budget; write COUNT/WINDOW, e.g. 100/10s"),
                    )
                })
            })
            .transpose()?;
        // HubSpot's limits: a private app 100/10s (Free/Starter), an OAuth app 110/10s per
        // installing portal. HUBSPOT_RATE_LIMIT sets both.
        let rate_limit = configured_rate.unwrap_or((100, Duration::from_secs(10)));
        let oauth_rate_limit = configured_rate.unwrap_or((110, Duration::from_secs(10)));
        let breaker = match get("HUBSPOT_BREAKER") {
            None => (5, Duration::from_secs(30)),
            Some(raw) => parse_rate(&raw).ok_or_else(|| {
                bad(
                    "HUBSPOT_BREAKER",
                    format!("'{raw}' is not FAILURES/OPEN_FOR; write e.g. 5/30s (5 failed calls in a row open it for 30 s)"),
                )
            })?,
        };
        let token = [
            "HUBSPOT_ACCESS_TOKEN",
            "HUBSPOT_PRIVATE_APP_TOKEN",
            "HUBSPOT_API_KEY",
        ]
        .iter()
        .find_map(|k| get(k))
        .map(|t| Secret::new(t.trim()));
        if enabled && token.is_none() {
            return Err(bad(
                "HUBSPOT_ACCESS_TOKEN",
                "not set; set it to the private app token (or HUBSPOT_ENABLED=false to run without HubSpot)",
            ));
        }
        let drain_timeout = match get("APP_DRAIN_TIMEOUT") {
            None => Duration::from_secs(30),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                bad(
                    "APP_DRAIN_TIMEOUT",
                    format!("'{raw}' is not a duration; use seconds (30) or 30s / 500ms"),
                )
            })?,
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| "sqlite://app.db".into());
        if crate::store::Backend::of(&database_url).is_none() {
            return Err(bad(
                "DATABASE_URL",
                format!(
                    "'{}' is not supported; use sqlite://data/app.db or postgres://user:password@host/db",
                    database_url.split('@').next_back().unwrap_or_default()
                ),
            ));
        }
        let outbox_worker =
            get("OUTBOX_WORKER").map_or(Ok(true), |v| parse_bool("OUTBOX_WORKER", &v))?;
        let outbox_max_attempts = match get("OUTBOX_MAX_ATTEMPTS") {
            None => 8,
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    bad(
                        "OUTBOX_MAX_ATTEMPTS",
                        format!("'{raw}' is not a number from 1 to 100"),
                    )
                })?,
        };
        let outbox_concurrency = match get("OUTBOX_CONCURRENCY") {
            None => 16,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| {
                    bad(
                        "OUTBOX_CONCURRENCY",
                        format!("'{raw}' is not a number from 1 to 256"),
                    )
                })?,
        };
        let outbox_lease = match get("OUTBOX_LEASE") {
            None => Duration::from_secs(60),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                bad(
                    "OUTBOX_LEASE",
                    format!("'{raw}' is not a duration; write e.g. 60s"),
                )
            })?,
        };
        if outbox_lease <= timeout {
            return Err(bad(
                "OUTBOX_LEASE",
                format!("{outbox_lease:?} must be longer than HUBSPOT_TIMEOUT ({timeout:?}), or a slow batch could be sent twice"),
            ));
        }
        let webhook_versions = match get("WEBHOOK_SIGNATURE_VERSIONS") {
            None => vec![crate::hubspot::signature::Version::V3],
            Some(raw) => crate::hubspot::signature::Version::parse_list(&raw).ok_or_else(|| {
                bad(
                    "WEBHOOK_SIGNATURE_VERSIONS",
                    format!("'{raw}' is not a list of v1, v2, v3 (e.g. v3 or v1,v3)"),
                )
            })?,
        };
        let cache_ttl = match get("CACHE_TTL") {
            None => Duration::from_secs(24 * 3600),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                bad(
                    "CACHE_TTL",
                    format!("'{raw}' is not a duration; write e.g. 24h or 30m"),
                )
            })?,
        };
        let sync_schedule = match get("SYNC_SCHEDULE") {
            Some(raw) if raw.trim().eq_ignore_ascii_case("off") => None,
            raw => Some(
                crate::jobs::schedule::parse_schedule(raw.as_deref().unwrap_or("*/30 * * * *"))
                    .map_err(|m| bad("SYNC_SCHEDULE", m))?,
            ),
        };
        let sync_on_start =
            get("SYNC_ON_START").map_or(Ok(false), |v| parse_bool("SYNC_ON_START", &v))?;
        let sync_overlap = match get("SYNC_OVERLAP") {
            None => Duration::from_secs(300),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                bad(
                    "SYNC_OVERLAP",
                    format!("'{raw}' is not a duration; write e.g. 5m"),
                )
            })?,
        };
        let sync_objects =
            crate::domain::object::parse_list(get("SYNC_OBJECTS").as_deref().unwrap_or("contacts"))
                .map_err(|e| bad("SYNC_OBJECTS", e.to_string()))?;
        if sync_objects.is_empty() {
            return Err(bad(
                "SYNC_OBJECTS",
                "names no object type; write e.g. contacts,companies,deals",
            ));
        }
        let mappings = match get("MAPPINGS_FILE") {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path.trim()).map_err(|e| {
                    bad("MAPPINGS_FILE", format!("'{path}' could not be read: {e}"))
                })?;
                crate::domain::mapping::parse_file(&text)
                    .map_err(|e| bad("MAPPINGS_FILE", format!("'{path}': {e}")))?
            }
        };
        let lifecycle = lifecycle::lifecycle(get("LIFECYCLE_FILE"), get("LIFECYCLE_TIMELINE"))?;
        Ok(Settings {
            listen,
            mappings,
            lifecycle,
            outbox_lease,
            outbox_concurrency,
            sync_schedule,
            sync_on_start,
            sync_overlap,
            sync_objects,
            webhook_secret: get("HUBSPOT_CLIENT_SECRET").map(|t| Secret::new(t.trim())),
            webhook_versions,
            cache_ttl,
            outbox_worker,
            outbox_max_attempts,
            socket: get("APP_SOCKET").map(|p| p.trim().into()),
            drain_timeout,
            database_url: Secret::new(database_url),
            hubspot: HubSpotSettings {
                enabled,
                base_url,
                token,
                send_live,
                timeout,
                rate_limit,
                oauth_rate_limit,
                breaker,
                api_version,
            },
            oauth: oauth::from_lookup(&get)?,
            privacy: privacy::from_lookup(&get)?,
            version: get("APP_VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
            slot: get("APP_SLOT").unwrap_or_else(|| "local".into()),
            admin_token: get("ADMIN_TOKEN").map(|t| Secret::new(t.trim())),
            phone_region,
        })
    }
}

/// `100/10s`: a count above zero per a non-zero window.
fn parse_rate(raw: &str) -> Option<(u32, Duration)> {
    let (count, window) = raw.trim().split_once('/')?;
    let count = count.trim().parse::<u32>().ok().filter(|c| *c > 0)?;
    Some((count, parse_duration(window)?))
}

/// `10` (seconds), `10s`, `500ms`, `1m`.
fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let d = raw
        .parse::<u64>()
        .map(Duration::from_secs)
        .ok()
        .or_else(|| humantime::parse_duration(raw).ok())?;
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_with_a_token() {
        let s = settings(&[("HUBSPOT_ACCESS_TOKEN", "pat-1")]).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(s.hubspot.base_url.as_str(), "https://api.hubapi.com/");
        assert_eq!(s.hubspot.timeout, Duration::from_secs(10));
        assert_eq!(s.hubspot.rate_limit, (100, Duration::from_secs(10)));
        let s = settings(&[
            ("HUBSPOT_ACCESS_TOKEN", "t"),
            ("HUBSPOT_RATE_LIMIT", "190/10s"),
        ])
        .unwrap();
        assert_eq!(s.hubspot.rate_limit, (190, Duration::from_secs(10)));
        assert!(s.hubspot.enabled && s.hubspot.send_live);
    }

    #[test]
    fn the_region_picks_hubspots_host_and_a_base_url_overrides_it() {
        let base = |vars: &[(&str, &str)]| settings(vars).map(|s| s.hubspot.base_url.to_string());
        let token = ("HUBSPOT_ACCESS_TOKEN", "t");
        assert_eq!(base(&[token]).unwrap(), "https://api.hubapi.com/");
        assert_eq!(
            base(&[token, ("HUBSPOT_REGION", "EU1")]).unwrap(),
            "https://api-eu1.hubapi.com/"
        );
        assert_eq!(
            base(&[token, ("HUBSPOT_BASE_URL", "http://127.0.0.1:9")]).unwrap(),
            "http://127.0.0.1:9/"
        );
        let err = base(&[token, ("HUBSPOT_REGION", "mars1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HUBSPOT_REGION") && err.contains("na1 or eu1"),
            "{err}"
        );
        let both = [
            token,
            ("HUBSPOT_REGION", "eu1"),
            ("HUBSPOT_BASE_URL", "http://x"),
        ];
        assert!(base(&both).unwrap_err().to_string().contains("not both"));
    }

    #[test]
    fn alternative_token_names_are_accepted() {
        for name in ["HUBSPOT_PRIVATE_APP_TOKEN", "HUBSPOT_API_KEY"] {
            let s = settings(&[(name, "pat-2")]).unwrap();
            assert_eq!(s.hubspot.token.unwrap().expose(), "pat-2");
        }
    }

    #[test]
    fn errors_name_the_variable_and_the_fix() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Vars, &str, &str); 8] = [
            (
                &[("HUBSPOT_ACCESS_TOKEN", "t"), ("HUBSPOT_RATE_LIMIT", "100")],
                "HUBSPOT_RATE_LIMIT",
                "100/10s",
            ),
            (&[], "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_ENABLED=false"),
            (
                &[("HUBSPOT_ACCESS_TOKEN", "t"), ("APP_LISTEN", "3000")],
                "APP_LISTEN",
                "0.0.0.0:3000",
            ),
            (
                &[("HUBSPOT_ACCESS_TOKEN", "t"), ("HUBSPOT_TIMEOUT", "soon")],
                "HUBSPOT_TIMEOUT",
                "10s",
            ),
            (
                &[
                    ("HUBSPOT_ACCESS_TOKEN", "t"),
                    ("HUBSPOT_BASE_URL", "ftp://x"),
                ],
                "HUBSPOT_BASE_URL",
                "http(s)",
            ),
            (
                &[
                    ("HUBSPOT_ACCESS_TOKEN", "t"),
                    ("HUBSPOT_SEND_LIVE", "maybe"),
                ],
                "HUBSPOT_SEND_LIVE",
                "true or false",
            ),
            (
                &[("HUBSPOT_ACCESS_TOKEN", "t"), ("APP_DRAIN_TIMEOUT", "0")],
                "APP_DRAIN_TIMEOUT",
                "30s",
            ),
            (
                &[
                    ("HUBSPOT_ACCESS_TOKEN", "t"),
                    ("DATABASE_URL", "mysql://root:hunter2@db/app"),
                ],
                "DATABASE_URL",
                "sqlite://data/app.db",
            ),
        ];
        for (vars, var, hint) in cases {
            let err = settings(vars).unwrap_err();
            assert_eq!(err.var, var);
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(err.to_string().contains(hint), "{err}");
        }
    }

    #[test]
    fn disabled_needs_no_token_and_secrets_do_not_debug_print() {
        let s = settings(&[("HUBSPOT_ENABLED", "false")]).unwrap();
        assert!(!s.hubspot.enabled);
        let s = settings(&[("HUBSPOT_ACCESS_TOKEN", "pat-very-secret")]).unwrap();
        assert!(!format!("{s:?}").contains("pat-very-secret"));
        // The database URL may carry a password.
        let s = settings(&[
            ("HUBSPOT_ENABLED", "false"),
            ("DATABASE_URL", "postgres://app:db-very-secret@db/app"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("db-very-secret"));
        assert_eq!(
            s.database_url.expose(),
            "postgres://app:db-very-secret@db/app"
        );
    }
}
