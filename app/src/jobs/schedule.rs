//! The pull sync on its cron schedule (`SYNC_SCHEDULE`), and at start when `SYNC_ON_START`:
//! each run syncs every account kept here, one after another (the private-app token's, then
//! each connected portal through its own connection). Blue and green both schedule; the store
//! lets one run per portal at a time. A run cut by shutdown resumes from its last committed
//! page, so shutdown does not wait for it.

use std::time::Duration;

use super::sync::Sync;
use super::{Job, Next};
use crate::clock::Clock;
use crate::connections::Portals;

/// When the schedule names no next time (a cron with no future date).
const FALLBACK: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone)]
pub struct Scheduled {
    sync: Sync,
    portals: Portals,
    schedule: cron::Schedule,
    clock: Clock,
    /// Whether the next step runs (the first step only waits, unless on start).
    due: bool,
}

impl Scheduled {
    pub fn new(
        sync: Sync,
        portals: Portals,
        schedule: cron::Schedule,
        clock: Clock,
        on_start: bool,
    ) -> Self {
        Self {
            sync,
            portals,
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
            self.run_all().await;
        }
        self.due = true;
        Next::After(next_run(&self.schedule, self.clock.now_ms()).unwrap_or(FALLBACK))
    }
}

impl Scheduled {
    /// One run of each account's sync; one account's failure does not stop the others'.
    async fn run_all(&self) {
        let accounts = match self.portals.accounts().await {
            Ok(accounts) => accounts,
            Err(e) => {
                tracing::warn!(error = %e, "scheduled sync: the connections could not be read");
                return;
            }
        };
        for account in accounts {
            let portal = account.map_or_else(|| "private app".to_string(), |p| p.to_string());
            let run = async {
                let client = self.portals.client_for(account).await?;
                self.sync.for_portal(account).run_all(&client).await
            };
            if let Err(e) = run.await {
                tracing::info!(%portal, error = %crate::mask::text(&e.to_string()), "scheduled sync did not run to the end");
            }
        }
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
