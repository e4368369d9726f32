//! The writer of local changes to HubSpot: claims a batch of due records of one portal's type
//! ([`crate::store::object_writes`]: a record's writes in order, merged), sends one batch
//! update through that portal's connection, and settles each record: sent, retried with backoff
//! (HubSpot down, a 429, a timeout), or dead (HubSpot refused the values, or attempts ran out).

use std::sync::Arc;
use std::time::Duration;

use super::{Job, Next};
use crate::connections::Portals;
use crate::store::object_writes::{Claim, ObjectWrites};

/// Attempts before a write is dead.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claim is leased: a worker that dies leaves its batch to be claimed again then.
const LEASE: Duration = Duration::from_secs(60);
/// How long an idle writer waits when nothing wakes it (an accepted change does).
const IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Writer {
    writes: ObjectWrites,
    portals: Portals,
    owner: String,
}

impl Writer {
    pub fn new(writes: ObjectWrites, portals: Portals) -> Self {
        Self {
            writes,
            portals,
            owner: crate::identity::this_process(),
        }
    }

    /// Backoff after a failed attempt: 1 s, 2 s, 4 s, … up to 5 minutes.
    fn backoff(attempts: i64) -> i64 {
        1000 * 2_i64.pow(attempts.clamp(0, 8) as u32).min(300)
    }

    /// One batch, if one is due. Returns how many records were settled.
    pub async fn send_once(&self) -> Result<usize, crate::store::StoreError> {
        let Some(Claim {
            portal,
            object_type,
            records,
        }) = self
            .writes
            .claim(&self.owner, LEASE.as_millis() as i64)
            .await?
        else {
            return Ok(0);
        };
        let inputs: Vec<_> = records
            .iter()
            .map(|r| (r.object_id.clone(), r.properties.clone()))
            .collect();
        let sent = match self.portals.client_for(portal).await {
            Ok(client) => client.update_objects(object_type, &inputs).await,
            Err(e) => Err(e),
        };
        for (i, record) in records.iter().enumerate() {
            let attempts = record.attempts + 1;
            let outcome = match &sent {
                Ok(results) => match &results[i] {
                    Ok(()) => Ok(()),
                    Err(refused) => Err((refused.clone(), 0, true)),
                },
                Err(e) => {
                    let hopeless = matches!(
                        e,
                        crate::hubspot::HubSpotError::Api {
                            status: 400 | 404,
                            ..
                        }
                    );
                    Err((
                        e.to_string(),
                        Self::backoff(attempts),
                        hopeless || attempts >= MAX_ATTEMPTS,
                    ))
                }
            };
            if let Err((why, _, true)) = &outcome {
                tracing::warn!(object_type = object_type.as_str(), id = %record.object_id, error = %crate::mask::text(why), "a write to HubSpot is dead");
            }
            self.writes.settle(record, outcome).await?;
        }
        Ok(records.len())
    }
}

impl Job for Writer {
    const NAME: &'static str = "object writer";

    async fn step(&mut self) -> Next {
        match self.send_once().await {
            Ok(0) => {
                let now = self.writes.now_ms();
                match self.writes.next_due().await {
                    Ok(Some(due)) if due > now => {
                        Next::After(Duration::from_millis((due - now) as u64).min(IDLE))
                    }
                    Ok(Some(_)) => Next::After(Duration::from_millis(50)),
                    _ => Next::After(IDLE),
                }
            }
            Ok(_) => Next::Now,
            Err(e) => {
                tracing::warn!(error = %e, "object writes: the store failed; retrying in 5 s");
                Next::After(Duration::from_secs(5))
            }
        }
    }

    fn waker(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.writes.wake())
    }
}
