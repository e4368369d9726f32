//! Property mappings: which HubSpot properties of a type the app keeps, under which local field
//! names, who owns each (HubSpot or the app), and calculated fields computed locally from mapped
//! values by an expression (`evalexpr`), never written to HubSpot. A mapping set is checked
//! against the portal's property definitions before it is used: an unknown property is refused
//! naming it (and the closest real name), a calculated field may use only numeric mapped fields,
//! an app-owned field may not map a property HubSpot maintains.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::object::ObjectType;

/// Who decides a mapped property's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// HubSpot's value wins; the app only reads it.
    #[default]
    Hubspot,
    /// The app writes it to HubSpot; a sync never overwrites the app's value.
    App,
}

/// One local field: a HubSpot property, or a calculation over other fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The local field name.
    pub field: String,
    /// The HubSpot property (absent for a calculated field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot: Option<String>,
    #[serde(default)]
    pub owner: Owner,
    /// An expression over other fields (`amount * contract_length_months`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculated: Option<String>,
}

/// What the portal says a property is (from HubSpot's properties API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// `string`, `number`, `date`, `datetime`, `enumeration`, `bool`.
    pub kind: String,
    /// HubSpot maintains the value (`hs_lastmodifieddate`): it cannot be app-owned.
    pub read_only: bool,
    /// An enumeration's option values (empty for other kinds).
    pub options: Vec<String>,
}

/// A problem with one mapping, naming where it is (`deals[2].hubspot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub message: String,
}

/// The mappings of one object type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MappingSet {
    pub object_type: Option<ObjectType>,
    pub mappings: Vec<Mapping>,
}

impl MappingSet {
    pub fn new(object_type: ObjectType, mappings: Vec<Mapping>) -> Self {
        Self {
            object_type: Some(object_type),
            mappings,
        }
    }

    fn type_name(&self) -> &'static str {
        self.object_type.map_or("objects", ObjectType::as_str)
    }

    /// The HubSpot properties these mappings read.
    pub fn hubspot_properties(&self) -> Vec<&str> {
        self.mappings
            .iter()
            .filter_map(|m| m.hubspot.as_deref())
            .collect()
    }

    /// Checks the set against the portal's definitions; every problem at once.
    pub fn check(&self, definitions: &BTreeMap<String, Definition>) -> Result<(), Vec<Problem>> {
        let t = self.type_name();
        let mut problems = Vec::new();
        let mut fields = BTreeMap::new();
        for (i, m) in self.mappings.iter().enumerate() {
            let at = |what: &str| format!("{t}[{i}].{what}");
            if m.field.is_empty()
                || !m
                    .field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                || m.field.starts_with(|c: char| c.is_ascii_digit())
            {
                problems.push(Problem {
                    at: at("field"),
                    message: format!(
                        "'{}' is not a field name: letters, digits and _, not starting with a digit",
                        m.field
                    ),
                });
            }
            if fields.insert(m.field.clone(), i).is_some() {
                problems.push(Problem {
                    at: at("field"),
                    message: format!("field '{}' is mapped twice", m.field),
                });
            }
            match (&m.hubspot, &m.calculated) {
                (Some(_), Some(_)) | (None, None) => problems.push(Problem {
                    at: at("hubspot"),
                    message: "give either hubspot (a property) or calculated (an expression)"
                        .into(),
                }),
                (Some(property), None) => match definitions.get(property) {
                    None => problems.push(Problem {
                        at: at("hubspot"),
                        message: unknown_property(t, property, definitions),
                    }),
                    Some(d) if d.read_only && m.owner == Owner::App => problems.push(Problem {
                        at: at("owner"),
                        message: format!(
                            "{property} is maintained by HubSpot; it cannot be app-owned"
                        ),
                    }),
                    Some(_) => {}
                },
                (None, Some(_)) if m.owner == Owner::App => problems.push(Problem {
                    at: at("owner"),
                    message: "a calculated field is computed here and never written to HubSpot; it cannot be app-owned".into(),
                }),
                (None, Some(_)) => {}
            }
        }
        for (i, m) in self.mappings.iter().enumerate() {
            let Some(expression) = &m.calculated else {
                continue;
            };
            let at = format!("{t}[{i}].calculated");
            let tree = match evalexpr::build_operator_tree(expression) {
                Ok(tree) => tree,
                Err(e) => {
                    problems.push(Problem {
                        at,
                        message: format!("'{expression}' is not an expression: {e}"),
                    });
                    continue;
                }
            };
            for var in tree.iter_variable_identifiers() {
                let source = self
                    .mappings
                    .iter()
                    .find(|o| o.field == var && o.field != m.field);
                let numeric = source.is_some_and(|o| {
                    o.calculated.is_some()
                        || o.hubspot
                            .as_ref()
                            .and_then(|p| definitions.get(p))
                            .is_some_and(|d| d.kind == "number")
                });
                if source.is_none() {
                    problems.push(Problem {
                        at: at.clone(),
                        message: format!("'{var}' is not a mapped field of {t}"),
                    });
                } else if !numeric {
                    problems.push(Problem {
                        at: at.clone(),
                        message: format!(
                            "'{var}' is not a number property; calculations take numbers"
                        ),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The local fields of a record from its HubSpot properties: mapped values, then the
    /// calculated ones (in order, so a calculation may use an earlier one). A calculation whose
    /// inputs are missing or not numbers gives no value.
    pub fn fields(
        &self,
        properties: &serde_json::Map<String, serde_json::Value>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for m in &self.mappings {
            if let Some(p) = &m.hubspot {
                if let Some(v) = properties
                    .get(p)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                {
                    out.insert(m.field.clone(), v.to_string());
                }
            }
        }
        for m in &self.mappings {
            let Some(expression) = &m.calculated else {
                continue;
            };
            if let Some(v) = calculate(expression, &out) {
                out.insert(m.field.clone(), v);
            }
        }
        out
    }

    /// The fields the app owns (written to HubSpot, never overwritten by a sync).
    pub fn app_owned(&self) -> BTreeSet<&str> {
        self.mappings
            .iter()
            .filter(|m| m.owner == Owner::App)
            .map(|m| m.field.as_str())
            .collect()
    }
}

fn unknown_property(t: &str, property: &str, definitions: &BTreeMap<String, Definition>) -> String {
    let closest = definitions
        .keys()
        .map(|name| (strsim::jaro_winkler(property, name), name))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, name)) => format!("{t} has no property '{property}' in this portal; did you mean '{name}'?"),
        None => format!("{t} has no property '{property}' in this portal (GET /crm/properties/2026-03/{t} lists them)"),
    }
}

/// Evaluates an expression over numeric fields; `None` when an input is missing or not a number.
fn calculate(expression: &str, fields: &BTreeMap<String, String>) -> Option<String> {
    use evalexpr::{ContextWithMutableVariables, HashMapContext, Value};
    let tree = evalexpr::build_operator_tree(expression).ok()?;
    let mut context = HashMapContext::new();
    for var in tree.iter_variable_identifiers() {
        let n: f64 = fields.get(var)?.trim().parse().ok()?;
        context.set_value(var.to_string(), Value::Float(n)).ok()?;
    }
    let n = tree.eval_number_with_context(&context).ok()?;
    n.is_finite().then(|| {
        if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", n as i64)
        } else {
            format!("{n}")
        }
    })
}

/// Parses a mappings file: `{deals: [{field, hubspot?, owner?, calculated?}], companies: […]}`.
pub fn parse_file(text: &str) -> Result<Vec<MappingSet>, String> {
    let raw: BTreeMap<String, Vec<Mapping>> =
        serde_yaml::from_str(text).map_err(|e| format!("not a mappings file: {e}"))?;
    raw.into_iter()
        .map(|(t, mappings)| {
            let object_type: ObjectType = t
                .parse()
                .map_err(|e: super::object::UnknownType| e.to_string())?;
            Ok(MappingSet::new(object_type, mappings))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> BTreeMap<String, Definition> {
        [
            ("amount", "number", false),
            ("hs_arr", "number", false),
            ("contract_length_months", "number", false),
            ("dealname", "string", false),
            ("hs_lastmodifieddate", "datetime", true),
            ("commission_amount", "number", false),
        ]
        .into_iter()
        .map(|(n, k, r)| {
            (
                n.to_string(),
                Definition {
                    kind: k.into(),
                    read_only: r,
                    options: Vec::new(),
                },
            )
        })
        .collect()
    }

    fn set(yaml: &str) -> MappingSet {
        parse_file(yaml).unwrap().remove(0)
    }

    #[test]
    fn calculated_fields_compute_from_mapped_numbers() {
        let s = set("deals:
  - {field: amount, hubspot: amount}
  - {field: months, hubspot: contract_length_months}
  - {field: total_contract_value, calculated: amount * months}
  - {field: annual_recurring_revenue, hubspot: hs_arr}
");
        assert_eq!(s.check(&defs()), Ok(()));
        let props = json!({"amount": "1200.5", "contract_length_months": "12", "hs_arr": "14406"});
        let fields = s.fields(props.as_object().unwrap());
        assert_eq!(fields["total_contract_value"], "14406");
        assert_eq!(fields["annual_recurring_revenue"], "14406");
        // A missing input gives no value, not a wrong one.
        let fields = s.fields(json!({"amount": "5"}).as_object().unwrap());
        assert!(!fields.contains_key("total_contract_value"));
    }

    #[test]
    fn unknown_misspelled_and_mistyped_mappings_are_refused_by_name() {
        let s = set("deals:
  - {field: arr, hubspot: hs_ar}
  - {field: nope, hubspot: no_such_thing}
  - {field: name, hubspot: dealname}
  - {field: bad, calculated: name * 2}
  - {field: modified, hubspot: hs_lastmodifieddate, owner: app}
  - {field: ghost, calculated: missing + 1}
");
        let problems = s.check(&defs()).unwrap_err();
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        assert!(
            text[0].starts_with("deals[0].hubspot") && text[0].contains("did you mean 'hs_arr'"),
            "{text:?}"
        );
        assert!(
            text[1].contains("no property 'no_such_thing'") && !text[1].contains("did you mean"),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("deals[4].owner")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("'name' is not a number property")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("'missing' is not a mapped field")),
            "{text:?}"
        );
        assert!(parse_file("tickets: []")
            .unwrap_err()
            .contains("unknown object type"));
        assert!(parse_file("deals: [{field: x, hubspot: amount, colour: red}]").is_err());
    }
}
