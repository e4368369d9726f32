//! The port of HubSpot's shared rate budget: what the HubSpot client's limiter asks of a window
//! kept outside the process (the store implements it on the app's database). Here, in the
//! domain, so that neither `hubspot/` nor `store/` imports the other.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, for the object-safe [`BudgetStore`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a shared budget answers when asked for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// A slot, by its id; `in_window` calls (this one included) count now.
    Taken { id: i64, in_window: usize },
    /// The window is full: ask again after this long.
    Full { retry_in: Duration },
}

/// A rolling window kept outside this process (in the app's database), so that every process
/// calling HubSpot with one token stays under that token's limit together. Implemented by the
/// store; the limiter only asks. Times are wall-clock milliseconds: the processes sharing it
/// must agree on the time (one machine, or NTP).
pub trait BudgetStore: Send + Sync + std::fmt::Debug + 'static {
    /// Takes a slot in `bucket` when fewer than `max` calls count in the last `span`.
    fn take<'a>(
        &'a self,
        bucket: &'a str,
        max: usize,
        span: Duration,
    ) -> BoxFuture<'a, Result<Take, String>>;
    /// The call of slot `id` is over: it counts from now.
    fn finish(&self, id: i64) -> BoxFuture<'_, ()>;
}
