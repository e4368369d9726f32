//! `portal_mappings`: each portal's property mappings per object type, as set through the admin
//! API (already checked against the portal's definitions by the caller).

use sqlx::Row;

use super::{portal_key, Db, StoreResult};
use crate::domain::mapping::Mapping;
use crate::domain::object::ObjectType;
use crate::domain::portal::PortalId;

#[derive(Debug, Clone)]
pub struct Mappings {
    db: Db,
}

impl Mappings {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The portal's own mappings of a type; `None` when it has none (the file's apply).
    pub async fn get(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
    ) -> StoreResult<Option<Vec<Mapping>>> {
        let row = sqlx::query(
            "SELECT mappings FROM portal_mappings WHERE portal_key = $1 AND object_type = $2",
        )
        .bind(portal_key(portal))
        .bind(object_type.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| Ok(serde_json::from_str(r.get::<&str, _>("mappings"))?))
            .transpose()
    }

    /// Sets the portal's mappings of a type (replacing them).
    pub async fn put(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        mappings: &[Mapping],
    ) -> StoreResult<()> {
        let mut w = self.db.write().await?;
        sqlx::query(
            "INSERT INTO portal_mappings (portal_key, object_type, mappings, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (portal_key, object_type) DO UPDATE SET mappings = excluded.mappings, updated_at = excluded.updated_at",
        )
        .bind(portal_key(portal))
        .bind(object_type.as_str())
        .bind(serde_json::to_string(mappings)?)
        .bind(self.db.now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }
}
