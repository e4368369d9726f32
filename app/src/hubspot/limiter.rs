//! Client-side rate limiting: keeps this process under its HubSpot budget instead of finding
//! the limit through 429s. A rolling window per bucket (general calls: `HUBSPOT_RATE_LIMIT`,
//! default 100/10s; search: 5/1s, HubSpot's own search limit). `acquire` waits, on Tokio's
//! clock (so tests use `tokio::time::pause()`), until a slot is free and takes it.
//! A slot counts from when its call finished (HubSpot counted it before then). When HubSpot
//! reports its remaining budget as 0 while this process's window is not full, another client
//! shares the token: calls then pause briefly and try again.
//!
//! Processes that share a token share its window through a [`BudgetStore`] (the app's
//! database): each call takes a slot there, so blue and green together stay under HubSpot's
//! limit instead of each spending all of it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use crate::domain::budget::{BoxFuture, BudgetStore, Take};

/// A bucket's limiter: this process's own window, and the shared one when there is a store.
#[derive(Debug)]
pub struct Limiter {
    local: Window,
    shared: Option<(Arc<dyn BudgetStore>, String)>,
    /// Calls counted in the shared window at the last take.
    shared_seen: AtomicUsize,
}

/// A slot taken from a [`Limiter`]; dropping it marks the call as over.
pub enum Permit<'a> {
    Local(WindowPermit<'a>),
    Shared {
        store: Arc<dyn BudgetStore>,
        id: i64,
    },
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Permit::Shared { store, id, .. } = self {
            let (store, id) = (store.clone(), *id);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { store.finish(id).await });
            }
        }
    }
}

impl Limiter {
    pub fn local(max: u32, span: Duration) -> Self {
        Self {
            local: Window::new(max, span),
            shared: None,
            shared_seen: AtomicUsize::new(0),
        }
    }

    /// Shares the window through `store` under `bucket` (one bucket per token and limit).
    pub fn shared(max: u32, span: Duration, store: Arc<dyn BudgetStore>, bucket: String) -> Self {
        Self {
            shared: Some((store, bucket)),
            ..Self::local(max, span)
        }
    }

    /// Waits for a slot and takes it. With a store, the shared window decides (this process's
    /// own window is not used); when the store fails (the database is down) this process falls
    /// back to its own window, and says so once per failure.
    pub async fn acquire(&self) -> Permit<'_> {
        let Some((store, bucket)) = &self.shared else {
            return Permit::Local(self.local.acquire().await);
        };
        loop {
            if let Some(until) = self.local.blocked_until() {
                tokio::time::sleep_until(until).await;
            }
            match store.take(bucket, self.local.max, self.local.span).await {
                Ok(Take::Taken { id, in_window }) => {
                    self.shared_seen.store(in_window, Ordering::Relaxed);
                    return Permit::Shared {
                        store: store.clone(),
                        id,
                    };
                }
                Ok(Take::Full { retry_in }) => {
                    self.shared_seen.store(self.local.max, Ordering::Relaxed);
                    tokio::time::sleep(retry_in.clamp(Duration::from_millis(1), self.local.span))
                        .await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the shared HubSpot budget is unavailable; this process keeps to its own window");
                    return Permit::Local(self.local.acquire().await);
                }
            }
        }
    }

    /// HubSpot said the budget is spent (see [`Window::exhausted`]). With a shared window, the
    /// window is "ours" when the last take found it (nearly) full.
    pub fn exhausted(&self, interval: Duration) {
        if self.shared.is_some() {
            if self.shared_seen.load(Ordering::Relaxed) + 1 < self.local.max {
                self.local.block_for(interval / 10);
            }
        } else {
            self.local.exhausted(interval);
        }
    }

    pub fn max(&self) -> usize {
        self.local.max
    }

    pub fn span(&self) -> Duration {
        self.local.span
    }

    /// Calls counted in the window (the shared one: as of the last take).
    pub fn in_window(&self) -> usize {
        if self.shared.is_some() {
            self.shared_seen.load(Ordering::Relaxed)
        } else {
            self.local.in_window()
        }
    }
}

#[derive(Debug)]
pub struct Window {
    max: usize,
    span: Duration,
    state: Mutex<WindowState>,
}

#[derive(Debug, Default)]
struct WindowState {
    /// The calls in the window: (id, when it counts).
    taken: VecDeque<(u64, Instant)>,
    next_id: u64,
    /// HubSpot said the budget is spent: no calls before this.
    blocked_until: Option<Instant>,
}

/// A taken slot. HubSpot counts a call when it receives it, somewhere between our send and its
/// answer, so when the permit is dropped (the call is over) the slot's time moves to then: the
/// window never frees a slot before HubSpot's does, and a full-speed sender gets no 429 at the
/// window's edge.
pub struct WindowPermit<'a> {
    window: &'a Window,
    id: u64,
    /// How long the acquire waited.
    pub waited: Duration,
}

impl Drop for WindowPermit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut s = self.window.state.lock().expect("not poisoned");
        if let Some(slot) = s.taken.iter_mut().find(|(id, _)| *id == self.id) {
            slot.1 = now;
        }
    }
}

impl Window {
    pub fn new(max: u32, span: Duration) -> Self {
        Self {
            max: max.max(1) as usize,
            span,
            state: Mutex::new(WindowState::default()),
        }
    }

    /// Waits for a free slot and takes it; the call counts until `span` after the permit is
    /// dropped.
    pub async fn acquire(&self) -> WindowPermit<'_> {
        let started = Instant::now();
        loop {
            let wait_until = {
                let (mut s, now) = self.current();
                let span = self.span;
                match s.blocked_until {
                    Some(until) if until > now => Some(until),
                    _ if s.taken.len() >= self.max => s.taken.iter().map(|(_, t)| *t + span).min(),
                    _ => {
                        let id = s.next_id;
                        s.next_id += 1;
                        s.taken.push_back((id, now));
                        return WindowPermit {
                            window: self,
                            id,
                            waited: started.elapsed(),
                        };
                    }
                }
            };
            if let Some(until) = wait_until {
                tokio::time::sleep_until(until).await;
            }
        }
    }

    /// HubSpot's headers said no budget is left in its `interval` window. When this process's
    /// own calls fill the window, the window already waits for the oldest to leave. Otherwise
    /// something else spends the token's budget too, and when a slot frees is unknown: calls
    /// are held for a tenth of the interval, then try again.
    pub fn exhausted(&self, interval: Duration) {
        let (mut s, now) = self.current();
        if s.taken.len() < self.max {
            s.blocked_until = Some(now + interval / 10);
        }
    }

    /// Holds every call for `pause` from now.
    fn block_for(&self, pause: Duration) {
        let (mut s, now) = self.current();
        s.blocked_until = Some(now + pause);
    }

    /// When calls may go again after HubSpot said the budget is spent; `None` if they may now.
    fn blocked_until(&self) -> Option<Instant> {
        let (s, now) = self.current();
        s.blocked_until.filter(|until| *until > now)
    }

    /// Calls taken in the current window.
    pub fn in_window(&self) -> usize {
        self.current().0.taken.len()
    }

    /// The state, locked, with the calls that left the window dropped; and now.
    fn current(&self) -> (std::sync::MutexGuard<'_, WindowState>, Instant) {
        let mut s = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        let span = self.span;
        s.taken.retain(|(_, t)| now.duration_since(*t) < span);
        (s, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_max_in_any_window() {
        let w = Window::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..7 {
            w.acquire().await;
            at.push(t0.elapsed().as_secs());
        }
        assert_eq!(at, [0, 0, 0, 10, 10, 10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_counts_from_when_the_call_finished() {
        let w = Window::new(1, Duration::from_secs(10));
        let permit = w.acquire().await;
        tokio::time::sleep(Duration::from_secs(3)).await; // the call is in flight
        drop(permit);
        assert_eq!(w.acquire().await.waited, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_with_our_own_full_window_waits_only_for_the_oldest_call() {
        let w = Window::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            drop(w.acquire().await);
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        // t = 12: the calls of t = 4 and 8 are in the window; one slot is free.
        let last = w.acquire().await;
        w.exhausted(Duration::from_secs(10));
        drop(last);
        // Full (4, 8, 12): the next slot frees at 14, when the call of 4 leaves.
        assert_eq!(w.acquire().await.waited, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_by_someone_else_holds_calls_for_a_tenth_of_the_interval() {
        let w = Window::new(100, Duration::from_secs(10));
        drop(w.acquire().await);
        w.exhausted(Duration::from_secs(10));
        assert_eq!(w.acquire().await.waited, Duration::from_secs(1));
        assert_eq!(w.acquire().await.waited, Duration::ZERO);
        assert_eq!(w.in_window(), 3);
    }
}
