//! Many hosts (`hosts:` in deploy.yml): a release moved across several machines, each running
//! its own nginx and blue/green slots exactly as a single host does, behind a balancer.
//!
//! - this file: the fleet plan, computed as data by pure code (what is built, what is shipped
//!   where, which hosts move in which phase), so `--dry-run` prints what a run does;
//! - [`ship`]: images sent from one engine to many, without a registry;
//! - [`run`]: executes a fleet plan: every host's lock taken in name order, images shipped,
//!   phases run (each host's part is the single-host plan of `commands::run_on`), failures
//!   answered per `rollout.on_failure`, and a summary of which host is where.
//!
//! May not import `main` or `cli`; it drives `commands` (one host) and `balancer`.

pub mod run;
pub mod ship;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::{OnFailure, RolloutConfig, Strategy};
use crate::plan::Step;

/// What a host does in a phase (each is the single-host command of the same name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostAction {
    /// `up`: start the new slot, check it, switch the host's traffic to it.
    Up,
    /// `up --no-switch`: start and check the new slot, traffic stays.
    Preview,
    /// `promote`: the slot in preview takes the host's traffic.
    Promote,
}

impl fmt::Display for HostAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostAction::Up => "up (start, check, switch)",
            HostAction::Preview => "up --no-switch (start and check the new slot)",
            HostAction::Promote => "promote (switch to the checked slot)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    pub name: String,
    pub hosts: Vec<String>,
    pub action: HostAction,
    /// At most this many hosts at once.
    pub parallel: usize,
    /// The wait once the phase is done, before the next.
    pub pause_after: Option<Duration>,
    /// The phase's switches must all land within this window (two_phase).
    pub window: Option<Duration>,
}

/// One image to a host: sent, named (the host has that very image under another name), or
/// skipped (it has it by this name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shipment {
    pub host: String,
    pub image: String,
    pub action: ShipAction,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipAction {
    Skip,
    /// Tag the image the host has (this id) with the name.
    Tag {
        id: String,
    },
    Send,
}

/// What a host has of an image: the id under its name, and whether it has the source's id
/// under any name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostImage {
    pub by_name: Option<String>,
    pub has_source_id: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetPlan {
    pub strategy: Strategy,
    pub image: String,
    pub version: String,
    /// Run on this machine's engine first (empty with `--image`).
    pub build: Vec<Step>,
    pub shipments: Vec<Shipment>,
    pub phases: Vec<Phase>,
    pub on_failure: OnFailure,
}

/// The phases of a release of `hosts` (in the order given) under `rollout`.
pub fn phases(rollout: &RolloutConfig, hosts: &[String]) -> Vec<Phase> {
    let all = |name: &str, action, parallel| Phase {
        name: name.to_string(),
        hosts: hosts.to_vec(),
        action,
        parallel,
        pause_after: None,
        window: None,
    };
    match rollout.strategy {
        Strategy::AllAtOnce => vec![all("all hosts", HostAction::Up, rollout.parallel)],
        Strategy::TwoPhase => vec![
            all(
                "phase 1: start and check everywhere",
                HostAction::Preview,
                rollout.parallel,
            ),
            Phase {
                window: Some(rollout.window.get()),
                // Every host switches at once, whatever `parallel` says: the window is the
                // point (each host's session is already open).
                ..all(
                    "phase 2: switch everywhere",
                    HostAction::Promote,
                    hosts.len(),
                )
            },
        ],
        Strategy::Rolling => {
            let size = rollout.batch_size(hosts.len()).unwrap_or(1);
            let batches: Vec<&[String]> = hosts.chunks(size).collect();
            let n = batches.len();
            let pause = rollout.pause.get();
            batches
                .into_iter()
                .enumerate()
                .map(|(i, batch)| Phase {
                    name: format!("batch {} of {n}", i + 1),
                    hosts: batch.to_vec(),
                    action: HostAction::Up,
                    parallel: rollout.parallel,
                    pause_after: (i + 1 < n && !pause.is_zero()).then_some(pause),
                    window: None,
                })
                .collect()
        }
    }
}

/// Which images go to which host: `images` each with its id on the engine shipping it (None:
/// built by this run, not yet known); `have`, per host, what it has of each image.
pub fn shipments(
    images: &[(String, Option<String>)],
    have: &[(String, Vec<HostImage>)],
) -> Vec<Shipment> {
    let mut out = Vec::new();
    for (host, held) in have {
        for ((image, source), h) in images.iter().zip(held) {
            let (action, why) = match (source, &h.by_name) {
                (Some(s), Some(id)) if s == id => {
                    (ShipAction::Skip, format!("has it ({})", short(id)))
                }
                (Some(s), _) if h.has_source_id => (
                    ShipAction::Tag { id: s.clone() },
                    format!("has this image ({}) under another name", short(s)),
                ),
                (_, None) => (ShipAction::Send, "does not have it".to_string()),
                (None, Some(_)) => (
                    ShipAction::Send,
                    "has an older build of this tag".to_string(),
                ),
                (Some(_), Some(id)) => (
                    ShipAction::Send,
                    format!("has another image by this name ({})", short(id)),
                ),
            };
            out.push(Shipment {
                host: host.clone(),
                image: image.clone(),
                action,
                why,
            });
        }
    }
    out
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

impl fmt::Display for FleetPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "release {} (version {}) to {} host(s), {:?}; on a failure: {:?} the hosts already switched",
            self.image,
            self.version,
            self.phases.iter().map(|p| p.hosts.len()).max().unwrap_or(0).max(
                self.phases.iter().flat_map(|p| &p.hosts).collect::<std::collections::BTreeSet<_>>().len()
            ),
            self.strategy,
            self.on_failure
        )?;
        let mut n = 0;
        let mut line = |f: &mut fmt::Formatter<'_>, text: String| {
            n += 1;
            writeln!(f, "  {n:>2}. {text}")
        };
        for step in &self.build {
            line(f, format!("on this machine: {step}"))?;
        }
        for s in &self.shipments {
            let text = match s.action {
                ShipAction::Send => format!("ship {} to {} ({})", s.image, s.host, s.why),
                ShipAction::Tag { .. } => {
                    format!("name {} on {}, nothing sent ({})", s.image, s.host, s.why)
                }
                ShipAction::Skip => format!("skip shipping {} to {}: {}", s.image, s.host, s.why),
            };
            line(f, text)?;
        }
        for p in &self.phases {
            let window = p.window.map_or(String::new(), |w| {
                format!(", all within {}", humantime::format_duration(w))
            });
            line(
                f,
                format!(
                    "{}: {} on {} ({} at a time{window})",
                    p.name,
                    p.action,
                    p.hosts.join(", "),
                    p.parallel.min(p.hosts.len())
                ),
            )?;
            if let Some(pause) = p.pause_after {
                line(f, format!("pause {}", humantime::format_duration(pause)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web-{i}")).collect()
    }

    fn rollout(strategy: Strategy, batch: &str, pause: Duration) -> RolloutConfig {
        RolloutConfig {
            strategy,
            batch: batch.into(),
            pause: pause.into(),
            ..RolloutConfig::default()
        }
    }

    #[test]
    fn rolling_batches_in_order_with_a_pause_between_not_after_the_last() {
        let p = phases(
            &rollout(Strategy::Rolling, "2", Duration::from_secs(5)),
            &hosts(5),
        );
        let batches: Vec<Vec<String>> = p.iter().map(|p| p.hosts.clone()).collect();
        assert_eq!(
            batches,
            vec![
                vec!["web-1".to_string(), "web-2".into()],
                vec!["web-3".into(), "web-4".into()],
                vec!["web-5".into()]
            ]
        );
        assert_eq!(p[0].name, "batch 1 of 3");
        assert_eq!(p[0].pause_after, Some(Duration::from_secs(5)));
        assert_eq!(p[2].pause_after, None);
        assert!(p.iter().all(|p| p.action == HostAction::Up));
    }

    #[test]
    fn two_phase_checks_everywhere_then_switches_every_host_at_once_within_the_window() {
        let mut r = rollout(Strategy::TwoPhase, "1", Duration::ZERO);
        r.parallel = 2;
        let p = phases(&r, &hosts(3));
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].action, p[0].parallel), (HostAction::Preview, 2));
        assert_eq!((p[1].action, p[1].parallel), (HostAction::Promote, 3));
        assert_eq!(p[1].window, Some(Duration::from_secs(5)));
        assert_eq!(p[1].hosts, hosts(3));
    }

    #[test]
    fn all_at_once_is_one_phase() {
        let p = phases(
            &rollout(Strategy::AllAtOnce, "1", Duration::ZERO),
            &hosts(3),
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].hosts, hosts(3));
    }

    #[test]
    fn an_image_is_shipped_only_where_that_very_image_is_missing() {
        let images = vec![
            ("app:v2".to_string(), Some("sha256:aaaa".to_string())),
            ("nginx:x".to_string(), Some("sha256:bbbb".to_string())),
        ];
        let held = |by_name: Option<&str>, has_source_id| HostImage {
            by_name: by_name.map(String::from),
            has_source_id,
        };
        let have = vec![
            (
                "web-1".to_string(),
                vec![held(Some("sha256:aaaa"), true), held(None, false)],
            ),
            (
                "web-2".to_string(),
                vec![
                    held(Some("sha256:old"), false),
                    held(Some("sha256:bbbb"), true),
                ],
            ),
            (
                "web-3".to_string(),
                vec![held(None, true), held(Some("sha256:bbbb"), true)],
            ),
        ];
        let s = shipments(&images, &have);
        let of = |host: &str, image: &str| {
            s.iter()
                .find(|s| s.host == host && s.image == image)
                .unwrap()
                .action
                .clone()
        };
        assert_eq!(of("web-1", "app:v2"), ShipAction::Skip);
        assert_eq!(of("web-1", "nginx:x"), ShipAction::Send);
        assert_eq!(of("web-2", "app:v2"), ShipAction::Send);
        assert_eq!(of("web-2", "nginx:x"), ShipAction::Skip);
        // The same image under another name (a new tag of an image already shipped): named, not sent.
        assert_eq!(
            of("web-3", "app:v2"),
            ShipAction::Tag {
                id: "sha256:aaaa".into()
            }
        );
        // A build of this run: its id is not known before it runs, so it goes everywhere.
        let built = shipments(
            &[("app:v3".to_string(), None)],
            &[("web-1".into(), vec![held(Some("sha256:aaaa"), true)])],
        );
        assert_eq!(built[0].action, ShipAction::Send);
    }
}
