//! CRM search: request validation, filter evaluation, sorting and paging, as HubSpot does it.
//!
//! Pure code over records; the route layer supplies the (lagging) searchable records.
//! Semantics: filter groups are OR-ed, filters within a group AND-ed; `limit` defaults to 10
//! and may not exceed 200; `after` is a string offset; no more than 10,000 results can be
//! paged through; `total` counts every match.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::SearchLimits;
use crate::error::ApiError;
use crate::model::{parse_datetime_ms, ObjectSchema, Record};

pub const MAX_LIMIT: usize = 200;
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_RESULTS: usize = 10_000;
pub const MAX_QUERY_LEN: usize = 3_000;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    pub filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    pub sorts: Vec<SortSpec>,
    #[serde(default)]
    pub properties: Vec<String>,
    #[serde(default)]
    pub limit: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(default)]
    pub query: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FilterGroup {
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property_name: String,
    pub operator: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub values: Option<Vec<Value>>,
    #[serde(default)]
    pub high_value: Option<Value>,
}

/// Sorts arrive as objects, or (from some clients) as `"createdate"` / `"-createdate"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SortSpec {
    Text(String),
    Object {
        #[serde(rename = "propertyName")]
        property_name: String,
        #[serde(default)]
        direction: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "EQ" => Op::Eq,
            "NEQ" => Op::Neq,
            "LT" => Op::Lt,
            "LTE" => Op::Lte,
            "GT" => Op::Gt,
            "GTE" => Op::Gte,
            "BETWEEN" => Op::Between,
            "IN" => Op::In,
            "NOT_IN" => Op::NotIn,
            "HAS_PROPERTY" => Op::HasProperty,
            "NOT_HAS_PROPERTY" => Op::NotHasProperty,
            "CONTAINS_TOKEN" => Op::ContainsToken,
            "NOT_CONTAINS_TOKEN" => Op::NotContainsToken,
            _ => return None,
        })
    }
}

/// A filter checked against the schema, with its operands typed.
#[derive(Debug)]
struct CheckedFilter {
    property: String,
    op: Op,
    /// Whether the property holds datetimes.
    datetime: bool,
    /// Operands typed once, so evaluating a record allocates nothing.
    value: Option<Typed>,
    values: Vec<Typed>,
    high: Option<Typed>,
    /// Lower-cased token pattern for CONTAINS_TOKEN / NOT_CONTAINS_TOKEN.
    token: String,
}

/// A validated search, ready to run.
#[derive(Debug)]
pub struct Plan {
    groups: Vec<Vec<CheckedFilter>>,
    sort: Option<(String, bool)>,
    properties: Vec<String>,
    limit: usize,
    after: usize,
    query_words: Vec<String>,
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn whole_number(v: &Value, what: &str) -> Result<usize, ApiError> {
    scalar_text(v)
        .and_then(|s| s.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            ApiError::validation(format!(
                "{what} must be a non-negative whole number, got {v}"
            ))
        })
}

impl Plan {
    pub fn new(
        req: SearchRequest,
        schema: &ObjectSchema,
        limits: SearchLimits,
    ) -> Result<Plan, ApiError> {
        let (max_groups, max_per_group, max_total) = limits.bounds();
        if req.filter_groups.len() > max_groups {
            return Err(ApiError::validation(format!(
                "Too many filter groups: {} given, at most {max_groups} allowed.",
                req.filter_groups.len()
            )));
        }
        let total: usize = req.filter_groups.iter().map(|g| g.filters.len()).sum();
        if let Some(g) = req
            .filter_groups
            .iter()
            .find(|g| g.filters.len() > max_per_group)
        {
            return Err(ApiError::validation(format!(
                "Too many filters in a filter group: {} given, at most {max_per_group} allowed per group.",
                g.filters.len()
            )));
        }
        if total > max_total {
            return Err(ApiError::validation(format!(
                "Too many filters: {total} given across all filter groups, at most {max_total} allowed."
            )));
        }
        let mut groups = Vec::with_capacity(req.filter_groups.len());
        for group in req.filter_groups {
            let mut checked = Vec::with_capacity(group.filters.len());
            for f in group.filters {
                checked.push(check_filter(f, schema)?);
            }
            groups.push(checked);
        }

        if req.sorts.len() > 1 {
            return Err(ApiError::validation(
                "Only one sort is supported per search request.",
            ));
        }
        let sort = match req.sorts.into_iter().next() {
            None => None,
            Some(SortSpec::Text(s)) => Some(match s.strip_prefix('-') {
                Some(p) => (p.to_string(), false),
                None => (s, true),
            }),
            Some(SortSpec::Object {
                property_name,
                direction,
            }) => {
                let ascending = match direction.as_deref() {
                    None | Some("ASCENDING") => true,
                    Some("DESCENDING") => false,
                    Some(other) => {
                        return Err(ApiError::validation(format!(
                            "Invalid sort direction '{other}': use ASCENDING or DESCENDING."
                        )))
                    }
                };
                Some((property_name, ascending))
            }
        };
        if let Some((p, _)) = &sort {
            if !schema.knows(p) {
                return Err(ApiError::validation(format!(
                    "Cannot sort on unknown property \"{p}\"."
                )));
            }
        }

        let limit = match &req.limit {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => whole_number(v, "limit")?,
        };
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::validation(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}."
            )));
        }
        let after = match &req.after {
            None | Some(Value::Null) => 0,
            Some(Value::String(s)) if s.is_empty() => 0,
            Some(v) => whole_number(v, "after")?,
        };
        if after >= MAX_RESULTS {
            return Err(ApiError::validation(format!(
                "Search can page through at most {MAX_RESULTS} results; after={after} is past that. Narrow the filters (for example on {}) and search again.",
                schema.last_modified_property
            )));
        }
        let query = req.query.unwrap_or_default();
        if query.chars().count() > MAX_QUERY_LEN {
            return Err(ApiError::validation(format!(
                "query is limited to {MAX_QUERY_LEN} characters."
            )));
        }
        let query_words = query.split_whitespace().map(str::to_lowercase).collect();

        let properties = crate::state::select_properties(&req.properties, schema);
        Ok(Plan {
            groups,
            sort,
            properties,
            limit,
            after,
            query_words,
        })
    }

    /// The lower-cased values of `property` that every filter group pins with EQ or IN, when
    /// each group does: a search that can only match records holding one of them.
    pub fn pinned_values(&self, property: &str) -> Option<Vec<String>> {
        if self.groups.is_empty() {
            return None;
        }
        let mut values = Vec::new();
        for group in &self.groups {
            let pin = group
                .iter()
                .find(|f| f.property == property && matches!(f.op, Op::Eq | Op::In))?;
            let operands = pin.value.iter().chain(&pin.values);
            values.extend(operands.map(|v| match v {
                Typed::Text(s) => s.clone(),
                Typed::Num(n) => n.to_string(),
            }));
        }
        Some(values)
    }

    fn matches(&self, schema: &ObjectSchema, record: &Record) -> bool {
        let filters_ok = self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| g.iter().all(|f| eval(f, record)));
        filters_ok && self.query_matches(schema, record)
    }

    fn query_matches(&self, schema: &ObjectSchema, record: &Record) -> bool {
        self.query_words.iter().all(|word| {
            schema.query_properties.iter().any(|p| {
                record.get(p).is_some_and(|v| {
                    let v = v.to_lowercase();
                    v.starts_with(word.as_str())
                        || tokens(&v).any(|t| t.starts_with(word.as_str()))
                        || (*p == "phone" || *p == "mobilephone")
                            && digits(&v).contains(&digits(word))
                            && !digits(word).is_empty()
                })
            })
        })
    }

    /// Runs the search: `{total, results, paging?}`.
    pub fn run<'a>(
        &self,
        schema: &ObjectSchema,
        records: impl Iterator<Item = &'a Record>,
    ) -> Value {
        let mut hits: Vec<&Record> = records.filter(|r| self.matches(schema, r)).collect();
        if let Some((property, ascending)) = &self.sort {
            let mut keyed: Vec<(Option<Typed>, &Record)> = hits
                .iter()
                .map(|r| (r.get(property).map(|v| typed(schema, property, v)), *r))
                .collect();
            keyed.sort_by(|(a, ra), (b, rb)| {
                let by_value = match (a, b) {
                    (Some(a), Some(b)) => {
                        let o = a.cmp_to(b);
                        if *ascending {
                            o
                        } else {
                            o.reverse()
                        }
                    }
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                by_value.then(ra.id.cmp(&rb.id))
            });
            hits = keyed.into_iter().map(|(_, r)| r).collect();
        }
        let total = hits.len();
        let end = (self.after + self.limit).min(total);
        let start = self.after.min(total);
        let results: Vec<Value> = hits[start..end]
            .iter()
            .map(|r| r.to_json(Some(&self.properties)))
            .collect();
        let mut body = json!({ "total": total, "results": results });
        if end < total {
            body["paging"] = json!({ "next": { "after": end.to_string() } });
        }
        body
    }
}

fn check_filter(f: Filter, schema: &ObjectSchema) -> Result<CheckedFilter, ApiError> {
    let op = Op::parse(&f.operator).ok_or_else(|| {
        ApiError::validation(format!(
            "Unknown filter operator '{}'. Use one of EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN.",
            f.operator
        ))
    })?;
    if !schema.knows(&f.property_name) {
        return Err(ApiError::validation(format!(
            "Property \"{}\" does not exist on {}; it cannot be used in a filter.",
            f.property_name, schema.name
        )));
    }
    let value = f.value.as_ref().and_then(scalar_text);
    let high = f.high_value.as_ref().and_then(scalar_text);
    let values: Vec<String> = f
        .values
        .unwrap_or_default()
        .iter()
        .filter_map(scalar_text)
        .collect();
    let need = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(ApiError::validation(format!(
                "Filter on \"{}\" with operator {} needs {what}.",
                f.property_name, f.operator
            )))
        }
    };
    match op {
        Op::Between => need(value.is_some() && high.is_some(), "`value` and `highValue`")?,
        Op::In | Op::NotIn => need(!values.is_empty(), "a non-empty `values` array")?,
        Op::HasProperty | Op::NotHasProperty => {}
        _ => need(value.is_some(), "a `value`")?,
    }
    let as_typed = |raw: &str| typed(schema, &f.property_name, raw);
    Ok(CheckedFilter {
        datetime: schema.is_datetime(&f.property_name),
        token: value.as_deref().unwrap_or_default().to_lowercase(),
        value: value.as_deref().map(as_typed),
        values: values.iter().map(|v| as_typed(v)).collect(),
        high: high.as_deref().map(as_typed),
        property: f.property_name,
        op,
    })
}

/// A property value typed for comparison.
#[derive(Debug, Clone, PartialEq)]
enum Typed {
    Num(f64),
    Text(String),
}

impl Typed {
    fn cmp_to(&self, other: &Typed) -> Ordering {
        match (self, other) {
            (Typed::Num(a), Typed::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Typed::Text(a), Typed::Text(b)) => a.cmp(b),
            (Typed::Num(a), Typed::Text(b)) => a.to_string().cmp(b),
            (Typed::Text(a), Typed::Num(b)) => a.cmp(&b.to_string()),
        }
    }
}

fn typed(schema: &ObjectSchema, property: &str, raw: &str) -> Typed {
    if schema.is_datetime(property) {
        if let Some(ms) = parse_datetime_ms(raw) {
            return Typed::Num(ms as f64);
        }
    }
    match raw.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Typed::Num(n),
        _ => Typed::Text(raw.to_lowercase()),
    }
}

fn tokens(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"'))
        .filter(|t| !t.is_empty())
}

fn digits(v: &str) -> String {
    v.chars().filter(char::is_ascii_digit).collect()
}

/// `*` in a token pattern stands for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// `pattern` is already lower-case.
fn contains_token(value: &str, pattern: &str) -> bool {
    let value = value.to_lowercase();
    wildcard_match(pattern, &value) || tokens(&value).any(|t| wildcard_match(pattern, t))
}

/// Compares a stored value with a pre-typed operand, as [`typed`] would type the stored value,
/// without allocating.
fn compare(datetime: bool, actual: &str, expected: &Typed) -> Ordering {
    match expected {
        Typed::Num(e) => {
            let number = datetime
                .then(|| parse_datetime_ms(actual).map(|ms| ms as f64))
                .flatten()
                .or_else(|| actual.trim().parse::<f64>().ok().filter(|n| n.is_finite()));
            match number {
                Some(a) => a.partial_cmp(e).unwrap_or(Ordering::Equal),
                None => actual
                    .chars()
                    .flat_map(char::to_lowercase)
                    .cmp(e.to_string().chars()),
            }
        }
        Typed::Text(e) => actual.chars().flat_map(char::to_lowercase).cmp(e.chars()),
    }
}

fn eval(f: &CheckedFilter, record: &Record) -> bool {
    let actual = record.get(&f.property).filter(|v| !v.is_empty());
    let cmp = |expected: &Option<Typed>| match (actual, expected) {
        (Some(a), Some(e)) => Some(compare(f.datetime, a, e)),
        _ => None,
    };
    let eq = |expected: &Typed| {
        actual.is_some_and(|a| compare(f.datetime, a, expected) == Ordering::Equal)
    };
    let at_least = |o: Option<Ordering>| matches!(o, Some(Ordering::Greater | Ordering::Equal));
    let at_most = |o: Option<Ordering>| matches!(o, Some(Ordering::Less | Ordering::Equal));
    match f.op {
        Op::Eq => f.value.as_ref().is_some_and(eq),
        Op::Neq => !f.value.as_ref().is_some_and(eq),
        Op::Lt => cmp(&f.value) == Some(Ordering::Less),
        Op::Lte => at_most(cmp(&f.value)),
        Op::Gt => cmp(&f.value) == Some(Ordering::Greater),
        Op::Gte => at_least(cmp(&f.value)),
        Op::Between => at_least(cmp(&f.value)) && at_most(cmp(&f.high)),
        Op::In => f.values.iter().any(eq),
        Op::NotIn => !f.values.iter().any(eq),
        Op::HasProperty => actual.is_some(),
        Op::NotHasProperty => actual.is_none(),
        Op::ContainsToken => actual.is_some_and(|a| contains_token(a, &f.token)),
        Op::NotContainsToken => !actual.is_some_and(|a| contains_token(a, &f.token)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn schema() -> ObjectSchema {
        ObjectSchema::all().into_iter().next().unwrap()
    }

    fn record(id: u64, props: &[(&str, &str)]) -> Record {
        let mut properties: BTreeMap<String, String> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        properties.insert("hs_object_id".into(), id.to_string());
        Record {
            id,
            properties,
            created_ms: 0,
            updated_ms: 0,
            archived_ms: None,
        }
    }

    fn run(req: Value, records: &[Record]) -> Result<Value, ApiError> {
        let req: SearchRequest = serde_json::from_value(req).unwrap();
        let plan = Plan::new(req, &schema(), SearchLimits::Strict)?;
        Ok(plan.run(&schema(), records.iter()))
    }

    fn ids(body: &Value) -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn people() -> Vec<Record> {
        vec![
            record(
                1,
                &[
                    ("email", "ann@example.com"),
                    ("firstname", "Ann"),
                    ("lastmodifieddate", "2024-01-01T00:00:00.000Z"),
                ],
            ),
            record(
                2,
                &[
                    ("email", "bob@other.org"),
                    ("firstname", "Bob"),
                    ("phone", "+1 (555) 010-2000"),
                    ("lastmodifieddate", "2024-02-01T00:00:00.000Z"),
                ],
            ),
            record(
                3,
                &[
                    ("email", "cy@example.com"),
                    ("lastmodifieddate", "2024-03-01T00:00:00.000Z"),
                ],
            ),
        ]
    }

    #[test]
    fn groups_or_and_filters_and() {
        let body = run(
            json!({"filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@example.com"},
                             {"propertyName": "firstname", "operator": "HAS_PROPERTY"}]},
                {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "bob"}]}
            ]}),
            &people(),
        )
        .unwrap();
        assert_eq!(ids(&body), ["1", "2"]);
        assert_eq!(body["total"], 2);
    }

    #[test]
    fn every_operator_behaves() {
        let cases = [
            (
                json!({"propertyName": "firstname", "operator": "NEQ", "value": "Ann"}),
                vec!["2", "3"],
            ),
            (
                json!({"propertyName": "lastmodifieddate", "operator": "GT", "value": "1706745600000"}),
                vec!["3"],
            ),
            (
                json!({"propertyName": "lastmodifieddate", "operator": "GTE", "value": "2024-02-01T00:00:00Z"}),
                vec!["2", "3"],
            ),
            (
                json!({"propertyName": "lastmodifieddate", "operator": "LT", "value": "2024-02-01"}),
                vec!["1"],
            ),
            (
                json!({"propertyName": "lastmodifieddate", "operator": "LTE", "value": "2024-02-01"}),
                vec!["1", "2"],
            ),
            (
                json!({"propertyName": "lastmodifieddate", "operator": "BETWEEN", "value": "2024-01-15", "highValue": "2024-03-01"}),
                vec!["2", "3"],
            ),
            (
                json!({"propertyName": "email", "operator": "IN", "values": ["ANN@example.com", "cy@example.com"]}),
                vec!["1", "3"],
            ),
            (
                json!({"propertyName": "email", "operator": "NOT_IN", "values": ["ann@example.com"]}),
                vec!["2", "3"],
            ),
            (
                json!({"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}),
                vec!["1", "3"],
            ),
            (
                json!({"propertyName": "email", "operator": "NOT_CONTAINS_TOKEN", "value": "*@example.com"}),
                vec!["2"],
            ),
            (
                json!({"propertyName": "hs_object_id", "operator": "GTE", "value": "2"}),
                vec!["2", "3"],
            ),
        ];
        for (filter, expected) in cases {
            let body = run(
                json!({"filterGroups": [{"filters": [filter.clone()]}]}),
                &people(),
            )
            .unwrap();
            assert_eq!(ids(&body), expected, "{filter}");
        }
    }

    #[test]
    fn sorts_both_ways_and_accepts_string_form() {
        let desc = run(
            json!({"sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}]}),
            &people(),
        )
        .unwrap();
        assert_eq!(ids(&desc), ["3", "2", "1"]);
        let desc = run(json!({"sorts": ["-lastmodifieddate"]}), &people()).unwrap();
        assert_eq!(ids(&desc), ["3", "2", "1"]);
        let asc = run(json!({"sorts": ["firstname"]}), &people()).unwrap();
        assert_eq!(ids(&asc), ["1", "2", "3"], "missing values sort last");
    }

    #[test]
    fn pages_with_string_after_and_total() {
        let page = run(json!({"limit": 2}), &people()).unwrap();
        assert_eq!(ids(&page), ["1", "2"]);
        assert_eq!(page["paging"]["next"]["after"], "2");
        let last = run(json!({"limit": 2, "after": "2"}), &people()).unwrap();
        assert_eq!(ids(&last), ["3"]);
        assert!(last.get("paging").is_none());
        assert_eq!(last["total"], 3);
    }

    #[test]
    fn free_text_query_matches_names_emails_and_phone_digits() {
        assert_eq!(ids(&run(json!({"query": "bo"}), &people()).unwrap()), ["2"]);
        assert_eq!(
            ids(&run(json!({"query": "5550102000"}), &people()).unwrap()),
            ["2"]
        );
        assert_eq!(
            ids(&run(json!({"query": "example"}), &people()).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&run(json!({"query": "cy@example.com"}), &people()).unwrap()),
            ["3"]
        );
    }

    #[test]
    fn default_and_requested_properties() {
        let body = run(json!({"limit": 1}), &people()).unwrap();
        let props = body["results"][0]["properties"].as_object().unwrap();
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname"
            ]
        );
        let body = run(json!({"limit": 1, "properties": ["phone"]}), &people()).unwrap();
        let names: Vec<&str> = body["results"][0]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            ["createdate", "hs_object_id", "lastmodifieddate", "phone"]
        );
    }

    #[test]
    fn limits_are_enforced_with_400s() {
        let filter = json!({"propertyName": "email", "operator": "HAS_PROPERTY"});
        let too_many_groups: Vec<Value> = (0..6)
            .map(|_| json!({"filters": [filter.clone()]}))
            .collect();
        let seven = json!({"filters": vec![filter.clone(); 7]});
        let nineteen: Vec<Value> = (0..4)
            .map(|_| json!({"filters": vec![filter.clone(); 5]}))
            .collect();
        for (req, needle) in [
            (json!({"filterGroups": too_many_groups}), "filter groups"),
            (json!({"filterGroups": [seven]}), "per group"),
            (json!({"filterGroups": nineteen}), "across all"),
            (json!({"limit": 201}), "limit"),
            (json!({"after": "10000"}), "10000"),
            (json!({"query": "x".repeat(3001)}), "3000"),
            (
                json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]}),
                "Unknown filter operator",
            ),
            (
                json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]}),
                "does not exist",
            ),
            (
                json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "BETWEEN", "value": "x"}]}]}),
                "highValue",
            ),
            (json!({"sorts": ["email", "firstname"]}), "one sort"),
        ] {
            let err = run(req.clone(), &people()).unwrap_err();
            assert_eq!(err.status, 400, "{req}");
            assert_eq!(err.category(), "VALIDATION_ERROR");
            assert!(err.message().contains(needle), "{req}: {}", err.message());
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*@example.com", "ann@example.com"));
        assert!(wildcard_match("an*", "ann"));
        assert!(wildcard_match("a*n*e", "anne"));
        assert!(!wildcard_match("*@example.com", "ann@example.org"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }
}
