//! Client-side rate limiting: keeps this process under its HubSpot budget instead of finding
//! the limit through 429s. A rolling window per bucket (general calls: `HUBSPOT_RATE_LIMIT`,
//! default 100/10s; search: 5/1s, HubSpot's own search limit). `acquire` waits, on Tokio's
//! clock (so tests use `tokio::time::pause()`), until a slot is free and takes it.
//! When HubSpot reports its remaining budget as 0, the limiter also waits out the window.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Window {
    max: usize,
    span: Duration,
    state: Mutex<WindowState>,
}

#[derive(Debug, Default)]
struct WindowState {
    taken: VecDeque<Instant>,
    /// HubSpot said the budget is spent: no calls before this.
    blocked_until: Option<Instant>,
}

impl Window {
    pub fn new(max: u32, span: Duration) -> Self {
        Self {
            max: max.max(1) as usize,
            span,
            state: Mutex::new(WindowState::default()),
        }
    }

    /// Waits for a free slot and takes it. Returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        loop {
            let wait_until = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                while s
                    .taken
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.span)
                {
                    s.taken.pop_front();
                }
                match s.blocked_until {
                    Some(until) if until > now => Some(until),
                    _ if s.taken.len() >= self.max => s.taken.front().map(|t| *t + self.span),
                    _ => {
                        s.taken.push_back(now);
                        None
                    }
                }
            };
            match wait_until {
                None => return started.elapsed(),
                Some(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// HubSpot's headers said no budget is left: hold calls for `for_` from now.
    pub async fn exhausted(&self, for_: Duration) {
        self.state.lock().await.blocked_until = Some(Instant::now() + for_);
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn span(&self) -> Duration {
        self.span
    }

    /// Calls taken in the current window.
    pub async fn in_window(&self) -> usize {
        let s = self.state.lock().await;
        let now = Instant::now();
        s.taken
            .iter()
            .filter(|t| now.duration_since(**t) < self.span)
            .count()
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
    async fn exhausted_holds_calls_until_the_window_passes() {
        let w = Window::new(100, Duration::from_secs(10));
        w.exhausted(Duration::from_secs(4)).await;
        let waited = w.acquire().await;
        assert_eq!(waited, Duration::from_secs(4));
        assert_eq!(w.acquire().await, Duration::ZERO);
        assert_eq!(w.in_window().await, 2);
    }
}
