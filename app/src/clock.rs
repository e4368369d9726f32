//! The app's clock: wall-clock time as the app stores it (epoch milliseconds: the outbox's
//! schedule and leases, the cache's freshness, the sync's cursor, webhook timestamps, the shared
//! budget, sessions) and the waits of its jobs.
//!
//! One [`Clock`] is made at start and handed to the store (through `Db`) and the jobs, so every
//! part reads the same time. A test makes a [`Clock::manual`] one and moves it with
//! [`Clock::advance`]: an hour-long outage or a stuck run takes milliseconds of real time, and
//! no test rewrites timestamps in SQL. Only what runs *against* time that the app does not own
//! keeps real time: the HubSpot client's network deadline and its retry pauses, and the
//! server's drain.
//!
//! A leaf: imports nothing of the app.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Clock(Kind);

#[derive(Clone, Default)]
enum Kind {
    #[default]
    System,
    Manual(Arc<Manual>),
}

struct Manual {
    now: AtomicI64,
    moved: Notify,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::System => f.write_str("Clock::System"),
            Kind::Manual(m) => write!(f, "Clock::Manual({})", m.now.load(Ordering::SeqCst)),
        }
    }
}

impl Clock {
    /// The machine's clock.
    pub fn system() -> Self {
        Self(Kind::System)
    }

    /// A clock that stands at `start_ms` until [`advance`](Self::advance)d.
    pub fn manual(start_ms: i64) -> Self {
        Self(Kind::Manual(Arc::new(Manual {
            now: AtomicI64::new(start_ms),
            moved: Notify::new(),
        })))
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Kind::System => chrono::Utc::now().timestamp_millis(),
            Kind::Manual(m) => m.now.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward and wakes whatever sleeps on it.
    ///
    /// # Panics
    /// On the system clock: only tests move time, and only on a clock they made.
    pub fn advance(&self, by: Duration) {
        let Kind::Manual(m) = &self.0 else {
            panic!("the system clock cannot be advanced; make a Clock::manual");
        };
        m.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        m.moved.notify_waiters();
    }

    /// Waits until `by` has passed on this clock.
    pub async fn sleep(&self, by: Duration) {
        self.sleep_until(self.now_ms() + by.as_millis() as i64)
            .await
    }

    /// Waits until this clock reads `until` (epoch milliseconds) or later.
    pub async fn sleep_until(&self, until: i64) {
        match &self.0 {
            Kind::System => {
                let left = until - self.now_ms();
                if left > 0 {
                    tokio::time::sleep(Duration::from_millis(left as u64)).await;
                }
            }
            Kind::Manual(m) => {
                loop {
                    let moved = m.moved.notified();
                    tokio::pin!(moved);
                    moved.as_mut().enable(); // registered before the check: no missed wake-up
                    if m.now.load(Ordering::SeqCst) >= until {
                        return;
                    }
                    moved.await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced_and_wakes_its_sleepers() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(90)).await }
        });
        tokio::task::yield_now().await; // the sleeper starts its 90 s
        clock.advance(Duration::from_secs(60));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "60 s of a 90 s sleep");
        clock.advance(Duration::from_secs(30));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken by the advance")
            .unwrap();
        assert_eq!(clock.now_ms(), 91_000);
    }

    #[test]
    fn the_system_clock_reads_the_machine_clock() {
        let before = chrono::Utc::now().timestamp_millis();
        let now = Clock::system().now_ms();
        assert!(now >= before && now - before < 1_000);
    }
}
