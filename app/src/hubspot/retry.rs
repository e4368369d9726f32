//! When to retry a HubSpot call, and after how long. Pure: the caller reports what went wrong,
//! the policy answers; no clock, no randomness of its own (jitter is passed in).
//!
//! Retried: connection failures; timeouts of idempotent calls (a create that timed out may have
//! succeeded and is resolved by email instead); 429 TEN_SECONDLY_ROLLING and SECONDLY; 423
//! (≥ 2 s); 477; 502, 503, 504 and Cloudflare's 52x. Never retried: a DAILY 429, any other 4xx,
//! and other 5xx. `Retry-After` is honoured whenever present.

use std::time::Duration;

/// What went wrong with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection was made: the request never reached HubSpot.
    Connect,
    /// Sent, but no answer within the timeout.
    Timeout { idempotent: bool },
    /// HubSpot answered 2xx with a body that cannot be read: the call took effect, so sending
    /// it again would not help.
    Undecodable,
    /// HubSpot answered with an error status.
    Status {
        status: u16,
        policy: Option<String>,
        retry_after: Option<Duration>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    RetryAfter(Duration),
    GiveUp,
}

/// A `Retry-After` longer than this is taken as this: a call should fail rather than hang.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles per attempt.
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// `attempt` is the number of the attempt that failed (1 for the first); `jitter` in
    /// `[0, 1)` spreads retries of many clients ("equal jitter": half fixed, half random).
    pub fn decide(&self, attempt: u32, failure: &Failure, jitter: f64) -> Verdict {
        if attempt >= self.max_attempts {
            return Verdict::GiveUp;
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.max_delay);
        let backoff = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        let at_least = |floor: Duration, retry_after: &Option<Duration>| {
            let asked = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
            Verdict::RetryAfter(backoff.max(floor).max(asked))
        };
        match failure {
            Failure::Connect => Verdict::RetryAfter(backoff),
            Failure::Timeout { idempotent: true } => Verdict::RetryAfter(backoff),
            Failure::Timeout { idempotent: false } | Failure::Undecodable => Verdict::GiveUp,
            Failure::Status {
                status,
                policy,
                retry_after,
            } => match status {
                429 if RateLimitPolicy::of(policy.as_deref()) == RateLimitPolicy::Daily => {
                    Verdict::GiveUp
                }
                // TEN_SECONDLY_ROLLING and SECONDLY: a rolling window frees a slot soon.
                429 => at_least(Duration::from_secs(1), retry_after),
                423 => at_least(Duration::from_secs(2), retry_after),
                477 | 502 | 503 | 504 | 520..=524 => at_least(Duration::ZERO, retry_after),
                _ => Verdict::GiveUp,
            },
        }
    }
}

/// The limit a 429 names in `policyName`: HubSpot's rolling ten-second window (the default when
/// it names none), its secondly search limit, or the daily limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitPolicy {
    TenSecondlyRolling,
    Secondly,
    Daily,
}

impl RateLimitPolicy {
    pub fn of(policy_name: Option<&str>) -> Self {
        match policy_name {
            Some("DAILY") => Self::Daily,
            Some("SECONDLY") => Self::Secondly,
            _ => Self::TenSecondlyRolling,
        }
    }

    /// How long until the window it names has room again (a daily limit: try each minute, so
    /// the first minute of the new day is used).
    pub fn wait(self) -> Duration {
        match self {
            Self::TenSecondlyRolling => Duration::from_secs(10),
            Self::Secondly => Duration::from_secs(1),
            Self::Daily => Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, policy: Option<&str>, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            status,
            policy: policy.map(String::from),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(250),
        max_delay: Duration::from_secs(10),
    };

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let d = |attempt, jitter| match P.decide(attempt, &Failure::Connect, jitter) {
            Verdict::RetryAfter(d) => d,
            Verdict::GiveUp => panic!("should retry"),
        };
        assert_eq!(d(1, 0.0), Duration::from_millis(125));
        assert_eq!(d(1, 0.999_999).as_millis(), 249);
        assert_eq!(d(2, 0.0), Duration::from_millis(250));
        assert_eq!(d(4, 0.0), Duration::from_millis(1000));
        let long = RetryPolicy {
            max_attempts: 30,
            ..P
        };
        match long.decide(20, &Failure::Connect, 0.999_999) {
            Verdict::RetryAfter(d) => assert_eq!(d.as_millis(), 9_999, "capped at max_delay"),
            Verdict::GiveUp => panic!("should retry"),
        }
    }

    #[test]
    fn attempts_run_out() {
        assert_eq!(P.decide(5, &Failure::Connect, 0.5), Verdict::GiveUp);
    }

    #[test]
    fn what_is_retried_and_what_is_not() {
        let retried = [
            status(429, Some("TEN_SECONDLY_ROLLING"), None),
            status(429, Some("SECONDLY"), None),
            status(429, None, None),
            status(423, None, None),
            status(477, None, None),
            status(502, None, None),
            status(503, None, None),
            status(504, None, None),
            status(521, None, None),
            status(524, None, None),
            Failure::Timeout { idempotent: true },
        ];
        for f in retried {
            assert!(
                matches!(P.decide(1, &f, 0.0), Verdict::RetryAfter(_)),
                "{f:?}"
            );
        }
        let final_ = [
            status(429, Some("DAILY"), Some(1)),
            status(400, None, None),
            status(401, None, None),
            status(403, None, None),
            status(404, None, None),
            status(409, None, None),
            status(500, None, None),
            Failure::Timeout { idempotent: false },
            Failure::Undecodable,
        ];
        for f in final_ {
            assert_eq!(P.decide(1, &f, 0.0), Verdict::GiveUp, "{f:?}");
        }
    }

    #[test]
    fn retry_after_and_floors_are_honoured() {
        assert_eq!(
            P.decide(1, &status(503, None, Some(3)), 0.0),
            Verdict::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            P.decide(1, &status(423, None, None), 0.0),
            Verdict::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            P.decide(1, &status(429, Some("TEN_SECONDLY_ROLLING"), None), 0.0),
            Verdict::RetryAfter(Duration::from_secs(1))
        );
        // A Retry-After beyond the backoff cap is still honoured (HubSpot asked for it), up to
        // MAX_RETRY_AFTER.
        assert_eq!(
            P.decide(1, &status(429, None, Some(30)), 0.0),
            Verdict::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(
            P.decide(1, &status(503, None, Some(3600)), 0.0),
            Verdict::RetryAfter(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn a_429s_policy_names_its_window() {
        use RateLimitPolicy::*;
        assert_eq!(RateLimitPolicy::of(None), TenSecondlyRolling);
        assert_eq!(
            RateLimitPolicy::of(Some("TEN_SECONDLY_ROLLING")).wait(),
            Duration::from_secs(10)
        );
        assert_eq!(
            RateLimitPolicy::of(Some("SECONDLY")).wait(),
            Duration::from_secs(1)
        );
        assert_eq!(RateLimitPolicy::of(Some("DAILY")), Daily);
        assert_eq!(Daily.wait(), Duration::from_secs(60));
    }
}
