//! The sync's upkeep around the walk: reading the associations of records marked as due, and
//! sweeping HubSpot's archived listing.

use super::{Sync, SyncError};
use crate::domain::object::ObjectType;
use crate::hubspot::objects::ASSOCIATION_INPUTS;
use crate::hubspot::HubSpotClient;

impl Sync {
    /// Reads the associations of the records marked as due, 1,000 at a time, while at least
    /// `at_least` are due (1 at the end of a run: all of them).
    pub async fn read_edges(
        &self,
        client: &HubSpotClient,
        at_least: usize,
    ) -> Result<(), SyncError> {
        let (portal, from) = (self.state.portal(), self.object_type());
        let targets = from.association_targets(&self.types);
        loop {
            let due = self
                .objects
                .edges_due(portal, from, ASSOCIATION_INPUTS)
                .await?;
            if due.is_empty() || due.len() < at_least {
                return Ok(());
            }
            let mut edges = Vec::new();
            for &to in &targets {
                edges.extend(client.read_associations(from, to, &due).await?);
            }
            self.objects
                .replace_edges(portal, from, &due, &targets, &edges)
                .await?;
        }
    }

    /// Pages through HubSpot's archived records of the type (deleted, or merged away, since
    /// any time: the listing is by id, not by when) and archives those stored here. Deletion
    /// webhooks do the same at once; this catches the ones that never arrived. Returns how many
    /// were archived.
    pub(super) async fn sweep_archived(&self, client: &HubSpotClient) -> Result<u64, SyncError> {
        let (portal, object_type) = (self.state.portal(), self.object_type());
        let (mut after, mut archived) = (None::<String>, 0);
        loop {
            let page = client
                .list_objects(object_type, &[], after.as_deref(), true)
                .await?;
            let ids: Vec<String> = page
                .results
                .iter()
                .filter_map(|r| r["id"].as_str().map(String::from))
                .collect();
            if object_type == ObjectType::Contacts {
                for id in &ids {
                    self.cache.remove(portal, id).await?;
                }
            }
            archived += self.objects.archive_all(portal, object_type, &ids).await?;
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(archived),
            }
        }
    }
}
