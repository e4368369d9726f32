//! Fault injection: rules that make the next N requests matching a path slow, fail with a
//! status code, or lose their connection. Managed through `/_sim/faults`.
//!
//! A rule matches a request when its `path` is a prefix of the request path and its `method`
//! (if given) equals the request method. Rules are tried in the order they were added; the
//! first match with requests left is used and its count goes down by one.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A rule as posted to `/_sim/faults`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Request path prefix, e.g. `/crm/v3/objects/contacts`.
    pub path: String,
    /// Only this method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// How many matching requests the rule applies to (absent: until removed).
    #[serde(default)]
    pub times: Option<u32>,
    /// Delay before answering (or before the status / drop).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Answer with this status and a HubSpot-shaped body instead of the real handler.
    #[serde(default)]
    pub status: Option<u16>,
    /// Close the connection without answering.
    #[serde(default)]
    pub drop: bool,
    /// Replace the body of an injected status.
    #[serde(default)]
    pub body: Option<Value>,
    /// Extra response headers for an injected status (e.g. `Retry-After`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// What to do with a request that matched a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub latency: Duration,
    pub action: FaultAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Delay only, then handle normally.
    PassThrough,
    Respond {
        status: u16,
        body: Option<Value>,
        headers: BTreeMap<String, String>,
    },
    Drop,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActiveRule {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
    pub remaining: Option<u32>,
    pub hits: u64,
}

#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<(u64, Vec<ActiveRule>)>,
}

impl FaultSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path must start with '/', got '{}'", self.path));
        }
        if let Some(status) = self.status {
            if !(200..=599).contains(&status) {
                return Err(format!("status must be between 200 and 599, got {status}"));
            }
        }
        if self.drop && self.status.is_some() {
            return Err(
                "a rule either drops the connection or answers with a status, not both".into(),
            );
        }
        if !self.drop && self.status.is_none() && self.latency_ms.is_none() {
            return Err("a rule needs at least one of latency_ms, status or drop".into());
        }
        if self.times == Some(0) {
            return Err(
                "times must be at least 1 (omit it for a rule that stays until removed)".into(),
            );
        }
        Ok(())
    }
}

impl Faults {
    pub fn add(&self, spec: FaultSpec) -> Result<u64, String> {
        spec.validate()?;
        let mut inner = self.inner.lock();
        inner.0 += 1;
        let id = inner.0;
        let remaining = spec.times;
        inner.1.push(ActiveRule {
            id,
            spec,
            remaining,
            hits: 0,
        });
        Ok(id)
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.inner.lock();
        let before = inner.1.len();
        inner.1.retain(|r| r.id != id);
        inner.1.len() != before
    }

    pub fn clear(&self) {
        self.inner.lock().1.clear();
    }

    pub fn list(&self) -> Vec<ActiveRule> {
        self.inner.lock().1.clone()
    }

    /// The fault for this request, if a rule matches; uses up one of the rule's requests.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut inner = self.inner.lock();
        let rules = &mut inner.1;
        let index = rules.iter().position(|r| {
            path.starts_with(&r.spec.path)
                && r.spec
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.remaining != Some(0)
        })?;
        let rule = &mut rules[index];
        rule.hits += 1;
        if let Some(left) = &mut rule.remaining {
            *left -= 1;
        }
        let spec = rule.spec.clone();
        if rule.remaining == Some(0) {
            rules.remove(index);
        }
        let action = if spec.drop {
            FaultAction::Drop
        } else if let Some(status) = spec.status {
            FaultAction::Respond {
                status,
                body: spec.body,
                headers: spec.headers,
            }
        } else {
            FaultAction::PassThrough
        };
        Some(Fault {
            latency: Duration::from_millis(spec.latency_ms.unwrap_or(0)),
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> FaultSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rule_applies_to_n_matching_requests_then_disappears() {
        let f = Faults::default();
        f.add(spec(json!({"path": "/crm/v3/objects/contacts", "method": "post", "times": 2, "status": 503}))).unwrap();
        assert_eq!(
            f.take("GET", "/crm/v3/objects/contacts"),
            None,
            "method must match"
        );
        assert_eq!(
            f.take("POST", "/account-info/v3/details"),
            None,
            "path must match"
        );
        for _ in 0..2 {
            let fault = f.take("POST", "/crm/v3/objects/contacts/search").unwrap();
            assert!(matches!(
                fault.action,
                FaultAction::Respond { status: 503, .. }
            ));
        }
        assert_eq!(f.take("POST", "/crm/v3/objects/contacts"), None);
        assert!(f.list().is_empty());
    }

    #[test]
    fn rules_without_times_stay_until_removed() {
        let f = Faults::default();
        let id = f
            .add(spec(json!({"path": "/", "latency_ms": 12000})))
            .unwrap();
        for _ in 0..5 {
            assert_eq!(
                f.take("GET", "/x"),
                Some(Fault {
                    latency: Duration::from_secs(12),
                    action: FaultAction::PassThrough
                })
            );
        }
        assert!(f.remove(id));
        assert_eq!(f.take("GET", "/x"), None);
    }

    #[test]
    fn nonsense_rules_are_refused_with_reasons() {
        let f = Faults::default();
        for (bad, needle) in [
            (json!({"path": "crm"}), "start with '/'"),
            (json!({"path": "/", "status": 99}), "between 200 and 599"),
            (
                json!({"path": "/", "status": 500, "drop": true}),
                "not both",
            ),
            (json!({"path": "/"}), "at least one"),
            (json!({"path": "/", "drop": true, "times": 0}), "at least 1"),
        ] {
            let err = f.add(spec(bad)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
