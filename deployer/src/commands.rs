//! The commands: each observes the host, plans (pure), and executes, under the deploy lock when
//! it changes anything.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use crate::config::DeployConfig;
use crate::engine::Engine;
use crate::execute::{Executor, Timings};
use crate::host::Host;
use crate::plan::{self, ImageSource, Intent, Names, Observed, Plan, Slot, UpMode};
use crate::progress::Progress;
use crate::render::{self, Rendered};
use crate::state::{HistoryRecord, LockError, LockGuard, LockHolder, StateDir};

/// Exit codes, as documented in README.md.
pub mod exit {
    pub const OK: u8 = 0;
    /// The deploy or rollback failed; traffic stayed where it was (or, if the switch had
    /// happened, on the new healthy slot; the message says which).
    pub const FAILED: u8 = 1;
    /// deploy.yml or the command line is wrong.
    pub const CONFIG: u8 = 2;
    /// Another deploy holds the lock.
    pub const LOCKED: u8 = 3;
    /// The Docker engine cannot be reached.
    pub const DOCKER: u8 = 4;
    /// Rollback has nothing to go back to.
    pub const NOTHING_TO_ROLL_BACK: u8 = 5;
    /// A preflight check failed; nothing was changed.
    pub const PREFLIGHT: u8 = 6;
    /// A release is in preview or canary: promote or abort it first.
    pub const ON_TRIAL: u8 = 7;
    /// The bake saw the new release fail and sent traffic back.
    pub const BAKE_FAILED: u8 = 8;
    /// Rollback refused: the target release is older than the schema allows (`--force`).
    pub const SCHEMA: u8 = 9;
}

/// Turns maintenance mode on (with `message` on the page) or off, under the deploy lock; nginx
/// sees the page file on its next request (no reload). Recorded in the history.
pub async fn maintenance(
    config: &DeployConfig,
    on: bool,
    message: &str,
    progress: &Progress,
) -> Result<(), Failure> {
    let target = Target::connect(config).await?;
    let state = target.state(config);
    let command = if on {
        "maintenance on"
    } else {
        "maintenance off"
    };
    let _lock = lock(&state, command, progress)?;
    let dir = &config.nginx.rendered_dir;
    let flag = dir.join(render::MAINTENANCE_FLAG);
    let started = Instant::now();
    if on {
        // The page first, then the flag that makes nginx answer with it.
        let page = dir.join(render::MAINTENANCE_PAGE);
        target
            .host
            .write_atomic(&page, render::maintenance_page(message).as_bytes())?;
        target.host.write_atomic(&flag, b"on\n")?;
    } else {
        target.host.remove(&flag)?;
    }
    let observed = observe(&target, config).await?;
    state.record(&HistoryRecord {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        user: crate::state::whoami(),
        command: command.into(),
        outcome: "ok".into(),
        live_slot: observed.live.map(|s| s.name().to_string()),
        version: None,
        image: None,
        duration_ms: started.elapsed().as_millis() as u64,
        reason: on.then(|| message.to_string()),
        figures: None,
        schema: None,
        checks: vec![],
        smoke: vec![],
    })?;
    Ok(())
}

/// Takes the deploy lock for `command` (a stale holder's is taken over, and said so); exit 3
/// when a live process holds it.
pub fn lock(state: &StateDir, command: &str, progress: &Progress) -> Result<LockGuard, Failure> {
    let me = LockHolder::me(&format!("deployer {command}"));
    state
        .acquire(&me, |stale| {
            progress.note(&format!(
                "taking over a stale lock from {stale} (its process is gone)"
            ))
        })
        .map_err(|e| match e {
            LockError::Held(_) => Failure::new(exit::LOCKED, e),
            LockError::Io(e) => Failure::new(exit::FAILED, e),
        })
}

/// The last `n` releases (deploys and rollbacks), newest last.
pub async fn history(config: &DeployConfig, n: usize) -> Result<Vec<HistoryRecord>, Failure> {
    let all = state_dir(config).await?.history();
    Ok(all[all.len().saturating_sub(n)..].to_vec())
}

/// The preflight checks of `deployer check` (a host or engine that cannot be reached is a
/// failed check in the report, not an early exit).
pub async fn check(config: &DeployConfig) -> Result<crate::check::Report, Failure> {
    let env_keys = secret_env(config)
        .map(|secrets| env_keys(config, &secrets))
        .map_err(|f| format!("{:#}", f.error));
    let host = match Host::of(config).await {
        Ok(host) => host,
        Err(e) => {
            return Ok(crate::check::Report {
                checks: vec![crate::check::Check {
                    name: if config.remote.is_some() {
                        "ssh"
                    } else {
                        "host"
                    },
                    verdict: crate::check::Verdict::Fail,
                    detail: format!("{e:#}"),
                    fix: Some(
                        "see the message: the host, its key, the user or the identity".into(),
                    ),
                }],
            })
        }
    };
    let engine = host.engine().await;
    Ok(crate::check::gather(config, &host, engine.as_ref(), env_keys).await)
}

/// The keys the slots' environment will hold: `env`'s, and those of `secrets` (`env_file`'s
/// and `pass_env`'s, as [`secret_env`] read them).
pub fn env_keys(config: &DeployConfig, secrets: &[(String, String)]) -> Vec<String> {
    config
        .env
        .keys()
        .cloned()
        .chain(secrets.iter().map(|(k, _)| k.clone()))
        .collect()
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::new(exit::FAILED, e)
    }
}

pub type Outcome = Result<(), Failure>;

/// The host of `deploy.yml` and its Docker engine, connected.
pub struct Target {
    pub host: Host,
    pub engine: Engine,
}

impl Target {
    pub async fn connect(config: &DeployConfig) -> Result<Self, Failure> {
        let host = host(config).await?;
        let engine = host
            .engine()
            .await
            .map_err(|e| Failure::new(exit::DOCKER, e))?;
        Ok(Self { host, engine })
    }

    pub fn state(&self, config: &DeployConfig) -> StateDir {
        StateDir::new(self.host.clone(), config.state_dir())
    }
}

/// The host of `deploy.yml`, connected (over SSH for a remote one); exit code 4 when it
/// cannot be reached.
async fn host(config: &DeployConfig) -> Result<Host, Failure> {
    Host::of(config)
        .await
        .map_err(|e| Failure::new(exit::DOCKER, e))
}

/// The state directory on the host (no Docker engine needed: `deployer lock`).
pub async fn state_dir(config: &DeployConfig) -> Result<StateDir, Failure> {
    Ok(StateDir::new(host(config).await?, config.state_dir()))
}

/// Reads what is on the host now. Nothing is changed.
pub async fn observe(target: &Target, config: &DeployConfig) -> anyhow::Result<Observed> {
    let engine = &target.engine;
    let names = Names::of(config);
    let mut nginx = engine.container(&names.nginx).await?;
    let read = |p: &Path| target.host.read_string(p);
    let live_main = read(&config.nginx.rendered_dir.join("nginx.conf"));
    // What a running nginx says: the live slot and whether its socket directory is ready.
    // Without its base config nginx cannot be serving (Docker restarts it in a loop and may
    // catch it "running" for an instant; the plan treats it as not serving), so it is not
    // asked. An exec Docker refuses (409: restarting) means it is not running.
    let mut probed = None;
    if let Some(c) = nginx.as_mut().filter(|c| c.running && live_main.is_some()) {
        match nginx_probe(engine, &names.nginx).await {
            Ok(p) => probed = Some(p),
            Err(e) if crate::engine::is_conflict(&e) => c.running = false,
            Err(e) => return Err(e),
        }
    }
    let probe = probed.unwrap_or_else(|| Probe {
        // nginx is down: the last recorded live slot is the best knowledge.
        live: target
            .state(config)
            .history()
            .iter()
            .rev()
            .find(|r| r.outcome == "ok")
            .and_then(|r| r.live_slot.as_deref().and_then(Slot::parse)),
        ..Probe::default()
    });
    Ok(Observed {
        network: engine.network_exists(&names.network).await?,
        data_volume: engine.volume_exists(&names.data_volume).await?,
        socket_volume: engine.volume_exists(&names.socket_volume).await?,
        nginx,
        blue: engine.container(&names.blue).await?,
        green: engine.container(&names.green).await?,
        live_main,
        live_site: read(&config.nginx.rendered_dir.join("live").join("site.conf")),
        socket_dir_ready: probe.socket_dir_ready,
        live: probe.live,
        preview: probe.preview,
        routes: probe.routes,
        releases: releases(&target.state(config).history()),
    })
}

/// The releases that went live, newest first, one per version, from the history.
fn releases(history: &[HistoryRecord]) -> Vec<plan::Release> {
    let mut out: Vec<plan::Release> = Vec::new();
    // The commands that put a release live (a preview or canary record names the trial's
    // version, not the live one's).
    let went_live = |r: &&HistoryRecord| {
        r.outcome == "ok" && matches!(r.command.as_str(), "up" | "promote" | "rollback")
    };
    for r in history.iter().rev().filter(went_live) {
        let (Some(version), Some(image)) = (&r.version, &r.image) else {
            continue;
        };
        if out.iter().any(|o| &o.version == version) {
            continue;
        }
        // The schema was recorded when the release was deployed (possibly by an earlier record).
        let schema = history
            .iter()
            .rev()
            .filter(|h| h.version.as_ref() == Some(version))
            .find_map(|h| h.schema);
        out.push(plan::Release {
            version: version.clone(),
            image: image.clone(),
            schema,
        });
    }
    out
}

/// What a running nginx's socket directory says: the live slot, the preview, the routes, and
/// whether the slots may create their sockets there.
#[derive(Debug, Default, PartialEq)]
struct Probe {
    live: Option<Slot>,
    preview: Option<Slot>,
    routes: std::collections::BTreeMap<u8, String>,
    socket_dir_ready: bool,
}

/// One exec in nginx reads it all (`KEY VALUE` lines, parsed by [`Probe::parse`]).
const PROBE_SCRIPT: &str = r#"cd /run/slots || exit 1
echo "mode $(stat -c %a .)"
echo "live $(readlink live.sock)"
echo "preview $(readlink preview.sock)"
for f in route/*.sock; do [ -L "$f" ] && echo "route ${f#route/} $(readlink "$f")"; done
exit 0"#;

impl Probe {
    fn parse(text: &str) -> Self {
        let slot_of = |target: &str| Slot::parse(target.trim().trim_end_matches(".sock"));
        let mut probe = Probe::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("mode"), Some(mode), _) => probe.socket_dir_ready = mode == "1777",
                (Some("live"), Some(target), _) => probe.live = slot_of(target),
                (Some("preview"), Some(target), _) => probe.preview = slot_of(target),
                (Some("route"), Some(file), Some(target)) => {
                    if let Some(route) = file.strip_suffix(".sock").and_then(|r| r.parse().ok()) {
                        probe.routes.insert(route, target.to_string());
                    }
                }
                _ => {}
            }
        }
        probe
    }
}

async fn nginx_probe(engine: &Engine, nginx: &str) -> anyhow::Result<Probe> {
    let (code, text) = engine.exec(nginx, &["sh", "-c", PROBE_SCRIPT]).await?;
    anyhow::ensure!(
        code == 0,
        "cannot read {} in {nginx}: {text}",
        render::SOCKET_DIR
    );
    Ok(Probe::parse(&text))
}

pub fn render_config(config: &DeployConfig) -> Result<Rendered, Failure> {
    let vars = render::Vars {
        service: config.service.clone(),
        server_name: config.nginx.server_name.clone(),
        https_port: config.nginx.https_port,
        read_timeout_secs: 30,
    };
    render::render_files(&config.nginx.base, &config.nginx.template, &vars)
        .map_err(|e| Failure::new(exit::CONFIG, e))
}

/// KEY=VALUE lines of the env file (comments and blank lines skipped), then `pass_env` names
/// taken from the deployer's own environment.
pub fn secret_env(config: &DeployConfig) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    if let Some(path) = &config.env_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                exit::CONFIG,
                anyhow::anyhow!("env_file {}: {e}; create it (KEY=VALUE lines, e.g. HUBSPOT_ACCESS_TOKEN=...) or remove env_file from deploy.yml", path.display()),
            )
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((k, v)) = line.split_once('=') else {
                return Err(Failure::new(
                    exit::CONFIG,
                    anyhow::anyhow!(
                        "{}:{}: not KEY=VALUE (the value is not shown)",
                        path.display(),
                        i + 1
                    ),
                ));
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            out.push((k.trim().to_string(), v.to_string()));
        }
    }
    for key in &config.pass_env {
        if out.iter().any(|(k, _)| k == key) {
            continue;
        }
        match std::env::var(key) {
            Ok(v) => out.push((key.clone(), v)),
            Err(_) => {
                return Err(Failure::new(
                    exit::CONFIG,
                    anyhow::anyhow!("pass_env names {key}, but it is not set in this environment; export it or put it in env_file"),
                ))
            }
        }
    }
    Ok(out)
}

/// The version of the tree in `dir`: the git commit (12 hex), `-dirty` with uncommitted changes.
pub fn git_version(dir: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => format!("dev-{}", chrono::Utc::now().format("%Y%m%d%H%M%S")),
    }
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub dry_run: bool,
    pub skip_build: bool,
    pub image: Option<String>,
    pub mode: UpMode,
    pub no_bake: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            skip_build: false,
            image: None,
            mode: UpMode::Switch,
            no_bake: false,
        }
    }
}

/// How a command that moves traffic runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub no_bake: bool,
    /// `rollback --force`: past the schema check.
    pub force: bool,
    /// The caller holds the host's lock (a fleet takes every host's lock first).
    pub locked: bool,
}

/// What a command prints when it is done (or the plan, for a dry run).
pub struct Done {
    /// Where it ran ("this host", or the SSH target).
    pub host: String,
    pub plan: Plan,
    pub timings: Option<Timings>,
}

pub async fn up(
    config: &DeployConfig,
    opts: &UpOptions,
    progress: &Progress,
) -> Result<Done, Failure> {
    let source = match &opts.image {
        Some(reference) => ImageSource::Existing {
            reference: reference.clone(),
            version: reference
                .rsplit_once(':')
                .map_or("latest", |(_, t)| t)
                .to_string(),
        },
        None => {
            let version = git_version(&config.build.context);
            let tag = format!("{}:{version}", config.image);
            if opts.skip_build {
                ImageSource::Existing {
                    reference: tag,
                    version,
                }
            } else {
                ImageSource::Build { tag, version }
            }
        }
    };
    let run_opts = RunOptions {
        dry_run: opts.dry_run,
        no_bake: opts.no_bake,
        force: false,
        locked: false,
    };
    run(config, &Intent::Up(source, opts.mode), run_opts, progress).await
}

/// `rollback`, `promote`, `abort` and `canary PCT`: plans of the slots already on the host.
pub async fn act(
    config: &DeployConfig,
    intent: &Intent,
    opts: RunOptions,
    progress: &Progress,
) -> Result<Done, Failure> {
    run(config, intent, opts, progress).await
}

async fn run(
    config: &DeployConfig,
    intent: &Intent,
    opts: RunOptions,
    progress: &Progress,
) -> Result<Done, Failure> {
    let target = Target::connect(config).await?;
    run_on(&target, config, intent, opts, progress).await
}

/// Runs `intent` on the connected host `target` (one host of a fleet, or the only one): the
/// preflight checks for `up`, then the plan, under the host's lock unless the caller holds it
/// (`opts.locked`).
pub async fn run_on(
    target: &Target,
    config: &DeployConfig,
    intent: &Intent,
    opts: RunOptions,
    progress: &Progress,
) -> Result<Done, Failure> {
    let dry_run = opts.dry_run;
    let rendered = render_config(config)?;
    let secrets = secret_env(config)?;
    let mut preflight = Vec::new();
    if matches!(intent, Intent::Up(..)) {
        let keys = Ok(env_keys(config, &secrets));
        let report = crate::check::gather(config, &target.host, Ok(&target.engine), keys).await;
        progress.note("preflight checks (deployer check):");
        for check in &report.checks {
            progress.note(&format!("  {check}"));
            preflight.push(check.to_string());
        }
        let failed = report.failed();
        if !failed.is_empty() {
            let names: Vec<&str> = failed.iter().map(|c| c.name).collect();
            return Err(Failure::new(
                exit::PREFLIGHT,
                anyhow::anyhow!(
                    "preflight check failed ({}); nothing was changed; `deployer check` shows each with its fix",
                    names.join(", ")
                ),
            ));
        }
    }
    let user = crate::state::whoami();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let command = match intent {
        Intent::Up(..) => "up".to_string(),
        Intent::Rollback(_) => "rollback".to_string(),
        Intent::Promote => "promote".to_string(),
        Intent::Abort => "abort".to_string(),
        Intent::Canary(share) => format!("canary {share}"),
    };
    let state = target.state(config);
    let make_plan = |observed: &Observed| {
        let inputs = plan::Inputs {
            config,
            observed,
            rendered: &rendered,
            secret_env: &secrets,
            user: &user,
            now: &now,
            bake: !opts.no_bake,
            force: opts.force,
        };
        plan::plan(intent, &inputs).map_err(|e| {
            let code = match e {
                plan::PlanError::OnTrial(_) => exit::ON_TRIAL,
                plan::PlanError::SchemaTooOld(_) => exit::SCHEMA,
                _ => exit::NOTHING_TO_ROLL_BACK,
            };
            Failure::new(code, e)
        })
    };
    if dry_run {
        let plan = make_plan(&observe(target, config).await?)?;
        if let Some(holder) = state.holder().filter(|_| !opts.locked) {
            progress.note(&format!(
                "note: the deploy lock is held by {holder}; a real run would be refused"
            ));
        }
        return Ok(Done {
            host: target.host.to_string(),
            plan,
            timings: None,
        });
    }
    let _lock = if opts.locked {
        None
    } else {
        Some(lock(&state, &command, progress)?)
    };
    // Observed under the lock: nothing else changes the host while this plan runs.
    let plan = make_plan(&observe(target, config).await?)?;
    let started = Instant::now();
    let executor = Executor {
        engine: &target.engine,
        host: &target.host,
        rendered: &rendered,
        progress,
    };
    let result = executor.run(&plan).await;
    let live_before = plan.from.filter(|_| plan.intent != "abort");
    let (outcome, live) = match &result {
        Ok(_) => ("ok".to_string(), plan.live_after),
        Err(e) => match e.bake() {
            Some(failed) => (
                "rolled back by the bake".to_string(),
                Slot::parse(&failed.back_to).or(live_before),
            ),
            None if e.switched => ("failed after the switch".to_string(), Some(plan.to)),
            None => (format!("failed at step {}", e.step), live_before),
        },
    };
    let timings = match &result {
        Ok(t) => Some(t),
        Err(e) => Some(&e.timings).filter(|t| t.moved_at.is_some()),
    };
    state.record(&HistoryRecord {
        at: now.clone(),
        user: user.clone(),
        command: plan.intent.clone(),
        outcome,
        live_slot: live.map(|s| s.name().to_string()),
        version: Some(plan.version.clone()),
        image: Some(plan.image.clone()),
        duration_ms: started.elapsed().as_millis() as u64,
        reason: result.as_ref().err().map(|e| format!("{:#}", e.source)),
        figures: timings.map(crate::state::Figures::of),
        schema: match &result {
            Ok(t) => t.schema,
            Err(e) => e.timings.schema,
        },
        checks: preflight,
        smoke: match &result {
            Ok(t) => t.smoke.clone(),
            Err(e) => e.timings.smoke.clone(),
        },
    })?;
    match result {
        Ok(timings) => Ok(Done {
            host: target.host.to_string(),
            plan,
            timings: Some(timings),
        }),
        Err(e) if e.bake().is_some() => {
            Err(Failure::new(exit::BAKE_FAILED, anyhow::anyhow!("{e}")))
        }
        Err(e) => {
            let whereto = if e.switched {
                format!(
                    "traffic is on {} (healthy); the old slot may still be draining",
                    plan.to
                )
            } else {
                format!(
                    "traffic stayed on {}",
                    live.map_or("nothing (no slot was live)", Slot::name)
                )
            };
            Err(Failure::new(
                exit::FAILED,
                anyhow::anyhow!("{e}\n{whereto}"),
            ))
        }
    }
}

/// Runs build `steps` on this machine's engine (a fleet builds once, then ships).
pub async fn build_here(
    config: &DeployConfig,
    steps: &[crate::plan::Step],
    progress: &Progress,
) -> Outcome {
    let engine = Engine::connect()
        .await
        .map_err(|e| Failure::new(exit::DOCKER, e))?;
    let rendered = render_config(config)?;
    let executor = Executor {
        engine: &engine,
        host: &Host::Local,
        rendered: &rendered,
        progress,
    };
    executor.run_steps(steps).await?;
    Ok(())
}

/// `deployer status`: everything read from the host.
pub async fn status(config: &DeployConfig) -> Result<serde_json::Value, Failure> {
    let target = Target::connect(config).await?;
    let observed = observe(&target, config).await?;
    let state = target.state(config);
    let slot = |s: Slot| {
        observed.slot(s).map_or(json!(null), |c| {
            json!({
                "container": c.name,
                "state": c.status,
                "health": if c.running { c.health.clone() } else { None },
                "version": c.labels.get(plan::LABEL_VERSION),
                "image": c.image,
                "deployed_at": c.labels.get(plan::LABEL_DEPLOYED_AT),
                "deployed_by": c.labels.get(plan::LABEL_DEPLOYED_BY),
                "live": observed.live == Some(s),
            })
        })
    };
    let last = state.history().into_iter().last();
    let maintenance = target
        .host
        .is_file(&config.nginx.rendered_dir.join(render::MAINTENANCE_FLAG));
    Ok(json!({
        "preview": observed.on_trial().filter(|_| observed.preview.is_some()),
        "canary": observed.canary().map(|(slot, share)| json!({"slot": slot, "percent": share})),
        "maintenance": maintenance,
        "service": config.service,
        "host": target.host.to_string(),
        "live": observed.live,
        "nginx": observed.nginx.as_ref().map(|c| json!({"container": c.name, "state": c.status})),
        "slots": {"blue": slot(Slot::Blue), "green": slot(Slot::Green)},
        "last_deploy": last,
        "lock": state.holder(),
    }))
}

pub fn print_status(status: &serde_json::Value) {
    let live = status["live"].as_str().unwrap_or("none");
    println!(
        "service {} on {}: live slot {live}{}",
        status["service"].as_str().unwrap_or("?"),
        status["host"].as_str().unwrap_or("?"),
        if status["maintenance"] == true {
            "; MAINTENANCE MODE (every route but the probes answers 503)"
        } else {
            ""
        }
    );
    if let Some(slot) = status["preview"].as_str() {
        println!("  preview {slot} is on the preview port (deployer promote | abort | canary PCT)");
    }
    if let Some(canary) = status["canary"].as_object() {
        println!(
            "  canary {} takes {}% of clients (sticky); deployer promote | abort | canary PCT",
            canary["slot"].as_str().unwrap_or("?"),
            canary["percent"]
        );
    }
    let nginx = &status["nginx"];
    println!(
        "  nginx  {}",
        if nginx.is_null() {
            "missing".to_string()
        } else {
            format!(
                "{} ({})",
                nginx["container"].as_str().unwrap_or("?"),
                nginx["state"].as_str().unwrap_or("?")
            )
        }
    );
    for slot in ["blue", "green"] {
        let s = &status["slots"][slot];
        if s.is_null() {
            println!("  {slot:<6} no container");
        } else {
            println!(
                "  {slot:<6} {} {} version {}, health {}{}",
                s["container"].as_str().unwrap_or("?"),
                s["state"].as_str().unwrap_or("?"),
                s["version"].as_str().unwrap_or("?"),
                s["health"].as_str().unwrap_or("n/a"),
                if s["live"] == true { "  <- live" } else { "" }
            );
        }
    }
    match status["last_deploy"].as_object() {
        Some(d) => println!(
            "  last   {} by {} at {}: {} (version {})",
            d["command"].as_str().unwrap_or("?"),
            d["user"].as_str().unwrap_or("?"),
            d["at"].as_str().unwrap_or("?"),
            d["outcome"].as_str().unwrap_or("?"),
            d["version"].as_str().unwrap_or("?")
        ),
        None => println!("  last   never deployed"),
    }
    if let Some(lock) = status["lock"].as_object() {
        println!(
            "  lock   held by {}@{} since {} ({})",
            lock["user"].as_str().unwrap_or("?"),
            lock["host"].as_str().unwrap_or("?"),
            lock["since"].as_str().unwrap_or("?"),
            lock["command"].as_str().unwrap_or("?")
        );
    }
}

/// `deployer logs [slot]`: the live slot's by default.
pub async fn logs(config: &DeployConfig, slot: Option<Slot>, follow: bool, tail: usize) -> Outcome {
    let target = Target::connect(config).await?;
    let slot = match slot {
        Some(s) => s,
        None => observe(&target, config)
            .await?
            .live
            .context("no slot is live yet; name one: deployer logs blue")?,
    };
    let names = Names::of(config);
    target.engine.logs(names.slot(slot), follow, tail).await?;
    Ok(())
}

/// `deployer prune`: removes images of the service beyond the newest `keep_images`, never one a
/// slot container uses. Returns the removed references.
pub async fn prune(config: &DeployConfig, dry_run: bool) -> Result<Vec<String>, Failure> {
    let target = Target::connect(config).await?;
    let engine = &target.engine;
    let observed = observe(&target, config).await?;
    let in_use: Vec<&str> = [&observed.blue, &observed.green]
        .into_iter()
        .flatten()
        .map(|c| c.image.as_str())
        .collect();
    let images = engine.images(&config.image).await?;
    let mut removed = Vec::new();
    for image in images.iter().skip(config.keep_images as usize) {
        for tag in &image.tags {
            if in_use.contains(&tag.as_str()) || tag.ends_with(":latest") {
                continue;
            }
            if !dry_run {
                engine.remove_image(tag).await?;
            }
            removed.push(tag.clone());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_reads_live_preview_routes_and_the_socket_dir_mode() {
        let probe = Probe::parse(
            "mode 1777\nlive green.sock\npreview blue.sock\nroute 0.sock ../blue.sock\nroute 1.sock ../live.sock\nroute x.sock ../live.sock\n",
        );
        assert_eq!(probe.live, Some(Slot::Green));
        assert_eq!(probe.preview, Some(Slot::Blue));
        assert!(probe.socket_dir_ready);
        assert_eq!(probe.routes.len(), 2, "{:?}", probe.routes);
        assert_eq!(probe.routes[&0], "../blue.sock");
        // A fresh volume: no links yet, root's mode.
        let probe = Probe::parse("mode 755\nlive \npreview \n");
        assert_eq!(probe, Probe::default());
    }
}
