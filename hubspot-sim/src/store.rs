//! The in-memory object store: one table per object type, a unique index (contacts' email),
//! and a search index that lags behind writes by a configurable delay.
//!
//! Architecture invariant: every write goes through [`Table::create`], [`Table::update`],
//! [`Table::archive`] or [`Table::seed`], each of which validates input, keeps the unique index
//! and the search index in step, and reports what changed as [`Change`]s (the webhook feed).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::error::{ApiError, PropertyProblem};
use crate::model::{now_ms, ObjectSchema, Record, READ_ONLY};

/// What a write did, for webhook subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    PropertyChanged {
        name: String,
        value: String,
    },
    Deleted,
    /// Came back from the recycle bin.
    Restored,
    /// `merged` were merged into this record.
    Merged {
        merged: Vec<u64>,
    },
    /// An association type added to or removed from an edge of this record.
    Association(crate::associations::EdgeChange),
    /// Deleted for good at the person's request (GDPR): not in the recycle bin.
    PrivacyDeleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The portal whose record changed; its webhook event carries it as `portalId`.
    pub portal_id: u64,
    pub object_type: &'static str,
    pub singular: &'static str,
    pub object_id: u64,
    pub occurred_ms: i64,
    pub kind: ChangeKind,
}

/// How a write or read names its record: by id, or by the value of the unique property.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Id(&'a str),
    /// A value of the type's built-in unique property (contacts' email).
    Unique(&'a str),
    /// A value of a custom property created with `hasUniqueValue`.
    UniqueIn {
        property: &'a str,
        value: &'a str,
    },
}

impl<'a> Key<'a> {
    /// Resolves `?idProperty=` against the schema: absent or `hs_object_id` means an id, the
    /// type's unique property means a unique value, anything else is HubSpot's 400.
    pub fn from_id_property(
        schema: &ObjectSchema,
        value: &'a str,
        id_property: Option<&'a str>,
    ) -> Result<Self, ApiError> {
        match id_property {
            None | Some("") | Some("hs_object_id") => Ok(Key::Id(value)),
            Some(p) if Some(p) == schema.unique_property => Ok(Key::Unique(value)),
            Some(p) if schema.custom.get(p).is_some_and(|c| c.unique) => {
                Ok(Key::UniqueIn { property: p, value })
            }
            Some(p) if schema.knows(p) => Err(ApiError::validation(format!(
                "{p} is not a unique property and cannot be used as idProperty for {}.",
                schema.name
            ))),
            Some(p) => Err(ApiError::validation(format!(
                "Property \"{p}\" does not exist on {}.",
                schema.name
            ))),
        }
    }
}

/// The search view of a table: what a search sees, `lag` behind the table itself.
#[derive(Debug, Default)]
struct SearchIndex {
    docs: BTreeMap<u64, Record>,
    pending: VecDeque<(Instant, u64, Option<Record>)>,
    lag: Duration,
    /// The type's unique property, and its lower-cased values → id as search sees them.
    unique_property: Option<&'static str>,
    by_unique: HashMap<String, u64>,
}

impl SearchIndex {
    fn write(&mut self, id: u64, doc: Option<Record>) {
        if self.lag.is_zero() {
            self.apply(id, doc);
        } else {
            self.pending.push_back((Instant::now() + self.lag, id, doc));
        }
    }

    fn apply(&mut self, id: u64, doc: Option<Record>) {
        let old = match doc {
            Some(doc) => self.docs.insert(id, doc),
            None => self.docs.remove(&id),
        };
        let Some(p) = self.unique_property else {
            return;
        };
        if let Some(v) = old.as_ref().and_then(|r| r.get(p)) {
            let v = v.to_lowercase();
            if self.by_unique.get(&v) == Some(&id) {
                self.by_unique.remove(&v);
            }
        }
        if let Some(v) = self.docs.get(&id).and_then(|r| r.get(p)) {
            self.by_unique.insert(v.to_lowercase(), id);
        }
    }

    fn catch_up(&mut self) {
        let now = Instant::now();
        while self.pending.front().is_some_and(|(due, _, _)| *due <= now) {
            if let Some((_, id, doc)) = self.pending.pop_front() {
                self.apply(id, doc);
            }
        }
    }
}

/// One object type's records.
#[derive(Debug)]
pub struct Table {
    pub schema: ObjectSchema,
    portal_id: u64,
    records: BTreeMap<u64, Record>,
    archived: BTreeMap<u64, Record>,
    /// Lower-cased unique value → id.
    unique: HashMap<String, u64>,
    /// Per custom property with `hasUniqueValue`: lower-cased value → id.
    custom_unique: HashMap<String, HashMap<String, u64>>,
    next_id: u64,
    index: SearchIndex,
}

/// Checked, string-valued properties of a write.
pub type Properties = BTreeMap<String, String>;

impl Table {
    pub fn new(schema: ObjectSchema, portal_id: u64, id_offset: u64, lag: Duration) -> Self {
        let next_id = schema.first_id + id_offset;
        let unique_property = schema.unique_property;
        Self {
            schema,
            portal_id,
            records: BTreeMap::new(),
            archived: BTreeMap::new(),
            unique: HashMap::new(),
            custom_unique: HashMap::new(),
            next_id,
            index: SearchIndex {
                lag,
                unique_property,
                ..SearchIndex::default()
            },
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Validates a `properties` object from a request body: known, writable names; values
    /// turned into strings the way HubSpot coerces them; a valid email.
    pub fn check_properties(&self, input: &Map<String, Value>) -> Result<Properties, ApiError> {
        let mut out = Properties::new();
        let mut problems = Vec::new();
        for (name, value) in input {
            if READ_ONLY.contains(&name.as_str()) || name == self.schema.last_modified_property {
                problems.push(PropertyProblem {
                    name: name.clone(),
                    code: "READ_ONLY_VALUE",
                    message: format!("{name} is a read only property; its value cannot be set."),
                });
                continue;
            }
            if !self.schema.writable.contains(name) && !self.schema.custom.contains_key(name) {
                problems.push(PropertyProblem {
                    name: name.clone(),
                    code: "PROPERTY_DOESNT_EXIST",
                    message: format!("Property \"{name}\" does not exist"),
                });
                continue;
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    problems.push(PropertyProblem {
                        name: name.clone(),
                        code: "INVALID_OPTION",
                        message: format!("{value} was not a valid value for {name}"),
                    });
                    continue;
                }
            };
            let text = if name == "email" {
                text.trim().to_lowercase()
            } else {
                text
            };
            if name == "email" && !text.is_empty() && !is_valid_email(&text) {
                problems.push(PropertyProblem {
                    name: name.clone(),
                    code: "INVALID_EMAIL",
                    message: format!("Email address {text} is invalid"),
                });
                continue;
            }
            if let Some(problem) = crate::properties::check_value(&self.schema, name, &text) {
                problems.push(problem);
                continue;
            }
            out.insert(name.clone(), text);
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(ApiError::invalid_properties(self.portal_id, &problems))
        }
    }

    /// [`check_properties`](Self::check_properties), then (under `2026-09` and later,
    /// `enforce_required`) [`check_required`](Self::check_required) for a create (`key` is
    /// `None`) or an update of `key`.
    pub fn check_write(
        &self,
        input: &Map<String, Value>,
        key: Option<Key<'_>>,
        enforce_required: bool,
    ) -> Result<Properties, ApiError> {
        let props = self.check_properties(input)?;
        if enforce_required {
            self.check_required(&props, key)?;
        }
        Ok(props)
    }

    /// The portal's required properties (enforced under `2026-09` and later): a create must
    /// set each; an update (of the record `key`) must not clear one.
    pub fn check_required(&self, props: &Properties, key: Option<Key<'_>>) -> Result<(), ApiError> {
        let existing = key.and_then(|k| self.get(k));
        let problems: Vec<PropertyProblem> = self
            .schema
            .required
            .iter()
            .filter(|name| {
                let after = props
                    .get(*name)
                    .map(String::as_str)
                    .or_else(|| existing.and_then(|r| r.get(name)));
                after.is_none_or(str::is_empty)
            })
            .map(|name| PropertyProblem {
                name: name.clone(),
                code: "REQUIRED_FIELD",
                message: format!(
                    "{name} is required on {} by this portal's validation rules (enforced from API version {}).",
                    self.schema.name,
                    crate::model::REQUIRED_FROM
                ),
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_properties(self.portal_id, &problems))
        }
    }

    fn unique_value<'p>(&self, props: &'p Properties) -> Option<&'p str> {
        self.schema
            .unique_property
            .and_then(|p| props.get(p))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Makes `property` (a custom property just created, so held by no record) unique-valued:
    /// usable as `idProperty`, and no two live records may share a value of it.
    pub fn add_unique_property(&mut self, property: &str) {
        self.custom_unique.entry(property.to_string()).or_default();
    }

    /// The custom unique values `props` sets: (property, lower-cased value).
    fn custom_values(&self, props: &Properties) -> Vec<(String, String)> {
        props
            .iter()
            .filter(|(name, value)| !value.is_empty() && self.custom_unique.contains_key(*name))
            .map(|(name, value)| (name.clone(), value.trim().to_lowercase()))
            .collect()
    }

    /// A 409 when a record other than `except` holds a custom unique value `props` sets.
    fn check_custom_unique(&self, props: &Properties, except: Option<u64>) -> Result<(), ApiError> {
        for (property, value) in self.custom_values(props) {
            if let Some(&other) = self.custom_unique[&property].get(&value) {
                if Some(other) != except {
                    return Err(ApiError::conflict_existing(other, self.schema.label));
                }
            }
        }
        Ok(())
    }

    fn index_custom(&mut self, id: u64, props: &Properties) {
        for (property, value) in self.custom_values(props) {
            self.custom_unique
                .entry(property)
                .or_default()
                .insert(value, id);
        }
    }

    fn unindex_custom(&mut self, id: u64, props: &Properties) {
        for (property, value) in self.custom_values(props) {
            if let Some(values) = self.custom_unique.get_mut(&property) {
                if values.get(&value) == Some(&id) {
                    values.remove(&value);
                }
            }
        }
    }

    /// The id of the live record holding `value` in the unique property, if any.
    pub fn find_unique(&self, value: &str) -> Option<u64> {
        self.unique.get(&value.trim().to_lowercase()).copied()
    }

    pub fn resolve(&self, key: Key<'_>) -> Option<u64> {
        match key {
            Key::Id(id) => id
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|id| self.records.contains_key(id)),
            Key::Unique(value) => self.find_unique(value),
            Key::UniqueIn { property, value } => self
                .custom_unique
                .get(property)
                .and_then(|values| values.get(&value.trim().to_lowercase()))
                .copied(),
        }
    }

    pub fn get(&self, key: Key<'_>) -> Option<&Record> {
        self.resolve(key).and_then(|id| self.records.get(&id))
    }

    pub fn get_archived(&self, id: &str) -> Option<&Record> {
        id.trim()
            .parse::<u64>()
            .ok()
            .and_then(|id| self.archived.get(&id))
    }

    /// Creates a record. A duplicate unique value is HubSpot's 409 naming the existing id.
    pub fn create(
        &mut self,
        props: Properties,
        changes: &mut Vec<Change>,
    ) -> Result<Record, ApiError> {
        if let Some(value) = self.unique_value(&props) {
            if let Some(existing) = self.find_unique(value) {
                return Err(ApiError::conflict_existing(existing, self.schema.label));
            }
        }
        self.check_custom_unique(&props, None)?;
        Ok(self.insert_new(props, now_ms(), changes))
    }

    fn insert_new(
        &mut self,
        mut props: Properties,
        at_ms: i64,
        changes: &mut Vec<Change>,
    ) -> Record {
        props.retain(|_, v| !v.is_empty());
        let id = self.next_id;
        self.next_id += 1;
        let stamp = crate::model::format_ms(at_ms);
        props.insert("hs_object_id".into(), id.to_string());
        props.insert("createdate".into(), stamp.clone());
        props.insert(self.schema.last_modified_property.into(), stamp);
        let record = Record {
            id,
            properties: props,
            created_ms: at_ms,
            updated_ms: at_ms,
            archived_ms: None,
        };
        if let Some(value) = self.unique_value(&record.properties) {
            self.unique.insert(value.to_lowercase(), id);
        }
        self.index_custom(id, &record.properties);
        self.records.insert(id, record.clone());
        self.index.write(id, Some(record.clone()));
        changes.push(self.change(id, at_ms, ChangeKind::Created));
        record
    }

    /// Updates the record `key` names. Setting the unique property to a value another record
    /// holds is a 409; an empty string clears a property.
    pub fn update(
        &mut self,
        key: Key<'_>,
        props: Properties,
        changes: &mut Vec<Change>,
    ) -> Result<Record, ApiError> {
        let id = self
            .resolve(key)
            .ok_or_else(|| ApiError::object_not_found(key_text(key)))?;
        if let Some(value) = self.unique_value(&props) {
            if let Some(other) = self.find_unique(value).filter(|other| *other != id) {
                return Err(ApiError::conflict_existing(other, self.schema.label));
            }
        }
        self.check_custom_unique(&props, Some(id))?;
        let before = self.records[&id].properties.clone();
        self.unindex_custom(id, &before);
        let at_ms = now_ms().max(self.records[&id].updated_ms);
        let unique_property = self.schema.unique_property;
        let last_modified = self.schema.last_modified_property;
        let mut changed = Vec::new();
        let record = self.records.get_mut(&id).expect("resolved id exists");
        for (name, value) in props {
            let old = record.properties.get(&name).cloned().unwrap_or_default();
            if old == value {
                continue;
            }
            if Some(name.as_str()) == unique_property {
                if !old.is_empty() {
                    self.unique.remove(&old.to_lowercase());
                }
                if !value.is_empty() {
                    self.unique.insert(value.to_lowercase(), id);
                }
            }
            if value.is_empty() {
                record.properties.remove(&name);
            } else {
                record.properties.insert(name.clone(), value.clone());
            }
            changed.push(ChangeKind::PropertyChanged { name, value });
        }
        record.updated_ms = at_ms;
        record
            .properties
            .insert(last_modified.into(), crate::model::format_ms(at_ms));
        let record = record.clone();
        self.index_custom(id, &record.properties);
        self.index.write(id, Some(record.clone()));
        for kind in changed {
            changes.push(self.change(id, at_ms, kind));
        }
        Ok(record)
    }

    /// Archives (soft-deletes) a record; archiving a missing one is not an error, as in HubSpot.
    pub fn archive(&mut self, key: Key<'_>, changes: &mut Vec<Change>) -> bool {
        let Some(id) = self.resolve(key) else {
            return false;
        };
        let Some(mut record) = self.records.remove(&id) else {
            return false;
        };
        if let Some(value) = self.unique_value(&record.properties) {
            let value = value.to_lowercase();
            self.unique.remove(&value);
        }
        self.unindex_custom(id, &record.properties);
        let at_ms = now_ms();
        record.archived_ms = Some(at_ms);
        self.archived.insert(id, record);
        self.index.write(id, None);
        changes.push(self.change(id, at_ms, ChangeKind::Deleted));
        true
    }

    /// Deletes a live record for good (HubSpot's GDPR delete): gone from the table, the unique
    /// indexes and search, never in the recycle bin. Returns its id, `None` when not found.
    pub fn gdpr_delete(&mut self, key: Key<'_>, changes: &mut Vec<Change>) -> Option<u64> {
        let id = self.resolve(key)?;
        let record = self.records.remove(&id)?;
        if let Some(value) = self.unique_value(&record.properties) {
            self.unique.remove(&value.to_lowercase());
        }
        self.unindex_custom(id, &record.properties);
        self.index.write(id, None);
        changes.push(self.change(id, now_ms(), ChangeKind::PrivacyDeleted));
        Some(id)
    }

    /// Brings an archived record back (HubSpot's recycle bin), its unique value included when
    /// no live record took it meanwhile (a 409 otherwise).
    pub fn restore(&mut self, id: &str, changes: &mut Vec<Change>) -> Result<Record, ApiError> {
        let id: u64 = id.parse().map_err(|_| ApiError::object_not_found(id))?;
        let Some(record) = self.archived.get(&id) else {
            return Err(ApiError::object_not_found(&id.to_string()));
        };
        if let Some(value) = self.unique_value(&record.properties) {
            if let Some(other) = self.find_unique(value) {
                return Err(ApiError::conflict_existing(other, self.schema.label));
            }
        }
        self.check_custom_unique(&record.properties, None)?;
        let mut record = self.archived.remove(&id).expect("checked above");
        if let Some(value) = self.unique_value(&record.properties) {
            self.unique.insert(value.to_lowercase(), id);
        }
        self.index_custom(id, &record.properties);
        let at_ms = now_ms().max(record.updated_ms);
        record.archived_ms = None;
        record.updated_ms = at_ms;
        record.properties.insert(
            self.schema.last_modified_property.into(),
            crate::model::format_ms(at_ms),
        );
        self.records.insert(id, record.clone());
        self.index.write(id, Some(record.clone()));
        changes.push(self.change(id, at_ms, ChangeKind::Restored));
        Ok(record)
    }

    /// Merges `other` into `primary` (HubSpot's merge): `other` is archived, the primary keeps
    /// its own values, fills the properties it lacks from `other`, and lists the merged ids in
    /// `hs_merged_object_ids`.
    pub fn merge(
        &mut self,
        primary: &str,
        other: &str,
        changes: &mut Vec<Change>,
    ) -> Result<Record, ApiError> {
        let primary_id = self
            .resolve(Key::Id(primary))
            .ok_or_else(|| ApiError::object_not_found(primary))?;
        let other_id = self
            .resolve(Key::Id(other))
            .ok_or_else(|| ApiError::object_not_found(other))?;
        if primary_id == other_id {
            return Err(ApiError::validation(
                "primaryObjectId and objectIdToMerge must name two different records.",
            ));
        }
        let taken = self.records[&other_id].properties.clone();
        let mut ignored = Vec::new();
        self.archive(Key::Id(other), &mut ignored);
        let at_ms = now_ms().max(self.records[&primary_id].updated_ms);
        let unique_property = self.schema.unique_property;
        let last_modified = self.schema.last_modified_property;
        let record = self
            .records
            .get_mut(&primary_id)
            .expect("resolved id exists");
        let custom_unique: Vec<String> = self.custom_unique.keys().cloned().collect();
        for (name, value) in taken {
            if Some(name.as_str()) != unique_property
                && !custom_unique.contains(&name)
                && !READ_ONLY.contains(&name.as_str())
                && name != last_modified
                && name != "hs_merged_object_ids"
            {
                record.properties.entry(name).or_insert(value);
            }
        }
        let mut merged: Vec<u64> = record
            .get("hs_merged_object_ids")
            .map(|v| v.split(';').filter_map(|i| i.parse().ok()).collect())
            .unwrap_or_default();
        merged.push(other_id);
        record.properties.insert(
            "hs_merged_object_ids".into(),
            merged
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(";"),
        );
        record.updated_ms = at_ms;
        record
            .properties
            .insert(last_modified.into(), crate::model::format_ms(at_ms));
        let record = record.clone();
        self.index.write(primary_id, Some(record.clone()));
        changes.push(self.change(
            primary_id,
            at_ms,
            ChangeKind::Merged {
                merged: vec![other_id],
            },
        ));
        Ok(record)
    }

    /// Bulk-inserts records for tests and benchmarks, all stamped `at_ms`, visible to search at
    /// once and announced to nobody. Records whose unique value is taken are skipped.
    pub fn seed(&mut self, rows: Vec<Properties>, at_ms: i64) -> Vec<u64> {
        let mut ids = Vec::with_capacity(rows.len());
        let mut sink = Vec::new();
        for props in rows {
            if self
                .unique_value(&props)
                .is_some_and(|v| self.find_unique(v).is_some())
                || self.check_custom_unique(&props, None).is_err()
            {
                continue;
            }
            let record = self.insert_new(props, at_ms, &mut sink);
            self.index.apply(record.id, Some(record.clone()));
            ids.push(record.id);
        }
        ids
    }

    /// Live records in id order from id `after` on (the cursor is the next page's first id);
    /// returns the page and the next cursor.
    pub fn page(&self, after: u64, limit: usize) -> (Vec<&Record>, Option<u64>) {
        let mut iter = self.records.range(after..).map(|(_, r)| r);
        let page: Vec<&Record> = iter.by_ref().take(limit).collect();
        let next = iter.next().map(|r| r.id);
        (page, next)
    }

    pub fn archived_page(&self, after: u64, limit: usize) -> (Vec<&Record>, Option<u64>) {
        let mut iter = self.archived.range(after..).map(|(_, r)| r);
        let page: Vec<&Record> = iter.by_ref().take(limit).collect();
        let next = iter.next().map(|r| r.id);
        (page, next)
    }

    /// Runs a search over what search sees now: the index with every write older than the
    /// lag applied.
    ///
    /// A search that pins the unique property in every filter group (EQ or IN on email, the
    /// everyday "find by email") reads only the named records through the index; any other
    /// search scans. Both give the same answer.
    pub fn search(&mut self, plan: &crate::search::Plan) -> Value {
        self.index.catch_up();
        let index = &self.index;
        match self
            .schema
            .unique_property
            .and_then(|p| plan.pinned_values(p))
        {
            Some(values) => {
                let ids: std::collections::BTreeSet<u64> = values
                    .iter()
                    .filter_map(|v| index.by_unique.get(v).copied())
                    .collect();
                plan.run(&self.schema, ids.iter().filter_map(|id| index.docs.get(id)))
            }
            None => plan.run(&self.schema, index.docs.values()),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    fn change(&self, object_id: u64, occurred_ms: i64, kind: ChangeKind) -> Change {
        Change {
            portal_id: self.portal_id,
            object_type: self.schema.name,
            singular: self.schema.singular,
            object_id,
            occurred_ms,
            kind,
        }
    }
}

fn key_text(key: Key<'_>) -> &str {
    match key {
        Key::Id(s) | Key::Unique(s) | Key::UniqueIn { value: s, .. } => s,
    }
}

/// HubSpot's check is lenient but rejects what is plainly not an address.
pub fn is_valid_email(email: &str) -> bool {
    email.parse::<email_address::EmailAddress>().is_ok()
        && email
            .rsplit_once('@')
            .is_some_and(|(_, domain)| domain.contains('.'))
}

/// Every table, by URL name.
#[derive(Debug)]
pub struct Store {
    tables: BTreeMap<&'static str, Table>,
    /// The portal's association types and edges.
    pub associations: crate::associations::Associations,
    /// The portal's company currency and exchange rates.
    pub currencies: crate::currencies::Currencies,
    /// The portal's custom event definitions and occurrences.
    pub events: crate::events::Events,
}

impl Store {
    pub fn new(
        portal_id: u64,
        id_offset: u64,
        lag: Duration,
        extra_properties: &[(String, String)],
    ) -> Self {
        let tables = ObjectSchema::all()
            .into_iter()
            .map(|mut schema| {
                for (object_type, name) in extra_properties {
                    if object_type == schema.name {
                        schema.writable.insert(name.clone());
                    }
                }
                (schema.name, Table::new(schema, portal_id, id_offset, lag))
            })
            .collect();
        Self {
            tables,
            associations: Default::default(),
            currencies: Default::default(),
            events: Default::default(),
        }
    }

    pub fn table(&mut self, object_type: &str) -> Result<&mut Table, ApiError> {
        self.tables
            .get_mut(object_type)
            .ok_or_else(|| ApiError::unknown_object_type(object_type))
    }

    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contacts(lag: Duration) -> Table {
        let schema = ObjectSchema::all().into_iter().next().unwrap();
        Table::new(schema, 1, 0, lag)
    }

    fn props(table: &Table, value: Value) -> Properties {
        table.check_properties(value.as_object().unwrap()).unwrap()
    }

    #[test]
    fn unique_email_is_case_insensitive() {
        let mut t = contacts(Duration::ZERO);
        let mut changes = Vec::new();
        let first = t
            .create(props(&t, json!({"email": "Ann@Example.com"})), &mut changes)
            .unwrap();
        let err = t
            .create(props(&t, json!({"email": "ann@EXAMPLE.com"})), &mut changes)
            .unwrap_err();
        assert_eq!(err.status, 409);
        assert_eq!(
            err.message(),
            format!("Contact already exists. Existing ID: {}", first.id)
        );
        assert_eq!(t.get(Key::Unique("ANN@example.COM")).unwrap().id, first.id);
    }

    #[test]
    fn property_values_are_coerced_to_strings_and_checked() {
        let t = contacts(Duration::ZERO);
        let p = props(
            &t,
            json!({"email": "a@b.co", "numemployees": 12, "message": true}),
        );
        assert_eq!(p["numemployees"], "12");
        assert_eq!(p["message"], "true");
        let err = t
            .check_properties(
                json!({"email": "nope", "favorite": "x", "hs_object_id": "1"})
                    .as_object()
                    .unwrap(),
            )
            .unwrap_err();
        assert_eq!(err.category(), "VALIDATION_ERROR");
        let msg = err.message();
        assert!(msg.starts_with("Property values were not valid: "), "{msg}");
        assert!(
            msg.contains("INVALID_EMAIL")
                && msg.contains("PROPERTY_DOESNT_EXIST")
                && msg.contains("READ_ONLY_VALUE"),
            "{msg}"
        );
    }

    #[test]
    fn updates_report_only_changed_properties_and_move_the_unique_index() {
        let mut t = contacts(Duration::ZERO);
        let mut changes = Vec::new();
        let r = t
            .create(
                props(&t, json!({"email": "a@b.co", "firstname": "A"})),
                &mut changes,
            )
            .unwrap();
        changes.clear();
        t.update(
            Key::Id(&r.id.to_string()),
            props(&t, json!({"email": "c@d.co", "firstname": "A"})),
            &mut changes,
        )
        .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].kind,
            ChangeKind::PropertyChanged {
                name: "email".into(),
                value: "c@d.co".into()
            }
        );
        assert!(t.get(Key::Unique("a@b.co")).is_none());
        assert_eq!(t.get(Key::Unique("c@d.co")).unwrap().id, r.id);
    }

    #[test]
    fn search_sees_writes_only_after_the_lag() {
        let mut t = contacts(Duration::from_millis(80));
        let mut changes = Vec::new();
        t.create(props(&t, json!({"email": "lag@b.co"})), &mut changes)
            .unwrap();
        let plan = crate::search::Plan::new(
            Default::default(),
            &t.schema,
            crate::config::SearchLimits::Strict,
        )
        .unwrap();
        assert_eq!(t.search(&plan)["total"], 0);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(t.search(&plan)["total"], 1);
    }

    #[test]
    fn indexed_email_search_agrees_with_a_full_scan() {
        let mut t = contacts(Duration::ZERO);
        let mut changes = Vec::new();
        let a = t
            .create(props(&t, json!({"email": "a@x.co"})), &mut changes)
            .unwrap();
        let b = t
            .create(props(&t, json!({"email": "b@x.co"})), &mut changes)
            .unwrap();
        t.update(
            Key::Id(&a.id.to_string()),
            props(&t, json!({"email": "moved@x.co"})),
            &mut changes,
        )
        .unwrap();
        t.archive(Key::Id(&b.id.to_string()), &mut changes);
        t.create(
            props(&t, json!({"email": "b@x.co", "firstname": "Again"})),
            &mut changes,
        )
        .unwrap();
        let schema = t.schema.clone();
        let plan = |filter: Value| {
            let req =
                serde_json::from_value(json!({"filterGroups": [{"filters": [filter]}]})).unwrap();
            crate::search::Plan::new(req, &schema, crate::config::SearchLimits::Strict).unwrap()
        };
        for email in ["a@x.co", "moved@x.co", "B@X.CO", "nobody@x.co"] {
            let indexed = plan(json!({"propertyName": "email", "operator": "EQ", "value": email}));
            assert!(indexed.pinned_values("email").is_some());
            // CONTAINS_TOKEN on the whole address matches the same records, by scanning.
            let scanned = plan(
                json!({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": email}),
            );
            assert!(scanned.pinned_values("email").is_none());
            let (i, s) = (t.search(&indexed), t.search(&scanned));
            assert_eq!(i["results"], s["results"], "{email}");
        }
        let again = plan(
            json!({"propertyName": "email", "operator": "IN", "values": ["b@x.co", "moved@x.co"]}),
        );
        assert_eq!(t.search(&again)["total"], 2);
    }

    #[test]
    fn archive_frees_the_unique_value() {
        let mut t = contacts(Duration::ZERO);
        let mut changes = Vec::new();
        let r = t
            .create(props(&t, json!({"email": "a@b.co"})), &mut changes)
            .unwrap();
        assert!(t.archive(Key::Id(&r.id.to_string()), &mut changes));
        assert!(t.get_archived(&r.id.to_string()).is_some());
        assert!(t
            .create(props(&t, json!({"email": "a@b.co"})), &mut changes)
            .is_ok());
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.kind == ChangeKind::Deleted)
                .count(),
            1
        );
    }
}
