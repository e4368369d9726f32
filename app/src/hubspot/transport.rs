//! One attempt on the wire: send, read, sort the outcome (an answer, HubSpot's error, or a
//! transport failure that did or did not reach HubSpot), and count it. The loop around it
//! (budget, retries, the deadline, the breaker) is in the parent module.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::retry::Failure;
use super::{ApiErrorBody, HubSpotClient, HubSpotError};

impl HubSpotClient {
    /// When HubSpot says the window's budget is spent, tell the limiter.
    fn observe(&self, headers: &HeaderMap) {
        let num = |name: &str| headers.get(name)?.to_str().ok()?.parse::<u64>().ok();
        if num("x-hubspot-ratelimit-remaining") == Some(0) {
            let interval = num("x-hubspot-ratelimit-interval-milliseconds").unwrap_or(10_000);
            self.general.exhausted(Duration::from_millis(interval));
        }
    }

    /// Counts one attempt, its latency and its failure, for /api/stats and /metrics.
    pub(super) fn record(&self, took: Duration, error: Option<&HubSpotError>) {
        use std::sync::atomic::Ordering::Relaxed;
        let us = took.as_micros() as u64;
        for stats in std::iter::once(&self.stats).chain(self.totals.as_deref()) {
            stats.attempts.fetch_add(1, Relaxed);
            stats.latency_total_us.fetch_add(us, Relaxed);
            stats.latency_max_us.fetch_max(us, Relaxed);
            if let Some(e) = error {
                stats.failures.fetch_add(1, Relaxed);
                if matches!(e, HubSpotError::Api { status: 429, .. }) {
                    stats.rate_limited.fetch_add(1, Relaxed);
                }
            }
        }
    }

    pub(super) async fn attempt(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, (Failure, HubSpotError)> {
        let resp = req.send().await.map_err(|e| self.classify(e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        self.observe(&headers);
        let bytes = resp.bytes().await.map_err(|e| self.classify(e))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|e| (Failure::Undecodable, HubSpotError::Decode(e.to_string())));
        }
        let body: ApiErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let failure = Failure::Status {
            status: status.as_u16(),
            policy: body.policy_name.clone(),
            retry_after,
        };
        Err((
            failure,
            HubSpotError::Api {
                status: status.as_u16(),
                body,
            },
        ))
    }

    /// Sorts a transport error: never connected (safe to resend), or sent with no answer.
    fn classify(&self, e: reqwest::Error) -> (Failure, HubSpotError) {
        if e.is_connect() {
            (
                Failure::Connect,
                HubSpotError::Unreachable(e.without_url().to_string()),
            )
        } else if e.is_timeout() {
            (
                Failure::Timeout { idempotent: false },
                HubSpotError::Timeout(self.timeout),
            )
        } else {
            // Sent, then the connection broke: the outcome is unknown, as with a timeout.
            (
                Failure::Timeout { idempotent: false },
                HubSpotError::Unreachable(e.without_url().to_string()),
            )
        }
    }
}
