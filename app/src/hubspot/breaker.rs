//! A circuit breaker per client (so per portal): after [`Breaker::trip_after`] calls in a row
//! fail because HubSpot is down (no answer, a timeout, a 5xx), calls fail at once for
//! [`Breaker::open_for`], spending neither budget nor a deadline's wait. Then one call goes
//! through as a probe: its success closes the breaker, its failure opens it again. A 4xx or a
//! 429 is HubSpot answering, not HubSpot down: it never trips the breaker.
//!
//! Time is Tokio's, so tests use `tokio::time::pause()`.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Where the breaker stands, for status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    /// One probe call is deciding.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    Probing,
}

/// What the breaker says to a call about to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// This call is the probe.
    Probe,
    /// Fail fast: the breaker opens again in this long at the earliest.
    Refused(Duration),
}

#[derive(Debug)]
pub struct Breaker {
    trip_after: u32,
    open_for: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(trip_after: u32, open_for: Duration) -> Self {
        Self {
            trip_after: trip_after.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    pub fn trip_after(&self) -> u32 {
        self.trip_after
    }

    pub fn open_for(&self) -> Duration {
        self.open_for
    }

    pub fn admit(&self) -> Admission {
        let mut state = self.state.lock();
        match *state {
            State::Closed { .. } => Admission::Go,
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::Probing;
                    Admission::Probe
                } else {
                    Admission::Refused(until - now)
                }
            }
            // While the probe decides, the others wait their turn by failing fast.
            State::Probing => Admission::Refused(Duration::ZERO),
        }
    }

    /// The outcome of an admitted call: `down` when HubSpot did not answer usefully.
    pub fn record(&self, admission: Admission, down: bool) {
        let mut state = self.state.lock();
        *state = match (*state, down) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.trip_after => State::Closed {
                failures: failures + 1,
            },
            (State::Probing, true) if admission != Admission::Probe => State::Probing,
            _ => {
                tracing::warn!(open_for = ?self.open_for, "HubSpot keeps failing: calls fail fast until a probe succeeds");
                State::Open {
                    until: Instant::now() + self.open_for,
                }
            }
        };
    }

    /// Whether a call now would be refused (open and not yet due for its probe, or a probe
    /// deciding). No side effect: callers that can wait (the outbox) ask before they claim.
    pub fn refusing(&self) -> bool {
        match *self.state.lock() {
            State::Closed { .. } => false,
            State::Open { until } => Instant::now() < until,
            State::Probing => true,
        }
    }

    pub fn state(&self) -> CircuitState {
        match *self.state.lock() {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::Probing => CircuitState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn trips_after_failures_in_a_row_then_one_probe_decides() {
        let b = Breaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            assert_eq!(b.admit(), Admission::Go);
            b.record(Admission::Go, true);
        }
        // A success in between starts the count again.
        b.record(Admission::Go, false);
        for _ in 0..3 {
            assert_eq!(b.admit(), Admission::Go);
            b.record(Admission::Go, true);
        }
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit(), Admission::Refused(Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.admit(), Admission::Probe);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(
            matches!(b.admit(), Admission::Refused(_)),
            "one probe at a time"
        );
        b.record(Admission::Probe, true);
        assert_eq!(
            b.state(),
            CircuitState::Open,
            "a failed probe opens it again"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.admit(), Admission::Probe);
        b.record(Admission::Probe, false);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(), Admission::Go);
    }
}
