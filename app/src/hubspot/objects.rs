//! HubSpot's CRM endpoints generic over object type: the paged listing, search, and the
//! associations v4 batch read. Property lists are sent in chunks HubSpot accepts: a listing
//! names at most [`PROPERTIES_PER_GET`] properties in its URL (HubSpot answers 414 to long
//! ones), so a type read with more is read once per chunk and the pages are merged.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::{Bucket, HubSpotClient, HubSpotError};
use crate::domain::currency::Rates;
use crate::domain::mapping::Definition;
use crate::domain::object::{id_text, Edge, ObjectType};

/// Properties named in one GET: their names stay well under HubSpot's URL limit (~8 KB at
/// 100 names of up to 60 characters).
pub const PROPERTIES_PER_GET: usize = 100;
/// Inputs of one associations v4 batch read.
pub const ASSOCIATION_INPUTS: usize = 1_000;

/// One page of records and the cursor of the next (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub results: Vec<Value>,
    pub next: Option<String>,
}

impl HubSpotClient {
    /// `GET …/{type}?limit=100&after=…&properties=…`: one page of the full listing (or of the
    /// archived records), with `properties` read in chunks of [`PROPERTIES_PER_GET`].
    pub async fn list_objects(
        &self,
        object_type: ObjectType,
        properties: &[&str],
        after: Option<&str>,
        archived: bool,
    ) -> Result<Page, HubSpotError> {
        let path = self.paths.objects(object_type.as_str());
        let mut merged: Option<Page> = None;
        let chunks: Vec<&[&str]> = if properties.is_empty() {
            vec![&[]]
        } else {
            properties.chunks(PROPERTIES_PER_GET).collect()
        };
        for chunk in chunks {
            let names = chunk.join(",");
            let mut query = vec![("limit", "100"), ("properties", names.as_str())];
            if let Some(after) = after {
                query.push(("after", after));
            }
            if archived {
                query.push(("archived", "true"));
            }
            let value = self
                .call(Method::GET, &path, &query, None, Bucket::General, true)
                .await?;
            let page = Page {
                results: value["results"].as_array().cloned().unwrap_or_default(),
                next: value["paging"]["next"]["after"].as_str().map(String::from),
            };
            merged = Some(match merged {
                None => page,
                Some(mut first) => {
                    merge_properties(&mut first.results, page.results);
                    first
                }
            });
        }
        Ok(merged.unwrap_or(Page {
            results: Vec::new(),
            next: None,
        }))
    }

    /// `GET …/{type}/{key}[?idProperty=…]` reading `properties`; `None` for HubSpot's 404
    /// (archived, merged away, or never existed).
    pub async fn get_object(
        &self,
        object_type: ObjectType,
        key: &str,
        id_property: Option<&str>,
        properties: &[&str],
    ) -> Result<Option<Value>, HubSpotError> {
        let path = self.paths.object(object_type.as_str(), key);
        let names = properties.join(",");
        let mut query = vec![("properties", names.as_str())];
        if let Some(p) = id_property {
            query.push(("idProperty", p));
        }
        match self
            .call(Method::GET, &path, &query, None, Bucket::General, true)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(HubSpotError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The portal's property definitions of a type (HubSpot's properties API), by name.
    pub async fn property_definitions(
        &self,
        object_type: ObjectType,
    ) -> Result<std::collections::BTreeMap<String, Definition>, HubSpotError> {
        let value = self
            .call(
                Method::GET,
                &self.paths.properties(object_type.as_str()),
                &[],
                None,
                Bucket::General,
                true,
            )
            .await?;
        Ok(value["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    d["name"].as_str()?.to_string(),
                    Definition {
                        kind: d["type"].as_str().unwrap_or("string").to_string(),
                        read_only: d["modificationMetadata"]["readOnlyValue"]
                            .as_bool()
                            .unwrap_or(false),
                        options: d["options"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|o| o["value"].as_str().map(str::to_string))
                            .collect(),
                    },
                ))
            })
            .collect())
    }

    /// `POST …/{type}/batch/update` (≤ 100 inputs by id; setting values is idempotent, so it is
    /// retried like a read). Each input's outcome in order: `Err` with HubSpot's message for one
    /// it refused.
    pub async fn update_objects(
        &self,
        object_type: ObjectType,
        inputs: &[(String, std::collections::BTreeMap<String, String>)],
    ) -> Result<Vec<Result<(), String>>, HubSpotError> {
        assert!(
            inputs.len() <= 100,
            "HubSpot takes at most 100 inputs per batch"
        );
        let body = json!({"inputs": inputs
            .iter()
            .map(|(id, properties)| json!({"id": id, "properties": properties}))
            .collect::<Vec<_>>()});
        let value = self
            .call(
                Method::POST,
                &self.paths.batch(object_type.as_str(), "update"),
                &[],
                Some(&body),
                Bucket::General,
                true,
            )
            .await?;
        let mut refused: HashMap<String, String> = HashMap::new();
        for e in value["errors"].as_array().into_iter().flatten() {
            let message = e["message"].as_str().unwrap_or("refused by HubSpot");
            for id in e["context"]["id"]
                .as_array()
                .or(e["context"]["ids"].as_array())
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                refused.insert(id.to_string(), message.to_string());
            }
        }
        Ok(inputs
            .iter()
            .map(|(id, _)| refused.remove(id).map_or(Ok(()), Err))
            .collect())
    }

    /// The portal's company currency and the exchange rates in force (multi-currency settings).
    pub async fn currency_rates(&self) -> Result<Rates, HubSpotError> {
        let company = self
            .call(
                Method::GET,
                &self.paths.currencies("company-currency"),
                &[],
                None,
                Bucket::General,
                true,
            )
            .await?;
        let current = self
            .call(
                Method::GET,
                &self.paths.currencies("exchange-rates/current"),
                &[],
                None,
                Bucket::General,
                true,
            )
            .await?;
        Ok(Rates {
            company: company["currencyCode"]
                .as_str()
                .unwrap_or("USD")
                .to_string(),
            to_company: current["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some((
                        r["fromCurrencyCode"].as_str()?.to_string(),
                        r["conversionRate"].as_f64()?,
                    ))
                })
                .collect(),
        })
    }

    /// `POST …/{type}/search`, held to the search budget (5/s).
    pub async fn search_objects(
        &self,
        object_type: ObjectType,
        request: &Value,
    ) -> Result<Value, HubSpotError> {
        self.call(
            Method::POST,
            &self.paths.search(object_type.as_str()),
            &[],
            Some(request),
            Bucket::Search,
            true,
        )
        .await
    }

    /// The associations from each of `ids` to `to` (associations v4 batch read, 1,000 inputs a
    /// call, following each input's own paging). Ids with no association have none in the
    /// answer (HubSpot reports them as per-input errors, which are not failures).
    pub async fn read_associations(
        &self,
        from: ObjectType,
        to: ObjectType,
        ids: &[String],
    ) -> Result<Vec<Edge>, HubSpotError> {
        let path = self
            .paths
            .associations(from.as_str(), to.as_str(), "batch/read");
        let mut edges = Vec::new();
        let mut pending: Vec<(String, Option<String>)> =
            ids.iter().map(|id| (id.clone(), None)).collect();
        while !pending.is_empty() {
            let batch: Vec<_> = pending
                .drain(..pending.len().min(ASSOCIATION_INPUTS))
                .collect();
            let inputs: Vec<Value> = batch
                .iter()
                .map(|(id, after)| match after {
                    Some(a) => json!({"id": id, "after": a}),
                    None => json!({"id": id}),
                })
                .collect();
            let value = self
                .call(
                    Method::POST,
                    &path,
                    &[],
                    Some(&json!({ "inputs": inputs })),
                    Bucket::General,
                    true,
                )
                .await?;
            for result in value["results"].as_array().into_iter().flatten() {
                let from_id = id_text(&result["from"]["id"]).ok_or_else(|| {
                    HubSpotError::Decode(format!("association result without from.id: {result}"))
                })?;
                for target in result["to"].as_array().into_iter().flatten() {
                    let to_id = id_text(&target["toObjectId"]).ok_or_else(|| {
                        HubSpotError::Decode(format!("association without toObjectId: {target}"))
                    })?;
                    for t in target["associationTypes"].as_array().into_iter().flatten() {
                        edges.push(Edge {
                            from_type: from,
                            from_id: from_id.clone(),
                            to_type: to,
                            to_id: to_id.clone(),
                            category: t["category"].as_str().unwrap_or("HUBSPOT_DEFINED").into(),
                            type_id: t["typeId"].as_i64().unwrap_or_default(),
                            label: t["label"].as_str().map(String::from),
                        });
                    }
                }
                if let Some(after) = result["paging"]["next"]["after"].as_str() {
                    pending.push((from_id, Some(after.to_string())));
                }
            }
        }
        Ok(edges)
    }
}

/// Adds the properties of `more` (the same records, another chunk of properties) to `into`.
fn merge_properties(into: &mut [Value], more: Vec<Value>) {
    let mut by_id: HashMap<String, Value> = more
        .into_iter()
        .filter_map(|r| Some((r["id"].as_str()?.to_string(), r)))
        .collect();
    for record in into {
        let Some(other) = record["id"].as_str().and_then(|id| by_id.remove(id)) else {
            continue;
        };
        if let (Some(props), Some(extra)) = (
            record["properties"].as_object_mut(),
            other["properties"].as_object(),
        ) {
            for (k, v) in extra {
                props.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_a_page_merge_by_record() {
        let mut first = vec![json!({"id": "1", "properties": {"a": "x"}})];
        merge_properties(
            &mut first,
            vec![json!({"id": "1", "properties": {"b": "y", "a": "ignored"}})],
        );
        assert_eq!(first[0]["properties"], json!({"a": "x", "b": "y"}));
    }
}
