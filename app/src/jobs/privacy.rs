//! HubSpot's GDPR deletes an erasure asked for: claimed (leased) from `privacy_deletes`, sent
//! through each portal's client, settled (sent, or retried after 5 s; dead after 8 tries).
//! The delete is idempotent on HubSpot's side (a contact already gone is a 404, counted as
//! done), so a lease lost to a crash only repeats a harmless call.

use std::time::Duration;

use super::{Job, Next};
use crate::connections::Portals;
use crate::domain::portal::PortalId;
use crate::store::privacy::PrivacyStore;

pub struct Deletes {
    pub store: PrivacyStore,
    pub portals: Portals,
    pub owner: String,
    pub lease: Duration,
}

impl Job for Deletes {
    const NAME: &'static str = "privacy deletes";

    async fn step(&mut self) -> Next {
        let lease = self.lease.as_millis() as i64;
        let claimed = match self.store.claim_deletes(&self.owner, lease, 10).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "privacy deletes: could not claim");
                return Next::After(Duration::from_secs(5));
            }
        };
        if claimed.is_empty() {
            return Next::After(Duration::from_secs(1));
        }
        for (id, portal, key, by_email, reference) in claimed {
            let portal = (portal != 0).then_some(PortalId(portal as u64));
            let sent = match self.portals.connection_for(portal).await {
                Ok((_, client)) => client.gdpr_delete(&key, by_email).await,
                Err(e) => Err(e),
            };
            let error = sent.err().map(|e| crate::mask::text(&e.to_string()));
            match &error {
                None => tracing::info!(reference, "HubSpot GDPR delete sent"),
                Some(e) => {
                    tracing::warn!(reference, error = %e, "HubSpot GDPR delete failed; retrying")
                }
            }
            if let Err(e) = self.store.settle_delete(id, error.as_deref(), 5_000).await {
                tracing::warn!(error = %e, "privacy deletes: could not settle");
            }
        }
        Next::Now
    }
}
