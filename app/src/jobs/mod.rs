//! The jobs: the work the app does with HubSpot in the background. The outbox worker sends
//! queued contact writes ([`outbox`]), the webhook processor refreshes the cache from the events
//! HubSpot sent ([`webhooks`]), the pull sync walks HubSpot's contacts ([`sync`]) on its
//! schedule ([`schedule`]).
//!
//! Each is a [`Job`]: one step at a time, then a wait the step chose, on the app's [`Clock`].
//! [`supervise`] is the one loop that runs them all: it stops at the shutdown signal, wakes a
//! job early when new work arrives, and keeps a job alive when a step panics (logged, then
//! the step is tried again after a pause). A step's state lives in the store, so a step cut
//! short (a crash, a panic, a cancelled sync) is picked up by the next.
//!
//! May not import: `axum`, `sqlx` (SQL is the store's), `crate::http`.

pub mod figures;
pub mod lifecycle;
pub mod object_writes;
pub mod outbox;
pub mod privacy;
pub mod schedule;
pub mod sync;
pub mod upkeep;
pub mod webhooks;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;

/// What a job does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Step again at once (there is more work).
    Now,
    /// Wait this long on the clock, or less if woken.
    After(Duration),
    /// Wait until the clock reads this (epoch ms), or less if woken.
    Until(i64),
}

/// How long a job waits after a step that panicked.
pub const AFTER_PANIC: Duration = Duration::from_secs(5);

/// A background job, run by [`supervise`].
pub trait Job: Send + 'static {
    /// For the logs.
    const NAME: &'static str;
    /// Whether shutdown may cut a step short. `false` (the default) lets the step in flight
    /// finish (the outbox worker settles the batch it sent); `true` suits steps that resume
    /// from what they committed (a sync run).
    const CUT_ON_STOP: bool = false;

    /// One step. Failures are the step's to log; it says when to go again.
    fn step(&mut self) -> impl Future<Output = Next> + Send;

    /// What wakes the job before its wait is over (new work), if anything.
    fn waker(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// Runs `job` until `stop` turns true: step, then wait as the step said (woken early by the
/// job's waker), on `clock`.
pub async fn supervise<J: Job>(mut job: J, clock: Clock, mut stop: watch::Receiver<bool>) {
    let waker = job.waker();
    loop {
        if *stop.borrow() {
            return;
        }
        let step = AssertUnwindSafe(job.step()).catch_unwind();
        let outcome = if J::CUT_ON_STOP {
            tokio::select! {
                outcome = step => outcome,
                _ = stop.changed() => return,
            }
        } else {
            step.await
        };
        let next = outcome.unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(job = J::NAME, panic = %crate::mask::text(&why), "a job's step panicked; it starts again after a pause");
            Next::After(AFTER_PANIC)
        });
        let until = match next {
            Next::Now => continue,
            Next::After(wait) => clock.now_ms() + wait.as_millis() as i64,
            Next::Until(at) => at,
        };
        let woken = async {
            match &waker {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = clock.sleep_until(until) => {}
            _ = woken => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Panics on its second step; counts every step.
    struct Flaky(Arc<AtomicUsize>);

    impl Job for Flaky {
        const NAME: &'static str = "flaky";
        async fn step(&mut self) -> Next {
            if self.0.fetch_add(1, Ordering::SeqCst) == 1 {
                panic!("boom");
            }
            Next::After(Duration::from_secs(60))
        }
    }

    async fn until(steps: &AtomicUsize, n: usize) {
        for _ in 0..1000 {
            if steps.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} steps, wanted {n}", steps.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_job_waits_on_its_clock_survives_a_panic_and_stops_when_told() {
        let clock = Clock::manual(0);
        let steps = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let run = tokio::spawn(supervise(Flaky(steps.clone()), clock.clone(), stopped));
        until(&steps, 1).await;
        clock.advance(Duration::from_secs(59));
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert_eq!(steps.load(Ordering::SeqCst), 1, "still waiting its 60 s");
        clock.advance(Duration::from_secs(1));
        until(&steps, 2).await; // this step panics
        clock.advance(AFTER_PANIC);
        until(&steps, 3).await;
        assert!(!run.is_finished(), "alive after the panic");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("stops at the signal")
            .unwrap();
    }
}
