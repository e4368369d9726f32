//! Per-token rate limits the way HubSpot applies them.
//!
//! - General requests: a rolling window (`100/10s` by default, policy `TEN_SECONDLY_ROLLING`),
//!   reported on every non-search response through the `X-HubSpot-RateLimit-*` headers.
//! - Search requests: their own window (`5/1s`, policy `SECONDLY`), with no headers.
//! - Optionally a daily budget (policy `DAILY`), counted per UTC day over all requests.
//!
//! Rejected requests do not consume budget. Time is passed in, so the logic is unit-testable.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{NaiveDate, Utc};
use parking_lot::Mutex;

use crate::config::RateSpec;
use crate::error::RatePolicy;

/// Which budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    General,
    Search,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub max: u32,
    pub remaining: u32,
    pub interval_ms: u128,
    pub daily: Option<(u32, u32)>,
}

impl Usage {
    /// The headers HubSpot puts on non-search responses.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        put("x-hubspot-ratelimit-max", self.max.to_string());
        put("x-hubspot-ratelimit-remaining", self.remaining.to_string());
        put(
            "x-hubspot-ratelimit-interval-milliseconds",
            self.interval_ms.to_string(),
        );
        if let Some((daily, left)) = self.daily {
            put("x-hubspot-ratelimit-daily", daily.to_string());
            put("x-hubspot-ratelimit-daily-remaining", left.to_string());
        }
        h
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; general requests carry the usage to report.
    Allowed(Option<Usage>),
    /// Refused under a policy; the usage (general only) is still reported.
    Limited(RatePolicy, Option<Usage>),
}

#[derive(Debug, Default)]
struct TokenState {
    general: VecDeque<Instant>,
    search: VecDeque<Instant>,
    day: Option<NaiveDate>,
    day_count: u32,
}

fn prune(window: &mut VecDeque<Instant>, span: Duration, now: Instant) {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= span)
    {
        window.pop_front();
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    general: RateSpec,
    search: RateSpec,
    daily: Option<u32>,
    tokens: Mutex<HashMap<String, TokenState>>,
}

impl RateLimiter {
    pub fn new(general: RateSpec, search: RateSpec, daily: Option<u32>) -> Self {
        Self {
            general,
            search,
            daily,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, token: &str, bucket: Bucket, now: Instant) -> Decision {
        self.check_on(token, bucket, now, Utc::now().date_naive())
    }

    /// [`check`](Self::check) for a key with its own general budget (an OAuth app installed
    /// in one portal: 110/10s by default), no daily budget.
    pub fn check_with(
        &self,
        key: &str,
        bucket: Bucket,
        now: Instant,
        general: RateSpec,
    ) -> Decision {
        self.decide(key, bucket, now, Utc::now().date_naive(), general, None)
    }

    fn check_on(&self, token: &str, bucket: Bucket, now: Instant, today: NaiveDate) -> Decision {
        self.decide(token, bucket, now, today, self.general, self.daily)
    }

    fn decide(
        &self,
        token: &str,
        bucket: Bucket,
        now: Instant,
        today: NaiveDate,
        general: RateSpec,
        daily: Option<u32>,
    ) -> Decision {
        let mut tokens = self.tokens.lock();
        let state = tokens.entry(token.to_string()).or_default();
        if state.day != Some(today) {
            state.day = Some(today);
            state.day_count = 0;
        }
        prune(&mut state.general, general.window, now);
        prune(&mut state.search, self.search.window, now);

        let usage = |state: &TokenState| {
            (bucket == Bucket::General).then(|| Usage {
                max: general.count,
                remaining: self
                    .general
                    .count
                    .saturating_sub(state.general.len() as u32),
                interval_ms: general.window.as_millis(),
                daily: daily.map(|d| (d, d.saturating_sub(state.day_count))),
            })
        };

        if daily.is_some_and(|d| state.day_count >= d) {
            return Decision::Limited(RatePolicy::Daily, usage(state));
        }
        let (window, spec, policy) = match bucket {
            Bucket::General => (&mut state.general, general, RatePolicy::TenSecondlyRolling),
            Bucket::Search => (&mut state.search, self.search, RatePolicy::Secondly),
        };
        if window.len() as u64 >= u64::from(spec.count) {
            return Decision::Limited(policy, usage(state));
        }
        window.push_back(now);
        state.day_count += 1;
        Decision::Allowed(usage(state))
    }

    /// Forgets all usage (the `/_sim/reset` endpoint).
    pub fn reset(&self) {
        self.tokens.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(daily: Option<u32>) -> RateLimiter {
        RateLimiter::new(
            RateSpec::new(3, Duration::from_secs(10)),
            RateSpec::new(2, Duration::from_secs(1)),
            daily,
        )
    }

    #[test]
    fn rolling_window_refuses_then_recovers() {
        let l = limiter(None);
        let t0 = Instant::now();
        let today = Utc::now().date_naive();
        for remaining in [2, 1, 0] {
            match l.check_on("a", Bucket::General, t0, today) {
                Decision::Allowed(Some(u)) => assert_eq!(u.remaining, remaining),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            l.check_on("a", Bucket::General, t0 + Duration::from_secs(9), today),
            Decision::Limited(
                RatePolicy::TenSecondlyRolling,
                Some(Usage { remaining: 0, .. })
            )
        ));
        // Another token has its own budget.
        assert!(matches!(
            l.check_on("b", Bucket::General, t0, today),
            Decision::Allowed(_)
        ));
        // The window rolls: 10 s after the first requests they no longer count.
        assert!(matches!(
            l.check_on("a", Bucket::General, t0 + Duration::from_secs(10), today),
            Decision::Allowed(Some(Usage { remaining: 2, .. }))
        ));
    }

    #[test]
    fn search_has_its_own_budget_and_no_headers() {
        let l = limiter(None);
        let t0 = Instant::now();
        let today = Utc::now().date_naive();
        assert_eq!(
            l.check_on("a", Bucket::Search, t0, today),
            Decision::Allowed(None)
        );
        assert_eq!(
            l.check_on("a", Bucket::Search, t0, today),
            Decision::Allowed(None)
        );
        assert_eq!(
            l.check_on("a", Bucket::Search, t0, today),
            Decision::Limited(RatePolicy::Secondly, None)
        );
        assert!(matches!(
            l.check_on("a", Bucket::General, t0, today),
            Decision::Allowed(Some(_))
        ));
    }

    #[test]
    fn daily_budget_resets_on_a_new_day() {
        let l = limiter(Some(2));
        let t0 = Instant::now();
        let day1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let day2 = day1.succ_opt().unwrap();
        l.check_on("a", Bucket::General, t0, day1);
        match l.check_on("a", Bucket::Search, t0, day1) {
            Decision::Allowed(None) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            l.check_on("a", Bucket::General, t0 + Duration::from_secs(20), day1),
            Decision::Limited(
                RatePolicy::Daily,
                Some(Usage {
                    daily: Some((2, 0)),
                    ..
                })
            )
        ));
        assert!(matches!(
            l.check_on("a", Bucket::General, t0 + Duration::from_secs(20), day2),
            Decision::Allowed(_)
        ));
    }

    #[test]
    fn headers_are_named_as_hubspot_names_them() {
        let usage = Usage {
            max: 100,
            remaining: 99,
            interval_ms: 10_000,
            daily: Some((250_000, 249_999)),
        };
        let h = usage.headers();
        assert_eq!(h["X-HubSpot-RateLimit-Max"], "100");
        assert_eq!(h["X-HubSpot-RateLimit-Remaining"], "99");
        assert_eq!(h["X-HubSpot-RateLimit-Interval-Milliseconds"], "10000");
        assert_eq!(h["X-HubSpot-RateLimit-Daily"], "250000");
        assert_eq!(h["X-HubSpot-RateLimit-Daily-Remaining"], "249999");
    }
}
