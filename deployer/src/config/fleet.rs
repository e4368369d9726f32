//! The many-hosts part of `deploy.yml`: `hosts:` (the machines, each this one or one over SSH),
//! `rollout:` (how a release moves across them) and `balancer:` (an nginx in front of them).
//! A config without `hosts:` is one host, as before (`remote:` or this machine).
//! May not import anything outside `config` (parsing only: no I/O).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{DeployConfig, HumanDuration, RemoteConfig};

/// One machine of a many-host deploy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// Names the host in plans, status, `logs --host` and `hosts drain`.
    pub name: String,
    /// How to reach it, as under `remote:`; without it, the host is this machine.
    #[serde(default)]
    pub ssh: Option<RemoteConfig>,
    /// Where the balancer reaches the host's nginx (its HTTPS port); default the SSH host, or
    /// 127.0.0.1 for this machine.
    #[serde(default)]
    pub address: Option<String>,
}

impl HostEntry {
    pub fn address(&self) -> String {
        self.address.clone().unwrap_or_else(|| {
            self.ssh
                .as_ref()
                .map_or_else(|| "127.0.0.1".to_string(), |s| s.host.clone())
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every host at once (each host's own switch is drop-free; the versions mix for as long
    /// as the slowest host takes).
    #[default]
    AllAtOnce,
    /// A batch at a time, each batch health- and smoke-checked (and baked) before the next.
    Rolling,
    /// The new slot started and checked on every host first, then every host switched at once.
    TwoPhase,
}

/// What happens to the hosts already switched when a later one fails.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// They go back to the release they ran before (their old slot is still there).
    #[default]
    Rollback,
    /// They keep the new release; the summary says which host runs what.
    Keep,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    #[serde(default)]
    pub strategy: Strategy,
    /// `rolling`: hosts per batch, a count (`1`) or a share of the hosts (`"50%"`).
    #[serde(default = "default_batch")]
    pub batch: String,
    /// `rolling`: the wait after a batch is done (and baked) before the next starts.
    #[serde(default = "default_pause")]
    pub pause: HumanDuration,
    /// `two_phase`: the most time the switches of all hosts may take together (the window in
    /// which two versions serve); longer, and the release is rolled back everywhere.
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Hosts worked on at once (each holds one SSH session).
    #[serde(default = "default_parallel")]
    pub parallel: usize,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            batch: default_batch(),
            pause: default_pause(),
            window: default_window(),
            on_failure: OnFailure::default(),
            parallel: default_parallel(),
        }
    }
}

fn default_batch() -> String {
    "1".into()
}
fn default_pause() -> HumanDuration {
    Duration::ZERO.into()
}
fn default_window() -> HumanDuration {
    Duration::from_secs(5).into()
}
fn default_parallel() -> usize {
    4
}

impl RolloutConfig {
    /// Hosts per batch out of `hosts` (at least 1).
    pub fn batch_size(&self, hosts: usize) -> Result<usize, String> {
        let bad = || {
            format!(
                "'{}' is not a batch: give a count of hosts (1) or a share (\"50%\")",
                self.batch
            )
        };
        let size = match self.batch.trim().strip_suffix('%') {
            Some(pct) => {
                let pct: f64 = pct.trim().parse().map_err(|_| bad())?;
                if !(pct > 0.0 && pct <= 100.0) {
                    return Err(format!("{pct}% must be above 0 and at most 100"));
                }
                (hosts as f64 * pct / 100.0).ceil() as usize
            }
            None => self.batch.trim().parse().map_err(|_| bad())?,
        };
        if size == 0 {
            return Err("a batch of 0 hosts never finishes; give at least 1".into());
        }
        Ok(size.clamp(1, hosts.max(1)))
    }
}

/// An nginx in front of the hosts, managed by the deployer on a machine of its own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BalancerConfig {
    /// The balancer's container (default `<service>-balancer`).
    #[serde(default)]
    pub container: Option<String>,
    /// The machine it runs on, as under `remote:`; without it, this machine.
    #[serde(default)]
    pub ssh: Option<RemoteConfig>,
    /// A Docker network to join there (one from which the hosts' addresses are reachable).
    #[serde(default)]
    pub network: Option<String>,
    /// The tera template of its config.
    #[serde(default = "default_balancer_template")]
    pub template: PathBuf,
    /// Where its rendered config and routes live on its machine.
    pub rendered_dir: PathBuf,
    /// Holds `cert.pem` and `key.pem` on its machine.
    pub ssl_dir: PathBuf,
    #[serde(default = "default_balancer_https_port")]
    pub https_port: u16,
    /// Default nginx.image.
    #[serde(default)]
    pub image: Option<String>,
    /// A host whose connection fails is left out for this long before it is tried again.
    #[serde(default = "default_fail_timeout")]
    pub fail_timeout: HumanDuration,
}

fn default_balancer_template() -> PathBuf {
    "nginx/balancer.conf.tera".into()
}
fn default_balancer_https_port() -> u16 {
    443
}
fn default_fail_timeout() -> HumanDuration {
    Duration::from_secs(2).into()
}

/// Host names become file names and plan lines.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl DeployConfig {
    /// The machines deployed to: `hosts:`, or the one of `remote:` (or this machine).
    pub fn fleet(&self) -> Vec<HostEntry> {
        if !self.hosts.is_empty() {
            return self.hosts.clone();
        }
        vec![HostEntry {
            name: self
                .remote
                .as_ref()
                .map_or_else(|| "local".to_string(), |r| r.host.clone()),
            ssh: self.remote.clone(),
            address: None,
        }]
    }

    pub fn is_fleet(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// The one-host config of `entry`: every single-host command runs on it unchanged.
    pub fn for_host(&self, entry: &HostEntry) -> DeployConfig {
        let mut one = self.clone();
        one.hosts = Vec::new();
        one.balancer = None;
        one.remote = entry.ssh.clone();
        one.images_shipped = true;
        one
    }

    pub(super) fn validate_fleet(&self) -> Result<(), (Vec<&'static str>, String)> {
        let err = |path: &[&'static str], m: String| Err((path.to_vec(), m));
        if self.hosts.is_empty() {
            if self.balancer.is_some() {
                return err(
                    &["balancer"],
                    "needs hosts: to spread traffic over; remove it or list the hosts".into(),
                );
            }
            return Ok(());
        }
        if self.remote.is_some() {
            return err(
                &["remote"],
                "give either remote: (one host) or hosts: (several); move it into hosts: as `- name: NAME` with `ssh:` holding these settings".into(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut locals = 0;
        for (i, host) in self.hosts.iter().enumerate() {
            let n = i + 1;
            if !valid_name(&host.name) {
                return err(
                    &["hosts"],
                    format!(
                        "host {n}: name '{}' must be letters, digits, '-', '_' or '.'",
                        host.name
                    ),
                );
            }
            if !seen.insert(host.name.as_str()) {
                return err(
                    &["hosts"],
                    format!("host {n}: the name '{}' is used twice", host.name),
                );
            }
            match &host.ssh {
                None => locals += 1,
                Some(ssh) => {
                    if let Err(m) = ssh.validate() {
                        return err(&["hosts"], format!("host {n} ({}): ssh: {m}", host.name));
                    }
                    if let Some((path, m)) = self.relative_host_path() {
                        return err(
                            path,
                            format!("{m} (host {} is reached over SSH)", host.name),
                        );
                    }
                }
            }
        }
        if locals > 1 {
            return err(
                &["hosts"],
                "more than one host is this machine (no ssh:): their containers would collide; give each but one an ssh: section".into(),
            );
        }
        let rollout = &self.rollout;
        if let Err(m) = rollout.batch_size(self.hosts.len()) {
            return err(&["rollout", "batch"], m);
        }
        if let Err(m) = rollout.pause.parse() {
            return err(&["rollout", "pause"], m);
        }
        match rollout.window.parse() {
            Ok(w) if !w.is_zero() && w <= Duration::from_secs(600) => {}
            Ok(_) => return err(&["rollout", "window"], "must be between 1ms and 10m".into()),
            Err(m) => return err(&["rollout", "window"], m),
        }
        if !(1..=64).contains(&rollout.parallel) {
            return err(
                &["rollout", "parallel"],
                format!("{} must be between 1 and 64", rollout.parallel),
            );
        }
        if let Some(b) = &self.balancer {
            if let Some(Err(m)) = b.ssh.as_ref().map(RemoteConfig::validate) {
                return err(&["balancer", "ssh"], m);
            }
            if b.ssh.is_some() && (!b.rendered_dir.is_absolute() || !b.ssl_dir.is_absolute()) {
                return err(
                    &["balancer"],
                    "rendered_dir and ssl_dir are paths on the balancer's machine (ssh:); give absolute paths".into(),
                );
            }
            if b.https_port == 0 {
                return err(
                    &["balancer", "https_port"],
                    "port 0 is not a port; use 443".into(),
                );
            }
            match b.fail_timeout.parse() {
                Ok(t) if !t.is_zero() && t <= Duration::from_secs(300) => {}
                Ok(_) => {
                    return err(
                        &["balancer", "fail_timeout"],
                        "must be between 1ms and 5m (default 2s)".into(),
                    )
                }
                Err(m) => return err(&["balancer", "fail_timeout"], m),
            }
        }
        Ok(())
    }
}

impl RemoteConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.host.trim().is_empty() || self.user.trim().is_empty() {
            return Err(
                "host and user must not be empty, e.g. host: 203.0.113.10, user: deploy".into(),
            );
        }
        if self.port == 0 {
            return Err("port 0 is not a port; use 22".into());
        }
        if !self.docker_socket.starts_with('/') {
            return Err(format!(
                "docker_socket '{}' must be an absolute socket path, e.g. /var/run/docker.sock",
                self.docker_socket
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(batch: &str) -> RolloutConfig {
        RolloutConfig {
            batch: batch.into(),
            ..RolloutConfig::default()
        }
    }

    #[test]
    fn a_batch_is_a_count_or_a_share_of_the_hosts_rounded_up() {
        assert_eq!(rollout("1").batch_size(3), Ok(1));
        assert_eq!(rollout("2").batch_size(3), Ok(2));
        assert_eq!(rollout("10").batch_size(3), Ok(3));
        assert_eq!(rollout("50%").batch_size(3), Ok(2));
        assert_eq!(rollout("34%").batch_size(3), Ok(2));
        assert_eq!(rollout("33%").batch_size(3), Ok(1));
        assert_eq!(rollout("100%").batch_size(5), Ok(5));
        assert!(rollout("0")
            .batch_size(3)
            .unwrap_err()
            .contains("never finishes"));
        assert!(rollout("0%").batch_size(3).unwrap_err().contains("above 0"));
        assert!(rollout("half")
            .batch_size(3)
            .unwrap_err()
            .contains("not a batch"));
    }
}
