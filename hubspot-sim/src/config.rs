//! Command-line flags and the validated simulator configuration they resolve into.
//!
//! `Cli` is what clap parses (no I/O); `SimConfig` is what the server runs with. Tests build a
//! `SimConfig` directly (`SimConfig::default()` plus overrides) and never touch the CLI.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// A request budget: `count` requests per rolling `window`, written `100/10s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    pub count: u32,
    pub window: Duration,
}

impl RateSpec {
    pub const fn new(count: u32, window: Duration) -> Self {
        Self { count, window }
    }
}

impl FromStr for RateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = "expected COUNT/WINDOW, for example 100/10s or 5/1s";
        let (count, window) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid rate '{s}': {hint}"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("invalid rate '{s}': '{count}' is not a whole number ({hint})"))?;
        let window = humantime::parse_duration(window.trim())
            .map_err(|e| format!("invalid rate '{s}': window '{window}': {e} ({hint})"))?;
        if count == 0 || window.is_zero() {
            return Err(format!(
                "invalid rate '{s}': count and window must be above zero"
            ));
        }
        Ok(Self { count, window })
    }
}

impl std::fmt::Display for RateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.window)
        )
    }
}

/// Which webhook signature HubSpot would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SignatureVersion {
    V1,
    V2,
    #[default]
    V3,
}

/// How strictly search filter limits are enforced. HubSpot's documentation quotes two sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SearchLimits {
    /// 5 groups, 6 filters per group, 18 filters in all (the older, stricter figures).
    #[default]
    Strict,
    /// 5 groups, 10 filters per group, 25 filters in all (newer documentation).
    Relaxed,
}

impl SearchLimits {
    /// (groups, filters per group, filters in all)
    pub fn bounds(self) -> (usize, usize, usize) {
        match self {
            SearchLimits::Strict => (5, 6, 18),
            SearchLimits::Relaxed => (5, 10, 25),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "hubspot-sim",
    version,
    about = "A local HubSpot CRM v3 API simulator (contacts, companies, deals)"
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090", env = "HUBSPOT_SIM_LISTEN")]
    pub listen: SocketAddr,
    /// Accepted bearer token (repeatable). With none, any non-empty token is accepted.
    #[arg(long = "token")]
    pub tokens: Vec<String>,
    /// General request budget per token, rolling window (HubSpot's TEN_SECONDLY_ROLLING).
    #[arg(long, default_value = "100/10s")]
    pub rate_limit: RateSpec,
    /// Search request budget per token (HubSpot: 5 per second, no rate-limit headers).
    #[arg(long, default_value = "5/1s")]
    pub search_rate_limit: RateSpec,
    /// Optional daily request budget per token (policy DAILY).
    #[arg(long)]
    pub daily_limit: Option<u32>,
    /// How long a write stays invisible to search (e.g. 2s, 500ms).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub search_lag: Duration,
    /// Search filter limits.
    #[arg(long, value_enum, default_value_t = SearchLimits::Strict)]
    pub search_limits: SearchLimits,
    /// Portal (account) id reported by account-info and webhooks for a private-app token, and
    /// the first portal OAuth installs can choose.
    #[arg(long, default_value_t = 62_515)]
    pub portal_id: u64,
    /// Another portal OAuth installs can choose (repeatable; hub ids).
    #[arg(long = "portal")]
    pub portals: Vec<u64>,
    /// An OAuth app, as CLIENT_ID:CLIENT_SECRET (repeatable).
    #[arg(
        long = "oauth-client",
        env = "HUBSPOT_SIM_OAUTH_CLIENTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub oauth_clients: Vec<String>,
    /// How long an OAuth access token lives (HubSpot: 30 minutes).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub access_token_ttl: Duration,
    /// General request budget per OAuth app per installing portal (HubSpot: 110/10s).
    #[arg(long, default_value = "110/10s")]
    pub oauth_rate_limit: RateSpec,
    /// Extra property a portal defines, as TYPE:NAME (repeatable), e.g. contacts:favorite_color.
    #[arg(long = "extra-property")]
    pub extra_properties: Vec<String>,
    /// Where to deliver webhook events (none: webhooks off).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The app's client secret used to sign webhooks.
    #[arg(long, env = "HUBSPOT_SIM_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Signature version to send.
    #[arg(long, value_enum, default_value_t = SignatureVersion::V3)]
    pub webhook_signature: SignatureVersion,
    /// Probability (0..=1) that a delivered batch is delivered a second time.
    #[arg(long, default_value_t = 0.0)]
    pub webhook_duplicates: f64,
    /// A delivery slower than this counts as failed and is retried (HubSpot: 5 s).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,
    /// Delay before the first retry; doubles with each attempt.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub webhook_retry_delay: Duration,
    /// Attempts per batch before it is given up (HubSpot: 10).
    #[arg(long, default_value_t = 10)]
    pub webhook_max_attempts: u32,
    /// A PEM certificate to trust for an https webhook URL besides the usual roots (the
    /// front door's self-signed certificate in tests and the quick start).
    #[arg(long)]
    pub webhook_ca: Option<std::path::PathBuf>,
    /// Application id reported in webhook events.
    #[arg(long, default_value_t = 1_160_452)]
    pub app_id: u64,
}

/// Webhook delivery settings, present only when a URL and secret are configured.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: String,
    pub signature: SignatureVersion,
    pub duplicate_probability: f64,
    pub timeout: Duration,
    pub retry_delay: Duration,
    pub max_attempts: u32,
    /// How long events are gathered into one batch before sending.
    pub batch_window: Duration,
    /// Extra trusted certificate (PEM) for the webhook URL.
    pub ca_pem: Option<Vec<u8>>,
}

/// Everything the simulator runs with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub tokens: Vec<String>,
    pub rate_limit: RateSpec,
    pub search_rate_limit: RateSpec,
    pub daily_limit: Option<u32>,
    pub search_lag: Duration,
    pub search_limits: SearchLimits,
    pub portal_id: u64,
    /// The portals OAuth installs can choose besides `portal_id` (see [`SimConfig::portals`]).
    pub extra_portals: Vec<u64>,
    /// (client id, client secret) of each OAuth app.
    pub oauth_clients: Vec<(String, String)>,
    pub access_token_ttl: Duration,
    pub oauth_rate_limit: RateSpec,
    pub app_id: u64,
    /// (object type, property name)
    pub extra_properties: Vec<(String, String)>,
    pub webhooks: Option<WebhookConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: Vec::new(),
            rate_limit: RateSpec::new(100, Duration::from_secs(10)),
            search_rate_limit: RateSpec::new(5, Duration::from_secs(1)),
            daily_limit: None,
            search_lag: Duration::ZERO,
            search_limits: SearchLimits::Strict,
            portal_id: 62_515,
            extra_portals: Vec::new(),
            oauth_clients: Vec::new(),
            access_token_ttl: Duration::from_secs(30 * 60),
            oauth_rate_limit: RateSpec::new(110, Duration::from_secs(10)),
            app_id: 1_160_452,
            extra_properties: Vec::new(),
            webhooks: None,
        }
    }
}

impl SimConfig {
    /// Every portal OAuth installs can choose: `portal_id` first.
    pub fn portals(&self) -> Vec<u64> {
        std::iter::once(self.portal_id)
            .chain(self.extra_portals.iter().copied())
            .collect()
    }

    /// A configuration without rate limits worth noticing: for benchmarks and tests that are
    /// not about rate limiting.
    pub fn unthrottled() -> Self {
        Self {
            rate_limit: RateSpec::new(u32::MAX, Duration::from_secs(10)),
            search_rate_limit: RateSpec::new(u32::MAX, Duration::from_secs(1)),
            oauth_rate_limit: RateSpec::new(u32::MAX, Duration::from_secs(10)),
            ..Self::default()
        }
    }
}

impl TryFrom<Cli> for SimConfig {
    type Error = String;

    fn try_from(cli: Cli) -> Result<Self, Self::Error> {
        if cli.tokens.iter().any(|t| t.trim().is_empty()) {
            return Err("--token must not be empty".into());
        }
        if !(0.0..=1.0).contains(&cli.webhook_duplicates) {
            return Err(format!(
                "--webhook-duplicates must be between 0 and 1, got {}",
                cli.webhook_duplicates
            ));
        }
        let oauth_clients = cli
            .oauth_clients
            .iter()
            .map(|spec| {
                spec.split_once(':')
                    .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
                    .map(|(id, secret)| (id.to_string(), secret.to_string()))
                    .ok_or_else(|| {
                        "--oauth-client: expected CLIENT_ID:CLIENT_SECRET, both non-empty"
                            .to_string()
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if cli.access_token_ttl.is_zero() {
            return Err("--access-token-ttl must be above zero (HubSpot's is 30m)".into());
        }
        let mut extra_portals: Vec<u64> = Vec::new();
        for p in &cli.portals {
            if *p == cli.portal_id || extra_portals.contains(p) {
                return Err(format!("--portal {p} is given twice (--portal-id counts)"));
            }
            extra_portals.push(*p);
        }
        let extra_properties = cli
            .extra_properties
            .iter()
            .map(|spec| {
                spec.split_once(':')
                    .filter(|(t, n)| !t.is_empty() && !n.is_empty())
                    .map(|(t, n)| (t.to_string(), n.to_string()))
                    .ok_or_else(|| {
                        format!("--extra-property '{spec}': expected TYPE:NAME, e.g. contacts:favorite_color")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let webhooks = match (cli.webhook_url, cli.webhook_secret) {
            (None, None) => None,
            (Some(_), None) => {
                return Err("--webhook-url needs --webhook-secret (or HUBSPOT_SIM_WEBHOOK_SECRET) to sign events".into())
            }
            (None, Some(_)) => return Err("--webhook-secret given without --webhook-url".into()),
            (Some(url), Some(secret)) => {
                let parsed = reqwest::Url::parse(&url)
                    .map_err(|e| format!("--webhook-url '{url}' is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("--webhook-url '{url}' must be http or https"));
                }
                let ca_pem = match &cli.webhook_ca {
                    None => None,
                    Some(path) => {
                        let pem = std::fs::read(path).map_err(|e| {
                            format!("--webhook-ca {}: cannot read it: {e}", path.display())
                        })?;
                        reqwest::Certificate::from_pem(&pem).map_err(|e| {
                            format!("--webhook-ca {}: not a PEM certificate: {e}", path.display())
                        })?;
                        Some(pem)
                    }
                };
                Some(WebhookConfig {
                    url,
                    secret,
                    signature: cli.webhook_signature,
                    duplicate_probability: cli.webhook_duplicates,
                    timeout: cli.webhook_timeout,
                    retry_delay: cli.webhook_retry_delay,
                    max_attempts: cli.webhook_max_attempts.max(1),
                    batch_window: Duration::from_millis(50),
                    ca_pem,
                })
            }
        };
        Ok(Self {
            listen: cli.listen,
            tokens: cli.tokens,
            rate_limit: cli.rate_limit,
            search_rate_limit: cli.search_rate_limit,
            daily_limit: cli.daily_limit,
            search_lag: cli.search_lag,
            search_limits: cli.search_limits,
            portal_id: cli.portal_id,
            extra_portals,
            oauth_clients,
            access_token_ttl: cli.access_token_ttl,
            oauth_rate_limit: cli.oauth_rate_limit,
            app_id: cli.app_id,
            extra_properties,
            webhooks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_spec_parses_count_and_window() {
        assert_eq!(
            "100/10s".parse::<RateSpec>().unwrap(),
            RateSpec::new(100, Duration::from_secs(10))
        );
        assert_eq!(
            "5/1s".parse::<RateSpec>().unwrap(),
            RateSpec::new(5, Duration::from_secs(1))
        );
        assert_eq!(
            "250000/1day".parse::<RateSpec>().unwrap(),
            RateSpec::new(250_000, Duration::from_secs(86_400))
        );
    }

    #[test]
    fn rate_spec_rejects_nonsense_with_a_hint() {
        for bad in ["100", "x/10s", "10/forever", "0/1s"] {
            let err = bad.parse::<RateSpec>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn webhook_url_requires_secret() {
        let cli = Cli::parse_from(["hubspot-sim", "--webhook-url", "http://127.0.0.1:1/hook"]);
        let err = SimConfig::try_from(cli).unwrap_err();
        assert!(err.contains("--webhook-secret"), "{err}");
    }

    #[test]
    fn oauth_flags_are_checked() {
        let cli = Cli::parse_from(["hubspot-sim", "--oauth-client", "only-an-id"]);
        let err = SimConfig::try_from(cli).unwrap_err();
        assert!(err.contains("CLIENT_ID:CLIENT_SECRET"), "{err}");
        let cli = Cli::parse_from(["hubspot-sim", "--portal", "62515"]);
        let err = SimConfig::try_from(cli).unwrap_err();
        assert!(err.contains("twice"), "{err}");
        let cli = Cli::parse_from([
            "hubspot-sim",
            "--oauth-client",
            "a:b",
            "--portal",
            "7",
            "--portal",
            "8",
            "--access-token-ttl",
            "5s",
        ]);
        let config = SimConfig::try_from(cli).unwrap();
        assert_eq!(config.portals(), vec![62_515, 7, 8]);
        assert_eq!(
            config.oauth_clients,
            vec![("a".to_string(), "b".to_string())]
        );
        assert_eq!(config.access_token_ttl, Duration::from_secs(5));
    }

    #[test]
    fn extra_property_needs_type_and_name() {
        let cli = Cli::parse_from(["hubspot-sim", "--extra-property", "favorite_color"]);
        let err = SimConfig::try_from(cli).unwrap_err();
        assert!(err.contains("TYPE:NAME"), "{err}");
    }
}
