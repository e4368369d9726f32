//! The balancer in front of a fleet (`balancer:` in deploy.yml): an nginx container the
//! deployer runs on a machine of its own, spreading traffic over the hosts. Its config is
//! rendered (pure, [`render`]) from `nginx/balancer.conf.tera`; a host is taken out of rotation
//! and put back by renaming a symlink ([`Balancer::drain`]), never by a reload.
//! May not import `fleet`, `commands` or `plan` (it is driven by them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::config::{BalancerConfig, DeployConfig};
use crate::engine::{ContainerSpec, Engine, MountSpec};
use crate::host::Host;

/// Inside the balancer's container.
const CONF_DIR: &str = "/etc/nginx/balancer";
const SSL_DIR: &str = "/etc/nginx/ssl";
/// Relays (`up/NAME.sock`) and routes (`route/NAME.sock`); the container's own filesystem, so
/// a drained host stays drained when the balancer restarts.
const RUN_DIR: &str = "/run/balancer";
const CONFIG_FILE: &str = "nginx.conf";
const START_FILE: &str = "start.sh";

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub name: String,
    pub address: String,
    pub port: u16,
}

/// The rendered balancer: its nginx.conf and the start script that makes its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub config: String,
    pub start: String,
}

/// Renders the balancer's config for `members` from the template text.
pub fn render(
    template: &str,
    service: &str,
    members: &[Member],
    fail_timeout: Duration,
) -> anyhow::Result<Rendered> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("balancer", template)
        .context("the balancer template does not parse")?;
    let mut ctx = tera::Context::new();
    ctx.insert("service", service);
    ctx.insert("hosts", members);
    ctx.insert("run_dir", RUN_DIR);
    ctx.insert("ssl_dir", SSL_DIR);
    // nginx takes whole seconds here.
    ctx.insert(
        "fail_timeout_s",
        &fail_timeout.as_millis().div_ceil(1000).max(1),
    );
    ctx.insert("connect_timeout_ms", &1000);
    let config = tera
        .render("balancer", &ctx)
        .context("rendering the balancer template")?;
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    // Each host's route, made once (a drained host keeps its link to nothing); stale relay
    // sockets of an earlier run removed, so nginx can listen again.
    let start = format!(
        "#!/bin/sh\n# Rendered by deployer: makes the routes, then runs nginx (\"routes\": the routes only).\nset -e\nmkdir -p {RUN_DIR}/up {RUN_DIR}/route\ncd {RUN_DIR}/route\nfor n in {}; do\n  [ -L \"$n.sock\" ] || ln -s \"../up/$n.sock\" \"$n.sock\"\ndone\n[ \"$1\" = routes ] && exit 0\nrm -f {RUN_DIR}/up/*.sock\nexec nginx -c {CONF_DIR}/{CONFIG_FILE} -g 'daemon off;'\n",
        names.join(" ")
    );
    Ok(Rendered { config, start })
}

/// The balancer of a fleet, its machine connected.
pub struct Balancer {
    pub config: BalancerConfig,
    pub container: String,
    pub host: Host,
    pub engine: Engine,
    pub image: String,
    service: String,
}

/// What `status` shows of the balancer.
#[derive(Debug, Clone, Serialize)]
pub struct BalancerStatus {
    pub container: String,
    pub running: bool,
    pub https_port: u16,
    /// Each host's route.
    pub hosts: Vec<(String, Route)>,
}

/// Where a host's route in the balancer points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// In rotation.
    Up,
    /// Out, by the operator (`deployer hosts drain`); only `undrain` puts it back.
    Drained,
    /// Out while a release brings up a host that was not serving (first deploy, back from
    /// a failure): put back by the release once the host serves.
    Starting,
}

impl Route {
    fn dir(self) -> &'static str {
        match self {
            Route::Up => "up",
            Route::Drained => "drained",
            Route::Starting => "starting",
        }
    }

    fn of_link(target: &str) -> Option<Self> {
        let dir = target.trim().strip_prefix("../")?.split('/').next()?;
        [Route::Up, Route::Drained, Route::Starting]
            .into_iter()
            .find(|r| r.dir() == dir)
    }
}

impl Balancer {
    pub async fn connect(config: &DeployConfig) -> anyhow::Result<Option<Self>> {
        let Some(b) = config.balancer.clone() else {
            return Ok(None);
        };
        let host = Host::connect(b.ssh.as_ref()).await?;
        let engine = host.engine().await?;
        Ok(Some(Self {
            container: b
                .container
                .clone()
                .unwrap_or_else(|| format!("{}-balancer", config.service)),
            image: b
                .image
                .clone()
                .unwrap_or_else(|| config.nginx.image.clone()),
            config: b,
            host,
            engine,
            service: config.service.clone(),
        }))
    }

    pub fn members(config: &DeployConfig) -> Vec<Member> {
        config
            .fleet()
            .iter()
            .map(|h| Member {
                name: h.name.clone(),
                address: h.address(),
                port: config.nginx.https_port,
            })
            .collect()
    }

    fn rendered_dir(&self) -> &Path {
        &self.config.rendered_dir
    }

    pub fn spec(&self) -> ContainerSpec {
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("deployer.service".to_string(), self.service.clone());
        labels.insert("deployer.role".to_string(), "balancer".to_string());
        ContainerSpec {
            name: self.container.clone(),
            image: self.image.clone(),
            env: Vec::new(),
            secret_keys: Vec::new(),
            labels,
            ports: vec![("0.0.0.0".to_string(), self.config.https_port, 443)],
            mounts: vec![
                MountSpec {
                    source: self.rendered_dir().display().to_string(),
                    target: CONF_DIR.to_string(),
                    volume: false,
                    read_only: true,
                },
                MountSpec {
                    source: self.config.ssl_dir.display().to_string(),
                    target: SSL_DIR.to_string(),
                    volume: false,
                    read_only: true,
                },
            ],
            network: self
                .config
                .network
                .clone()
                .unwrap_or_else(|| "bridge".to_string()),
            cmd: Some(vec!["sh".into(), format!("{CONF_DIR}/{START_FILE}")]),
            entrypoint: None,
            stop_signal: Some("SIGQUIT".to_string()),
        }
    }

    /// Makes the balancer serve `rendered`: writes it, starts the container if it is not
    /// running, and reloads nginx (after `nginx -t`) only when the config text changed.
    /// Returns what it did, for the operator.
    pub async fn ensure(&self, rendered: &Rendered) -> anyhow::Result<String> {
        let dir = self.rendered_dir().to_path_buf();
        self.host
            .create_dir_all(&dir)
            .context("balancer.rendered_dir")?;
        let config_path = dir.join(CONFIG_FILE);
        let before = self.host.read_string(&config_path);
        let changed = before.as_deref() != Some(rendered.config.as_str());
        self.host
            .write_atomic(&dir.join(START_FILE), rendered.start.as_bytes())?;
        let info = self.engine.container(&self.container).await?;
        match info {
            Some(c) if c.running => {
                if !changed {
                    return Ok(format!(
                        "balancer {} serving, config unchanged",
                        self.container
                    ));
                }
                // A candidate first: the live config is replaced only once nginx accepts it.
                let candidate = dir.join("candidate.conf");
                self.host
                    .write_atomic(&candidate, rendered.config.as_bytes())?;
                let test = format!("{CONF_DIR}/candidate.conf");
                let (code, out) = self
                    .engine
                    .exec(&self.container, &["nginx", "-t", "-c", &test])
                    .await?;
                if code != 0 {
                    bail!("the balancer's new config is refused by nginx -t; the running one stays:\n{out}");
                }
                self.host
                    .write_atomic(&config_path, rendered.config.as_bytes())?;
                self.exec_ok(&["sh", &format!("{CONF_DIR}/{START_FILE}"), "routes"])
                    .await?;
                self.exec_ok(&[
                    "nginx",
                    "-c",
                    &format!("{CONF_DIR}/{CONFIG_FILE}"),
                    "-s",
                    "reload",
                ])
                .await?;
                Ok(format!(
                    "balancer {}: hosts changed, config reloaded",
                    self.container
                ))
            }
            other => {
                self.host
                    .write_atomic(&config_path, rendered.config.as_bytes())?;
                if other.is_some() {
                    self.engine.remove(&self.container).await?;
                }
                self.engine.run(&self.spec()).await?;
                self.wait_listening().await?;
                Ok(format!(
                    "balancer {} started on port {}",
                    self.container, self.config.https_port
                ))
            }
        }
    }

    async fn wait_listening(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let info = self.engine.container(&self.container).await?;
            let running = info.as_ref().is_some_and(|c| c.running);
            if running {
                let (code, _) = self
                    .engine
                    .exec(&self.container, &["sh", "-c", "test -s /run/nginx.pid"])
                    .await
                    .unwrap_or((1, String::new()));
                if code == 0 {
                    return Ok(());
                }
            }
            if std::time::Instant::now() > deadline {
                let logs = self.engine.logs_tail(&self.container, 20).await;
                bail!("the balancer {} did not start:\n{logs}", self.container);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn exec_ok(&self, cmd: &[&str]) -> anyhow::Result<String> {
        let (code, out) = self.engine.exec(&self.container, cmd).await?;
        if code != 0 {
            bail!(
                "`{}` in {} failed ({code}): {out}",
                cmd.join(" "),
                self.container
            );
        }
        Ok(out)
    }

    /// Points `host`'s route: one atomic rename. New connections to a host out of rotation
    /// fail at once and go to the next host; connections already open to it carry their last
    /// requests and close within a second (keepalive_time).
    pub async fn set_route(&self, host: &str, route: Route) -> anyhow::Result<()> {
        let target = format!("../{}/{host}.sock", route.dir());
        let link = format!("{RUN_DIR}/route/{host}.sock");
        self.exec_ok(&[
            "sh",
            "-c",
            r#"test -L "$2" || { echo "no such host in the balancer: $2"; exit 1; }; ln -sfn "$1" "$2.tmp" && mv -Tf "$2.tmp" "$2""#,
            "sh",
            &target,
            &link,
        ])
        .await
        .map(|_| ())
    }

    /// Where `host`'s route points now (None: the balancer is not running or has no such
    /// host).
    pub async fn route(&self, host: &str) -> Option<Route> {
        let link = format!("{RUN_DIR}/route/{host}.sock");
        let out = self.exec_ok(&["readlink", &link]).await.ok()?;
        Route::of_link(out.trim())
    }

    pub async fn status(&self, names: &[String]) -> anyhow::Result<BalancerStatus> {
        let info = self.engine.container(&self.container).await?;
        let running = info.as_ref().is_some_and(|c| c.running);
        let mut hosts = Vec::new();
        if running {
            let out = self
                .exec_ok(&[
                    "sh",
                    "-c",
                    &format!("cd {RUN_DIR}/route && for f in *.sock; do echo \"$f $(readlink \"$f\")\"; done"),
                ])
                .await
                .unwrap_or_default();
            for name in names {
                let route = out
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}.sock ")))
                    .and_then(Route::of_link);
                hosts.push((name.clone(), route.unwrap_or(Route::Up)));
            }
        }
        Ok(BalancerStatus {
            container: self.container.clone(),
            running,
            https_port: self.config.https_port,
            hosts,
        })
    }

    /// The template file, read on this machine.
    pub fn template(config: &BalancerConfig) -> anyhow::Result<String> {
        let path: &PathBuf = &config.template;
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the balancer template {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_has_a_relay_and_a_route_and_the_start_script_makes_only_missing_routes() {
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../nginx/balancer.conf.tera"),
        )
        .unwrap();
        let members = [
            Member {
                name: "web-1".into(),
                address: "10.0.0.1".into(),
                port: 443,
            },
            Member {
                name: "web-2".into(),
                address: "10.0.0.2".into(),
                port: 8443,
            },
        ];
        let r = render(&template, "shop", &members, Duration::from_secs(2)).unwrap();
        assert!(r
            .config
            .contains("listen unix:/run/balancer/up/web-1.sock;"));
        assert!(r.config.contains("proxy_pass 10.0.0.2:8443;"));
        assert!(r
            .config
            .contains("server unix:/run/balancer/route/web-2.sock max_fails=1 fail_timeout=2s;"));
        assert!(r.config.contains("upstream shop_hosts"));
        assert!(r.start.contains("for n in web-1 web-2; do"));
        assert!(
            r.start.contains("[ -L \"$n.sock\" ] ||"),
            "a drained route is kept"
        );
    }
}
