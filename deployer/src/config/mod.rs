//! `deploy.yml`: what to deploy and how. Parsed strictly: an unknown key or a bad value is an
//! error naming the key, its line and the fix. Secrets never live here (they come from the
//! env file or the environment), and a secret-looking key under `env:` is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

mod fleet;
pub use fleet::{BalancerConfig, HostEntry, OnFailure, RolloutConfig, Strategy};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// Names containers, labels and the lock.
    pub service: String,
    /// Image repository, tagged per version.
    pub image: String,
    pub build: BuildConfig,
    #[serde(default)]
    pub slots: Slots,
    /// Plain settings for the container; no secrets.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A file of KEY=VALUE lines with the secrets, read at deploy time.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
    /// Names of variables taken from the deployer's own environment (secrets exported in CI).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Keys the app needs: `deployer check` (and every `up`) fails when one is set nowhere
    /// (`env`, `env_file`, `pass_env`).
    #[serde(default)]
    pub required_env: Vec<String>,
    /// `deployer check` fails below this much free disk where the engine keeps images (GB).
    #[serde(default = "default_min_free_disk_gb")]
    pub min_free_disk_gb: u64,
    #[serde(default)]
    pub health: HealthConfig,
    /// Requests the new slot must answer as expected, once healthy and before any traffic
    /// moves to it (`GET /api/hubspot/test` → 200: the release can reach HubSpot with its
    /// token). A failure stops the deploy; the live slot keeps serving.
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
    /// After traffic moves (a switch, a promotion, a canary share), the deployer watches the
    /// new slot's answers in nginx's access log for this long, the old slot kept running; a
    /// crossed threshold sends traffic back at once. None: no bake.
    #[serde(default)]
    pub bake: Option<BakeConfig>,
    /// Commands run at points of a release, the deploy lock held (README "Hooks" says what a
    /// failure does at each point).
    #[serde(default)]
    pub hooks: Hooks,
    /// How to ask a release image for its schema: a command, run in a one-off container of the
    /// image, that prints `{"version": N, "oldest_compatible": M}`. Recorded per release;
    /// `rollback` refuses to go back to a release older than the schema it would run on allows.
    #[serde(default)]
    pub schema: Option<SchemaConfig>,
    pub nginx: NginxConfig,
    /// Old images kept for rollback by `deployer prune`.
    #[serde(default = "default_keep_images")]
    pub keep_images: u32,
    /// Where the lock and the deploy history live on the host (default
    /// `/var/lib/deployer/<service>`).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// How long the old slot may take to drain its connections before it is stopped anyway.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: HumanDuration,
    /// Deploy to another machine over SSH instead of this one. Paths on the host
    /// (`state_dir`, `nginx.rendered_dir`, `nginx.ssl_dir`) are then paths on that machine.
    #[serde(default)]
    pub remote: Option<RemoteConfig>,
    /// Several machines, each running its own nginx and slots (instead of `remote:`).
    #[serde(default)]
    pub hosts: Vec<HostEntry>,
    /// How a release moves across `hosts:`.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// An nginx in front of `hosts:`, managed by the deployer.
    #[serde(default)]
    pub balancer: Option<BalancerConfig>,
    /// Set (never read from the file) on one host of a fleet: the deployer ships that host the
    /// images it lacks, so a missing one is not a failed check.
    #[serde(skip)]
    pub images_shipped: bool,
}

/// The SSH connection to a remote Docker host.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    pub host: String,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    pub user: String,
    /// A private key file; without one, the SSH agent, then `~/.ssh/id_ed25519`, `id_ecdsa`,
    /// `id_rsa`.
    #[serde(default)]
    pub identity: Option<PathBuf>,
    /// The host's key must be in this file (OpenSSH format); default `~/.ssh/known_hosts`.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// The Docker engine's socket on the host.
    #[serde(default = "default_docker_socket")]
    pub docker_socket: String,
}

fn default_ssh_port() -> u16 {
    22
}
fn default_docker_socket() -> String {
    "/var/run/docker.sock".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// Shell commands run (in the build context) before the image build, e.g. the
    /// static binary build the app's Dockerfile copies.
    #[serde(default)]
    pub pre: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slots {
    pub blue: SlotConfig,
    pub green: SlotConfig,
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            blue: SlotConfig { port: 3000 },
            green: SlotConfig { port: 3001 },
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    pub port: u16,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    pub path: String,
    /// The longest pause between polls; the first polls come quicker.
    pub interval: HumanDuration,
    /// Give up after this long.
    pub timeout: HumanDuration,
    pub expect_status: u16,
}

/// One smoke check: a request to the new slot and the answer it must give.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// `GET` (the default), `HEAD` or `POST` (with an empty JSON body).
    #[serde(default = "default_smoke_method")]
    pub method: String,
    pub path: String,
    #[serde(default = "default_smoke_status")]
    pub expect_status: u16,
    /// Text the answer's body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// How long the answer may take (default 15s).
    #[serde(default = "default_smoke_timeout")]
    pub timeout: HumanDuration,
}

/// The hooks of a release, each a list run in order.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Once the image exists, before the new slot starts (database migrations: expand only).
    #[serde(default)]
    pub pre_deploy: Vec<Hook>,
    /// Right after traffic moves to the new slot, the old one still running.
    #[serde(default)]
    pub post_switch: Vec<Hook>,
    /// At the end of a successful deploy or promotion.
    #[serde(default)]
    pub post_deploy: Vec<Hook>,
    /// At the end of a rollback.
    #[serde(default)]
    pub on_rollback: Vec<Hook>,
}

/// One hook: a command in a one-off container of the release's image (with the slot's env and
/// volumes), or a shell command on the machine running the deployer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    #[serde(default)]
    pub container: Option<Vec<String>>,
    #[serde(default)]
    pub local: Option<String>,
    #[serde(default = "default_hook_timeout")]
    pub timeout: HumanDuration,
}

fn default_hook_timeout() -> HumanDuration {
    Duration::from_secs(300).into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    pub command: Vec<String>,
}

/// The bake: how long to watch, and what a release may not cross meanwhile.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BakeConfig {
    pub duration: HumanDuration,
    /// The largest share of the new slot's answers that may be 5xx, e.g. `1%` (or 0.01).
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: Rate,
    /// The slowest p99 latency allowed (nginx's request time), e.g. `800ms`.
    #[serde(default)]
    pub max_p99: Option<HumanDuration>,
    /// The answers are judged over this trailing window.
    #[serde(default = "default_bake_window")]
    pub window: HumanDuration,
    /// Below this many answers in the window nothing is judged (one 5xx of three is noise).
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
}

/// A share written as `1%`, `0.5%` or `0.01`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Rate {
    Fraction(f64),
    Text(String),
}

impl Rate {
    fn parse(&self) -> Result<f64, String> {
        let value = match self {
            Rate::Fraction(f) => *f,
            Rate::Text(t) => match t.trim().strip_suffix('%') {
                Some(pct) => pct
                    .trim()
                    .parse::<f64>()
                    .map(|p| p / 100.0)
                    .map_err(|_| format!("'{t}' is not a share; write e.g. 1% or 0.01"))?,
                None => t
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("'{t}' is not a share; write e.g. 1% or 0.01"))?,
            },
        };
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(format!("{value} is not between 0 and 1 (0% and 100%)"))
        }
    }

    /// The share (validated by [`DeployConfig::parse`]).
    pub fn get(&self) -> f64 {
        self.parse().unwrap_or_default()
    }
}

fn default_max_error_rate() -> Rate {
    Rate::Fraction(0.01)
}
fn default_bake_window() -> HumanDuration {
    Duration::from_secs(30).into()
}
fn default_min_requests() -> u32 {
    20
}

fn default_min_free_disk_gb() -> u64 {
    5
}

fn default_smoke_method() -> String {
    "GET".into()
}

fn default_smoke_status() -> u16 {
    200
}

fn default_smoke_timeout() -> HumanDuration {
    HumanDuration("15s".into())
}

/// A duration as written (`300s`, `1m`, `500ms`). Kept as text through deserialisation so a bad
/// value is reported at its own line by [`DeployConfig::parse`], which checks it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct HumanDuration(String);

impl HumanDuration {
    fn parse(&self) -> Result<Duration, String> {
        humantime::parse_duration(self.0.trim()).map_err(|_| {
            format!(
                "'{}' is not a duration; write e.g. 300s, 1m or 500ms",
                self.0
            )
        })
    }

    /// The value; zero only if it was never validated (parse() validates every config).
    pub fn get(&self) -> Duration {
        self.parse().unwrap_or_default()
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(humantime::format_duration(d).to_string())
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            path: "/ready".into(),
            interval: Duration::from_secs(1).into(),
            timeout: Duration::from_secs(300).into(),
            expect_status: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NginxConfig {
    /// The tera template of the upstream and server blocks.
    pub template: PathBuf,
    /// The tera template of the base `nginx.conf`.
    #[serde(default = "default_nginx_base")]
    pub base: PathBuf,
    /// Directory (mounted into nginx) where the rendered config is written.
    pub rendered_dir: PathBuf,
    pub container: String,
    #[serde(default = "default_nginx_image")]
    pub image: String,
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    #[serde(default = "default_https_port")]
    pub https_port: u16,
    /// Holds `cert.pem` and `key.pem` (scripts/gen-self-signed.sh makes a local pair).
    #[serde(default = "default_ssl_dir")]
    pub ssl_dir: PathBuf,
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// Where `deployer up --no-switch` shows the new release before it goes live (HTTPS).
    #[serde(default = "default_preview_port")]
    pub preview_port: u16,
}

fn default_preview_port() -> u16 {
    9443
}

fn default_nginx_base() -> PathBuf {
    "nginx/nginx.conf.tera".into()
}
fn default_nginx_image() -> String {
    "local/nginx:bookworm".into()
}
fn default_http_port() -> u16 {
    80
}
fn default_https_port() -> u16 {
    443
}
fn default_ssl_dir() -> PathBuf {
    "ssl".into()
}
fn default_server_name() -> String {
    "_".into()
}
fn default_drain_timeout() -> HumanDuration {
    Duration::from_secs(30).into()
}

fn default_keep_images() -> u32 {
    3
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// `~/x` as `$HOME/x`.
fn expand_home(p: &std::path::Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// The 1-based line of `path` (nested keys) in YAML `text`, found by indentation.
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut want = 0;
    let mut parent_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        match parent_indent {
            Some(p) if indent <= p => return None, // left the parent's block
            None if indent > 0 => continue,        // top-level keys only
            _ => {}
        }
        if trimmed.starts_with(&format!("{}:", path[want])) {
            if want + 1 == path.len() {
                return Some(i + 1);
            }
            parent_indent = Some(indent);
            want += 1;
        }
    }
    None
}

const SECRET_WORDS: [&str; 5] = ["TOKEN", "SECRET", "PASSWORD", "API_KEY", "PRIVATE"];

impl DeployConfig {
    /// Reads and parses `path`; relative paths inside are taken from the file's directory.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            message: format!("cannot read it: {e} (pass another path with -c)"),
        })?;
        let mut config = Self::parse(&file, &text)?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        for p in [
            &mut config.build.context,
            &mut config.nginx.template,
            &mut config.nginx.base,
            &mut config.nginx.ssl_dir,
            &mut config.nginx.rendered_dir,
        ] {
            if p.as_os_str() == "." {
                *p = base.clone();
            } else if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(f) = config.env_file.as_mut().filter(|f| f.is_relative()) {
            *f = base.join(&*f);
        }
        if let Some(d) = config.state_dir.as_mut().filter(|d| d.is_relative()) {
            *d = base.join(&*d);
        }
        let balancer_ssh = config.balancer.as_mut().and_then(|b| b.ssh.as_mut());
        let ssh = config
            .remote
            .iter_mut()
            .chain(config.hosts.iter_mut().filter_map(|h| h.ssh.as_mut()))
            .chain(balancer_ssh);
        for remote in ssh {
            for p in [remote.identity.as_mut(), remote.known_hosts.as_mut()]
                .into_iter()
                .flatten()
            {
                *p = expand_home(p);
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        if let Some(b) = config.balancer.as_mut() {
            let on_this_machine = b.ssh.is_none();
            let mut paths = vec![&mut b.template];
            if on_this_machine {
                paths.extend([&mut b.rendered_dir, &mut b.ssl_dir]);
            }
            for p in paths.into_iter().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/deployer").join(&self.service))
    }

    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        let config: DeployConfig = serde_yaml::from_str(text).map_err(|e| ConfigError {
            file: file.to_string(),
            line: e.location().map(|l| l.line()),
            message: format!("{}{}", strip_location(&e.to_string()), hint(&e.to_string())),
        })?;
        config.validate().map_err(|(path, message)| ConfigError {
            file: file.to_string(),
            line: locate(text, &path),
            message: format!("{}: {message}", path.join(".")),
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (Vec<&'static str>, String)> {
        let err = |path: &[&'static str], m: String| Err((path.to_vec(), m));
        if self.service.trim().is_empty()
            || !self
                .service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return err(
                &["service"],
                format!(
                    "'{}' must be letters, digits, '-' or '_' (it names containers)",
                    self.service
                ),
            );
        }
        if self.slots.blue.port == self.slots.green.port {
            return err(
                &["slots", "green", "port"],
                format!(
                    "blue and green both use port {}; give each slot its own port",
                    self.slots.blue.port
                ),
            );
        }
        for (slot, port) in [
            ("blue", self.slots.blue.port),
            ("green", self.slots.green.port),
        ] {
            if port == 0 {
                return err(
                    &["slots", slot, "port"],
                    "port 0 is not a port; use e.g. 3000".into(),
                );
            }
        }
        if !self.health.path.starts_with('/') {
            return err(
                &["health", "path"],
                format!("'{}' must start with '/', e.g. /ready", self.health.path),
            );
        }
        let timeout = self
            .health
            .timeout
            .parse()
            .or_else(|m| err(&["health", "timeout"], m).map(|()| Duration::ZERO))?;
        let interval = self
            .health
            .interval
            .parse()
            .or_else(|m| err(&["health", "interval"], m).map(|()| Duration::ZERO))?;
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return err(
                &["health", "timeout"],
                "must be between 1s and 1h (default 300s)".into(),
            );
        }
        if interval.is_zero() || interval > timeout {
            return err(
                &["health", "interval"],
                "must be above zero and below health.timeout (default 1s)".into(),
            );
        }
        if !(100..=599).contains(&self.health.expect_status) {
            return err(
                &["health", "expect_status"],
                format!("{} is not an HTTP status", self.health.expect_status),
            );
        }
        for (i, check) in self.smoke.iter().enumerate() {
            let n = i + 1;
            if !check.path.starts_with('/') {
                return err(
                    &["smoke"],
                    format!(
                        "check {n}: path '{}' must start with '/', e.g. /api/hubspot/test",
                        check.path
                    ),
                );
            }
            if !matches!(check.method.as_str(), "GET" | "HEAD" | "POST") {
                return err(
                    &["smoke"],
                    format!(
                        "check {n} ({}): method '{}' is not GET, HEAD or POST",
                        check.path, check.method
                    ),
                );
            }
            if !(100..=599).contains(&check.expect_status) {
                return err(
                    &["smoke"],
                    format!(
                        "check {n} ({}): {} is not an HTTP status",
                        check.path, check.expect_status
                    ),
                );
            }
            match check.timeout.parse() {
                Ok(t) if !t.is_zero() && t <= Duration::from_secs(300) => {}
                Ok(_) => {
                    return err(
                        &["smoke"],
                        format!(
                            "check {n} ({}): timeout must be between 1ms and 5m",
                            check.path
                        ),
                    )
                }
                Err(m) => {
                    return err(
                        &["smoke"],
                        format!("check {n} ({}): timeout {m}", check.path),
                    )
                }
            }
        }
        for (stage, hooks) in [
            ("pre_deploy", &self.hooks.pre_deploy),
            ("post_switch", &self.hooks.post_switch),
            ("post_deploy", &self.hooks.post_deploy),
            ("on_rollback", &self.hooks.on_rollback),
        ] {
            for (i, hook) in hooks.iter().enumerate() {
                let n = i + 1;
                match (&hook.container, &hook.local) {
                    (Some(argv), None) if !argv.is_empty() => {}
                    (None, Some(command)) if !command.trim().is_empty() => {}
                    _ => {
                        return err(
                            &["hooks", stage],
                            format!("hook {n}: give exactly one of `container: [argv...]` (run in a one-off container of the release's image) or `local: \"shell command\"`"),
                        )
                    }
                }
                match hook.timeout.parse() {
                    Ok(t) if !t.is_zero() && t <= Duration::from_secs(3600) => {}
                    Ok(_) => {
                        return err(
                            &["hooks", stage],
                            format!("hook {n}: timeout must be between 1s and 1h"),
                        )
                    }
                    Err(m) => return err(&["hooks", stage], format!("hook {n}: timeout {m}")),
                }
            }
        }
        if self.schema.as_ref().is_some_and(|s| s.command.is_empty()) {
            return err(
                &["schema", "command"],
                "is empty; give the argv that prints the schema, e.g. [\"/app\", \"schema\"]"
                    .into(),
            );
        }
        if let Some(bake) = &self.bake {
            match bake.duration.parse() {
                Ok(d) if !d.is_zero() && d <= Duration::from_secs(24 * 3600) => {}
                Ok(_) => return err(&["bake", "duration"], "must be between 1s and 24h".into()),
                Err(m) => return err(&["bake", "duration"], m),
            }
            match bake.window.parse() {
                Ok(d) if !d.is_zero() => {}
                Ok(_) => {
                    return err(
                        &["bake", "window"],
                        "must be above zero (default 30s)".into(),
                    )
                }
                Err(m) => return err(&["bake", "window"], m),
            }
            if let Err(m) = bake.max_error_rate.parse() {
                return err(&["bake", "max_error_rate"], m);
            }
            if let Some(Err(m)) = bake.max_p99.as_ref().map(HumanDuration::parse) {
                return err(&["bake", "max_p99"], m);
            }
            if bake.min_requests == 0 {
                return err(
                    &["bake", "min_requests"],
                    "must be at least 1 (default 20)".into(),
                );
            }
        }
        let ports = [
            self.nginx.http_port,
            self.nginx.https_port,
            self.nginx.preview_port,
        ];
        if ports[2] == ports[0] || ports[2] == ports[1] {
            return err(
                &["nginx", "preview_port"],
                format!(
                    "{} is already nginx's HTTP or HTTPS port; give the preview its own (default 9443)",
                    ports[2]
                ),
            );
        }
        if let Some(key) = self.env.keys().find(|k| {
            SECRET_WORDS
                .iter()
                .any(|w| k.to_ascii_uppercase().contains(w))
        }) {
            return err(&["env"], format!("{key} looks like a secret; secrets never go in deploy.yml: put it in env_file (or export it) instead"));
        }
        if let Some(remote) = &self.remote {
            if let Some((path, m)) = self.relative_host_path() {
                return err(
                    path,
                    format!("{m}, but with remote: it is a path on {}", remote.host),
                );
            }
            if let Err(m) = remote.validate() {
                return err(&["remote"], m);
            }
        }
        self.validate_fleet()?;
        let drain = self
            .drain_timeout
            .parse()
            .or_else(|m| err(&["drain_timeout"], m).map(|()| Duration::ZERO))?;
        if drain.is_zero() || drain > Duration::from_secs(600) {
            return err(
                &["drain_timeout"],
                "must be between 1s and 10m (default 30s)".into(),
            );
        }
        if self.nginx.http_port == self.nginx.https_port
            || self.nginx.http_port == 0
            || self.nginx.https_port == 0
        {
            return err(
                &["nginx", "https_port"],
                "http_port and https_port must be two different, non-zero ports (default 80 and 443)".into(),
            );
        }
        if self.keep_images == 0 {
            return err(
                &["keep_images"],
                "must be at least 1, or rollback has nothing to go back to".into(),
            );
        }
        Ok(())
    }
}

impl DeployConfig {
    /// The first path on the host that is relative (with SSH, paths on the host must be
    /// absolute): its key and what is wrong.
    fn relative_host_path(&self) -> Option<(&'static [&'static str], String)> {
        let paths: [(&'static [&'static str], Option<&std::path::Path>); 3] = [
            (&["state_dir"], self.state_dir.as_deref()),
            (&["nginx", "rendered_dir"], Some(&self.nginx.rendered_dir)),
            (&["nginx", "ssl_dir"], Some(&self.nginx.ssl_dir)),
        ];
        paths.into_iter().find_map(|(path, value)| {
            value.filter(|v| !v.is_absolute()).map(|v| {
                (
                    path,
                    format!(
                        "'{}' is relative; give the absolute path on the host",
                        v.display()
                    ),
                )
            })
        })
    }
}

fn strip_location(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

fn hint(message: &str) -> &'static str {
    if message.contains("unknown field") {
        " (remove it or fix its spelling)"
    } else if message.contains("missing field") {
        " (add it; see deploy.yml in the repository for an example)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
service: hubspot-app
image: hubspot-app
build:
  context: .
  dockerfile: app/Dockerfile
env:
  HUBSPOT_BASE_URL: http://sim:8090
health:
  path: /ready
  interval: 1s
  timeout: 300s
  expect_status: 200
nginx:
  template: nginx/upstream.conf.tera
  rendered_dir: /var/lib/deployer/nginx
  container: hubspot-nginx
";

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = DeployConfig::parse("deploy.yml", GOOD).unwrap();
        assert_eq!(c.slots, Slots::default());
        assert_eq!(c.health.timeout.get(), Duration::from_secs(300));
        assert_eq!(c.keep_images, 3);
    }

    fn error(text: &str) -> ConfigError {
        DeployConfig::parse("deploy.yml", text).unwrap_err()
    }

    #[test]
    fn a_remote_host_needs_absolute_host_paths() {
        let remote = format!(
            "{GOOD}ssl_dir_placeholder: x\nremote:\n  host: 203.0.113.10\n  user: deploy\n"
        )
        .replace("ssl_dir_placeholder: x\n", "");
        // nginx.ssl_dir defaults to the relative `ssl`: on another machine that means nothing.
        let e = error(&remote);
        assert!(
            e.message.starts_with("nginx.ssl_dir: 'ssl' is relative")
                && e.message.contains("on 203.0.113.10"),
            "{e}"
        );
        let ok = remote.replace(
            "  container: hubspot-nginx\n",
            "  container: hubspot-nginx\n  ssl_dir: /etc/ssl/app\n",
        );
        let c = DeployConfig::parse("deploy.yml", &ok).unwrap();
        let r = c.remote.unwrap();
        assert_eq!(
            (r.port, r.docker_socket.as_str()),
            (22, "/var/run/docker.sock")
        );
        let e = error(&ok.replace("  user: deploy\n", "  user: deploy\n  prot: 22\n"));
        assert!(e.message.contains("unknown field `prot`"), "{e}");
    }

    #[test]
    fn unknown_keys_name_the_key_the_line_and_the_fix() {
        let e = error(&GOOD.replace("  timeout: 300s", "  timout: 300s"));
        assert_eq!(e.line, Some(11));
        assert!(
            e.message.contains("unknown field `timout`") && e.message.contains("spelling"),
            "{e}"
        );
        assert!(e.to_string().starts_with("deploy.yml:11: "), "{e}");
    }

    #[test]
    fn bad_values_name_the_key_the_line_and_the_fix() {
        let e = error(&GOOD.replace("timeout: 300s", "timeout: forever"));
        assert_eq!(e.line, Some(11));
        assert!(e.message.contains("300s"), "{e}");

        let e = error(&GOOD.replace("path: /ready", "path: ready"));
        assert_eq!(
            (e.line, e.message.starts_with("health.path")),
            (Some(9), true),
            "{e}"
        );

        let e = error(&format!(
            "{GOOD}slots:\n  blue:\n    port: 3000\n  green:\n    port: 3000\n"
        ));
        assert_eq!(e.line, Some(21), "{e}");
        assert!(e.message.contains("own port"), "{e}");
    }

    #[test]
    fn smoke_checks_take_defaults_and_bad_ones_name_the_check() {
        let c = DeployConfig::parse(
            "deploy.yml",
            &format!("{GOOD}smoke:\n  - path: /api/hubspot/test\n"),
        )
        .unwrap();
        let check = &c.smoke[0];
        assert_eq!((check.method.as_str(), check.expect_status), ("GET", 200));
        assert_eq!(check.timeout.get(), Duration::from_secs(15));
        for (bad, says) in [
            (
                "  - path: api/test\n",
                "check 1: path 'api/test' must start with '/'",
            ),
            (
                "  - path: /t\n    method: DELETE\n",
                "method 'DELETE' is not GET, HEAD or POST",
            ),
            (
                "  - path: /t\n    timeout: soon\n",
                "check 1 (/t): timeout 'soon' is not a duration",
            ),
        ] {
            let e = error(&format!("{GOOD}smoke:\n{bad}"));
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn secrets_in_env_are_refused() {
        let e = error(&GOOD.replace(
            "  HUBSPOT_BASE_URL: http://sim:8090",
            "  HUBSPOT_ACCESS_TOKEN: pat-123",
        ));
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("env_file"), "{e}");
        assert!(
            !e.message.contains("pat-123"),
            "the value itself is never echoed"
        );
    }

    #[test]
    fn missing_sections_say_what_to_add() {
        let e = error("service: x\nimage: y\n");
        assert!(
            e.message.contains("missing field") && e.message.contains("add it"),
            "{e}"
        );
    }
}
