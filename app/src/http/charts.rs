//! The dashboard's charts: the figures' history ([`History`]) drawn as SVG on the server with
//! `plotters`, so the page needs no script and shows the same in any browser. Each chart says
//! in its caption what its lines add up to over the window, in words a screen reader reads.
//!
//! May not import: `sqlx`, `reqwest` (it draws what it is given).

use plotters::prelude::*;
use serde::Serialize;

use crate::domain::access::Role;
use crate::domain::figures::{History, Line};

/// A chart as the template shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// For the element's id (`chart-{id}`).
    pub id: &'static str,
    pub title: &'static str,
    /// What the lines add up to over the window, as text.
    pub summary: String,
    /// The drawing (an `<svg>` element).
    pub svg: String,
}

/// How a chart's lines are read: counted per point (summed in the caption), or a level (the
/// caption gives the latest and the highest), or a share (shown as a percentage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Count,
    Level,
    Share,
}

struct Spec {
    id: &'static str,
    title: &'static str,
    reading: Reading,
    /// (series name, legend)
    lines: &'static [(&'static str, &'static str)],
    /// Whether support sees it (support sees the cache only).
    support: bool,
}

const SPECS: &[Spec] = &[
    Spec {
        id: "hubspot",
        title: "HubSpot calls",
        reading: Reading::Count,
        lines: &[("hubspot_calls", "calls"), ("hubspot_429", "429s")],
        support: false,
    },
    Spec {
        id: "outbox-depth",
        title: "Outbox depth",
        reading: Reading::Level,
        lines: &[("outbox_depth", "waiting writes")],
        support: false,
    },
    Spec {
        id: "outbox-age",
        title: "Oldest waiting write (s)",
        reading: Reading::Level,
        lines: &[("outbox_oldest_s", "age")],
        support: false,
    },
    Spec {
        id: "events",
        title: "Webhooks and lifecycle events",
        reading: Reading::Count,
        lines: &[
            ("webhooks_received", "webhooks in"),
            ("webhooks_processed", "processed"),
            ("events_accepted", "lifecycle events"),
        ],
        support: false,
    },
    Spec {
        id: "sync",
        title: "Sync runs",
        reading: Reading::Count,
        lines: &[("sync_runs", "runs"), ("sync_failures", "failed")],
        support: false,
    },
    Spec {
        id: "cache",
        title: "Cache hit rate",
        reading: Reading::Share,
        lines: &[("cache_hit_rate", "hit rate")],
        support: true,
    },
];

const COLOURS: [RGBColor; 3] = [
    RGBColor(37, 99, 235),
    RGBColor(220, 38, 38),
    RGBColor(22, 163, 74),
];
const SIZE: (u32, u32) = (440, 190);

/// The charts `role` may see, drawn from `history`.
pub fn charts(history: &History, role: Role) -> Vec<Chart> {
    SPECS
        .iter()
        .filter(|spec| role != Role::Support || spec.support)
        .map(|spec| {
            let lines: Vec<(&str, Vec<Option<f64>>)> = spec
                .lines
                .iter()
                .map(|(name, legend)| {
                    let values = history.line(name).map_or_else(Vec::new, |l: &Line| {
                        l.values
                            .iter()
                            .map(|v| {
                                v.map(|v| {
                                    if spec.reading == Reading::Share {
                                        v * 100.0
                                    } else {
                                        v
                                    }
                                })
                            })
                            .collect()
                    });
                    (*legend, values)
                })
                .collect();
            let svg = draw(spec, history, &lines).unwrap_or_else(|e| {
                tracing::warn!(chart = spec.id, error = %e, "a chart could not be drawn");
                String::new()
            });
            Chart {
                id: spec.id,
                title: spec.title,
                summary: summary(spec.reading, &lines, history),
                svg,
            }
        })
        .collect()
}

/// The caption: each line's total over the window (counts), its latest and highest (levels),
/// or its average (shares); "no data" for a line nothing was stored for.
fn summary(reading: Reading, lines: &[(&str, Vec<Option<f64>>)], history: &History) -> String {
    let span = match history.window {
        crate::domain::figures::Window::Hour => "the last hour",
        crate::domain::figures::Window::Day => "the last day",
    };
    let parts: Vec<String> = lines
        .iter()
        .map(|(legend, values)| {
            let known: Vec<f64> = values.iter().flatten().copied().collect();
            if known.is_empty() {
                return format!("{legend}: no data");
            }
            match reading {
                Reading::Count => format!("{legend}: {}", known.iter().sum::<f64>().round()),
                Reading::Level => format!(
                    "{legend}: {} now, {} at most",
                    known.last().copied().unwrap_or_default().round(),
                    known.iter().copied().fold(0.0, f64::max).round()
                ),
                Reading::Share => format!(
                    "{legend}: {:.1} % on average",
                    known.iter().sum::<f64>() / known.len() as f64
                ),
            }
        })
        .collect();
    format!("Over {span}: {}.", parts.join("; "))
}

fn draw(
    spec: &Spec,
    history: &History,
    lines: &[(&str, Vec<Option<f64>>)],
) -> Result<String, String> {
    let points = lines.iter().map(|(_, v)| v.len()).max().unwrap_or(0) as i64;
    let highest = lines
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let top = if spec.reading == Reading::Share {
        100.0
    } else {
        (highest * 1.15).max(4.0).ceil()
    };
    let (start, step) = (history.start_minute, history.step_minutes);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(40)
            .build_cartesian_2d(0..points.max(1) - 1, 0f64..top)
            .map_err(|e| e.to_string())?;
        let clock = |i: &i64| {
            chrono::DateTime::from_timestamp((start + i * step) * 60, 0)
                .map(|t| t.format("%H:%M").to_string())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_labels(7)
            .y_labels(5)
            .x_label_formatter(&clock)
            .y_label_formatter(&|v: &f64| {
                if v.fract().abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            })
            .light_line_style(RGBColor(240, 240, 240))
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| e.to_string())?;
        for ((legend, values), colour) in lines.iter().zip(COLOURS) {
            let style = colour.stroke_width(2);
            // A line through each run of known points; a dot for a point alone.
            let mut runs: Vec<Vec<(i64, f64)>> = vec![Vec::new()];
            for (i, v) in values.iter().enumerate() {
                match v {
                    Some(v) => runs.last_mut().expect("a run").push((i as i64, *v)),
                    None if !runs.last().expect("a run").is_empty() => runs.push(Vec::new()),
                    None => {}
                }
            }
            // The legend names every line, drawn or not (an empty series carries it).
            chart
                .draw_series(std::iter::empty::<Circle<(i64, f64), i32>>())
                .map_err(|e| e.to_string())?
                .label(*legend)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
                });
            for run in runs.into_iter().filter(|r| !r.is_empty()) {
                if run.len() == 1 {
                    chart.draw_series(run.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                } else {
                    chart.draw_series(LineSeries::new(run, style))
                }
                .map_err(|e| e.to_string())?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::figures::{history, Minute, Series, Window};

    #[test]
    fn charts_draw_what_was_stored_and_support_sees_the_cache_only() {
        let now = 29_000_000;
        let m = Minute::one;
        let h = history(
            Window::Hour,
            now,
            &[
                m(now - 2, Series::HubspotCalls, 40.0),
                m(now - 1, Series::HubspotCalls, 2.0),
                m(now - 1, Series::HubspotRateLimited, 1.0),
                m(now, Series::CacheHits, 9.0),
                m(now, Series::CacheMisses, 1.0),
            ],
        );
        let all = charts(&h, Role::Operator);
        assert_eq!(all.len(), SPECS.len());
        let calls = &all[0];
        assert_eq!(
            calls.summary, "Over the last hour: calls: 42; 429s: 1.",
            "{calls:?}"
        );
        assert!(calls.svg.starts_with("<svg"), "{}", calls.svg);
        assert!(calls.svg.contains("<polyline"), "the calls' run is a line");
        assert!(calls.svg.contains("<circle"), "the lone 429 is a dot");
        assert!(all[1].summary.contains("no data"));
        let support = charts(&h, Role::Support);
        assert_eq!(support.len(), 1);
        assert_eq!(
            support[0].summary,
            "Over the last hour: hit rate: 90.0 % on average."
        );
    }
}
