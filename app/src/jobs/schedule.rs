//! The pull sync on its cron schedule (`SYNC_SCHEDULE`), and at start when `SYNC_ON_START`.
//! Blue and green both schedule; the store lets one run at a time. A run cut by shutdown
//! resumes from its last committed page, so shutdown does not wait for it.

use std::sync::Arc;
use std::time::Duration;

use super::sync::Sync;
use super::{Job, Next};
use crate::clock::Clock;
use crate::hubspot::HubSpotClient;

/// When the schedule names no next time (a cron with no future date).
const FALLBACK: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone)]
pub struct Scheduled {
    sync: Sync,
    client: Arc<HubSpotClient>,
    schedule: cron::Schedule,
    clock: Clock,
    /// Whether the next step runs (the first step only waits, unless on start).
    due: bool,
}

impl Scheduled {
    pub fn new(
        sync: Sync,
        client: Arc<HubSpotClient>,
        schedule: cron::Schedule,
        clock: Clock,
        on_start: bool,
    ) -> Self {
        Self {
            sync,
            client,
            schedule,
            clock,
            due: on_start,
        }
    }
}

impl Job for Scheduled {
    const NAME: &'static str = "scheduled sync";
    const CUT_ON_STOP: bool = true;

    async fn step(&mut self) -> Next {
        if self.due {
            if let Err(e) = self.sync.run(&self.client).await {
                tracing::info!(error = %crate::mask::text(&e.to_string()), "scheduled sync did not run to the end");
            }
        }
        self.due = true;
        Next::After(next_run(&self.schedule, self.clock.now_ms()).unwrap_or(FALLBACK))
    }
}

/// How long from `now_ms` until `schedule` (cron, with or without a seconds field) next fires.
pub fn next_run(schedule: &cron::Schedule, now_ms: i64) -> Option<Duration> {
    let now = chrono::DateTime::from_timestamp_millis(now_ms)?;
    let next = schedule.after(&now).next()?;
    (next - now).to_std().ok()
}

/// Parses a cron expression: five fields (minute first) or six (seconds first).
pub fn parse_schedule(raw: &str) -> Result<cron::Schedule, String> {
    let fields = raw.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {raw}")
    } else {
        raw.to_string()
    };
    full.parse::<cron::Schedule>()
        .map_err(|e| format!("'{raw}' is not a cron schedule ({e}); write e.g. */30 * * * *"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_take_five_or_six_fields() {
        assert!(parse_schedule("*/30 * * * *").is_ok());
        assert!(parse_schedule("0 */30 * * * *").is_ok());
        let err = parse_schedule("every half hour").unwrap_err();
        assert!(err.contains("*/30 * * * *"), "{err}");
        let wait = next_run(&parse_schedule("*/30 * * * *").unwrap(), 1_767_225_660_000).unwrap();
        assert_eq!(wait, Duration::from_secs(29 * 60), "from 00:01 to 00:30");
    }
}
