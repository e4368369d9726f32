//! Synced CRM records of every type (`crm_objects`), their associations (`crm_associations`)
//! and their filterable fields (`crm_fields`), per portal. A write never replaces a newer
//! version of a record (webhooks and sync pages arrive out of order). A stored record is marked
//! `edges_due` until its associations are read; the sync reads them for up to 1,000 marked
//! records at a time ([`Objects::edges_due`], [`Objects::replace_edges`]), so a run cut between
//! the two leaves the mark, and the next run reads them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;

use super::{portal_key, Db, StoreError, StoreResult};
use crate::domain::currency::Rates;
use crate::domain::mapping::MappingSet;
use crate::domain::object::ObjectType;

mod edges;
use crate::domain::portal::PortalId;
use edges::drop_edges;

/// A deal's amount in the portal's company currency (a local field).
pub const AMOUNT_IN_COMPANY_CURRENCY: &str = "amount_in_company_currency";
/// The company currency that amount is in.
pub const COMPANY_CURRENCY: &str = "company_currency";

/// One stored record.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredObject {
    /// HubSpot's id of the record.
    pub id: String,
    #[schema(value_type = String)]
    pub object_type: ObjectType,
    /// Its HubSpot properties as last read (values are strings, as HubSpot sends them).
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// The local fields of the portal's mappings: mapped values and calculated ones.
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, String>,
    /// HubSpot's `updatedAt` of the version stored.
    pub updated_at: Option<String>,
    /// When the record was found archived in HubSpot (epoch ms); `null` while it lives.
    pub archived_at: Option<i64>,
    /// The record it was merged into (then `archived_at` is set too).
    pub merged_into: Option<String>,
    /// True until a sync has read this version's associations: `associations` may be stale or
    /// empty until then.
    pub associations_pending: bool,
}

#[derive(Debug, Clone)]
pub struct Objects {
    db: Db,
}

impl Objects {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores HubSpot records of `object_type` (a sync page, or one read), each unless a newer
    /// version is stored; each stored one is marked for an association read. Returns how many
    /// were stored.
    pub async fn put_page(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        records: &[Value],
        mapping: &MappingSet,
        rates: Option<&Rates>,
    ) -> StoreResult<usize> {
        let now = self.db.now_ms();
        let key = portal_key(portal);
        let mut stored = 0;
        let mut w = self.db.write().await?;
        for record in records {
            let Some(id) = record["id"].as_str() else {
                return Err(StoreError::Data(format!(
                    "a {object_type} record without an id"
                )));
            };
            let properties = record["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let updated = record["updatedAt"].as_str().or_else(|| {
                properties
                    .get(object_type.last_modified_property())
                    .and_then(Value::as_str)
            });
            // The app's own values of its app-owned fields win over HubSpot's (ownership).
            let mut fields = mapping.fields(&properties);
            if let (ObjectType::Deals, Some(rates)) = (object_type, rates) {
                let text = |p: &str| properties.get(p).and_then(Value::as_str);
                if let Some(normalized) =
                    text("amount").and_then(|a| rates.normalize(a, text("deal_currency_code")))
                {
                    fields.insert(AMOUNT_IN_COMPANY_CURRENCY.into(), normalized);
                    fields.insert(COMPANY_CURRENCY.into(), rates.company.clone());
                }
            }
            let app: Option<String> = sqlx::query(
                "SELECT app_fields FROM crm_objects
                 WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3",
            )
            .bind(key)
            .bind(object_type.as_str())
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?
            .map(|r| r.get("app_fields"));
            if let Some(app) = app {
                let owned = mapping.app_owned();
                let app: BTreeMap<String, String> = serde_json::from_str(&app)?;
                fields.extend(app.into_iter().filter(|(k, _)| owned.contains(k.as_str())));
            }
            let written = sqlx::query(
                "INSERT INTO crm_objects (portal_key, object_type, hubspot_id, properties, fields, hs_updated_at, archived_at, edges_due, fetched_at)
                 SELECT $1, $2, $3, $4, $7, $5, NULL, 1, $6
                 WHERE NOT EXISTS (SELECT 1 FROM privacy_erased e
                     WHERE e.portal_key = $1 AND e.hubspot_id = $3 AND $2 = 'contacts')
                 ON CONFLICT (portal_key, object_type, hubspot_id) DO UPDATE SET
                     properties = excluded.properties, fields = excluded.fields, hs_updated_at = excluded.hs_updated_at,
                     archived_at = NULL, merged_into = NULL, edges_due = 1, fetched_at = excluded.fetched_at
                 WHERE crm_objects.hs_updated_at IS NULL OR excluded.hs_updated_at IS NULL
                    OR excluded.hs_updated_at >= crm_objects.hs_updated_at",
            )
            .bind(key)
            .bind(object_type.as_str())
            .bind(id)
            .bind(serde_json::to_string(&properties)?)
            .bind(updated)
            .bind(now)
            .bind(serde_json::to_string(&fields)?)
            .execute(&mut *w.tx)
            .await?;
            if written.rows_affected() == 0 {
                continue;
            }
            stored += 1;
            sqlx::query(
                "DELETE FROM crm_fields WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3",
            )
            .bind(key)
            .bind(object_type.as_str())
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
            // Filterable: the raw properties, and the local fields (a field named like a
            // property takes its place).
            let mut filterable: BTreeMap<&str, &str> = properties
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str().filter(|v| !v.is_empty())?)))
                .collect();
            filterable.extend(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for (field, value) in filterable {
                sqlx::query(
                    "INSERT INTO crm_fields (portal_key, object_type, hubspot_id, field, value)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(key)
                .bind(object_type.as_str())
                .bind(id)
                .bind(field)
                .bind(value)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        w.commit().await?;
        Ok(stored)
    }

    /// One record, archived or not.
    pub async fn get(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        id: &str,
    ) -> StoreResult<Option<StoredObject>> {
        let row = sqlx::query(
            "SELECT hubspot_id, properties, fields, hs_updated_at, archived_at, merged_into, edges_due FROM crm_objects
             WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3",
        )
        .bind(portal_key(portal))
        .bind(object_type.as_str())
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| object_of(object_type, &r)).transpose()
    }

    /// A page of live records whose fields equal every `(field, value)` of `filters`, in id
    /// order after `after`.
    pub async fn list(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        filters: &[(String, String)],
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredObject>> {
        let mut sql = String::from(
            "SELECT o.hubspot_id, o.properties, o.fields, o.hs_updated_at, o.archived_at, o.merged_into, o.edges_due FROM crm_objects o
             WHERE o.portal_key = $1 AND o.object_type = $2 AND o.archived_at IS NULL AND o.hubspot_id > $3",
        );
        for i in 0..filters.len() {
            let (f, v) = (4 + 2 * i, 5 + 2 * i);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM crm_fields x WHERE x.portal_key = o.portal_key
                   AND x.object_type = o.object_type AND x.hubspot_id = o.hubspot_id
                   AND x.field = ${f} AND x.value = ${v})"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY o.hubspot_id LIMIT ${}",
            4 + 2 * filters.len()
        ));
        let mut query = sqlx::query(&sql)
            .bind(portal_key(portal))
            .bind(object_type.as_str())
            .bind(after.unwrap_or(""));
        for (field, value) in filters {
            query = query.bind(field).bind(value);
        }
        let rows = query.bind(limit as i64).fetch_all(self.db.pool()).await?;
        rows.iter().map(|r| object_of(object_type, r)).collect()
    }

    /// Marks a record archived (HubSpot no longer has it) and drops its edges, both sides.
    /// Returns whether a live record was archived.
    pub async fn archive(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        id: &str,
    ) -> StoreResult<bool> {
        Ok(self
            .archive_all(portal, object_type, &[id.to_string()])
            .await?
            > 0)
    }

    /// [`archive`](Self::archive) for many records (a page of HubSpot's archived listing), in
    /// one transaction; records not stored here are skipped. Returns how many were archived.
    pub async fn archive_all(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
        ids: &[String],
    ) -> StoreResult<u64> {
        let key = portal_key(portal);
        let now = self.db.now_ms();
        let mut archived = 0;
        let mut w = self.db.write().await?;
        for id in ids {
            let n = sqlx::query(
                "UPDATE crm_objects SET archived_at = $4, edges_due = 0
                 WHERE portal_key = $1 AND object_type = $2 AND hubspot_id = $3 AND archived_at IS NULL",
            )
            .bind(key)
            .bind(object_type.as_str())
            .bind(id)
            .bind(now)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            if n > 0 {
                archived += n;
                drop_edges(&mut w, key, object_type, id).await?;
            }
        }
        w.commit().await?;
        Ok(archived)
    }

    /// How many live records of the type the portal holds.
    pub async fn count(
        &self,
        portal: Option<PortalId>,
        object_type: ObjectType,
    ) -> StoreResult<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM crm_objects
             WHERE portal_key = $1 AND object_type = $2 AND archived_at IS NULL",
        )
        .bind(portal_key(portal))
        .bind(object_type.as_str())
        .fetch_one(self.db.pool())
        .await?
        .get("n"))
    }
}

fn object_of(object_type: ObjectType, r: &sqlx::any::AnyRow) -> StoreResult<StoredObject> {
    Ok(StoredObject {
        id: r.get("hubspot_id"),
        object_type,
        properties: serde_json::from_str(r.get::<&str, _>("properties"))?,
        fields: serde_json::from_str(r.get::<&str, _>("fields"))?,
        updated_at: r.get("hs_updated_at"),
        archived_at: r.get("archived_at"),
        merged_into: r.get("merged_into"),
        associations_pending: r.get::<i64, _>("edges_due") != 0,
    })
}
