//! The one place that talks to HubSpot: owns the HTTP client, the token, the timeout, the
//! retry policy ([`retry`]) and the client-side rate limiter ([`limiter`]), and turns HubSpot's
//! answers into typed results.

pub mod breaker;
mod contacts;
mod error;
pub mod events;
pub mod limiter;
pub mod oauth;
pub mod objects;
pub mod paths;
pub mod retry;
pub mod search;
pub mod signature;
mod transport;
pub mod upsert;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

pub use contacts::Upserted;
pub use error::{ApiErrorBody, HubSpotError};
pub use objects::Page;

use crate::secret::Secret;
use limiter::{BudgetStore, Limiter, Permit};
use oauth::TokenSource;
use retry::{Failure, RetryPolicy, Verdict};

/// Which budget a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    General,
    Search,
}

/// How this service reaches HubSpot (read from the environment by [`crate::config`]).
#[derive(Debug, Clone)]
pub struct HubSpotSettings {
    pub enabled: bool,
    pub base_url: url::Url,
    pub token: Option<Secret>,
    /// false: writes are validated and recorded but not sent.
    pub send_live: bool,
    pub timeout: Duration,
    /// Client-side budget: (requests, window), from `HUBSPOT_RATE_LIMIT` like `100/10s`.
    pub rate_limit: (u32, Duration),
    /// The same for each portal connected by OAuth (HubSpot: 110/10s per installing portal).
    pub oauth_rate_limit: (u32, Duration),
    /// The circuit breaker: (calls failing in a row that open it, how long it stays open),
    /// from `HUBSPOT_BREAKER` like `5/30s`.
    pub breaker: (u32, Duration),
    /// The date-based API version the client speaks (`HUBSPOT_API_VERSION`, e.g. `2026-03`).
    pub api_version: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetails {
    pub portal_id: u64,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Where HubSpot keeps the portal's data (`na1`, `eu1`, …).
    #[serde(default)]
    pub data_hosting_location: Option<String>,
}

/// Counts of HubSpot calls (each attempt), for `/api/stats`, `/metrics` and the dashboard.
#[derive(Debug, Default)]
pub struct CallStats {
    pub attempts: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
    pub rate_limited: std::sync::atomic::AtomicU64,
    pub latency_total_us: std::sync::atomic::AtomicU64,
    pub latency_max_us: std::sync::atomic::AtomicU64,
}

/// HubSpot's search limit: requests per second per account.
const SEARCH_PER_SECOND: u32 = 5;

#[derive(Debug)]
pub struct HubSpotClient {
    pub stats: CallStats,
    /// The process's count over all its clients (the figures' history), if it keeps one.
    totals: Option<Arc<CallStats>>,
    http: reqwest::Client,
    base: reqwest::Url,
    tokens: Arc<dyn TokenSource>,
    paths: paths::Paths,
    breaker: breaker::Breaker,
    /// Names this client's windows in a shared budget: a hash of a private-app token, or the
    /// portal of an OAuth connection (its tokens change; its budget does not).
    budget_key: String,
    timeout: Duration,
    policy: RetryPolicy,
    general: Limiter,
    search: Limiter,
}

/// The client-side budget, for status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max: usize,
    pub window: Duration,
    pub used: usize,
}

impl HubSpotClient {
    /// A client on a private-app token.
    pub fn new(settings: &HubSpotSettings, token: Secret) -> anyhow::Result<Self> {
        use sha2::Digest;
        let key = hex::encode(&sha2::Sha256::digest(token.expose().as_bytes())[..12]);
        Self::with_tokens(settings, Arc::new(oauth::Fixed(token)), key)
    }

    /// A client whose bearer comes from `tokens` (an OAuth connection), its shared budget
    /// named by `budget_key`.
    pub fn with_tokens(
        settings: &HubSpotSettings,
        tokens: Arc<dyn TokenSource>,
        budget_key: String,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("hubspot-contact-sync/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let (max, span) = settings.rate_limit;
        Ok(Self {
            stats: CallStats::default(),
            totals: None,
            http,
            base: settings.base_url.clone(),
            tokens,
            paths: paths::Paths::new(&settings.api_version),
            breaker: breaker::Breaker::new(settings.breaker.0, settings.breaker.1),
            budget_key,
            timeout: settings.timeout,
            policy: RetryPolicy::default(),
            general: Limiter::local(max, span),
            search: Limiter::local(SEARCH_PER_SECOND, Duration::from_secs(1)),
        })
    }

    /// Shares the budget with every process that uses the same token and `store` (the app's
    /// database): one window per token and limit, so they stay under HubSpot's limit together.
    pub fn with_shared_budget(mut self, store: Arc<dyn BudgetStore>) -> Self {
        let token = &self.budget_key;
        let (max, span) = (self.general.max() as u32, self.general.span());
        self.general = Limiter::shared(max, span, store.clone(), format!("{token}:general"));
        self.search = Limiter::shared(
            SEARCH_PER_SECOND,
            Duration::from_secs(1),
            store,
            format!("{token}:search"),
        );
        self
    }

    /// Takes a slot of the general budget now, for a call made later with
    /// [`upsert_contacts_with`](Self::upsert_contacts_with): the outbox waits for budget
    /// *before* it claims, so the batch it claims holds everything that arrived meanwhile.
    pub async fn reserve(&self) -> Permit<'_> {
        self.general.acquire().await
    }

    /// Counts this client's calls into `totals` as well, the process's count over all its
    /// clients (a portal's client is replaced when its portal reconnects; the total goes on).
    pub fn counting_into(mut self, totals: Arc<CallStats>) -> Self {
        self.totals = Some(totals);
        self
    }

    /// Replaces the retry policy (tests shorten it).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn budget(&self) -> Budget {
        Budget {
            max: self.general.max(),
            window: self.general.span(),
            used: self.general.in_window(),
        }
    }

    fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    fn window(&self, bucket: Bucket) -> &Limiter {
        match bucket {
            Bucket::General => &self.general,
            Bucket::Search => &self.search,
        }
    }

    /// One logical call: waits for budget, sends, and retries what the policy says to retry,
    /// all within `HUBSPOT_TIMEOUT` counted from the first send (each attempt gets what is left;
    /// a retry that could not finish in time is not made).
    /// `idempotent`: whether a call that may have reached HubSpot can safely be sent again.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        bucket: Bucket,
        idempotent: bool,
    ) -> Result<Value, HubSpotError> {
        self.call_reserved(None, method, path, query, body, bucket, idempotent)
            .await
    }

    /// Where this client's circuit breaker stands.
    pub fn circuit(&self) -> breaker::CircuitState {
        self.breaker.state()
    }

    /// Whether a call now would fail at once (the breaker open): work that can wait, waits.
    pub fn paused(&self) -> bool {
        self.breaker.refusing()
    }

    /// [`call`](Self::call), its first attempt on a slot already taken (`reserved`), behind
    /// the circuit breaker: while it is open the call fails at once.
    #[allow(clippy::too_many_arguments)]
    async fn call_reserved(
        &self,
        reserved: Option<Permit<'_>>,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        bucket: Bucket,
        idempotent: bool,
    ) -> Result<Value, HubSpotError> {
        let admission = self.breaker.admit();
        if let breaker::Admission::Refused(wait) = admission {
            return Err(HubSpotError::CircuitOpen(wait));
        }
        let outcome = self
            .attempts(reserved, method, path, query, body, bucket, idempotent)
            .await;
        let down = outcome.as_ref().err().is_some_and(HubSpotError::is_down);
        self.breaker.record(admission, down);
        outcome
    }

    /// The attempts of one call: budget, send, retry as the policy says, within the deadline.
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        mut reserved: Option<Permit<'_>>,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        bucket: Bucket,
        idempotent: bool,
    ) -> Result<Value, HubSpotError> {
        let mut attempt = 1;
        let mut deadline = None;
        let mut renewed = false;
        loop {
            let permit = match reserved.take() {
                Some(permit) => permit,
                None => self.window(bucket).acquire().await,
            };
            let deadline =
                *deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.timeout);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(HubSpotError::Timeout(self.timeout));
            }
            let token = self.tokens.bearer().await?;
            let mut req = self
                .http
                .request(method.clone(), self.url(path))
                .query(query)
                .timeout(left)
                .bearer_auth(token.expose());
            if let Some(body) = body {
                req = req.json(body);
            }
            let started = std::time::Instant::now();
            let outcome = self.attempt(req).await;
            drop(permit); // the call is over: its slot counts from now
            self.record(started.elapsed(), outcome.as_ref().err().map(|(_, e)| e));
            let (failure, error) = match outcome {
                Ok(value) => return Ok(value),
                Err(pair) => pair,
            };
            // An access token that expired in flight: renew it and send again, once (HubSpot
            // refused the call, so it did nothing).
            if !renewed && error.is_expired_token() {
                renewed = true;
                self.tokens.expired(&token).await;
                attempt += 1;
                continue;
            }
            let failure = match failure {
                Failure::Timeout { .. } => Failure::Timeout { idempotent },
                other => other,
            };
            let jitter: f64 = rand::thread_rng().gen();
            match self.policy.decide(attempt, &failure, jitter) {
                Verdict::RetryAfter(delay) if tokio::time::Instant::now() + delay < deadline => {
                    tracing::warn!(%method, path, attempt, ?delay, error = %crate::mask::text(&error.to_string()), "HubSpot call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => return Err(error),
            }
        }
    }

    /// `GET /account-info/{version}/details`: proves reachability and the token. Returns the details
    /// and the round-trip time (retries included).
    pub async fn account_details(&self) -> Result<(AccountDetails, Duration), HubSpotError> {
        let started = Instant::now();
        let value = self
            .call(
                Method::GET,
                &self.paths.account_details(),
                &[],
                None,
                Bucket::General,
                true,
            )
            .await?;
        let details =
            serde_json::from_value(value).map_err(|e| HubSpotError::Decode(e.to_string()))?;
        Ok((details, started.elapsed()))
    }
}
