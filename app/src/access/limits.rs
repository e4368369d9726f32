//! Per-user rate limits on lookups and searches (`USER_RATE_LIMIT`, default 20 per 10 s with
//! the whole allowance available at once), by `governor`'s keyed GCRA limiter. Per process:
//! with blue and green both live, a user could get up to twice the allowance for the seconds
//! of a switch.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

pub struct UserLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for UserLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserLimits")
    }
}

impl UserLimits {
    /// `count` requests per `window`, per user.
    pub fn new((count, window): (u32, Duration)) -> Self {
        let count = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
        let period = (window / count.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .expect("a non-zero period")
            .allow_burst(count);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` when `user` may make one more request now; else how long until they may.
    pub fn check(&self, user: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&user.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_their_own_allowance() {
        let limits = UserLimits::new((3, Duration::from_secs(60)));
        for _ in 0..3 {
            assert!(limits.check("ada").is_ok());
        }
        let wait = limits.check("ada").unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limits.check("bob").is_ok(), "another user is not held back");
    }
}
