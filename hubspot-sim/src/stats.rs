//! Request counts by method, matched route and status, for `/_sim/stats`.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde_json::{json, Value};

#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Stats {
    pub fn record(&self, method: &str, route: &str, status: u16) {
        *self
            .counts
            .lock()
            .entry((method.to_string(), route.to_string(), status))
            .or_insert(0) += 1;
    }

    pub fn clear(&self) {
        self.counts.lock().clear();
    }

    /// `{total, rateLimited, byRoute: [{method, route, status, count}]}`.
    pub fn snapshot(&self) -> Value {
        let counts = self.counts.lock();
        let total: u64 = counts.values().sum();
        let rate_limited: u64 = counts
            .iter()
            .filter(|((_, _, s), _)| *s == 429)
            .map(|(_, n)| n)
            .sum();
        let rows: Vec<Value> = counts
            .iter()
            .map(|((method, route, status), count)| {
                json!({"method": method, "route": route, "status": status, "count": count})
            })
            .collect();
        json!({"total": total, "rateLimited": rate_limited, "byRoute": rows})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_by_route_and_status() {
        let s = Stats::default();
        s.record("POST", "/crm/v3/objects/{objectType}", 201);
        s.record("POST", "/crm/v3/objects/{objectType}", 201);
        s.record("POST", "/crm/v3/objects/{objectType}", 429);
        let snap = s.snapshot();
        assert_eq!(snap["total"], 3);
        assert_eq!(snap["rateLimited"], 1);
        assert_eq!(snap["byRoute"][0]["count"], 2);
        assert_eq!(snap["byRoute"][1]["status"], 429);
    }
}
