//! Small periodic jobs: the feature flags read from the database ([`FlagRefresh`], every
//! `FLAGS_REFRESH`), and the audit's retention ([`AuditRetention`], hourly).

use std::sync::Arc;
use std::time::Duration;

use super::{Job, Next};
use crate::access::Flags;
use crate::store::audit::Audit;

/// Keeps a process's flags current.
pub struct FlagRefresh {
    pub flags: Arc<Flags>,
    pub every: Duration,
}

impl Job for FlagRefresh {
    const NAME: &'static str = "flags";

    async fn step(&mut self) -> Next {
        if let Err(e) = self.flags.refresh().await {
            tracing::warn!(error = %e, "could not read the feature flags; keeping the last values");
        }
        Next::After(self.every)
    }
}

/// Deletes audit entries older than `AUDIT_RETENTION`, once an hour.
pub struct AuditRetention {
    pub audit: Audit,
    pub keep: Duration,
}

impl Job for AuditRetention {
    const NAME: &'static str = "audit retention";

    async fn step(&mut self) -> Next {
        let before = self.audit.now_ms() - self.keep.as_millis() as i64;
        match self.audit.cleanup(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "audit entries past AUDIT_RETENTION deleted"),
            Err(e) => tracing::warn!(error = %e, "could not clean up the audit"),
        }
        Next::After(Duration::from_secs(3600))
    }
}
