//! The portal's side of lifecycle delivery: the contact and company properties the app
//! writes (its external id and merchant id ones unique), created where missing before the
//! first live batch; in a dry run, what would be created stands in for them.

use std::collections::BTreeMap;

use super::Delivery;
use crate::domain::lifecycle::config::Fact;
use crate::domain::mapping::Definition;
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;
use crate::hubspot::upsert::NewProperty;
use crate::hubspot::{HubSpotClient, HubSpotError};

/// What the app knows of a portal's schema: its contact and company property definitions (after the
/// app's own were created, when live) and its timeline event definitions.
#[derive(Debug, Clone, Default)]
pub(super) struct Schema {
    pub(super) contacts: BTreeMap<String, Definition>,
    pub(super) companies: BTreeMap<String, Definition>,
    /// `pe{hubId}_` and the event definitions there, once the timeline was used.
    pub(super) events: Option<(String, std::collections::BTreeSet<String>)>,
}

impl Delivery {
    /// The properties the app writes on `object_type`, as they must exist on a portal.
    fn needed(&self, object_type: ObjectType) -> Vec<NewProperty> {
        let c = &self.config;
        let text = |name: &str, label: &str, unique| NewProperty {
            name: name.to_string(),
            label: label.into(),
            kind: "string".into(),
            options: Vec::new(),
            unique,
        };
        if object_type == ObjectType::Companies {
            let mut out = vec![text(&c.merchant_id_property, "Product merchant id", true)];
            if let Some(p) = &c.exclusives_enabled_property {
                out.push(NewProperty {
                    kind: "number".into(),
                    ..text(p, "Exclusives enabled", false)
                });
            }
            return out;
        }
        let mut out = vec![text(&c.external_id_property, "Product user id", true)];
        for fact in Fact::ALL {
            if let Some(name) = c.property(fact) {
                let (kind, options) = fact.kind(c);
                out.push(NewProperty {
                    kind: kind.into(),
                    options,
                    ..text(name, &name.replace('_', " "), false)
                });
            }
        }
        out
    }

    /// One type's definitions: with the app's properties created first when live, or (a dry
    /// run) with them as the app would create them.
    async fn definitions(
        &self,
        object_type: ObjectType,
        client: &HubSpotClient,
    ) -> Result<BTreeMap<String, Definition>, HubSpotError> {
        let mut defs = client.property_definitions(object_type).await?;
        let missing: Vec<NewProperty> = self
            .needed(object_type)
            .into_iter()
            .filter(|p| !defs.contains_key(&p.name))
            .collect();
        if missing.is_empty() {
            return Ok(defs);
        }
        if !self.live {
            for p in missing {
                defs.insert(
                    p.name.clone(),
                    Definition {
                        kind: p.kind,
                        read_only: false,
                        options: p.options,
                    },
                );
            }
            return Ok(defs);
        }
        for p in &missing {
            client.create_property(object_type, p).await?;
            tracing::info!(property = %p.name, object_type = object_type.as_str(), "created a property for lifecycle events");
        }
        client.property_definitions(object_type).await
    }

    /// The portal's schema, read (and completed, when live) once per process.
    pub(super) async fn schema(
        &self,
        portal: Option<PortalId>,
        client: &HubSpotClient,
    ) -> Result<Schema, HubSpotError> {
        if let Some(s) = self.schemas.lock().get(&portal) {
            return Ok(s.clone());
        }
        let schema = Schema {
            contacts: self.definitions(ObjectType::Contacts, client).await?,
            companies: self.definitions(ObjectType::Companies, client).await?,
            events: None,
        };
        self.schemas.lock().insert(portal, schema.clone());
        Ok(schema)
    }
}
