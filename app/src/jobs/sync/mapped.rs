//! The portal's property mappings (and, for deals, currencies) as the sync uses them: which are in force (the portal's own,
//! else `MAPPINGS_FILE`'s), loading them for a run, and setting new ones (the next run then
//! lists every record again, so their fields are computed anew).

use std::sync::Arc;

use super::Sync;
use crate::domain::mapping::{Mapping, MappingSet};
use crate::store::StoreResult;

impl Sync {
    /// The mappings in force for this portal and type: the portal's own, else the file's.
    pub async fn mapping(&self) -> StoreResult<MappingSet> {
        let t = self.object_type();
        if let Some(own) = self.mappings.get(self.state.portal(), t).await? {
            return Ok(MappingSet::new(t, own));
        }
        Ok(self
            .defaults
            .iter()
            .find(|m| m.object_type == Some(t))
            .cloned()
            .unwrap_or_else(|| MappingSet::new(t, Vec::new())))
    }

    /// [`prepared`](Self::prepared), and for deals the portal's currencies (amounts are
    /// normalized to the company currency); a portal whose app may not read its currency
    /// settings (403) syncs without.
    pub async fn prepared_with(
        &self,
        client: &crate::hubspot::HubSpotClient,
    ) -> Result<Self, super::SyncError> {
        let mut this = self.prepared().await?;
        if this.object_type() == crate::domain::object::ObjectType::Deals {
            this.rates = Arc::new(match client.currency_rates().await {
                Ok(rates) => Some(rates),
                Err(crate::hubspot::HubSpotError::Api {
                    status: 403 | 404, ..
                }) => None,
                Err(e) => return Err(e.into()),
            });
        }
        Ok(this)
    }

    /// This sync with its portal's types and mappings loaded (what reads and stores use).
    pub async fn prepared(&self) -> StoreResult<Self> {
        let this = self.with_portal_types().await?;
        Ok(Self {
            mapping: Arc::new(this.mapping().await?),
            ..this
        })
    }

    /// Sets this portal's mappings of this type and makes the next run list every record again
    /// (their fields are computed anew). Returns whether the relisting is set (not while a run
    /// is going).
    pub async fn set_mappings(&self, mappings: &[Mapping]) -> StoreResult<bool> {
        self.mappings
            .put(self.state.portal(), self.object_type(), mappings)
            .await?;
        self.state.relist().await
    }
}
