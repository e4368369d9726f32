//! The deploy plan: what `up` and `rollback` will do, computed as data by pure code from the
//! configuration and what was observed on the host. `--dry-run` prints this plan; a real run
//! executes exactly this plan ([`crate::execute`]). Nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::DeployConfig;
use crate::engine::{ContainerInfo, ContainerSpec, MountSpec};
use crate::render::{self, Rendered};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Self {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "blue" => Some(Slot::Blue),
            "green" => Some(Slot::Green),
            _ => None,
        }
    }

    /// The socket file a slot listens on, as named in the shared socket directory.
    pub fn socket_file(self) -> String {
        format!("{}.sock", self.name())
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Labels the deployer puts on what it creates.
pub const LABEL_SERVICE: &str = "deployer.service";
pub const LABEL_SLOT: &str = "deployer.slot";
pub const LABEL_VERSION: &str = "deployer.version";
pub const LABEL_DEPLOYED_AT: &str = "deployer.deployed_at";
pub const LABEL_DEPLOYED_BY: &str = "deployer.deployed_by";

/// Names of everything a service owns on the host, derived from the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Names {
    pub network: String,
    pub data_volume: String,
    pub socket_volume: String,
    pub nginx: String,
    pub blue: String,
    pub green: String,
}

impl Names {
    pub fn of(config: &DeployConfig) -> Self {
        let s = &config.service;
        Self {
            network: format!("{s}-net"),
            data_volume: format!("{s}-data"),
            socket_volume: format!("{s}-sockets"),
            nginx: config.nginx.container.clone(),
            blue: format!("{s}-blue"),
            green: format!("{s}-green"),
        }
    }

    pub fn slot(&self, slot: Slot) -> &str {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }
}

/// What was on the host when the plan was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The slot `live.sock` points at; `None` before the first deploy.
    pub live: Option<Slot>,
    pub network: bool,
    pub data_volume: bool,
    pub socket_volume: bool,
    pub nginx: Option<ContainerInfo>,
    pub blue: Option<ContainerInfo>,
    pub green: Option<ContainerInfo>,
    /// The rendered files nginx is using now (`None` when absent).
    pub live_main: Option<String>,
    pub live_site: Option<String>,
    /// nginx is running and its socket directory is writable by the slots (mode 1777); false
    /// for a socket volume made by someone else (compose) until the deployer prepares it.
    pub socket_dir_ready: bool,
    /// The slot `preview.sock` points at.
    pub preview: Option<Slot>,
    /// The live upstream's routes and their symlinks' targets (`../live.sock`, or
    /// `../green.sock` for a route in a canary's share).
    pub routes: BTreeMap<u8, String>,
    /// The releases that went live, newest first (from the history), one per version.
    pub releases: Vec<Release>,
}

/// A release that went live, as the history remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    pub image: String,
    pub schema: Option<Schema>,
}

/// A release's database schema, as its image reports it (deploy.yml `schema:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Schema {
    /// The newest migration the release applies.
    pub version: i64,
    /// The oldest schema version whose code can still run on this release's schema (migrations
    /// after it only added). A contract migration raises it.
    pub oldest_compatible: i64,
}

impl Observed {
    /// nginx runs and the live slot's container runs: the host answers requests.
    pub fn serving(&self) -> bool {
        let running = |c: Option<&ContainerInfo>| c.is_some_and(|c| c.running);
        running(self.nginx.as_ref()) && self.live.is_some_and(|s| running(self.slot(s)))
    }

    pub fn slot(&self, slot: Slot) -> Option<&ContainerInfo> {
        match slot {
            Slot::Blue => self.blue.as_ref(),
            Slot::Green => self.green.as_ref(),
        }
    }

    /// The slot taking a share of the live traffic beside the live one, and how many routes
    /// (of [`render::ROUTES`], so a percentage) it has.
    pub fn canary(&self) -> Option<(Slot, u8)> {
        let slot = self.live?.other();
        let target = format!("../{}", slot.socket_file());
        let share = self.routes.values().filter(|t| **t == target).count() as u8;
        (share > 0).then_some((slot, share))
    }

    /// The idle slot in preview or canary: a release on trial, not yet live.
    pub fn on_trial(&self) -> Option<Slot> {
        self.canary()
            .map(|(slot, _)| slot)
            .or(self.preview.filter(|p| Some(*p) != self.live))
    }

    /// The oldest schema any release may run on now: the highest `oldest_compatible` of the
    /// releases that went live (a contract migration is not undone), and the release that set
    /// it.
    pub fn schema_floor(&self) -> Option<(i64, &Release)> {
        self.releases
            .iter()
            .filter_map(|r| r.schema.map(|s| (s.oldest_compatible, r)))
            .max_by_key(|(floor, _)| *floor)
    }

    /// Every route exists and sends its clients to `live.sock`.
    pub fn routes_on_live(&self) -> bool {
        (0..render::ROUTES).all(|r| self.routes.get(&r).map(String::as_str) == Some(LIVE_TARGET))
    }
}

/// What a route points at when it follows the live slot.
pub const LIVE_TARGET: &str = "../live.sock";

/// Where `up` gets its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Build it, tagged `tag` (repository:version) and `latest`.
    Build { tag: String, version: String },
    /// Deploy this reference as it is (`--image`, or `--skip-build`).
    Existing { reference: String, version: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    Up(ImageSource, UpMode),
    /// Back to the kept slot's release, or to this recent version (re-created from its image
    /// when no slot holds it).
    Rollback(Option<String>),
    /// The release on trial (preview or canary) goes live.
    Promote,
    /// The release on trial is withdrawn and stopped.
    Abort,
    /// The release on trial takes this share (percent) of the live traffic.
    Canary(u8),
}

/// What `up` does once the new slot is healthy and smoke-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpMode {
    /// Switch all traffic to it.
    Switch,
    /// Show it on the preview port only (`--no-switch`).
    Preview,
    /// Show it on the preview port and send it this share of the live traffic (`--canary`).
    Canary(u8),
}

/// Everything the execution needs besides the steps: resolved secrets stay out of here.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub config: &'a DeployConfig,
    pub observed: &'a Observed,
    pub rendered: &'a Rendered,
    /// KEY=VALUE pairs from the env file; only their keys are ever printed.
    pub secret_env: &'a [(String, String)],
    pub user: &'a str,
    pub now: &'a str,
    /// Bake after traffic moves (when deploy.yml has `bake:`); false for `--no-bake`.
    pub bake: bool,
    /// Roll back even to a release older than the schema allows (`--force`).
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    RunPre {
        command: String,
        dir: PathBuf,
    },
    BuildImage {
        tags: Vec<String>,
        context: PathBuf,
        dockerfile: String,
        args: BTreeMap<String, String>,
    },
    CreateNetwork {
        name: String,
    },
    CreateVolume {
        name: String,
    },
    /// Writes the base config nginx starts with (first boot only).
    WriteBaseConfig {
        path: PathBuf,
    },
    RunNginx {
        spec: ContainerSpec,
    },
    /// Starts nginx when it exists but is not serving (stopped, or restarting in a loop because
    /// it had no config yet, as when compose created it before the first deploy).
    StartNginx {
        name: String,
    },
    /// Rollback: start the slot kept (stopped) by the last deploy.
    StartKeptSlot {
        slot: Slot,
        name: String,
    },
    PrepareSocketDir {
        container: String,
    },
    /// Drains (if running) and removes a container left in the slot about to be used.
    ReplaceSlot {
        slot: Slot,
        name: String,
        grace_secs: i64,
    },
    RunSlot {
        slot: Slot,
        spec: ContainerSpec,
    },
    WaitHealthy {
        slot: Slot,
        container: String,
        url: String,
        expect_status: u16,
        timeout_secs: u64,
        max_interval_ms: u64,
    },
    /// The new slot, healthy, answers the configured requests as expected (before any traffic
    /// moves to it).
    Smoke {
        slot: Slot,
        checks: Vec<Smoke>,
    },
    TestConfig {
        container: String,
        dir: PathBuf,
    },
    PromoteConfig {
        dir: PathBuf,
        reload: bool,
        container: String,
    },
    Switch {
        from: Option<Slot>,
        to: Slot,
        container: String,
    },
    DrainAndStop {
        slot: Slot,
        name: String,
        grace_secs: i64,
    },
    Verify {
        url: String,
        slot: Slot,
    },
    /// Points the live upstream's routes: all at `live.sock`, or a canary's share at its slot.
    Routes {
        canary: Option<(Slot, u8)>,
        container: String,
    },
    /// Points `preview.sock` at a slot, or removes it.
    Preview {
        slot: Option<Slot>,
        container: String,
    },
    /// Watches the slot's answers in nginx's access log; a crossed limit sends traffic back at
    /// once and fails the run.
    Bake {
        limits: BakeLimits,
        fallback: Fallback,
        /// Run (as [`Step::Hook`]s) once traffic is back, when the bake failed: deploy.yml's
        /// `on_rollback` hooks, for the release traffic went back to.
        on_rollback: Vec<Step>,
    },
    /// A hook from deploy.yml. When it fails with a `fallback`, traffic goes back first.
    Hook {
        stage: String,
        action: HookAction,
        timeout_secs: u64,
        fallback: Option<Fallback>,
    },
    /// Asks the release's image for its schema (deploy.yml `schema:`), and refuses a release
    /// older than the schema it would run on allows.
    ReadSchema {
        spec: ContainerSpec,
        /// The oldest schema version a release may need now, and the release that set it.
        floor: Option<(i64, String)>,
    },
}

/// How traffic goes back when what was tried (a bake, a post_switch hook) fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// The slot being tried, drained once traffic is back.
    pub slot: Slot,
    pub container: String,
    pub grace_secs: i64,
    pub nginx: String,
    pub revert: Revert,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.revert {
            Revert::SwitchBack { to } => {
                write!(f, "switch back to {to} at once and drain {}", self.slot)
            }
            Revert::WithdrawCanary => write!(
                f,
                "send the canary's clients back to live.sock at once and drain {}",
                self.slot
            ),
        }
    }
}

/// What a hook runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAction {
    /// A one-off container of the release's image, with the slot's env and data volume.
    Container { spec: ContainerSpec },
    /// A shell command on the machine running the deployer, in the build context, with
    /// `DEPLOYER_*` variables naming the release.
    Local {
        command: String,
        dir: PathBuf,
        env: Vec<(String, String)>,
    },
}

/// A bake's length and limits, as the plan prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BakeLimits {
    pub duration_ms: u64,
    pub window_ms: u64,
    /// The largest 5xx share, in parts per million.
    pub max_error_ppm: u32,
    pub max_p99_ms: Option<u64>,
    pub min_requests: u32,
}

impl BakeLimits {
    fn of(bake: &crate::config::BakeConfig) -> Self {
        Self {
            duration_ms: bake.duration.get().as_millis() as u64,
            window_ms: bake.window.get().as_millis() as u64,
            max_error_ppm: (bake.max_error_rate.get() * 1e6).round() as u32,
            max_p99_ms: bake.max_p99.as_ref().map(|d| d.get().as_millis() as u64),
            min_requests: bake.min_requests,
        }
    }
}

/// How a failed bake sends traffic back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Revert {
    /// Rename `live.sock` back to the old slot (kept running through the bake), then drain the
    /// baked one.
    SwitchBack { to: Slot },
    /// Point the canary's routes back at `live.sock`, then drain the canary slot.
    WithdrawCanary,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::RunPre { command, dir } => write!(f, "run `{command}` in {}", dir.display()),
            Step::BuildImage { tags, context, dockerfile, args } => {
                write!(f, "build image {} from {} with {dockerfile}", tags.join(", "), context.display())?;
                if !args.is_empty() {
                    let args: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    write!(f, " (build args {})", args.join(" "))?;
                }
                Ok(())
            }
            Step::CreateNetwork { name } => write!(f, "create network {name}"),
            Step::CreateVolume { name } => write!(f, "create volume {name}"),
            Step::WriteBaseConfig { path } => write!(f, "write the base nginx config {}", path.display()),
            Step::RunNginx { spec } => write!(
                f,
                "start nginx container {} ({}; ports {})",
                spec.name,
                spec.image,
                spec.ports.iter().map(|(ip, h, c)| format!("{ip}:{h}->{c}")).collect::<Vec<_>>().join(", ")
            ),
            Step::StartNginx { name } => write!(f, "(re)start the existing nginx container {name}"),
            Step::StartKeptSlot { slot, name } => {
                write!(f, "start the kept {slot} container {name}")
            }
            Step::PrepareSocketDir { container } => {
                write!(f, "make {} writable by both slots (in {container})", render::SOCKET_DIR)
            }
            Step::ReplaceSlot { slot, name, grace_secs } => {
                write!(f, "drain and remove the old {slot} container {name} (up to {grace_secs}s)")
            }
            Step::RunSlot { slot, spec } => write!(
                f,
                "start {slot}: container {} from {} (version {}) on 127.0.0.1:{}, env {}",
                spec.name,
                spec.image,
                spec.labels.get(LABEL_VERSION).map(String::as_str).unwrap_or("?"),
                spec.ports.first().map(|p| p.1).unwrap_or_default(),
                spec.printable_env().join(" ")
            ),
            Step::WaitHealthy { slot, url, expect_status, timeout_secs, .. } => {
                write!(f, "wait until {slot} answers {expect_status} at {url} (up to {timeout_secs}s)")
            }
            Step::Smoke { slot, checks } => {
                let list: Vec<String> = checks.iter().map(Smoke::to_string).collect();
                write!(f, "smoke-check {slot} before traffic moves: {}", list.join("; "))
            }
            Step::TestConfig { container, dir } => {
                write!(f, "render nginx config into {}/candidate and check it with `nginx -t` in {container}", dir.display())
            }
            Step::PromoteConfig { dir, reload, .. } => {
                if *reload {
                    write!(f, "make the rendered config live in {}/live and reload nginx (the text changed)", dir.display())
                } else {
                    write!(f, "keep the live nginx config (unchanged: no reload)")
                }
            }
            Step::Switch { from, to, .. } => match from {
                Some(from) => write!(f, "switch traffic {from} -> {to} (atomic rename of live.sock; no reload)"),
                None => write!(f, "switch traffic to {to} (create live.sock)"),
            },
            Step::DrainAndStop { slot, name, grace_secs } => write!(
                f,
                "drain {slot} ({name}): SIGTERM, it finishes open connections and exits (up to {grace_secs}s); keep it for rollback"
            ),
            Step::Verify { url, slot } => write!(f, "check {url} answers from {slot}"),
            Step::Routes { canary: None, .. } => write!(
                f,
                "point all {} routes at live.sock (no canary; atomic renames, no reload)",
                render::ROUTES
            ),
            Step::Routes { canary: Some((slot, share)), .. } => write!(
                f,
                "send {share}% of clients (routes 0-{}, sticky by cookie) to {slot}, the rest to live.sock (atomic renames, no reload)",
                share.saturating_sub(1)
            ),
            Step::Preview { slot: Some(slot), .. } => {
                write!(f, "show {slot} on the preview port (preview.sock; no reload)")
            }
            Step::Preview { slot: None, .. } => write!(f, "end the preview (remove preview.sock)"),
            Step::Bake { limits, fallback, on_rollback } => {
                write!(
                    f,
                    "bake {} for {}s, the old slot kept running: if over {}% of its answers are 5xx",
                    fallback.slot,
                    limits.duration_ms / 1000,
                    limits.max_error_ppm as f64 / 1e4
                )?;
                if let Some(p99) = limits.max_p99_ms {
                    write!(f, " or their p99 is over {p99} ms")?;
                }
                write!(
                    f,
                    " in a {}s window (of at least {} answers), {fallback}",
                    limits.window_ms / 1000,
                    limits.min_requests
                )?;
                match on_rollback.len() {
                    0 => Ok(()),
                    n => write!(f, ", then run the {n} on_rollback hook(s)"),
                }
            }
            Step::Hook { stage, action, timeout_secs, fallback } => {
                match action {
                    HookAction::Container { spec } => write!(
                        f,
                        "hook {stage}: `{}` in a one-off container of {} (the slot's env and data volume; up to {timeout_secs}s)",
                        spec.command_line(),
                        spec.image
                    )?,
                    HookAction::Local { command, .. } => {
                        write!(f, "hook {stage}: `{command}` on this machine (up to {timeout_secs}s)")?
                    }
                }
                match fallback {
                    Some(fallback) => write!(f, "; if it fails, {fallback}"),
                    None => Ok(()),
                }
            }
            Step::ReadSchema { spec, floor } => {
                write!(
                    f,
                    "ask {} for its schema (`{}` in a one-off container)",
                    spec.image,
                    spec.command_line()
                )?;
                match floor {
                    Some((floor, by)) => write!(f, "; refuse it if it needs a schema older than {floor} (set by {by})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One smoke request, resolved against a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Smoke {
    pub method: String,
    pub url: String,
    pub expect_status: u16,
    pub body_contains: Option<String>,
    pub timeout_ms: u64,
}

impl fmt::Display for Smoke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.url, self.expect_status)?;
        if let Some(text) = &self.body_contains {
            write!(f, " containing {text:?}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub intent: String,
    pub from: Option<Slot>,
    pub to: Slot,
    /// The live slot once the plan has run.
    pub live_after: Option<Slot>,
    pub version: String,
    pub image: String,
    pub steps: Vec<Step>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self.from.map(|s| s.name()).unwrap_or("nothing");
        writeln!(
            f,
            "{}: {from} -> {} ({}, version {})",
            self.intent, self.to, self.image, self.version
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {:>2}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// The steps that build the release image `tag` (and `latest`): the `build.pre` commands, then
/// the build.
pub fn build_steps(config: &DeployConfig, tag: &str) -> Vec<Step> {
    let pre = config.build.pre.iter().map(|command| Step::RunPre {
        command: command.clone(),
        dir: config.build.context.clone(),
    });
    pre.chain([Step::BuildImage {
        tags: vec![tag.to_string(), format!("{}:latest", config.image)],
        context: config.build.context.clone(),
        dockerfile: config.build.dockerfile.display().to_string(),
        args: config.build.args.clone(),
    }])
    .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("nothing to roll back to: {0}")]
    NoRollbackTarget(String),
    #[error("nothing on trial: {0}")]
    NothingOnTrial(String),
    #[error("{0}")]
    OnTrial(String),
    #[error("{0}")]
    SchemaTooOld(String),
}

/// The plan for `intent`, given the host as observed.
pub fn plan(intent: &Intent, inputs: &Inputs<'_>) -> Result<Plan, PlanError> {
    match intent {
        Intent::Up(..) | Intent::Rollback(_) => release(intent, inputs),
        Intent::Promote | Intent::Abort | Intent::Canary(_) => trial(intent, inputs),
    }
}

/// `up` and `rollback`: a release into the idle slot, then (for `up`) a switch, a preview or a
/// canary.
fn release(intent: &Intent, inputs: &Inputs<'_>) -> Result<Plan, PlanError> {
    let config = inputs.config;
    let observed = inputs.observed;
    let names = Names::of(config);
    let mut steps = Vec::new();
    let from = observed.live;
    let grace = grace_secs(config);

    if let Some(slot) = observed.on_trial() {
        let what = match observed.canary() {
            Some((_, share)) => format!("a canary taking {share}% of the traffic"),
            None => "preview".to_string(),
        };
        return Err(PlanError::OnTrial(format!(
            "{slot} ({}) is in {what}: `deployer promote` puts it live, `deployer abort` withdraws it; then run this again",
            version_of(observed, slot)
        )));
    }
    let mode = match intent {
        Intent::Up(_, mode) => *mode,
        _ => UpMode::Switch,
    };
    if matches!(mode, UpMode::Canary(_)) && from.is_none() {
        return Err(PlanError::NothingOnTrial(
            "no slot is live yet, so there is no traffic to share: deploy with a plain `deployer up` first".into(),
        ));
    }

    let (to, image, version) = match intent {
        Intent::Up(source, _) => {
            let to = from.map_or(Slot::Blue, Slot::other);
            let (image, version) = match source {
                ImageSource::Build { tag, version } => {
                    steps.extend(build_steps(config, tag));
                    (tag.clone(), version.clone())
                }
                ImageSource::Existing { reference, version } => {
                    (reference.clone(), version.clone())
                }
            };
            (to, image, version)
        }
        Intent::Rollback(wanted) => {
            let target = rollback_target(observed, wanted.as_deref(), config.keep_images)?;
            check_schema(observed, &target, inputs.force)?;
            (target.slot, target.image, target.version)
        }
        _ => unreachable!("trial() plans the rest"),
    };
    // Rollback re-creates the slot when it does not hold the release (its container is gone,
    // or holds another version, e.g. a release that failed after replacing it).
    let recreate = match intent {
        Intent::Rollback(_) => observed
            .slot(to)
            .is_none_or(|c| c.labels.get(LABEL_VERSION) != Some(&version)),
        _ => true,
    };

    // The static parts: network, volumes, nginx.
    if !observed.network {
        steps.push(Step::CreateNetwork {
            name: names.network.clone(),
        });
    }
    for (present, name) in [
        (observed.data_volume, &names.data_volume),
        (observed.socket_volume, &names.socket_volume),
    ] {
        if !present {
            steps.push(Step::CreateVolume { name: name.clone() });
        }
    }
    // nginx: ours, or one compose made (adopted as it is). Whatever starts it needs the base
    // config first: nginx without it exits, and Docker restarts it in a loop.
    let nginx_serving =
        observed.nginx.as_ref().is_some_and(|c| c.running) && observed.live_main.is_some();
    if !nginx_serving && observed.live_main.as_deref() != Some(inputs.rendered.main_live.as_str()) {
        steps.push(Step::WriteBaseConfig {
            path: config.nginx.rendered_dir.join("nginx.conf"),
        });
    }
    match &observed.nginx {
        None => steps.push(Step::RunNginx {
            spec: nginx_spec(config, &names),
        }),
        Some(_) if !nginx_serving => steps.push(Step::StartNginx {
            name: names.nginx.clone(),
        }),
        Some(_) => {}
    }
    if !nginx_serving || !observed.socket_dir_ready {
        steps.push(Step::PrepareSocketDir {
            container: names.nginx.clone(),
        });
    }
    // Routes and preview as a settled host has them (a run killed mid-promotion may have left
    // them otherwise).
    if !observed.routes_on_live() {
        steps.push(Step::Routes {
            canary: None,
            container: names.nginx.clone(),
        });
    }
    if observed.preview.is_some() {
        steps.push(Step::Preview {
            slot: None,
            container: names.nginx.clone(),
        });
    }

    // The release's schema, then the pre_deploy hooks: before the new slot starts.
    if let (Some(schema), Intent::Up(..)) = (&config.schema, intent) {
        steps.push(Step::ReadSchema {
            spec: one_off(
                inputs,
                &names,
                to,
                &image,
                &version,
                "schema",
                schema.command.clone(),
            ),
            floor: observed
                .schema_floor()
                .map(|(floor, by)| (floor, by.version.clone())),
        });
    }
    if matches!(intent, Intent::Up(..)) {
        let hooks = &config.hooks.pre_deploy;
        steps.extend(hook_steps(
            inputs,
            &names,
            "pre_deploy",
            hooks,
            to,
            &image,
            &version,
            None,
        ));
    }

    // The target slot.
    let target_name = names.slot(to).to_string();
    match recreate {
        true => {
            if observed.slot(to).is_some() {
                steps.push(Step::ReplaceSlot {
                    slot: to,
                    name: target_name.clone(),
                    grace_secs: grace,
                });
            }
            steps.push(Step::RunSlot {
                slot: to,
                spec: slot_spec(inputs, &names, to, &image, &version),
            });
        }
        false => {
            if !observed.slot(to).is_some_and(|c| c.running) {
                steps.push(Step::StartKeptSlot {
                    slot: to,
                    name: target_name.clone(),
                });
            }
        }
    }
    steps.push(wait_healthy(config, &names, to));
    if !config.smoke.is_empty() {
        steps.push(Step::Smoke {
            slot: to,
            checks: config
                .smoke
                .iter()
                .map(|c| Smoke {
                    method: c.method.clone(),
                    url: format!("http://127.0.0.1:{}{}", slot_port(config, to), c.path),
                    expect_status: c.expect_status,
                    body_contains: c.body_contains.clone(),
                    timeout_ms: c.timeout.get().as_millis() as u64,
                })
                .collect(),
        });
    }

    // nginx: validate, make live (reload only if the text changed).
    let dir = config.nginx.rendered_dir.clone();
    steps.push(Step::TestConfig {
        container: names.nginx.clone(),
        dir: dir.clone(),
    });
    let changed = observed.live_site.as_deref() != Some(inputs.rendered.site.as_str())
        || observed.live_main.as_deref() != Some(inputs.rendered.main_live.as_str());
    steps.push(Step::PromoteConfig {
        dir,
        reload: changed,
        container: names.nginx.clone(),
    });

    // Traffic: all of it, none (preview), or a share (canary).
    let old = from
        .filter(|old| *old != to)
        .filter(|old| observed.slot(*old).is_some_and(|c| c.running));
    match mode {
        UpMode::Switch => {
            if from != Some(to) {
                steps.push(Step::Switch {
                    from,
                    to,
                    container: names.nginx.clone(),
                });
            }
            let back = old.map(|old| fallback(config, &names, to, Revert::SwitchBack { to: old }));
            let (post, last) = match intent {
                Intent::Up(..) => ("post_switch", "post_deploy"),
                _ => ("", "on_rollback"),
            };
            if !post.is_empty() {
                let hooks = &config.hooks.post_switch;
                steps.extend(hook_steps(
                    inputs, &names, post, hooks, to, &image, &version, back,
                ));
            }
            if let Some(old) = old {
                steps.extend(bake(inputs, &names, to, Revert::SwitchBack { to: old }));
                steps.push(drain(&names, old, grace));
            }
            steps.push(verify(config, to));
            let hooks = match intent {
                Intent::Up(..) => &config.hooks.post_deploy,
                _ => &config.hooks.on_rollback,
            };
            steps.extend(hook_steps(
                inputs, &names, last, hooks, to, &image, &version, None,
            ));
        }
        UpMode::Preview | UpMode::Canary(_) => {
            steps.push(Step::Preview {
                slot: Some(to),
                container: names.nginx.clone(),
            });
            steps.push(verify_preview(config, to));
            if let UpMode::Canary(share) = mode {
                steps.push(Step::Routes {
                    canary: Some((to, share)),
                    container: names.nginx.clone(),
                });
                steps.extend(bake(inputs, &names, to, Revert::WithdrawCanary));
            }
        }
    }

    Ok(Plan {
        intent: match (intent, mode) {
            (Intent::Up(..), UpMode::Switch) => "up".into(),
            (Intent::Up(..), UpMode::Preview) => "up --no-switch".into(),
            (Intent::Up(..), UpMode::Canary(share)) => format!("up --canary {share}"),
            _ => "rollback".into(),
        },
        live_after: match mode {
            UpMode::Switch => Some(to),
            _ => from,
        },
        from,
        to,
        version,
        image,
        steps,
    })
}

/// `promote`, `abort` and `canary PCT`: what happens to the release on trial.
fn trial(intent: &Intent, inputs: &Inputs<'_>) -> Result<Plan, PlanError> {
    let config = inputs.config;
    let observed = inputs.observed;
    let names = Names::of(config);
    let nginx = names.nginx.clone();
    let grace = grace_secs(config);
    let live = observed.live;
    let target = observed.on_trial().ok_or_else(|| {
        PlanError::NothingOnTrial(
            "no release is in preview or canary; `deployer up --no-switch` (or `--canary PCT`) puts one there".into(),
        )
    })?;
    let running = observed.slot(target).is_some_and(|c| c.running);
    if !running && !matches!(intent, Intent::Abort) {
        return Err(PlanError::NothingOnTrial(format!(
            "{target} is on trial but its container is not running; `deployer abort` clears it"
        )));
    }
    let mut steps = Vec::new();
    let (name, from, to) = match intent {
        Intent::Promote => {
            steps.push(wait_healthy(config, &names, target));
            steps.push(Step::Switch {
                from: live,
                to: target,
                container: nginx.clone(),
            });
            steps.extend(end_trial(&nginx, true));
            let old = live.filter(|l| observed.slot(*l).is_some_and(|c| c.running));
            let image = observed
                .slot(target)
                .map(|c| c.image.clone())
                .unwrap_or_default();
            let version = version_of(observed, target);
            let back =
                old.map(|old| fallback(config, &names, target, Revert::SwitchBack { to: old }));
            let hooks = &config.hooks.post_switch;
            steps.extend(hook_steps(
                inputs,
                &names,
                "post_switch",
                hooks,
                target,
                &image,
                &version,
                back,
            ));
            if let Some(old) = old {
                steps.extend(bake(inputs, &names, target, Revert::SwitchBack { to: old }));
                steps.push(drain(&names, old, grace));
            }
            steps.push(verify(config, target));
            let hooks = &config.hooks.post_deploy;
            steps.extend(hook_steps(
                inputs,
                &names,
                "post_deploy",
                hooks,
                target,
                &image,
                &version,
                None,
            ));
            ("promote".to_string(), live, target)
        }
        Intent::Abort => {
            let routes = observed.canary().is_some() || !observed.routes_on_live();
            steps.extend(end_trial(&nginx, routes));
            if running {
                steps.push(drain(&names, target, grace));
            }
            if let Some(live) = live {
                steps.push(verify(config, live));
            }
            ("abort".to_string(), Some(target), live.unwrap_or(target))
        }
        Intent::Canary(share) => {
            if live.is_none() {
                return Err(PlanError::NothingOnTrial(
                    "no slot is live, so there is no traffic to share: `deployer promote` puts the preview live".into(),
                ));
            }
            steps.push(wait_healthy(config, &names, target));
            steps.push(Step::Routes {
                canary: (*share > 0).then_some((target, *share)),
                container: nginx.clone(),
            });
            if *share > 0 {
                steps.extend(bake(inputs, &names, target, Revert::WithdrawCanary));
            }
            (format!("canary {share}"), live, target)
        }
        Intent::Up(..) | Intent::Rollback(_) => unreachable!("release() plans these"),
    };
    let info = observed.slot(target);
    Ok(Plan {
        live_after: match intent {
            Intent::Promote => Some(target),
            _ => live,
        },
        intent: name,
        from,
        to,
        version: version_of(observed, target),
        image: info.map(|c| c.image.clone()).unwrap_or_default(),
        steps,
    })
}

/// Where a rollback goes: the release `wanted` (or, with none, the one before the live one)
/// and the slot it will run in.
struct RollbackTarget {
    slot: Slot,
    version: String,
    image: String,
    schema: Option<Schema>,
}

fn rollback_target(
    observed: &Observed,
    wanted: Option<&str>,
    keep: u32,
) -> Result<RollbackTarget, PlanError> {
    let live = observed.live.ok_or_else(|| {
        PlanError::NoRollbackTarget("no slot is live yet; run `deployer up` first".into())
    })?;
    let slot = live.other();
    let live_version = version_of(observed, live);
    let kept = observed.slot(slot);
    let kept_version = kept.and_then(|c| c.labels.get(LABEL_VERSION));
    let recent: Vec<&Release> = observed
        .releases
        .iter()
        .take(keep.max(1) as usize)
        .collect();
    let listed = || {
        let versions: Vec<&str> = recent.iter().map(|r| r.version.as_str()).collect();
        format!("the last {keep} (keep_images): {}", versions.join(", "))
    };
    let schema_of = |version: &str| {
        observed
            .releases
            .iter()
            .find(|r| r.version == version)
            .and_then(|r| r.schema)
    };
    match wanted {
        Some(version) if version == live_version => Err(PlanError::NoRollbackTarget(format!(
            "{version} is the live release already"
        ))),
        // The kept slot holds it: start it (it keeps the image it was created from).
        Some(version) if kept_version.map(String::as_str) == Some(version) => Ok(RollbackTarget {
            slot,
            version: version.to_string(),
            image: kept.map(|c| c.image.clone()).unwrap_or_default(),
            schema: schema_of(version),
        }),
        Some(version) => {
            let release = recent
                .iter()
                .find(|r| r.version == version)
                .ok_or_else(|| {
                    PlanError::NoRollbackTarget(format!(
                    "{version} is not among the recent releases, {}; `deployer history` lists them",
                    listed()
                ))
                })?;
            Ok(RollbackTarget {
                slot,
                version: release.version.clone(),
                image: release.image.clone(),
                schema: release.schema,
            })
        }
        None => {
            // The kept slot, when it holds a release that went live.
            if let (Some(c), Some(version)) = (kept, kept_version) {
                if observed.releases.iter().any(|r| &r.version == version) {
                    return Ok(RollbackTarget {
                        slot,
                        version: version.clone(),
                        image: c.image.clone(),
                        schema: schema_of(version),
                    });
                }
            }
            // Otherwise the release live before the live one, re-created from its image.
            let previous = observed
                .releases
                .iter()
                .find(|r| r.version != live_version)
                .ok_or_else(|| {
                    PlanError::NoRollbackTarget(format!(
                        "the {slot} slot holds no earlier release and the history names none; deploy a version with `deployer up --image REF`"
                    ))
                })?;
            Ok(RollbackTarget {
                slot,
                version: previous.version.clone(),
                image: previous.image.clone(),
                schema: previous.schema,
            })
        }
    }
}

/// A rollback may not go to a release older than the schema allows: a contract migration since
/// removed what it needs. `--force` overrides (the operator knows better, e.g. a data fix).
fn check_schema(
    observed: &Observed,
    target: &RollbackTarget,
    force: bool,
) -> Result<(), PlanError> {
    let (Some(schema), Some((floor, by))) = (target.schema, observed.schema_floor()) else {
        return Ok(());
    };
    if schema.version >= floor || force {
        return Ok(());
    }
    Err(PlanError::SchemaTooOld(format!(
        "refusing to roll back to {}: it runs on schema {}, but {} migrated the database to a schema that code older than schema {floor} cannot run on (a contract migration). Roll forward with a fix instead, or pass --force if you are sure",
        target.version, schema.version, by.version
    )))
}

/// A one-off container of the release's image: the slot's env (but not its socket) and the
/// data volume, running `argv`.
fn one_off(
    inputs: &Inputs<'_>,
    names: &Names,
    slot: Slot,
    image: &str,
    version: &str,
    what: &str,
    argv: Vec<String>,
) -> ContainerSpec {
    let mut spec = slot_spec(inputs, names, slot, image, version);
    spec.name = format!("{}-{what}", inputs.config.service);
    spec.ports.clear();
    spec.env.retain(|kv| !kv.starts_with("APP_SOCKET="));
    spec.mounts.retain(|m| m.target != render::SOCKET_DIR);
    spec.labels.remove(LABEL_SLOT);
    spec.labels.insert("deployer.one_off".into(), what.into());
    // The argv is the whole command: it replaces the image's entrypoint too (the app image's
    // is /app, which would otherwise get the argv as arguments).
    spec.entrypoint = Some(argv);
    spec.cmd = Some(vec![]);
    spec
}

#[allow(clippy::too_many_arguments)]
fn hook_steps(
    inputs: &Inputs<'_>,
    names: &Names,
    stage: &str,
    hooks: &[crate::config::Hook],
    slot: Slot,
    image: &str,
    version: &str,
    fallback: Option<Fallback>,
) -> Vec<Step> {
    let config = inputs.config;
    hooks
        .iter()
        .map(|hook| {
            let action = match (&hook.container, &hook.local) {
                (Some(argv), _) => HookAction::Container {
                    spec: one_off(inputs, names, slot, image, version, "hook", argv.clone()),
                },
                (None, command) => HookAction::Local {
                    command: command.clone().unwrap_or_default(),
                    dir: config.build.context.clone(),
                    env: vec![
                        ("DEPLOYER_SERVICE".into(), config.service.clone()),
                        ("DEPLOYER_STAGE".into(), stage.into()),
                        ("DEPLOYER_VERSION".into(), version.into()),
                        ("DEPLOYER_IMAGE".into(), image.into()),
                        ("DEPLOYER_SLOT".into(), slot.name().into()),
                        (
                            "DEPLOYER_PREVIOUS_SLOT".into(),
                            inputs.observed.live.map_or("", Slot::name).into(),
                        ),
                    ],
                },
            };
            Step::Hook {
                stage: stage.into(),
                action,
                timeout_secs: hook.timeout.get().as_secs(),
                fallback: fallback.clone(),
            }
        })
        .collect()
}

fn fallback(config: &DeployConfig, names: &Names, slot: Slot, revert: Revert) -> Fallback {
    Fallback {
        slot,
        container: names.slot(slot).to_string(),
        grace_secs: grace_secs(config),
        nginx: names.nginx.clone(),
        revert,
    }
}

/// Ends a trial on the host: every route back on `live.sock` (when `routes`), no preview.
fn end_trial(nginx: &str, routes: bool) -> Vec<Step> {
    let reset = Step::Routes {
        canary: None,
        container: nginx.to_string(),
    };
    let end_preview = Step::Preview {
        slot: None,
        container: nginx.to_string(),
    };
    routes
        .then_some(reset)
        .into_iter()
        .chain([end_preview])
        .collect()
}

fn grace_secs(config: &DeployConfig) -> i64 {
    config.drain_timeout.get().as_secs() as i64 + 5
}

fn version_of(observed: &Observed, slot: Slot) -> String {
    observed
        .slot(slot)
        .and_then(|c| c.labels.get(LABEL_VERSION).cloned())
        .unwrap_or_else(|| "unknown".into())
}

fn slot_port(config: &DeployConfig, slot: Slot) -> u16 {
    match slot {
        Slot::Blue => config.slots.blue.port,
        Slot::Green => config.slots.green.port,
    }
}

fn wait_healthy(config: &DeployConfig, names: &Names, slot: Slot) -> Step {
    Step::WaitHealthy {
        slot,
        container: names.slot(slot).to_string(),
        url: format!(
            "http://127.0.0.1:{}{}",
            slot_port(config, slot),
            config.health.path
        ),
        expect_status: config.health.expect_status,
        timeout_secs: config.health.timeout.get().as_secs(),
        max_interval_ms: config.health.interval.get().as_millis() as u64,
    }
}

fn drain(names: &Names, slot: Slot, grace_secs: i64) -> Step {
    Step::DrainAndStop {
        slot,
        name: names.slot(slot).to_string(),
        grace_secs,
    }
}

fn verify(config: &DeployConfig, slot: Slot) -> Step {
    Step::Verify {
        url: format!("https://127.0.0.1:{}/health", config.nginx.https_port),
        slot,
    }
}

fn verify_preview(config: &DeployConfig, slot: Slot) -> Step {
    Step::Verify {
        url: format!("https://127.0.0.1:{}/health", config.nginx.preview_port),
        slot,
    }
}

/// The bake after traffic moves to `slot`, when deploy.yml has one and `--no-bake` was not
/// given.
fn bake(inputs: &Inputs<'_>, names: &Names, slot: Slot, revert: Revert) -> Option<Step> {
    let config = inputs.config;
    let bake = config.bake.as_ref().filter(|_| inputs.bake)?;
    // The release traffic goes back to: the old slot's, or (a canary) the live one's.
    let back = match revert {
        Revert::SwitchBack { to } => Some(to),
        Revert::WithdrawCanary => inputs.observed.live,
    };
    let on_rollback = match back {
        Some(back) => {
            let image = inputs
                .observed
                .slot(back)
                .map(|c| c.image.clone())
                .unwrap_or_default();
            let version = version_of(inputs.observed, back);
            let hooks = &config.hooks.on_rollback;
            hook_steps(
                inputs,
                names,
                "on_rollback",
                hooks,
                back,
                &image,
                &version,
                None,
            )
        }
        None => vec![],
    };
    Some(Step::Bake {
        limits: BakeLimits::of(bake),
        fallback: fallback(config, names, slot, revert),
        on_rollback,
    })
}

fn labels(config: &DeployConfig) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_SERVICE.to_string(), config.service.clone())])
}

pub fn nginx_spec(config: &DeployConfig, names: &Names) -> ContainerSpec {
    ContainerSpec {
        name: names.nginx.clone(),
        image: config.nginx.image.clone(),
        env: vec![],
        secret_keys: vec![],
        labels: labels(config),
        ports: vec![
            ("0.0.0.0".into(), config.nginx.http_port, 80),
            ("0.0.0.0".into(), config.nginx.https_port, 443),
            (
                "0.0.0.0".into(),
                config.nginx.preview_port,
                render::PREVIEW_LISTEN,
            ),
        ],
        mounts: vec![
            MountSpec {
                source: config.nginx.rendered_dir.display().to_string(),
                target: render::CONF_DIR.into(),
                volume: false,
                read_only: true,
            },
            MountSpec {
                source: config.nginx.ssl_dir.display().to_string(),
                target: render::SSL_DIR.into(),
                volume: false,
                read_only: true,
            },
            MountSpec {
                source: names.socket_volume.clone(),
                target: render::SOCKET_DIR.into(),
                volume: true,
                read_only: false,
            },
        ],
        network: names.network.clone(),
        cmd: Some(vec![
            "nginx".into(),
            "-c".into(),
            format!("{}/nginx.conf", render::CONF_DIR),
            "-g".into(),
            "daemon off;".into(),
        ]),
        stop_signal: Some("SIGQUIT".into()),
        entrypoint: None,
    }
}

fn slot_spec(
    inputs: &Inputs<'_>,
    names: &Names,
    slot: Slot,
    image: &str,
    version: &str,
) -> ContainerSpec {
    let config = inputs.config;
    let port = slot_port(config, slot);
    let mut env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend(inputs.secret_env.iter().map(|(k, v)| format!("{k}={v}")));
    env.extend([
        format!("APP_SLOT={slot}"),
        format!("APP_VERSION={version}"),
        "APP_LISTEN=0.0.0.0:3000".to_string(),
        format!("APP_SOCKET={}/{}", render::SOCKET_DIR, slot.socket_file()),
        format!(
            "APP_DRAIN_TIMEOUT={}s",
            config.drain_timeout.get().as_secs()
        ),
    ]);
    let mut labels = labels(config);
    labels.insert(LABEL_SLOT.into(), slot.name().into());
    labels.insert(LABEL_VERSION.into(), version.into());
    labels.insert(LABEL_DEPLOYED_AT.into(), inputs.now.into());
    labels.insert(LABEL_DEPLOYED_BY.into(), inputs.user.into());
    ContainerSpec {
        name: names.slot(slot).to_string(),
        image: image.to_string(),
        env,
        secret_keys: inputs.secret_env.iter().map(|(k, _)| k.clone()).collect(),
        labels,
        ports: vec![("127.0.0.1".into(), port, 3000)],
        mounts: vec![
            MountSpec {
                source: names.data_volume.clone(),
                target: "/data".into(),
                volume: true,
                read_only: false,
            },
            MountSpec {
                source: names.socket_volume.clone(),
                target: render::SOCKET_DIR.into(),
                volume: true,
                read_only: false,
            },
        ],
        network: names.network.clone(),
        cmd: None,
        stop_signal: None,
        entrypoint: None,
    }
}

/// How long to wait before health poll number `attempt` (0-based): quick at first, so a fast
/// starter is noticed within a fraction of a second, then doubling up to `max` so a slow starter
/// is not hammered. With `max` = 1 s, readiness is noticed within a second.
pub fn poll_delay(attempt: u32, max: Duration) -> Duration {
    let quick = Duration::from_millis(50) * 2u32.saturating_pow(attempt.min(10));
    quick.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
service: shop
image: shop-app
build:
  context: .
  dockerfile: app/Dockerfile
  pre: [scripts/build-app-binary.sh]
env:
  HUBSPOT_BASE_URL: http://sim:8090
env_file: .env
nginx:
  template: nginx/site.conf.tera
  rendered_dir: /srv/nginx
  container: shop-nginx
  https_port: 8443
  http_port: 8080
";

    fn config() -> DeployConfig {
        DeployConfig::parse("deploy.yml", CONFIG).unwrap()
    }

    fn rendered() -> Rendered {
        Rendered {
            main_live: "main".into(),
            main_candidate: "cand".into(),
            site: "site".into(),
        }
    }

    fn container(slot: Slot, running: bool, version: &str) -> ContainerInfo {
        ContainerInfo {
            name: format!("shop-{slot}"),
            id: "id".into(),
            image: format!("shop-app:{version}"),
            running,
            status: if running { "running" } else { "exited" }.into(),
            exit_code: 0,
            restart_count: 0,
            health: None,
            labels: BTreeMap::from([(LABEL_VERSION.to_string(), version.to_string())]),
            started_at: None,
        }
    }

    fn settled(live: Slot) -> Observed {
        Observed {
            live: Some(live),
            network: true,
            data_volume: true,
            socket_volume: true,
            nginx: Some(ContainerInfo {
                name: "shop-nginx".into(),
                ..container(Slot::Blue, true, "-")
            }),
            blue: Some(container(Slot::Blue, live == Slot::Blue, "v1")),
            green: Some(container(Slot::Green, live == Slot::Green, "v2")),
            live_main: Some("main".into()),
            live_site: Some("site".into()),
            socket_dir_ready: true,
            preview: None,
            routes: (0..render::ROUTES)
                .map(|r| (r, LIVE_TARGET.to_string()))
                .collect(),
            releases: vec![
                release(if live == Slot::Blue { "v1" } else { "v2" }, None),
                release(if live == Slot::Blue { "v2" } else { "v1" }, None),
            ],
        }
    }

    fn release(version: &str, schema: Option<(i64, i64)>) -> Release {
        Release {
            version: version.into(),
            image: format!("shop-app:{version}"),
            schema: schema.map(|(version, oldest_compatible)| Schema {
                version,
                oldest_compatible,
            }),
        }
    }

    /// The inputs of a plan for `config` on `observed`: no secrets, baking, not forced.
    fn inputs<'a>(
        config: &'a DeployConfig,
        observed: &'a Observed,
        rendered: &'a Rendered,
    ) -> Inputs<'a> {
        Inputs {
            config,
            observed,
            rendered,
            secret_env: &[],
            user: "ops",
            now: "T",
            bake: true,
            force: false,
        }
    }

    fn steps(intent: Intent, observed: &Observed) -> Vec<String> {
        let config = config();
        let rendered = rendered();
        let secrets = vec![("HUBSPOT_ACCESS_TOKEN".to_string(), "pat-secret".to_string())];
        let inputs = Inputs {
            secret_env: &secrets,
            ..inputs(&config, observed, &rendered)
        };
        plan(&intent, &inputs)
            .unwrap()
            .steps
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Exactly these steps, each starting with its prefix.
    fn assert_prefixes(steps: &[String], prefixes: &[&str]) {
        assert_eq!(steps.len(), prefixes.len(), "{steps:#?}");
        for (step, prefix) in steps.iter().zip(prefixes) {
            assert!(
                step.starts_with(prefix),
                "{step:?} should start with {prefix:?}"
            );
        }
    }

    fn build(version: &str) -> Intent {
        Intent::Up(
            ImageSource::Build {
                tag: format!("shop-app:{version}"),
                version: version.into(),
            },
            UpMode::Switch,
        )
    }

    #[test]
    fn smoke_checks_run_on_the_healthy_slot_before_nginx_is_touched() {
        let mut config = config();
        config.smoke = DeployConfig::parse(
            "deploy.yml",
            &format!("{CONFIG}smoke:\n  - path: /api/hubspot/test\n    body_contains: ok\n"),
        )
        .unwrap()
        .smoke;
        let rendered = rendered();
        let observed = settled(Slot::Blue);
        let inputs = inputs(&config, &observed, &rendered);
        let steps: Vec<String> = plan(&build("v3"), &inputs)
            .unwrap()
            .steps
            .iter()
            .map(|s| s.to_string())
            .collect();
        let at = |prefix: &str| steps.iter().position(|s| s.starts_with(prefix)).unwrap();
        let smoke = at("smoke-check green before traffic moves: GET http://127.0.0.1:");
        assert!(
            steps[smoke].ends_with("/api/hubspot/test -> 200 containing \"ok\""),
            "{steps:?}"
        );
        assert!(at("wait until green answers") < smoke);
        assert!(smoke < at("render nginx config") && smoke < at("switch traffic blue -> green"));
    }

    #[test]
    fn first_deploy_on_a_bare_host_creates_everything_and_goes_blue() {
        let s = steps(build("v1"), &Observed::default());
        let expected_prefixes = [
            "run `scripts/build-app-binary.sh`",
            "build image shop-app:v1, shop-app:latest",
            "create network shop-net",
            "create volume shop-data",
            "create volume shop-sockets",
            "write the base nginx config /srv/nginx/nginx.conf",
            "start nginx container shop-nginx (local/nginx:bookworm; ports 0.0.0.0:8080->80, 0.0.0.0:8443->443, 0.0.0.0:9443->8443)",
            "make /run/slots writable",
            "point all 100 routes at live.sock",
            "start blue: container shop-blue from shop-app:v1 (version v1) on 127.0.0.1:3000",
            "wait until blue answers 200 at http://127.0.0.1:3000/ready (up to 300s)",
            "render nginx config into /srv/nginx/candidate",
            "make the rendered config live in /srv/nginx/live and reload nginx",
            "switch traffic to blue (create live.sock)",
            "check https://127.0.0.1:8443/health answers from blue",
        ];
        assert_prefixes(&s, &expected_prefixes);
    }

    /// compose made the network, the volumes and nginx before any deploy: nginx restarts in a
    /// loop (no config yet) and its socket directory is root's. `up` adopts all of it: it
    /// creates none of them again, writes the base config before restarting nginx, and
    /// prepares the socket directory.
    #[test]
    fn a_first_deploy_adopts_what_compose_made() {
        let observed = Observed {
            network: true,
            data_volume: true,
            socket_volume: true,
            nginx: Some(ContainerInfo {
                name: "shop-nginx".into(),
                status: "restarting".into(),
                ..container(Slot::Blue, false, "-")
            }),
            ..Observed::default()
        };
        let s = steps(build("v1"), &observed);
        assert!(!s.iter().any(|s| s.starts_with("create ")), "{s:#?}");
        assert!(
            !s.iter().any(|s| s.starts_with("start nginx container")),
            "{s:#?}"
        );
        let at = |prefix: &str| {
            s.iter()
                .position(|s| s.starts_with(prefix))
                .unwrap_or_else(|| panic!("no step {prefix:?} in {s:#?}"))
        };
        assert!(
            at("write the base nginx config")
                < at("(re)start the existing nginx container shop-nginx")
        );
        assert!(at("(re)start the existing nginx") < at("make /run/slots writable"));
        assert!(at("make /run/slots writable") < at("start blue"));

        // Docker may catch the looping nginx "running" for an instant: without its base config
        // it is not serving, and the plan is the same.
        let mut caught_running = observed.clone();
        caught_running.nginx.as_mut().unwrap().running = true;
        assert_eq!(steps(build("v1"), &caught_running), s);

        // Once nginx serves with the config, only a socket directory someone else made is
        // prepared (and only until it is).
        let mut serving = settled(Slot::Blue);
        serving.socket_dir_ready = false;
        let s = steps(build("v2"), &serving);
        assert!(s.iter().any(|s| s.starts_with("make /run/slots writable")));
        assert!(!s
            .iter()
            .any(|s| s.starts_with("write the base nginx config")));
        let s = steps(build("v2"), &settled(Slot::Blue));
        assert!(
            !s.iter().any(|s| s.starts_with("make /run/slots writable")),
            "{s:#?}"
        );
    }

    #[test]
    fn a_second_deploy_goes_to_the_idle_slot_without_a_reload() {
        let mut observed = settled(Slot::Blue);
        observed.green = None;
        let s = steps(build("v2"), &observed);
        assert!(s
            .iter()
            .any(|s| s.starts_with("start green: container shop-green from shop-app:v2")));
        assert!(s.contains(&"keep the live nginx config (unchanged: no reload)".to_string()));
        assert!(s.contains(
            &"switch traffic blue -> green (atomic rename of live.sock; no reload)".to_string()
        ));
        assert!(
            s.iter().any(|s| s.starts_with("drain blue (shop-blue)")),
            "{s:#?}"
        );
        assert!(
            !s.iter()
                .any(|s| s.contains("create") && !s.contains("live.sock")),
            "{s:#?}"
        );
    }

    #[test]
    fn secrets_from_the_env_file_are_never_printed() {
        let s = steps(build("v2"), &settled(Slot::Blue)).join("\n");
        assert!(s.contains("HUBSPOT_ACCESS_TOKEN=<from env_file>"), "{s}");
        assert!(!s.contains("pat-secret"));
        assert!(s.contains("APP_SLOT=green") && s.contains("APP_SOCKET=/run/slots/green.sock"));
    }

    #[test]
    fn an_old_idle_slot_is_drained_and_replaced() {
        let s = steps(build("v3"), &settled(Slot::Blue));
        let replace = s
            .iter()
            .position(|s| s.starts_with("drain and remove the old green container shop-green"))
            .unwrap();
        let start = s.iter().position(|s| s.starts_with("start green")).unwrap();
        assert!(replace < start);
    }

    #[test]
    fn a_changed_template_reloads_once() {
        let mut observed = settled(Slot::Blue);
        observed.live_site = Some("old site".into());
        let s = steps(build("v3"), &observed);
        assert!(s
            .iter()
            .any(|s| s.ends_with("and reload nginx (the text changed)")));
    }

    #[test]
    fn rollback_restarts_the_kept_slot_and_switches_back() {
        let s = steps(Intent::Rollback(None), &settled(Slot::Green));
        assert_eq!(s[0], "start the kept blue container shop-blue");
        assert!(s[1].starts_with("wait until blue answers 200"));
        assert!(s.contains(
            &"switch traffic green -> blue (atomic rename of live.sock; no reload)".to_string()
        ));
        assert!(s.iter().any(|s| s.starts_with("drain green (shop-green)")));
        assert!(!s
            .iter()
            .any(|s| s.starts_with("build") || s.starts_with("run `")));
    }

    #[test]
    fn rollback_with_nothing_kept_is_refused_with_the_reason() {
        let config = config();
        let rendered = rendered();
        for (observed, reason) in [
            (Observed::default(), "no slot is live yet"),
            (
                Observed {
                    green: None,
                    releases: vec![release("v1", None)],
                    ..settled(Slot::Blue)
                },
                "the green slot holds no earlier release and the history names none",
            ),
        ] {
            let inputs = inputs(&config, &observed, &rendered);
            let err = plan(&Intent::Rollback(None), &inputs).unwrap_err();
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    /// A deploy that failed after replacing the idle slot left a release there that never went
    /// live: rollback re-creates the slot from the release before the live one.
    #[test]
    fn rollback_recreates_the_previous_release_when_its_slot_is_gone_or_replaced() {
        let mut observed = settled(Slot::Green);
        observed.blue = Some(container(Slot::Blue, false, "v3-failed"));
        let plan = plan_of(Intent::Rollback(None), &observed, "").unwrap();
        let s = texts(&plan);
        assert_eq!(plan.version, "v1");
        assert!(
            s[0].starts_with("drain and remove the old blue container"),
            "{s:#?}"
        );
        assert!(
            s[1].starts_with("start blue: container shop-blue from shop-app:v1 (version v1)"),
            "{s:#?}"
        );
        observed.blue = None;
        let s = texts(&plan_of(Intent::Rollback(None), &observed, "").unwrap());
        assert!(
            s[0].starts_with("start blue: container shop-blue from shop-app:v1"),
            "{s:#?}"
        );
    }

    #[test]
    fn rollback_to_a_version_takes_one_of_the_recent_releases_only() {
        let mut observed = settled(Slot::Green);
        observed.releases = ["v2", "v1", "v0", "old"]
            .iter()
            .map(|v| release(v, None))
            .collect();
        // v0 is recent (keep_images 3): re-created in the idle slot, which holds v1.
        let plan = plan_of(Intent::Rollback(Some("v0".into())), &observed, "").unwrap();
        assert_eq!(
            (plan.to, plan.version.as_str(), plan.image.as_str()),
            (Slot::Blue, "v0", "shop-app:v0")
        );
        let err = plan_of(Intent::Rollback(Some("old".into())), &observed, "").unwrap_err();
        assert!(
            err.to_string().contains(
                "old is not among the recent releases, the last 3 (keep_images): v2, v1, v0"
            ),
            "{err}"
        );
        let err = plan_of(Intent::Rollback(Some("v2".into())), &observed, "").unwrap_err();
        assert!(
            err.to_string().contains("v2 is the live release already"),
            "{err}"
        );
        // The kept slot's own version: started, not re-created.
        let s = texts(&plan_of(Intent::Rollback(Some("v1".into())), &observed, "").unwrap());
        assert_eq!(s[0], "start the kept blue container shop-blue");
    }

    #[test]
    fn rollback_refuses_a_release_older_than_a_contract_migration_allows() {
        let mut observed = settled(Slot::Green);
        // v2 (live) contracted: code older than schema 7 cannot run on its schema; v1 is at 5.
        observed.releases = vec![release("v2", Some((8, 7))), release("v1", Some((5, 1)))];
        let err = plan_of(Intent::Rollback(None), &observed, "").unwrap_err();
        assert!(matches!(err, PlanError::SchemaTooOld(_)));
        assert!(err.to_string().contains("refusing to roll back to v1: it runs on schema 5, but v2 migrated the database to a schema that code older than schema 7 cannot run on"), "{err}");
        let config = DeployConfig::parse("deploy.yml", CONFIG).unwrap();
        let rendered = rendered();
        let inputs = Inputs {
            force: true,
            ..inputs(&config, &observed, &rendered)
        };
        assert!(
            plan(&Intent::Rollback(None), &inputs).is_ok(),
            "--force goes back anyway"
        );
        // Expand-only migrations: v2 still runs code from schema 1 on: allowed.
        observed.releases = vec![release("v2", Some((8, 1))), release("v1", Some((5, 1)))];
        assert!(plan_of(Intent::Rollback(None), &observed, "").is_ok());
    }

    #[test]
    fn hooks_run_where_deploy_yml_puts_them_and_post_switch_can_switch_back() {
        let hooks = "hooks:\n  pre_deploy:\n    - container: [/app, migrate]\n  post_switch:\n    - local: ./notify.sh switched\n  post_deploy:\n    - local: ./notify.sh done\n  on_rollback:\n    - local: ./notify.sh back\nschema:\n  command: [/app, schema]\n";
        let s = texts(&plan_of(up(UpMode::Switch), &settled(Slot::Blue), hooks).unwrap());
        let at = |prefix: &str| {
            s.iter()
                .position(|s| s.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix}: {s:#?}"))
        };
        assert!(s[at("ask shop-app:v3 for its schema")]
            .contains("`/app schema` in a one-off container"));
        assert!(
            at("ask shop-app:v3")
                < at("hook pre_deploy: `/app migrate` in a one-off container of shop-app:v3")
        );
        assert!(at("hook pre_deploy") < at("drain and remove the old green"));
        assert!(at("switch traffic blue -> green") < at("hook post_switch"));
        assert!(s[at("hook post_switch")]
            .ends_with("if it fails, switch back to blue at once and drain green"));
        assert!(at("hook post_switch") < at("drain blue"));
        assert!(at("check https://") < at("hook post_deploy: `./notify.sh done` on this machine"));
        let s = texts(&plan_of(Intent::Rollback(None), &settled(Slot::Green), hooks).unwrap());
        assert!(
            s.last()
                .unwrap()
                .starts_with("hook on_rollback: `./notify.sh back`"),
            "{s:#?}"
        );
        // A failed bake is a rollback too: its on_rollback hooks are for the old slot.
        let with_bake = format!("{hooks}{BAKE}");
        let baked = texts(&plan_of(up(UpMode::Switch), &settled(Slot::Blue), &with_bake).unwrap());
        assert!(
            baked.iter().any(|s| s.starts_with("bake green")
                && s.ends_with("drain green, then run the 1 on_rollback hook(s)")),
            "{baked:#?}"
        );
        assert!(
            !s.iter()
                .any(|s| s.contains("pre_deploy") || s.contains("schema")),
            "{s:#?}"
        );
    }

    #[test]
    fn a_deploy_killed_after_the_switch_converges() {
        // Killed between the switch and the drain: both slots run, green is live.
        let mut observed = settled(Slot::Green);
        observed.blue = Some(container(Slot::Blue, true, "v1"));
        let s = steps(build("v3"), &observed);
        assert!(
            s.iter()
                .any(|s| s.starts_with("drain and remove the old blue container")),
            "{s:#?}"
        );
        assert!(s.contains(
            &"switch traffic green -> blue (atomic rename of live.sock; no reload)".to_string()
        ));
    }

    fn plan_of(intent: Intent, observed: &Observed, extra_config: &str) -> Result<Plan, PlanError> {
        let config = DeployConfig::parse("deploy.yml", &format!("{CONFIG}{extra_config}")).unwrap();
        let rendered = rendered();
        let inputs = inputs(&config, observed, &rendered);
        plan(&intent, &inputs)
    }

    fn texts(plan: &Plan) -> Vec<String> {
        plan.steps.iter().map(|s| s.to_string()).collect()
    }

    fn up(mode: UpMode) -> Intent {
        match build("v3") {
            Intent::Up(source, _) => Intent::Up(source, mode),
            other => other,
        }
    }

    const BAKE: &str = "bake:\n  duration: 2m\n  max_error_rate: 1%\n  max_p99: 800ms\n";

    #[test]
    fn a_preview_stops_before_traffic_moves_and_keeps_the_old_slot_serving() {
        let plan = plan_of(up(UpMode::Preview), &settled(Slot::Blue), BAKE).unwrap();
        let s = texts(&plan);
        assert!(!s.iter().any(|s| s.starts_with("switch traffic")), "{s:#?}");
        assert!(!s.iter().any(|s| s.starts_with("drain blue")), "{s:#?}");
        assert!(
            !s.iter().any(|s| s.starts_with("bake")),
            "nothing to bake: {s:#?}"
        );
        let n = s.len();
        assert_eq!(
            s[n - 2],
            "show green on the preview port (preview.sock; no reload)"
        );
        assert_eq!(
            s[n - 1],
            "check https://127.0.0.1:9443/health answers from green"
        );
        assert_eq!((plan.live_after, plan.to), (Some(Slot::Blue), Slot::Green));
    }

    #[test]
    fn a_canary_takes_its_share_then_bakes_with_the_canary_withdrawn_on_failure() {
        let plan = plan_of(up(UpMode::Canary(10)), &settled(Slot::Blue), BAKE).unwrap();
        let s = texts(&plan);
        let n = s.len();
        assert!(
            s[n - 2].starts_with("send 10% of clients (routes 0-9, sticky by cookie) to green"),
            "{s:#?}"
        );
        assert!(s[n - 1].starts_with("bake green for 120s, the old slot kept running: if over 1% of its answers are 5xx or their p99 is over 800 ms in a 30s window (of at least 20 answers), send the canary's clients back"), "{}", s[n - 1]);
        assert_eq!(plan.live_after, Some(Slot::Blue));
        // Nothing live: nothing to share.
        let err = plan_of(up(UpMode::Canary(10)), &Observed::default(), "").unwrap_err();
        assert!(
            err.to_string().contains("plain `deployer up` first"),
            "{err}"
        );
    }

    #[test]
    fn a_switch_bakes_before_the_old_slot_drains_and_no_bake_skips_it() {
        let s = texts(&plan_of(up(UpMode::Switch), &settled(Slot::Blue), BAKE).unwrap());
        let at = |prefix: &str| s.iter().position(|s| s.starts_with(prefix)).unwrap();
        assert!(at("switch traffic blue -> green") < at("bake green for 120s"));
        assert!(s[at("bake green")].ends_with("switch back to blue at once and drain green"));
        assert!(at("bake green") < at("drain blue"));
        let config = DeployConfig::parse("deploy.yml", &format!("{CONFIG}{BAKE}")).unwrap();
        let rendered = rendered();
        let observed = settled(Slot::Blue);
        let inputs = Inputs {
            bake: false,
            ..inputs(&config, &observed, &rendered)
        };
        let s = texts(&plan(&up(UpMode::Switch), &inputs).unwrap());
        assert!(!s.iter().any(|s| s.starts_with("bake")), "{s:#?}");
    }

    fn on_trial(canary: u8) -> Observed {
        let mut observed = settled(Slot::Blue);
        observed.green = Some(container(Slot::Green, true, "v2"));
        observed.preview = Some(Slot::Green);
        for r in 0..canary {
            observed.routes.insert(r, "../green.sock".into());
        }
        observed
    }

    #[test]
    fn while_a_release_is_on_trial_up_and_rollback_are_refused() {
        for observed in [on_trial(0), on_trial(30)] {
            for intent in [up(UpMode::Switch), Intent::Rollback(None)] {
                let err = plan_of(intent, &observed, "").unwrap_err();
                assert!(matches!(err, PlanError::OnTrial(_)), "{err}");
                assert!(
                    err.to_string()
                        .contains("`deployer promote` puts it live, `deployer abort` withdraws it"),
                    "{err}"
                );
            }
        }
        assert_eq!(on_trial(30).canary(), Some((Slot::Green, 30)));
        assert!(plan_of(Intent::Promote, &settled(Slot::Blue), "").is_err());
    }

    #[test]
    fn promote_switches_resets_the_routes_ends_the_preview_bakes_and_drains() {
        let plan = plan_of(Intent::Promote, &on_trial(50), BAKE).unwrap();
        let s = texts(&plan);
        let expected = [
            "wait until green answers 200",
            "switch traffic blue -> green",
            "point all 100 routes at live.sock",
            "end the preview",
            "bake green for 120s",
            "drain blue (shop-blue)",
            "check https://127.0.0.1:8443/health answers from green",
        ];
        assert_prefixes(&s, &expected);
        assert_eq!(plan.live_after, Some(Slot::Green));
    }

    #[test]
    fn abort_sends_the_canary_clients_back_then_drains_the_trial_slot() {
        let plan = plan_of(Intent::Abort, &on_trial(10), BAKE).unwrap();
        let s = texts(&plan);
        assert_eq!(
            s[0],
            "point all 100 routes at live.sock (no canary; atomic renames, no reload)"
        );
        assert_eq!(s[1], "end the preview (remove preview.sock)");
        assert!(s[2].starts_with("drain green (shop-green)"));
        assert!(s[3].ends_with("answers from blue"));
        assert_eq!(plan.live_after, Some(Slot::Blue));
        // A preview only: no routes to touch.
        let s = texts(&plan_of(Intent::Abort, &on_trial(0), "").unwrap());
        assert_eq!(s[0], "end the preview (remove preview.sock)");
    }

    #[test]
    fn a_canary_share_moves_without_anything_else() {
        let s = texts(&plan_of(Intent::Canary(50), &on_trial(10), "").unwrap());
        assert_eq!(s.len(), 2, "{s:#?}");
        assert!(s[1].starts_with("send 50% of clients (routes 0-49"));
        let s = texts(&plan_of(Intent::Canary(0), &on_trial(10), BAKE).unwrap());
        assert_eq!(
            s[1],
            "point all 100 routes at live.sock (no canary; atomic renames, no reload)"
        );
        assert_eq!(s.len(), 2, "no bake for no share: {s:#?}");
    }

    #[test]
    fn poll_delays_start_quick_and_cap_at_the_interval() {
        let max = Duration::from_secs(1);
        let delays: Vec<u64> = (0..8)
            .map(|a| poll_delay(a, max).as_millis() as u64)
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(poll_delay(40, max), max, "no overflow on long waits");
    }
}
