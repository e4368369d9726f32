//! The sync of every type a portal syncs (its own choice, else `SYNC_OBJECTS`): which types,
//! one run of each, and their statuses.

use super::{Status, Sync, SyncError};
use crate::hubspot::HubSpotClient;
use crate::store::StoreResult;

impl Sync {
    /// This portal's sync with the types it chose (`PUT /api/sync/objects`), else the default.
    pub async fn with_portal_types(&self) -> StoreResult<Self> {
        Ok(match self.state.objects().await? {
            Some(types) => Self {
                types,
                ..self.clone()
            },
            None => self.clone(),
        })
    }

    /// Sets the types this portal syncs (`None`: back to `SYNC_OBJECTS`).
    pub async fn set_portal_types(
        &self,
        types: Option<&[crate::domain::object::ObjectType]>,
    ) -> StoreResult<()> {
        self.state.set_objects(types).await
    }

    /// One run of each type the portal syncs, in order; a type that fails does not stop the
    /// others. Returns how many records were stored, or the first failure.
    pub async fn run_all(&self, client: &HubSpotClient) -> Result<usize, SyncError> {
        let this = self.with_portal_types().await?;
        let mut synced = 0;
        let mut first_error = None;
        for &object_type in &this.types {
            match this.for_type(object_type).run(client).await {
                Ok(n) => synced += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(synced), Err)
    }

    /// The status of each synced type, in `SYNC_OBJECTS` order.
    pub async fn statuses(&self) -> StoreResult<Vec<Status>> {
        let this = self.with_portal_types().await?;
        let mut all = Vec::with_capacity(this.types.len());
        for &t in &this.types {
            all.push(this.for_type(t).status().await?);
        }
        Ok(all)
    }
}
