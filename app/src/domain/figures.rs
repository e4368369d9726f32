//! The figures' history, as rules: which series there are, what a process adds to a minute
//! from its counters ([`Totals::since`]), and how stored minutes become a chart's points over
//! the last hour or day ([`Window`], [`history`]).
//!
//! A counter (calls, events, runs) is summed over the processes and the minutes of a point; a
//! gauge (the outbox's depth and age, read from the shared database by every process) is the
//! largest value any process saw. So blue and green, sampling the same database, draw one
//! history, and a process that restarts adds to it instead of starting it over.
//!
//! May not import: anything of the app but the domain and the leaves (it is pure).

use std::collections::BTreeMap;

use serde::Serialize;

/// How a series adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Counted in a minute: processes' and minutes' values are summed.
    Counter,
    /// Read at a moment: the largest value seen in the point's minutes.
    Gauge,
}

macro_rules! series {
    ($($variant:ident = $name:literal, $kind:ident, $doc:literal;)*) => {
        /// One stored series.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Series {
            $(#[doc = $doc] $variant,)*
        }

        impl Series {
            pub const ALL: &'static [Series] = &[$(Series::$variant,)*];

            /// The stored name.
            pub fn name(self) -> &'static str {
                match self { $(Series::$variant => $name,)* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Series::$variant => Kind::$kind,)* }
            }

            pub fn parse(name: &str) -> Option<Series> {
                match name { $($name => Some(Series::$variant),)* _ => None }
            }
        }
    };
}

series! {
    HubspotCalls = "hubspot_calls", Counter, "Calls to HubSpot (each attempt).";
    HubspotRateLimited = "hubspot_429", Counter, "HubSpot's 429 answers.";
    OutboxDepth = "outbox_depth", Gauge, "Contact writes waiting or being sent.";
    OutboxOldestSecs = "outbox_oldest_s", Gauge, "How long the oldest waiting write has waited (s).";
    WebhooksReceived = "webhooks_received", Counter, "Webhook events accepted (signed, new).";
    WebhooksProcessed = "webhooks_processed", Counter, "Webhook events processed.";
    EventsAccepted = "events_accepted", Counter, "Lifecycle events stored.";
    SyncRuns = "sync_runs", Counter, "Pull-sync runs finished (either way).";
    SyncFailures = "sync_failures", Counter, "Pull-sync runs that failed.";
    CacheHits = "cache_hits", Counter, "Phone lookups answered by the cache.";
    CacheMisses = "cache_misses", Counter, "Phone lookups the cache could not answer.";
}

/// What a process has counted since it started (counters) and reads now (gauges).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals(pub BTreeMap<Series, f64>);

impl Totals {
    pub fn set(&mut self, series: Series, value: f64) {
        self.0.insert(series, value);
    }

    /// What to add to the current minute, `before` being the totals of the last sample: a
    /// counter's increase (a counter that went down was reset, so all of it is new), a gauge's
    /// value. A counter that did not move adds 0, so a minute a process ran through reads 0
    /// and only the minutes no process ran through have no value.
    pub fn since(&self, before: &Totals) -> Vec<(Series, f64)> {
        self.0
            .iter()
            .map(|(&series, &now)| match series.kind() {
                Kind::Gauge => (series, now),
                Kind::Counter => {
                    let was = before.0.get(&series).copied().unwrap_or(0.0);
                    (series, if now >= was { now - was } else { now })
                }
            })
            .collect()
    }
}

/// A minute of a series, as stored: the sum and the largest of the processes' values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Minute {
    /// Minutes since the epoch.
    pub minute: i64,
    pub series: Series,
    pub sum: f64,
    pub max: f64,
}

#[cfg(test)]
impl Minute {
    /// A minute one process stored `value` in (its sum and its largest are the same).
    pub fn one(minute: i64, series: Series, value: f64) -> Self {
        Self {
            minute,
            series,
            sum: value,
            max: value,
        }
    }
}

/// The span a chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The last 60 minutes, a point a minute.
    Hour,
    /// The last 24 hours, a point every 15 minutes.
    Day,
}

impl Window {
    /// Minutes per point.
    pub fn step(self) -> i64 {
        match self {
            Window::Hour => 1,
            Window::Day => 15,
        }
    }

    pub fn points(self) -> i64 {
        match self {
            Window::Hour => 60,
            Window::Day => 96,
        }
    }

    /// The first minute of the window that ends with `now_minute`'s point.
    pub fn start(self, now_minute: i64) -> i64 {
        let last = now_minute - now_minute.rem_euclid(self.step());
        last - (self.points() - 1) * self.step()
    }
}

impl std::str::FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hour" => Ok(Window::Hour),
            "day" => Ok(Window::Day),
            other => Err(format!("`{other}` is not a window: use hour or day")),
        }
    }
}

/// The points of one series over a window: `values[i]` belongs to `start + i * step`;
/// `None` where nothing was stored (no process was running, or nothing to compute a rate from).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A window's history: the points' start (epoch minute), their step, and one line per series
/// plus `cache_hit_rate` (hits ÷ lookups in the point, 0–1).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct History {
    pub window: Window,
    /// The first point's minute (minutes since the epoch).
    pub start_minute: i64,
    /// Minutes per point.
    pub step_minutes: i64,
    pub lines: Vec<Line>,
}

impl History {
    pub fn line(&self, name: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.name == name)
    }
}

/// `minutes` (from the store, any order) as the window ending at `now_minute`.
pub fn history(window: Window, now_minute: i64, minutes: &[Minute]) -> History {
    let (start, step, n) = (window.start(now_minute), window.step(), window.points());
    let mut points: BTreeMap<Series, Vec<Option<f64>>> = Series::ALL
        .iter()
        .map(|&s| (s, vec![None; n as usize]))
        .collect();
    for m in minutes {
        let i = (m.minute - start).div_euclid(step);
        if !(0..n).contains(&i) {
            continue;
        }
        let slot = &mut points.get_mut(&m.series).expect("every series")[i as usize];
        *slot = Some(match (m.series.kind(), *slot) {
            (Kind::Counter, was) => was.unwrap_or(0.0) + m.sum,
            (Kind::Gauge, was) => was.map_or(m.max, |w: f64| w.max(m.max)),
        });
    }
    let rate: Vec<Option<f64>> = points[&Series::CacheHits]
        .iter()
        .zip(&points[&Series::CacheMisses])
        .map(|(h, m)| {
            let (h, m) = (h.unwrap_or(0.0), m.unwrap_or(0.0));
            (h + m > 0.0).then(|| h / (h + m))
        })
        .collect();
    let mut lines: Vec<Line> = points
        .into_iter()
        .map(|(s, values)| Line {
            name: s.name().to_string(),
            values,
        })
        .collect();
    lines.push(Line {
        name: "cache_hit_rate".into(),
        values: rate,
    });
    History {
        window,
        start_minute: start,
        step_minutes: step,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(pairs: &[(Series, f64)]) -> Totals {
        Totals(pairs.iter().copied().collect())
    }

    #[test]
    fn a_sample_adds_counters_increases_and_gauges_values() {
        let before = totals(&[(Series::HubspotCalls, 10.0), (Series::CacheHits, 4.0)]);
        let now = totals(&[
            (Series::HubspotCalls, 15.0),
            (Series::CacheHits, 4.0),
            (Series::OutboxDepth, 0.0),
        ]);
        assert_eq!(
            now.since(&before),
            vec![
                (Series::HubspotCalls, 5.0),
                (Series::OutboxDepth, 0.0),
                (Series::CacheHits, 0.0)
            ]
        );
        // A counter that went down was reset (a client replaced): all of it is new.
        let reset = totals(&[(Series::HubspotCalls, 3.0)]);
        assert_eq!(reset.since(&before), vec![(Series::HubspotCalls, 3.0)]);
    }

    #[test]
    fn the_hour_sums_counters_over_processes_and_keeps_the_largest_gauge() {
        let now = 29_000_000 + 59; // a minute's index; the hour's last point
        let m = |minute, series, sum, max| Minute {
            minute,
            series,
            sum,
            max,
        };
        let h = history(
            Window::Hour,
            now,
            &[
                m(now, Series::HubspotCalls, 7.0, 4.0),
                m(now - 59, Series::OutboxDepth, 9.0, 5.0),
                m(now - 60, Series::HubspotCalls, 100.0, 100.0), // before the window
                m(now, Series::CacheHits, 3.0, 3.0),
                m(now, Series::CacheMisses, 1.0, 1.0),
            ],
        );
        assert_eq!(h.start_minute, now - 59);
        let calls = &h.line("hubspot_calls").unwrap().values;
        assert_eq!(calls.len(), 60);
        assert_eq!(calls[59], Some(7.0));
        assert_eq!(calls.iter().flatten().count(), 1, "the older minute is out");
        assert_eq!(h.line("outbox_depth").unwrap().values[0], Some(5.0));
        assert_eq!(h.line("cache_hit_rate").unwrap().values[59], Some(0.75));
        assert_eq!(h.line("cache_hit_rate").unwrap().values[58], None);
    }

    #[test]
    fn the_day_folds_fifteen_minutes_into_a_point() {
        let now = 15 * 2_000_000 + 7; // 7 minutes into a quarter hour
        let start = Window::Day.start(now);
        assert_eq!(start, 15 * 2_000_000 - 95 * 15);
        let m = Minute::one;
        let h = history(
            Window::Day,
            now,
            &[
                m(now, Series::SyncRuns, 1.0),
                m(now - 7, Series::SyncRuns, 2.0),
                m(now - 8, Series::SyncRuns, 4.0), // the quarter before
                m(now - 1, Series::OutboxOldestSecs, 30.0),
                m(now - 2, Series::OutboxOldestSecs, 90.0),
            ],
        );
        let runs = &h.line("sync_runs").unwrap().values;
        assert_eq!(runs.len(), 96);
        assert_eq!((runs[95], runs[94]), (Some(3.0), Some(4.0)));
        assert_eq!(h.line("outbox_oldest_s").unwrap().values[95], Some(90.0));
    }

    #[test]
    fn windows_and_series_read_back_from_their_names() {
        assert_eq!("day".parse::<Window>(), Ok(Window::Day));
        assert!("week"
            .parse::<Window>()
            .unwrap_err()
            .contains("hour or day"));
        for s in Series::ALL {
            assert_eq!(Series::parse(s.name()), Some(*s));
        }
    }
}
