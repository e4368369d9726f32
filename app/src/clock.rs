//! Wall-clock time as the app stores it: epoch milliseconds (the outbox's schedule, leases, the
//! cache's freshness, the sync's cursor, webhook timestamps, the shared budget). One function, so
//! every part reads the same clock.
//!
//! A leaf: imports nothing of the app.

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
