//! Runs a release across a fleet: connect every host, take every host's lock (in name order,
//! so two deployers never hold half each), check every host, build once, ship the images each
//! host lacks, then the phases of [`super::phases`]. Each host's part is the single-host plan
//! (`commands::run_on`), so a host switches exactly as a lone host does. A failure stops the
//! release; the hosts it already switched go back (or stay, `rollout.on_failure: keep`), and
//! the summary says which host serves which release.
//! May not import `main` or `cli`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{stream, StreamExt};
use serde::Serialize;

use super::{phases, shipments, FleetPlan, HostAction, HostImage, Phase, ShipAction};
use crate::balancer::{self, Balancer, Route};
use crate::commands::{self, exit, Done, Failure, RunOptions, Target, UpOptions};
use crate::config::{DeployConfig, HostEntry, OnFailure};
use crate::engine::Engine;
use crate::plan::{ImageSource, Intent, UpMode};
use crate::progress::Progress;
use crate::state::LockGuard;

/// A host of the fleet, connected.
pub struct Member {
    pub entry: HostEntry,
    /// Its one-host config (`DeployConfig::for_host`).
    pub config: DeployConfig,
    pub target: Target,
}

/// Connects to every host at once (at most `rollout.parallel` connecting together).
pub async fn connect(config: &DeployConfig) -> Result<Vec<Member>, Failure> {
    let parallel = config.rollout.parallel;
    let connected: Vec<(HostEntry, Result<Target, Failure>)> =
        stream::iter(config.fleet().into_iter().map(|entry| async move {
            let one = config.for_host(&entry);
            let target = Target::connect(&one).await;
            (entry, target)
        }))
        .buffered(parallel)
        .collect()
        .await;
    let mut members = Vec::new();
    let mut unreachable = Vec::new();
    for (entry, target) in connected {
        match target {
            Ok(target) => members.push(Member {
                config: config.for_host(&entry),
                entry,
                target,
            }),
            Err(f) => unreachable.push(format!("{}: {:#}", entry.name, f.error)),
        }
    }
    if !unreachable.is_empty() {
        return Err(Failure::new(
            exit::DOCKER,
            anyhow::anyhow!(
                "cannot reach {} of {} host(s); nothing was changed:\n  {}",
                unreachable.len(),
                unreachable.len() + members.len(),
                unreachable.join("\n  ")
            ),
        ));
    }
    Ok(members)
}

/// Every host's lock, taken in name order; on a refusal the ones taken are let go.
pub fn lock_all(
    members: &[Member],
    command: &str,
    progress: &Progress,
) -> Result<Vec<LockGuard>, Failure> {
    let mut order: Vec<&Member> = members.iter().collect();
    order.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
    let mut guards = Vec::new();
    for m in order {
        let state = m.target.state(&m.config);
        let guard = commands::lock(&state, &format!("{command} (fleet)"), progress)
            .map_err(|f| Failure::new(f.code, f.error.context(format!("host {}", m.entry.name))))?;
        guards.push(guard);
    }
    Ok(guards)
}

/// Where a host ended up.
#[derive(Debug, Clone, Serialize)]
pub struct HostOutcome {
    pub host: String,
    /// `switched`, `in preview`, `rolled back`, `kept (on_failure: keep)`, `failed: …`,
    /// `not reached`.
    pub outcome: String,
    /// The release it serves now, as far as the deployer knows.
    pub version: Option<String>,
    pub ok: bool,
    #[serde(skip)]
    pub moved_at: Option<SystemTime>,
}

#[derive(Serialize)]
pub struct FleetReport {
    pub plan: FleetPlan,
    pub dry_run: bool,
    pub hosts: Vec<HostOutcome>,
    /// Per host, the single-host plan of its first phase (dry run) .
    #[serde(skip)]
    pub host_plans: Vec<(String, Done)>,
    /// Each image shipped: bytes, seconds, MB/s.
    pub shipped: Vec<ShipFigures>,
    /// two_phase: from the first host's switch to the last's.
    pub mixed_window_ms: Option<u64>,
    pub balancer: Option<String>,
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShipFigures {
    pub image: String,
    pub hosts: Vec<String>,
    pub bytes: u64,
    pub seconds: f64,
    /// To each host (the stream's rate); times the hosts for the total.
    pub mb_per_s: f64,
}

/// `deployer up` on a fleet.
pub async fn up(
    config: &DeployConfig,
    opts: &UpOptions,
    progress: &Progress,
) -> Result<FleetReport, Failure> {
    let started = Instant::now();
    let members = connect(config).await?;
    let names: Vec<String> = members.iter().map(|m| m.entry.name.clone()).collect();
    let local = Engine::connect().await.map_err(|e| {
        Failure::new(
            exit::DOCKER,
            e.context("this machine's engine builds and ships the images"),
        )
    })?;
    let (image, version, build) = match &opts.image {
        Some(reference) => (
            reference.clone(),
            reference
                .rsplit_once(':')
                .map_or("latest", |(_, t)| t)
                .to_string(),
            Vec::new(),
        ),
        None => {
            let version = commands::git_version(&config.build.context);
            let tag = format!("{}:{version}", config.image);
            let build = if opts.skip_build {
                Vec::new()
            } else {
                crate::plan::build_steps(config, &tag)
            };
            (tag, version, build)
        }
    };
    let wanted = [image.clone(), config.nginx.image.clone()];
    let mut images = Vec::new();
    for (i, reference) in wanted.iter().enumerate() {
        let id = if i == 0 && !build.is_empty() {
            None
        } else {
            let id = local.image_id(reference).await?;
            if id.is_none() {
                return Err(Failure::new(
                    exit::PREFLIGHT,
                    anyhow::anyhow!(
                        "{reference} is not on this machine's engine, which ships images to the hosts; {}",
                        if i == 0 { "build it (drop --skip-build) or pass --image with one that is" } else { "make it: scripts/make-base-images.sh" }
                    ),
                ));
            }
            id
        };
        images.push((reference.clone(), id));
    }
    let have = holdings(&members, &images).await?;
    let plan = FleetPlan {
        strategy: config.rollout.strategy,
        image: image.clone(),
        version: version.clone(),
        build: build.clone(),
        shipments: shipments(&images, &have),
        phases: phases(&config.rollout, &names),
        on_failure: config.rollout.on_failure,
    };
    let source = ImageSource::Existing {
        reference: image.clone(),
        version: version.clone(),
    };
    if opts.dry_run {
        let first = plan.phases.first().map_or(HostAction::Up, |p| p.action);
        let mut host_plans = Vec::new();
        for m in &members {
            let intent = intent_of(first, &source);
            let run = RunOptions {
                dry_run: true,
                no_bake: opts.no_bake,
                ..RunOptions::default()
            };
            let done = commands::run_on(
                &m.target,
                &m.config,
                &intent,
                run,
                &progress.for_host(&m.entry.name),
            )
            .await
            .map_err(|f| Failure::new(f.code, f.error.context(format!("host {}", m.entry.name))))?;
            host_plans.push((m.entry.name.clone(), done));
        }
        return Ok(FleetReport {
            plan,
            dry_run: true,
            hosts: Vec::new(),
            host_plans,
            shipped: Vec::new(),
            mixed_window_ms: None,
            balancer: None,
            took_ms: started.elapsed().as_millis() as u64,
        });
    }

    let _locks = lock_all(&members, "up", progress)?;
    preflight(&members, progress).await?;
    if !build.is_empty() {
        progress.note(&format!("building {image} on this machine"));
        commands::build_here(config, &build, progress).await?;
        images[0].1 = local.image_id(&image).await?;
        // Known now: a host that has this very build is skipped.
        let fresh = shipments(&images, &holdings(&members, &images).await?);
        return finish(
            config,
            members,
            plan_with(plan, fresh),
            local,
            opts,
            progress,
            started,
        )
        .await;
    }
    finish(config, members, plan, local, opts, progress, started).await
}

/// What each host has of each image.
async fn holdings(
    members: &[Member],
    images: &[(String, Option<String>)],
) -> Result<Vec<(String, Vec<HostImage>)>, Failure> {
    let mut have = Vec::new();
    for m in members {
        let mut held = Vec::new();
        for (reference, source) in images {
            let engine = &m.target.engine;
            let by_name = engine.image_id(reference).await?;
            let has_source_id = match source {
                Some(id) if by_name.as_ref() != Some(id) => engine.image_id(id).await?.is_some(),
                Some(_) => true,
                None => false,
            };
            held.push(HostImage {
                by_name,
                has_source_id,
            });
        }
        have.push((m.entry.name.clone(), held));
    }
    Ok(have)
}

fn plan_with(mut plan: FleetPlan, shipments: Vec<super::Shipment>) -> FleetPlan {
    plan.shipments = shipments;
    plan
}

/// The part after the build: shipping, the balancer, the phases.
async fn finish(
    config: &DeployConfig,
    members: Vec<Member>,
    plan: FleetPlan,
    local: Engine,
    opts: &UpOptions,
    progress: &Progress,
    started: Instant,
) -> Result<FleetReport, Failure> {
    let shipped = ship_all(&members, &plan, &local, progress).await?;
    let balancer = ensure_balancer(config, progress).await?;
    let starting =
        hold_back_idle_hosts(&members, balancer.as_ref().map(|(b, _)| b), progress).await?;
    let source = ImageSource::Existing {
        reference: plan.image.clone(),
        version: plan.version.clone(),
    };
    let mut outcomes: BTreeMap<String, HostOutcome> = members
        .iter()
        .map(|m| {
            (
                m.entry.name.clone(),
                HostOutcome {
                    host: m.entry.name.clone(),
                    outcome: "not reached".into(),
                    version: None,
                    ok: false,
                    moved_at: None,
                },
            )
        })
        .collect();
    let by_name: BTreeMap<&str, &Member> =
        members.iter().map(|m| (m.entry.name.as_str(), m)).collect();
    let mut failure: Option<String> = None;
    let mut mixed_window = None;
    for (i, phase) in plan.phases.iter().enumerate() {
        progress.note(&format!(
            "{}: {} on {}",
            phase.name,
            phase.action,
            phase.hosts.join(", ")
        ));
        let results = run_phase(&by_name, phase, &source, opts.no_bake, progress).await;
        for (host, result) in results {
            let o = outcomes.get_mut(&host).expect("a member");
            match result {
                Ok(done) => {
                    if let (Some((b, _)), true) = (&balancer, starting.contains(&host)) {
                        if phase.action != HostAction::Preview {
                            b.set_route(&host, Route::Up).await?;
                            progress
                                .note(&format!("{host} serves: back in the balancer's rotation"));
                        }
                    }
                    o.ok = true;
                    o.outcome = match phase.action {
                        HostAction::Preview => "in preview".into(),
                        _ => "switched".into(),
                    };
                    if phase.action != HostAction::Preview {
                        o.version = Some(plan.version.clone());
                        o.moved_at = done.timings.as_ref().and_then(|t| t.moved_at);
                    }
                }
                Err(f) => {
                    o.ok = false;
                    o.outcome = format!("failed: {:#}", f.error)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    failure.get_or_insert_with(|| format!("host {host}: {:#}", f.error));
                }
            }
        }
        if let Some(window) = phase.window {
            let moved: Vec<SystemTime> = phase
                .hosts
                .iter()
                .filter_map(|h| outcomes[h].moved_at)
                .collect();
            if let (Some(first), Some(last)) = (moved.iter().min(), moved.iter().max()) {
                let took = last.duration_since(*first).unwrap_or_default();
                mixed_window = Some(took.as_millis() as u64);
                progress.note(&format!(
                    "two versions served together for {} ms (window {} ms)",
                    took.as_millis(),
                    window.as_millis()
                ));
                if took > window && failure.is_none() {
                    failure = Some(format!(
                        "the switches took {} ms, more than rollout.window ({} ms)",
                        took.as_millis(),
                        window.as_millis()
                    ));
                }
            }
        }
        if failure.is_some() {
            break;
        }
        if let Some(pause) = phase.pause_after.filter(|_| i + 1 < plan.phases.len()) {
            progress.note(&format!(
                "pausing {} before the next batch",
                humantime::format_duration(pause)
            ));
            tokio::time::sleep(pause).await;
        }
    }
    if let Some(why) = &failure {
        recover(
            &by_name,
            &mut outcomes,
            config.rollout.on_failure,
            opts.no_bake,
            progress,
        )
        .await;
        let report = summary(outcomes.values());
        return Err(Failure::new(
            exit::FAILED,
            anyhow::anyhow!("the release stopped: {why}\nwhere each host is now:\n{report}"),
        ));
    }
    Ok(FleetReport {
        plan,
        dry_run: false,
        hosts: outcomes.into_values().collect(),
        host_plans: Vec::new(),
        shipped,
        mixed_window_ms: mixed_window,
        balancer: balancer.map(|(_, what)| what),
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// Hosts that do not serve now (no nginx running, or no live slot running: a first deploy, a
/// host back from a failure) are taken out of the balancer's rotation while the release brings
/// them up, so the balancer never sends them a request they would answer 502 (a POST is not
/// retried elsewhere once sent). Returns them; each goes back once its switch is done. A host
/// the operator drained stays drained.
async fn hold_back_idle_hosts(
    members: &[Member],
    balancer: Option<&Balancer>,
    progress: &Progress,
) -> Result<std::collections::BTreeSet<String>, Failure> {
    let mut starting = std::collections::BTreeSet::new();
    let Some(b) = balancer else {
        return Ok(starting);
    };
    for m in members {
        let observed = commands::observe(&m.target, &m.config).await?;
        if observed.serving() {
            continue;
        }
        match b.route(&m.entry.name).await {
            Some(Route::Drained) => {}
            _ => {
                b.set_route(&m.entry.name, Route::Starting).await?;
                progress.note(&format!(
                    "{} does not serve yet: out of the balancer's rotation until its switch",
                    m.entry.name
                ));
                starting.insert(m.entry.name.clone());
            }
        }
    }
    Ok(starting)
}

fn intent_of(action: HostAction, source: &ImageSource) -> Intent {
    match action {
        HostAction::Up => Intent::Up(source.clone(), UpMode::Switch),
        HostAction::Preview => Intent::Up(source.clone(), UpMode::Preview),
        HostAction::Promote => Intent::Promote,
    }
}

/// The phase's hosts, at most `phase.parallel` at once; each host's result.
async fn run_phase(
    members: &BTreeMap<&str, &Member>,
    phase: &Phase,
    source: &ImageSource,
    no_bake: bool,
    progress: &Progress,
) -> Vec<(String, Result<Done, Failure>)> {
    let intent = intent_of(phase.action, source);
    stream::iter(phase.hosts.iter().map(|host| {
        let m = members[host.as_str()];
        let intent = intent.clone();
        async move {
            let opts = RunOptions {
                no_bake,
                locked: true,
                ..RunOptions::default()
            };
            let p = progress.for_host(host);
            let result = commands::run_on(&m.target, &m.config, &intent, opts, &p).await;
            (host.clone(), result)
        }
    }))
    .buffer_unordered(phase.parallel.max(1))
    .collect()
    .await
}

/// After a failure: hosts switched by this run go back (`rollback`), or stay (`keep`); hosts
/// left in preview are withdrawn (`abort`) either way, so each serves one release.
async fn recover(
    members: &BTreeMap<&str, &Member>,
    outcomes: &mut BTreeMap<String, HostOutcome>,
    on_failure: OnFailure,
    no_bake: bool,
    progress: &Progress,
) {
    let todo: Vec<(String, Intent)> = outcomes
        .values()
        .filter(|o| o.ok)
        .filter_map(|o| match (o.outcome.as_str(), on_failure) {
            ("in preview", _) => Some((o.host.clone(), Intent::Abort)),
            ("switched", OnFailure::Rollback) => Some((o.host.clone(), Intent::Rollback(None))),
            _ => None,
        })
        .collect();
    for o in outcomes
        .values_mut()
        .filter(|o| o.ok && o.outcome == "switched")
    {
        if on_failure == OnFailure::Keep {
            o.outcome = "switched, kept (rollout.on_failure: keep)".into();
        }
    }
    let results: Vec<(String, &'static str, Result<Done, Failure>)> =
        stream::iter(todo.into_iter().map(|(host, intent)| async move {
            let m = members[host.as_str()];
            let what = if intent == Intent::Abort {
                "preview withdrawn"
            } else {
                "rolled back"
            };
            let opts = RunOptions {
                no_bake,
                locked: true,
                ..RunOptions::default()
            };
            let p = progress.for_host(&host);
            (
                host,
                what,
                commands::run_on(&m.target, &m.config, &intent, opts, &p).await,
            )
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    for (host, what, result) in results {
        let o = outcomes.get_mut(&host).expect("a member");
        match result {
            Ok(done) => {
                o.outcome = what.to_string();
                o.version = Some(done.plan.version.clone()).filter(|_| what == "rolled back");
            }
            Err(f) => {
                o.ok = false;
                o.outcome = format!("{what} FAILED: {:#}", f.error)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        }
    }
}

/// One line per host.
pub fn summary<'a>(outcomes: impl Iterator<Item = &'a HostOutcome>) -> String {
    outcomes
        .map(|o| {
            format!(
                "  {:<16} {:<40} {}",
                o.host,
                o.outcome,
                o.version
                    .as_deref()
                    .map_or(String::new(), |v| format!("version {v}"))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every host's preflight checks, before anything is sent or changed.
async fn preflight(members: &[Member], progress: &Progress) -> Result<(), Failure> {
    let mut failed = Vec::new();
    for m in members {
        let secrets = commands::secret_env(&m.config)?;
        let keys = Ok(commands::env_keys(&m.config, &secrets));
        let report =
            crate::check::gather(&m.config, &m.target.host, Ok(&m.target.engine), keys).await;
        for check in report.failed() {
            failed.push(format!("{}: {check}", m.entry.name));
        }
    }
    if failed.is_empty() {
        progress.note("preflight checks passed on every host");
        return Ok(());
    }
    Err(Failure::new(
        exit::PREFLIGHT,
        anyhow::anyhow!(
            "preflight check failed; nothing was sent or changed:\n  {}",
            failed.join("\n  ")
        ),
    ))
}

/// Sends every image a host lacks, each image exported once and streamed to its hosts at once.
async fn ship_all(
    members: &[Member],
    plan: &FleetPlan,
    local: &Engine,
    progress: &Progress,
) -> Result<Vec<ShipFigures>, Failure> {
    let mut figures = Vec::new();
    let mut images: Vec<&str> = plan.shipments.iter().map(|s| s.image.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    for s in &plan.shipments {
        match &s.action {
            ShipAction::Send => {}
            ShipAction::Skip => progress.note(&format!("{}: {} {}", s.host, s.image, s.why)),
            ShipAction::Tag { id } => {
                let m = members
                    .iter()
                    .find(|m| m.entry.name == s.host)
                    .expect("a member");
                m.target.engine.tag_image(id, &s.image).await?;
                progress.note(&format!(
                    "{}: {} {}: named, nothing sent",
                    s.host, s.image, s.why
                ));
            }
        }
    }
    for image in images {
        let targets: Vec<(String, Engine)> = plan
            .shipments
            .iter()
            .filter(|s| s.action == ShipAction::Send && s.image == image)
            .filter_map(|s| {
                members
                    .iter()
                    .find(|m| m.entry.name == s.host)
                    .map(|m| (s.host.clone(), m.target.engine.clone()))
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        progress.note(&format!("shipping {image} to {}", names.join(", ")));
        let shipped = super::ship::ship(local, image, &targets).await;
        let failed: Vec<String> = shipped
            .hosts
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h}: {e}")))
            .collect();
        if !failed.is_empty() {
            return Err(Failure::new(
                exit::FAILED,
                anyhow::anyhow!(
                    "shipping {image} failed; no host was switched:\n  {}",
                    failed.join("\n  ")
                ),
            ));
        }
        progress.note(&format!(
            "shipped {image}: {:.1} MB to {} host(s) in {:.2}s ({:.1} MB/s to each, {:.1} MB/s in all)",
            shipped.bytes as f64 / 1e6,
            names.len(),
            shipped.took.as_secs_f64(),
            shipped.mb_per_s(),
            shipped.mb_per_s() * names.len() as f64
        ));
        figures.push(ShipFigures {
            image: image.to_string(),
            hosts: names,
            bytes: shipped.bytes,
            seconds: shipped.took.as_secs_f64(),
            mb_per_s: shipped.mb_per_s(),
        });
    }
    Ok(figures)
}

/// Starts the balancer, or brings its host list up to date; None without `balancer:`.
pub async fn ensure_balancer(
    config: &DeployConfig,
    progress: &Progress,
) -> Result<Option<(Balancer, String)>, Failure> {
    let Some(b) = Balancer::connect(config)
        .await
        .map_err(|e| Failure::new(exit::DOCKER, e))?
    else {
        return Ok(None);
    };
    let template = Balancer::template(&b.config)?;
    let rendered = balancer::render(
        &template,
        &config.service,
        &Balancer::members(config),
        b.config.fail_timeout.get(),
    )?;
    let what = b.ensure(&rendered).await?;
    progress.note(&what);
    Ok(Some((b, what)))
}

/// `rollback [VERSION]`, `promote`, `abort`, `canary PCT` on a fleet: every host at once.
pub async fn act(
    config: &DeployConfig,
    intent: &Intent,
    opts: RunOptions,
    progress: &Progress,
) -> Result<Vec<HostOutcome>, Failure> {
    let members = connect(config).await?;
    let _locks = if opts.dry_run {
        Vec::new()
    } else {
        lock_all(&members, &format!("{intent:?}").to_lowercase(), progress)?
    };
    let results: Vec<(String, Result<Done, Failure>)> =
        stream::iter(members.iter().map(|m| async move {
            let opts = RunOptions {
                locked: true,
                ..opts
            };
            let p = progress.for_host(&m.entry.name);
            (
                m.entry.name.clone(),
                commands::run_on(&m.target, &m.config, intent, opts, &p).await,
            )
        }))
        .buffer_unordered(config.rollout.parallel.max(members.len()))
        .collect()
        .await;
    let mut outcomes: Vec<HostOutcome> = results
        .into_iter()
        .map(|(host, r)| match r {
            Ok(done) => HostOutcome {
                host,
                outcome: if opts.dry_run {
                    format!("would run:\n{}", done.plan)
                } else {
                    format!(
                        "{}: {} is live",
                        done.plan.intent,
                        done.plan.live_after.map_or("nothing", |s| s.name())
                    )
                },
                version: Some(done.plan.version.clone()),
                ok: true,
                moved_at: done.timings.and_then(|t| t.moved_at),
            },
            Err(f) => HostOutcome {
                host,
                outcome: format!("failed: {:#}", f.error),
                version: None,
                ok: false,
                moved_at: None,
            },
        })
        .collect();
    outcomes.sort_by(|a, b| a.host.cmp(&b.host));
    if outcomes.iter().any(|o| !o.ok) {
        return Err(Failure::new(
            exit::FAILED,
            anyhow::anyhow!("failed on some hosts:\n{}", summary(outcomes.iter())),
        ));
    }
    Ok(outcomes)
}

/// `deployer status` on a fleet: each host's status, and the balancer's.
pub async fn status(config: &DeployConfig) -> Result<serde_json::Value, Failure> {
    let hosts = config.fleet();
    let statuses: Vec<serde_json::Value> = stream::iter(hosts.iter().map(|h| async move {
        let one = config.for_host(h);
        match commands::status(&one).await {
            Ok(mut s) => {
                s["name"] = h.name.clone().into();
                s
            }
            Err(f) => serde_json::json!({"name": h.name, "error": format!("{:#}", f.error)}),
        }
    }))
    .buffered(config.rollout.parallel)
    .collect()
    .await;
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let balancer = match Balancer::connect(config).await {
        Ok(Some(b)) => match b.status(&names).await {
            Ok(s) => serde_json::to_value(s).expect("serializable"),
            Err(e) => serde_json::json!({"error": format!("{e:#}")}),
        },
        Ok(None) => serde_json::Value::Null,
        Err(e) => serde_json::json!({"error": format!("{e:#}")}),
    };
    Ok(serde_json::json!({"service": config.service, "hosts": statuses, "balancer": balancer}))
}

/// `deployer hosts drain|undrain NAME`.
pub async fn drain(config: &DeployConfig, name: &str, drained: bool) -> Result<(), Failure> {
    if !config.fleet().iter().any(|h| h.name == name) {
        let names: Vec<String> = config.fleet().into_iter().map(|h| h.name).collect();
        return Err(Failure::new(
            exit::CONFIG,
            anyhow::anyhow!(
                "no host named {name} in deploy.yml; the hosts: {}",
                names.join(", ")
            ),
        ));
    }
    let b = Balancer::connect(config)
        .await
        .map_err(|e| Failure::new(exit::DOCKER, e))?
        .ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                anyhow::anyhow!(
                    "deploy.yml has no balancer: section; drain the host in your own load balancer"
                ),
            )
        })?;
    b.set_route(name, if drained { Route::Drained } else { Route::Up })
        .await?;
    if drained {
        // Connections already open to it carry their last requests and close within a second
        // (the balancer's keepalive_time): wait them out, so "drained" means no more traffic.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    Ok(())
}
