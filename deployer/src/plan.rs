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
}

impl Observed {
    pub fn slot(&self, slot: Slot) -> Option<&ContainerInfo> {
        match slot {
            Slot::Blue => self.blue.as_ref(),
            Slot::Green => self.green.as_ref(),
        }
    }
}

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
    Up(ImageSource),
    Rollback,
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("nothing to roll back to: {0}")]
    NoRollbackTarget(String),
}

/// The plan for `intent`, given the host as observed.
pub fn plan(intent: &Intent, inputs: &Inputs<'_>) -> Result<Plan, PlanError> {
    let config = inputs.config;
    let observed = inputs.observed;
    let names = Names::of(config);
    let mut steps = Vec::new();
    let from = observed.live;
    let grace = config.drain_timeout.get().as_secs() as i64 + 5;

    let (to, image, version) = match intent {
        Intent::Up(source) => {
            let to = from.map_or(Slot::Blue, Slot::other);
            let (image, version) = match source {
                ImageSource::Build { tag, version } => {
                    for command in &config.build.pre {
                        steps.push(Step::RunPre {
                            command: command.clone(),
                            dir: config.build.context.clone(),
                        });
                    }
                    steps.push(Step::BuildImage {
                        tags: vec![tag.clone(), format!("{}:latest", config.image)],
                        context: config.build.context.clone(),
                        dockerfile: config.build.dockerfile.display().to_string(),
                        args: config.build.args.clone(),
                    });
                    (tag.clone(), version.clone())
                }
                ImageSource::Existing { reference, version } => {
                    (reference.clone(), version.clone())
                }
            };
            (to, image, version)
        }
        Intent::Rollback => {
            let live = from.ok_or_else(|| {
                PlanError::NoRollbackTarget("no slot is live yet; run `deployer up` first".into())
            })?;
            let to = live.other();
            let kept = observed.slot(to).ok_or_else(|| {
                PlanError::NoRollbackTarget(format!(
                    "the {to} slot has no container (it was never deployed or was removed); deploy a version with `deployer up --image REF`"
                ))
            })?;
            let version = kept
                .labels
                .get(LABEL_VERSION)
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            (to, kept.image.clone(), version)
        }
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

    // The target slot.
    let target_name = names.slot(to).to_string();
    match intent {
        Intent::Up(_) => {
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
        Intent::Rollback => {
            if !observed.slot(to).is_some_and(|c| c.running) {
                steps.push(Step::StartKeptSlot {
                    slot: to,
                    name: target_name.clone(),
                });
            }
        }
    }
    let port = match to {
        Slot::Blue => config.slots.blue.port,
        Slot::Green => config.slots.green.port,
    };
    steps.push(Step::WaitHealthy {
        slot: to,
        container: target_name,
        url: format!("http://127.0.0.1:{port}{}", config.health.path),
        expect_status: config.health.expect_status,
        timeout_secs: config.health.timeout.get().as_secs(),
        max_interval_ms: config.health.interval.get().as_millis() as u64,
    });

    if !config.smoke.is_empty() {
        steps.push(Step::Smoke {
            slot: to,
            checks: config
                .smoke
                .iter()
                .map(|c| Smoke {
                    method: c.method.clone(),
                    url: format!("http://127.0.0.1:{port}{}", c.path),
                    expect_status: c.expect_status,
                    body_contains: c.body_contains.clone(),
                    timeout_ms: c.timeout.get().as_millis() as u64,
                })
                .collect(),
        });
    }

    // nginx: validate, make live (reload only if the text changed), switch.
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
    if from != Some(to) {
        steps.push(Step::Switch {
            from,
            to,
            container: names.nginx.clone(),
        });
    }
    if let Some(old) = from.filter(|old| *old != to) {
        if observed.slot(old).is_some_and(|c| c.running) {
            steps.push(Step::DrainAndStop {
                slot: old,
                name: names.slot(old).to_string(),
                grace_secs: grace,
            });
        }
    }
    steps.push(Step::Verify {
        url: format!("https://127.0.0.1:{}/health", config.nginx.https_port),
        slot: to,
    });

    Ok(Plan {
        intent: match intent {
            Intent::Up(_) => "up".into(),
            Intent::Rollback => "rollback".into(),
        },
        from,
        to,
        version,
        image,
        steps,
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
    let port = match slot {
        Slot::Blue => config.slots.blue.port,
        Slot::Green => config.slots.green.port,
    };
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
        }
    }

    fn steps(intent: Intent, observed: &Observed) -> Vec<String> {
        let config = config();
        let rendered = rendered();
        let secrets = vec![("HUBSPOT_ACCESS_TOKEN".to_string(), "pat-secret".to_string())];
        let inputs = Inputs {
            config: &config,
            observed,
            rendered: &rendered,
            secret_env: &secrets,
            user: "ops",
            now: "T",
        };
        plan(&intent, &inputs)
            .unwrap()
            .steps
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn build(version: &str) -> Intent {
        Intent::Up(ImageSource::Build {
            tag: format!("shop-app:{version}"),
            version: version.into(),
        })
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
        let inputs = Inputs {
            config: &config,
            observed: &settled(Slot::Blue),
            rendered: &rendered,
            secret_env: &[],
            user: "ops",
            now: "T",
        };
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
            "start nginx container shop-nginx (local/nginx:bookworm; ports 0.0.0.0:8080->80, 0.0.0.0:8443->443)",
            "make /run/slots writable",
            "start blue: container shop-blue from shop-app:v1 (version v1) on 127.0.0.1:3000",
            "wait until blue answers 200 at http://127.0.0.1:3000/ready (up to 300s)",
            "render nginx config into /srv/nginx/candidate",
            "make the rendered config live in /srv/nginx/live and reload nginx",
            "switch traffic to blue (create live.sock)",
            "check https://127.0.0.1:8443/health answers from blue",
        ];
        assert_eq!(s.len(), expected_prefixes.len(), "{s:#?}");
        for (step, prefix) in s.iter().zip(expected_prefixes) {
            assert!(
                step.starts_with(prefix),
                "{step:?} should start with {prefix:?}"
            );
        }
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
        let s = steps(Intent::Rollback, &settled(Slot::Green));
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
                    ..settled(Slot::Blue)
                },
                "the green slot has no container",
            ),
        ] {
            let inputs = Inputs {
                config: &config,
                observed: &observed,
                rendered: &rendered,
                secret_env: &[],
                user: "ops",
                now: "T",
            };
            let err = plan(&Intent::Rollback, &inputs).unwrap_err();
            assert!(err.to_string().contains(reason), "{err}");
        }
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
