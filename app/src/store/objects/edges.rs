//! The associations half of [`Objects`](super::Objects): which records' edges are due, replacing
//! a batch of records' edges with what HubSpot returned, reading a record's edges from either
//! side, and merges (edges re-pointed to the survivor).

use sqlx::Row;

use super::super::{portal_key, StoreError, StoreResult};
use super::Objects;
use crate::domain::object::{Edge, ObjectType};
use crate::domain::portal::PortalId;

impl Objects {
    /// Up to `limit` records of the type whose associations are due to be read.
    pub async fn edges_due(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT hubspot_id FROM crm_objects
             WHERE portal_key = $1 AND object_type = $2 AND edges_due = 1 AND archived_at IS NULL
             ORDER BY hubspot_id LIMIT $3",
        )
        .bind(portal_key(portal))
        .bind(object_type.as_str())
        .bind(limit as i64)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(|r| r.get("hubspot_id")).collect())
    }

    /// Replaces the edges from `ids` (of `from_type`) to each of `targets` with `edges` (as
    /// just read from HubSpot), and clears the records' marks; one transaction.
    pub async fn replace_edges(
        &self,
        portal: Option<PortalId>,
        from_type: ObjectType,
        ids: &[String],
        targets: &[ObjectType],
        edges: &[Edge],
    ) -> StoreResult<()> {
        let key = portal_key(portal);
        let mut w = self.db.write().await?;
        for id in ids {
            for target in targets {
                sqlx::query(
                    "DELETE FROM crm_associations
                     WHERE portal_key = $1 AND from_type = $2 AND from_id = $3 AND to_type = $4",
                )
                .bind(key)
                .bind(from_type.as_str())
                .bind(id)
                .bind(target.as_str())
                .execute(&mut *w.tx)
                .await?;
            }
            sqlx::query(
                "UPDATE crm_objects SET edges_due = 0
                 WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3",
            )
            .bind(key)
            .bind(from_type.as_str())
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        }
        for e in edges {
            insert_edge(&mut w, key, e).await?;
        }
        w.commit().await
    }

    /// Every edge of a record, whichever side read it: edges read from the other side come
    /// back turned round (`from` is always this record).
    pub async fn associations(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        id: &str,
    ) -> StoreResult<Vec<Edge>> {
        let rows = sqlx::query(
            "SELECT from_type, from_id, to_type, to_id, category, type_id, label FROM crm_associations
             WHERE portal_key = $1 AND ((from_type = $2 AND from_id = $3) OR (to_type = $2 AND to_id = $3))
             ORDER BY to_type, to_id, type_id",
        )
        .bind(portal_key(portal))
        .bind(object_type.as_str())
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let edge = edge_of(r)?;
                Ok(if edge.from_type == object_type && edge.from_id == id {
                    edge
                } else {
                    Edge {
                        from_type: edge.to_type,
                        from_id: edge.to_id,
                        to_type: edge.from_type,
                        to_id: edge.from_id,
                        ..edge
                    }
                })
            })
            .collect()
    }

    /// `merged` were merged into `primary` at HubSpot: their edges become the primary's (an
    /// edge the primary already has is kept once), and they are archived, naming the primary.
    /// The primary is marked for an association read. Idempotent.
    pub async fn merge(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        primary: &str,
        merged: &[String],
    ) -> StoreResult<()> {
        let key = portal_key(portal);
        let t = object_type.as_str();
        let mut w = self.db.write().await?;
        for id in merged {
            for (side, other) in [("from", "to"), ("to", "from")] {
                sqlx::query(&format!(
                    "INSERT INTO crm_associations (portal_key, from_type, from_id, to_type, to_id, category, type_id, label)
                     SELECT portal_key, from_type, {from_id}, to_type, {to_id}, category, type_id, label
                     FROM crm_associations
                     WHERE portal_key = $1 AND {side}_type = $2 AND {side}_id = $3
                       AND NOT ({other}_type = $2 AND {other}_id = $4)
                     ON CONFLICT DO NOTHING",
                    from_id = if side == "from" { "$4" } else { "from_id" },
                    to_id = if side == "to" { "$4" } else { "to_id" },
                ))
                .bind(key)
                .bind(t)
                .bind(id)
                .bind(primary)
                .execute(&mut *w.tx)
                .await?;
            }
            drop_edges(&mut w, key, object_type, id).await?;
            sqlx::query(
                "UPDATE crm_objects SET archived_at = COALESCE(archived_at, $4), merged_into = $5, edges_due = 0
                 WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3",
            )
            .bind(key)
            .bind(t)
            .bind(id)
            .bind(self.db.now_ms())
            .bind(primary)
            .execute(&mut *w.tx)
            .await?;
        }
        sqlx::query(
            "UPDATE crm_objects SET edges_due = 1
             WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3",
        )
        .bind(key)
        .bind(t)
        .bind(primary)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Marks a stored record for an association read (an edge of it changed). Returns whether
    /// the record is stored here.
    pub async fn mark_edges_due(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        id: &str,
    ) -> StoreResult<bool> {
        let mut w = self.db.write().await?;
        let marked = sqlx::query(
            "UPDATE crm_objects SET edges_due = 1
             WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3 AND archived_at IS NULL",
        )
        .bind(portal_key(portal))
        .bind(object_type.as_str())
        .bind(id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(marked > 0)
    }
}

/// Deletes every edge of a record, whichever side it was read from.
pub(super) async fn drop_edges(
    w: &mut super::super::WriteTx,
    key: i64,
    object_type: ObjectType,
    id: &str,
) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM crm_associations WHERE portal_key = $1
           AND ((from_type = $2 AND from_id = $3) OR (to_type = $2 AND to_id = $3))",
    )
    .bind(key)
    .bind(object_type.as_str())
    .bind(id)
    .execute(&mut *w.tx)
    .await?;
    Ok(())
}

async fn insert_edge(w: &mut super::super::WriteTx, key: i64, e: &Edge) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO crm_associations (portal_key, from_type, from_id, to_type, to_id, category, type_id, label)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .bind(e.from_type.as_str())
    .bind(&e.from_id)
    .bind(e.to_type.as_str())
    .bind(&e.to_id)
    .bind(&e.category)
    .bind(e.type_id)
    .bind(&e.label)
    .execute(&mut *w.tx)
    .await?;
    Ok(())
}

fn edge_of(r: &sqlx::any::AnyRow) -> StoreResult<Edge> {
    let parse = |column: &str| {
        r.get::<&str, _>(column)
            .parse::<ObjectType>()
            .map_err(|e| StoreError::Data(e.to_string()))
    };
    Ok(Edge {
        from_type: parse("from_type")?,
        from_id: r.get("from_id"),
        to_type: parse("to_type")?,
        to_id: r.get("to_id"),
        category: r.get("category"),
        type_id: r.get("type_id"),
        label: r.get("label"),
    })
}
