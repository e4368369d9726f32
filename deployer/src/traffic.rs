//! What nginx's JSON access log says about each slot (pure: lines in, figures out). nginx logs
//! one JSON object per request (`nginx/nginx.conf.tera`), naming the slot that answered from the
//! app's `X-App-Slot` header; [`crate::execute`] reads the lines through Docker's log API and
//! feeds them here, to judge a release during its bake and to count each slot's answers around
//! a switch. May not import the engine, the host or the executor.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One answer, as nginx logged it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Answer {
    /// When nginx finished it (Unix seconds, millisecond precision).
    pub t: f64,
    pub status: u16,
    /// nginx's port inside its container: 443 is the live door, the preview's is another.
    #[serde(default)]
    pub port: u16,
    /// The slot that answered; empty when no slot did (nginx answered itself, or could not
    /// reach one).
    #[serde(default)]
    pub slot: String,
    /// nginx's request time, in seconds.
    #[serde(default)]
    pub ms: f64,
}

impl Answer {
    /// An answer nginx gave because the upstream failed (502: unreachable, 504: timed out).
    pub fn upstream_failed(&self) -> bool {
        self.slot.is_empty() && matches!(self.status, 502 | 504)
    }

    pub fn is_5xx(&self) -> bool {
        (500..600).contains(&self.status)
    }
}

/// The answer on a log line; `None` for anything else (nginx's own messages).
pub fn parse(line: &str) -> Option<Answer> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    serde_json::from_str(line).ok()
}

/// Answers and 5xx among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub requests: u64,
    pub errors_5xx: u64,
}

impl Tally {
    pub fn add(&mut self, answer: &Answer) {
        self.requests += 1;
        if answer.is_5xx() {
            self.errors_5xx += 1;
        }
    }
}

/// Each slot's answers among `answers` finished in `[from, to]` (Unix seconds); answers no slot
/// gave are counted under `"nginx"`.
pub fn by_slot<'a>(
    answers: impl IntoIterator<Item = &'a Answer>,
    from: f64,
    to: f64,
) -> BTreeMap<String, Tally> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    for a in answers.into_iter().filter(|a| a.t >= from && a.t <= to) {
        let key = if a.slot.is_empty() { "nginx" } else { &a.slot };
        out.entry(key.to_string()).or_default().add(a);
    }
    out
}

/// What a release may not cross during its bake.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub window: Duration,
    pub max_error_rate: f64,
    pub max_p99: Option<Duration>,
    pub min_requests: u32,
}

/// Judges one slot's answers as they come, over a trailing window.
#[derive(Debug)]
pub struct Judge {
    slot: String,
    limits: Limits,
    /// (t, 5xx, request seconds) of the answers in the window, oldest first.
    recent: VecDeque<(f64, bool, f64)>,
    errors_in_window: u64,
    pub total: Tally,
    /// The worst 5xx share and p99 seen in a judged window.
    pub worst_error_rate: f64,
    pub worst_p99_ms: f64,
    last_p99_at: f64,
}

/// Why a release failed its bake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossed {
    /// When the answer that crossed the line finished (Unix seconds).
    pub at: f64,
    pub reason: String,
}

impl Judge {
    pub fn new(slot: &str, limits: Limits) -> Self {
        Self {
            slot: slot.to_string(),
            limits,
            recent: VecDeque::new(),
            errors_in_window: 0,
            total: Tally::default(),
            worst_error_rate: 0.0,
            worst_p99_ms: 0.0,
            last_p99_at: f64::MIN,
        }
    }

    /// Whether `answer` is this slot's to answer for: its own, and the upstream failures on the
    /// live door (nginx could not reach the slot traffic was sent to).
    pub fn concerns(&self, answer: &Answer) -> bool {
        answer.slot == self.slot || answer.upstream_failed() && answer.port == 443
    }

    /// Takes one answer (in log order); `Some` once a limit is crossed.
    pub fn observe(&mut self, answer: &Answer) -> Option<Crossed> {
        if !self.concerns(answer) {
            return None;
        }
        self.total.add(answer);
        let failed = answer.is_5xx();
        self.recent.push_back((answer.t, failed, answer.ms));
        self.errors_in_window += failed as u64;
        let oldest = answer.t - self.limits.window.as_secs_f64();
        while let Some(&(t, failed, _)) = self.recent.front() {
            if t >= oldest {
                break;
            }
            self.recent.pop_front();
            self.errors_in_window -= failed as u64;
        }
        let n = self.recent.len() as u64;
        if n < self.limits.min_requests as u64 {
            return None;
        }
        let rate = self.errors_in_window as f64 / n as f64;
        self.worst_error_rate = self.worst_error_rate.max(rate);
        if rate > self.limits.max_error_rate {
            return Some(Crossed {
                at: answer.t,
                reason: format!(
                    "{:.1}% of {n} answers from {} in the last {}s were 5xx (limit {}%)",
                    rate * 100.0,
                    self.slot,
                    self.limits.window.as_secs(),
                    self.limits.max_error_rate * 100.0
                ),
            });
        }
        // p99 at most every 200 ms of log time: a sort per answer would not keep up.
        if let Some(max) = self.limits.max_p99 {
            if answer.t - self.last_p99_at >= 0.2 {
                self.last_p99_at = answer.t;
                let mut times: Vec<f64> = self.recent.iter().map(|r| r.2).collect();
                times.sort_by(f64::total_cmp);
                let p99 = times[((times.len() - 1) as f64 * 0.99) as usize] * 1000.0;
                self.worst_p99_ms = self.worst_p99_ms.max(p99);
                if p99 > max.as_secs_f64() * 1000.0 {
                    return Some(Crossed {
                        at: answer.t,
                        reason: format!(
                            "p99 of {n} answers from {} in the last {}s was {p99:.0} ms (limit {} ms)",
                            self.slot,
                            self.limits.window.as_secs(),
                            max.as_millis()
                        ),
                    });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(t: f64, status: u16, slot: &str) -> Answer {
        Answer {
            t,
            status,
            port: 443,
            slot: slot.into(),
            ms: 0.002,
        }
    }

    fn limits() -> Limits {
        Limits {
            window: Duration::from_secs(10),
            max_error_rate: 0.01,
            max_p99: None,
            min_requests: 20,
        }
    }

    #[test]
    fn nginx_lines_parse_and_other_lines_do_not() {
        let line = r#"{"t":1764000000.123,"status":502,"method":"GET","path":"/api/hubspot/test","port":443,"slot":"","ms":0.004,"upstream_ms":"0.003","bytes":12}"#;
        let a = parse(line).unwrap();
        assert_eq!((a.t, a.status, a.port), (1764000000.123, 502, 443));
        assert!(a.upstream_failed());
        assert!(parse("2026/11/24 10:00:00 [warn] 1#1: something").is_none());
        assert!(parse("{not json").is_none());
    }

    #[test]
    fn a_few_errors_below_the_minimum_are_not_judged() {
        let mut judge = Judge::new("green", limits());
        for i in 0..19 {
            assert_eq!(judge.observe(&answer(i as f64 * 0.01, 500, "green")), None);
        }
        let crossed = judge.observe(&answer(0.2, 500, "green")).unwrap();
        assert!(
            crossed
                .reason
                .starts_with("100.0% of 20 answers from green"),
            "{crossed:?}"
        );
        assert_eq!(crossed.at, 0.2);
    }

    #[test]
    fn errors_under_the_limit_pass_and_the_other_slot_is_not_counted() {
        let mut judge = Judge::new("green", limits());
        for i in 0..1000 {
            let status = if i % 200 == 100 { 500 } else { 200 };
            assert_eq!(
                judge.observe(&answer(i as f64 * 0.005, status, "green")),
                None
            );
            // The old slot's failures are not the new release's.
            assert_eq!(judge.observe(&answer(i as f64 * 0.005, 500, "blue")), None);
        }
        assert_eq!(
            judge.total,
            Tally {
                requests: 1000,
                errors_5xx: 5
            }
        );
        assert!(judge.worst_error_rate < 0.01);
    }

    #[test]
    fn old_errors_leave_the_window() {
        let mut judge = Judge::new("green", limits());
        // A burst at the start: 1 error in 21 (4.8%) would cross...
        for i in 0..20 {
            judge.observe(&answer(i as f64 * 0.01, 200, "green"));
        }
        assert!(judge.observe(&answer(0.3, 500, "green")).is_some());
        // ...but 11 s later it has left the 10 s window.
        let mut judge = Judge::new("green", limits());
        judge.observe(&answer(0.0, 500, "green"));
        for i in 0..200 {
            assert_eq!(
                judge.observe(&answer(11.0 + i as f64 * 0.01, 200, "green")),
                None
            );
        }
    }

    #[test]
    fn nginx_failing_to_reach_the_live_slot_counts_against_it() {
        let mut judge = Judge::new("green", limits());
        for i in 0..25 {
            judge.observe(&answer(i as f64 * 0.01, 502, ""));
        }
        assert_eq!(judge.total.requests, 25);
        // nginx's own 503 (maintenance mode) does not.
        let mut judge = Judge::new("green", limits());
        for i in 0..25 {
            assert_eq!(judge.observe(&answer(i as f64 * 0.01, 503, "")), None);
        }
        assert_eq!(judge.total.requests, 0);
    }

    #[test]
    fn a_slow_release_crosses_the_p99_limit() {
        let mut judge = Judge::new(
            "green",
            Limits {
                max_p99: Some(Duration::from_millis(100)),
                ..limits()
            },
        );
        let slow = |t: f64| Answer {
            ms: 0.25,
            ..answer(t, 200, "green")
        };
        let crossed = (0..100)
            .find_map(|i| judge.observe(&slow(i as f64 * 0.05)))
            .unwrap();
        assert!(
            crossed.reason.contains("was 250 ms (limit 100 ms)"),
            "{crossed:?}"
        );
    }

    #[test]
    fn answers_are_counted_per_slot_inside_the_window() {
        let answers = [
            answer(9.0, 200, "blue"),
            answer(10.0, 200, "blue"),
            answer(10.5, 500, "green"),
            answer(11.0, 502, ""),
            answer(12.5, 200, "green"),
        ];
        let counts = by_slot(&answers, 10.0, 12.0);
        assert_eq!(
            counts["blue"],
            Tally {
                requests: 1,
                errors_5xx: 0
            }
        );
        assert_eq!(
            counts["green"],
            Tally {
                requests: 1,
                errors_5xx: 1
            }
        );
        assert_eq!(
            counts["nginx"],
            Tally {
                requests: 1,
                errors_5xx: 1
            }
        );
    }
}
