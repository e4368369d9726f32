//! Checking a payload against a portal's property definitions, as HubSpot would (the dry
//! run's report): unknown properties, values of the wrong type, options not offered.

use std::collections::BTreeMap;

use crate::domain::mapping::Definition;

/// What HubSpot would refuse in `payload`, given the portal's definitions: an unknown
/// property (one the app would create is checked against the type it would create), a value
/// of the wrong type, an option that is not one of the enumeration's.
pub fn check(
    payload: &BTreeMap<String, String>,
    definitions: &BTreeMap<String, Definition>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, value) in payload {
        let Some(d) = definitions.get(name) else {
            problems.push(format!("{name}: not a property of this portal's contacts"));
            continue;
        };
        let ok = match d.kind.as_str() {
            "number" => value.parse::<f64>().is_ok(),
            "datetime" | "date" => {
                value.parse::<i64>().is_ok() || chrono::DateTime::parse_from_rfc3339(value).is_ok()
            }
            "bool" => matches!(value.as_str(), "true" | "false"),
            "enumeration" => d.options.is_empty() || d.options.iter().any(|o| o == value),
            _ => true,
        };
        if !ok {
            problems.push(if d.kind == "enumeration" {
                format!(
                    "{name}: '{value}' is not one of its options ({})",
                    d.options.join(", ")
                )
            } else {
                format!("{name}: '{value}' is not a valid {}", d.kind)
            });
        }
    }
    problems
}
