//! The Docker engine, through its API (bollard). The only module that talks to Docker.
//!
//! Everything the deployer knows about the host it reads here, at the moment it needs it:
//! containers (with their labels), images, networks, volumes, and files inside the nginx
//! container through `exec`.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context};
use bollard::container::{
    Config, CreateContainerOptions, InspectContainerOptions, LogOutput, LogsOptions,
    RemoveContainerOptions, RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::image::{BuildImageOptions, ListImagesOptions, RemoveImageOptions};
use bollard::models::{HostConfig, Mount, MountTypeEnum, PortBinding, RestartPolicy};
use bollard::network::CreateNetworkOptions;
use bollard::volume::CreateVolumeOptions;
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;

/// What a container should be: computed by the plan, created here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// `KEY=value`; values of keys listed in `secret_keys` are never printed.
    pub env: Vec<String>,
    #[serde(skip)]
    pub secret_keys: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// (host ip, host port, container port)
    pub ports: Vec<(String, u16, u16)>,
    pub mounts: Vec<MountSpec>,
    pub network: String,
    /// The command, when not the image's own.
    pub cmd: Option<Vec<String>>,
    /// The entrypoint, when not the image's own (a one-off's argv replaces both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSpec {
    /// A host path (bind) or a volume name.
    pub source: String,
    pub target: String,
    pub volume: bool,
    pub read_only: bool,
}

impl ContainerSpec {
    /// The command line it runs, when the spec sets one (entrypoint, then command).
    pub fn command_line(&self) -> String {
        let parts: Vec<&str> = self
            .entrypoint
            .iter()
            .chain(self.cmd.iter())
            .flatten()
            .map(String::as_str)
            .collect();
        parts.join(" ")
    }

    /// The environment with secret values replaced, for printing.
    pub fn printable_env(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|kv| {
                let key = kv.split('=').next().unwrap_or_default();
                if self.secret_keys.iter().any(|s| s == key) {
                    format!("{key}=<from env_file>")
                } else {
                    kv.clone()
                }
            })
            .collect()
    }
}

/// A container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    pub name: String,
    pub id: String,
    pub image: String,
    pub running: bool,
    /// created, running, restarting, exited, …
    pub status: String,
    pub exit_code: i64,
    pub restart_count: i64,
    /// Docker's HEALTHCHECK verdict, when the image has one.
    pub health: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub started_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub id: String,
    pub tags: Vec<String>,
    pub created: i64,
    pub size: i64,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// Docker refused because of the container's state (409: restarting, not running, …).
pub fn is_conflict(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<bollard::errors::Error>(),
            Some(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                ..
            })
        )
    })
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// Connects to the local engine (DOCKER_HOST or the default socket) and agrees on an API
    /// version both sides speak.
    pub async fn connect() -> anyhow::Result<Self> {
        let docker = Docker::connect_with_local_defaults()
            .context("cannot reach the Docker engine (is it running? is DOCKER_HOST right?)")?
            .negotiate_version()
            .await
            .context(
                "cannot reach the Docker engine (is it running, and may this user use its socket?)",
            )?;
        Ok(Self { docker })
    }

    /// The engine behind the unix socket `path` (a remote engine's forwarded socket).
    pub async fn connect_unix(path: &std::path::Path) -> anyhow::Result<Self> {
        let path = path.to_str().context("the socket path is not UTF-8")?;
        let docker = Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            .context("cannot reach the Docker engine")?
            .negotiate_version()
            .await
            .context("cannot reach the remote Docker engine through SSH")?;
        Ok(Self { docker })
    }

    /// The engine's version (`29.1.3`).
    pub async fn version(&self) -> anyhow::Result<String> {
        let v = self
            .docker
            .version()
            .await
            .context("asking the engine its version")?;
        Ok(v.version.unwrap_or_else(|| "(unknown version)".into()))
    }

    /// Where the engine keeps images and volumes (`/var/lib/docker`).
    pub async fn root_dir(&self) -> anyhow::Result<String> {
        let info = self
            .docker
            .info()
            .await
            .context("asking the engine its info")?;
        info.docker_root_dir
            .context("the engine did not say where it keeps its data")
    }

    pub async fn container(&self, name: &str) -> anyhow::Result<Option<ContainerInfo>> {
        let c = match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => c,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("inspecting container {name}")),
        };
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        Ok(Some(ContainerInfo {
            name: name.to_string(),
            id: c.id.unwrap_or_default(),
            image: config.image.unwrap_or_default(),
            // A container Docker keeps restarting (nginx without its config, say) is not
            // serving, and Docker refuses `exec` in it: not running, for every decision here.
            running: state.running.unwrap_or(false) && !state.restarting.unwrap_or(false),
            status: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            exit_code: state.exit_code.unwrap_or(0),
            restart_count: c.restart_count.unwrap_or(0),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            started_at: state.started_at,
        }))
    }

    pub async fn image_exists(&self, reference: &str) -> anyhow::Result<bool> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("inspecting image {reference}")),
        }
    }

    /// The id (`sha256:…`) of the image `reference`, if the engine has it.
    pub async fn image_id(&self, reference: &str) -> anyhow::Result<Option<String>> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("inspecting image {reference}")),
        }
    }

    /// Gives the image `id` the name `reference` (`repo:tag`).
    pub async fn tag_image(&self, id: &str, reference: &str) -> anyhow::Result<()> {
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        self.docker
            .tag_image(id, Some(bollard::image::TagImageOptions { repo, tag }))
            .await
            .with_context(|| format!("tagging {id} as {reference}"))
    }

    /// The image `reference` with its tag, as the tar stream `docker save` writes.
    pub fn export_image(
        &self,
        reference: &str,
    ) -> impl futures_util::Stream<Item = anyhow::Result<bytes::Bytes>> + Send + 'static {
        let what = format!("exporting image {reference}");
        self.docker
            .export_image(reference)
            .map(move |chunk| chunk.with_context(|| what.clone()))
    }

    /// Loads a `docker save` tar stream (what [`Self::export_image`] gives) into this engine.
    /// A stream cut short loads nothing: the engine refuses an incomplete archive.
    pub async fn load_image(
        &self,
        tar: impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut out = self.docker.import_image_stream(
            bollard::image::ImportImageOptions { quiet: true },
            tar,
            None,
        );
        while let Some(line) = out.next().await {
            let line = line.context("loading the image")?;
            if let Some(e) = line.error {
                anyhow::bail!("loading the image: {e}");
            }
        }
        Ok(())
    }

    pub async fn network_exists(&self, name: &str) -> anyhow::Result<bool> {
        match self.docker.inspect_network::<String>(name, None).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("inspecting network {name}")),
        }
    }

    pub async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        self.docker
            .create_network(CreateNetworkOptions {
                name: name.to_string(),
                check_duplicate: true,
                driver: "bridge".into(),
                labels: labels.clone().into_iter().collect(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating network {name}"))?;
        Ok(())
    }

    pub async fn volume_exists(&self, name: &str) -> anyhow::Result<bool> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("inspecting volume {name}")),
        }
    }

    pub async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        self.docker
            .create_volume(CreateVolumeOptions {
                name: name.to_string(),
                driver: "local".into(),
                labels: labels.clone().into_iter().collect(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating volume {name}"))?;
        Ok(())
    }

    /// Creates the container described by `spec` and starts it.
    pub async fn run(&self, spec: &ContainerSpec) -> anyhow::Result<()> {
        let mut exposed = HashMap::new();
        let mut bindings = HashMap::new();
        for (ip, host_port, port) in &spec.ports {
            exposed.insert(format!("{port}/tcp"), HashMap::new());
            bindings.insert(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some(ip.clone()),
                    host_port: Some(host_port.to_string()),
                }]),
            );
        }
        let mounts = spec
            .mounts
            .iter()
            .map(|m| Mount {
                source: Some(m.source.clone()),
                target: Some(m.target.clone()),
                typ: Some(if m.volume {
                    MountTypeEnum::VOLUME
                } else {
                    MountTypeEnum::BIND
                }),
                read_only: Some(m.read_only),
                ..Default::default()
            })
            .collect();
        let config = Config {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: Some(exposed),
            cmd: spec.cmd.clone(),
            stop_signal: spec.stop_signal.clone(),
            entrypoint: spec.entrypoint.clone(),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                mounts: Some(mounts),
                network_mode: Some(spec.network.clone()),
                restart_policy: Some(RestartPolicy {
                    name: Some(bollard::models::RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                init: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: spec.name.clone(),
                    platform: None,
                }),
                config,
            )
            .await
            .with_context(|| format!("creating container {}", spec.name))?;
        self.start(&spec.name).await
    }

    /// Runs a one-off container to its end (a hook, a schema query): its exit code and output.
    /// A container left by a killed run is replaced first; the container is removed after, and
    /// killed when `timeout` passes.
    pub async fn run_once(
        &self,
        spec: &ContainerSpec,
        timeout: std::time::Duration,
    ) -> anyhow::Result<(i64, String)> {
        self.remove(&spec.name).await?;
        self.run(spec).await?;
        let waited = tokio::time::timeout(timeout, async {
            let mut wait = self.docker.wait_container(
                &spec.name,
                None::<bollard::container::WaitContainerOptions<String>>,
            );
            match wait.next().await {
                Some(Ok(done)) => Ok(done.status_code),
                // A non-zero exit comes back as this error, with the code.
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Ok(code)
                }
                Some(Err(e)) => Err(anyhow::Error::new(e)),
                None => Err(anyhow!("the engine ended the wait without an exit code")),
            }
        })
        .await;
        let output = self.logs_tail(&spec.name, 200).await;
        self.remove(&spec.name).await?;
        match waited {
            Ok(code) => Ok((
                code.with_context(|| format!("waiting for {}", spec.name))?,
                output,
            )),
            Err(_) => bail!(
                "{} did not finish within {}s (killed); its last lines:\n{}",
                spec.name,
                timeout.as_secs(),
                output.trim_end()
            ),
        }
    }

    /// Restarts `name`, or starts it when stopped; unlike `start`, this also ends a restart
    /// loop's back-off at once (Docker's waits grow to a minute).
    pub async fn restart(&self, name: &str, grace_secs: i64) -> anyhow::Result<()> {
        self.docker
            .restart_container(
                name,
                Some(RestartContainerOptions {
                    t: grace_secs as isize,
                }),
            )
            .await
            .with_context(|| format!("restarting container {name}"))
    }

    pub async fn start(&self, name: &str) -> anyhow::Result<()> {
        self.docker
            .start_container(name, None::<StartContainerOptions<String>>)
            .await
            .with_context(|| format!("starting container {name}"))
    }

    /// Stops `name`: SIGTERM (or its stop signal), then SIGKILL after `grace_secs`. Waits.
    pub async fn stop(&self, name: &str, grace_secs: i64) -> anyhow::Result<()> {
        match self
            .docker
            .stop_container(name, Some(StopContainerOptions { t: grace_secs }))
            .await
        {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("stopping container {name}")),
        }
    }

    pub async fn remove(&self, name: &str) -> anyhow::Result<()> {
        match self
            .docker
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing container {name}")),
        }
    }

    /// Runs `cmd` inside `container` as root and returns its exit code and output.
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> anyhow::Result<(i64, String)> {
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    user: Some("root".to_string()),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("exec in {container}: {}", cmd.join(" ")))?;
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            self.docker.start_exec(&exec.id, None).await?
        {
            while let Some(chunk) = output.next().await {
                text.push_str(&chunk?.to_string());
            }
        }
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await?
            .exit_code
            .ok_or_else(|| anyhow!("exec in {container} did not report an exit code"))?;
        Ok((code, text))
    }

    /// The last `lines` lines of a container's output.
    pub async fn logs_tail(&self, name: &str, lines: usize) -> String {
        let mut stream = self.docker.logs(
            name,
            Some(LogsOptions::<String> {
                stdout: true,
                stderr: true,
                tail: lines.to_string(),
                ..Default::default()
            }),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }

    /// A container's stdout lines from `since` (Unix seconds): with `follow`, as they are
    /// written, until the stream is dropped; without, those written until now. A line split
    /// across two chunks is joined.
    pub fn stdout_lines(
        &self,
        name: &str,
        since: i64,
        follow: bool,
    ) -> futures_util::stream::BoxStream<'static, anyhow::Result<String>> {
        let name = name.to_string();
        let chunks = self.docker.logs(
            &name,
            Some(LogsOptions::<String> {
                stdout: true,
                follow,
                since,
                ..Default::default()
            }),
        );
        let mut partial = String::new();
        chunks
            .map(move |chunk| {
                let chunk = chunk.with_context(|| format!("reading the logs of {name}"))?;
                partial.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                let mut lines = Vec::new();
                while let Some(end) = partial.find('\n') {
                    lines.push(partial[..end].to_string());
                    partial.drain(..=end);
                }
                Ok(futures_util::stream::iter(lines.into_iter().map(Ok)))
            })
            .map(|r: anyhow::Result<_>| match r {
                Ok(lines) => lines.left_stream(),
                Err(e) => futures_util::stream::once(async { Err(e) }).right_stream(),
            })
            .flatten()
            .boxed()
    }

    /// Streams a container's output to stdout/stderr; with `follow`, until it stops.
    pub async fn logs(&self, name: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
        use std::io::Write;
        let mut stream = self.docker.logs(
            name,
            Some(LogsOptions::<String> {
                stdout: true,
                stderr: true,
                follow,
                tail: tail.to_string(),
                ..Default::default()
            }),
        );
        while let Some(chunk) = stream.next().await {
            match chunk.with_context(|| format!("reading the logs of {name}"))? {
                LogOutput::StdErr { message } => std::io::stderr().write_all(&message)?,
                other => std::io::stdout().write_all(&other.into_bytes())?,
            }
        }
        Ok(())
    }

    /// Builds an image from a tar'd context; `on_line` sees the build's output lines.
    pub async fn build(
        &self,
        context_tar: Vec<u8>,
        dockerfile: &str,
        tags: &[String],
        args: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
        mut on_line: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        let (first, rest) = tags.split_first().context("a build needs a tag")?;
        let mut stream = self.docker.build_image(
            BuildImageOptions {
                dockerfile: dockerfile.to_string(),
                t: first.clone(),
                rm: true,
                forcerm: true,
                buildargs: args.clone().into_iter().collect(),
                labels: labels.clone().into_iter().collect(),
                ..Default::default()
            },
            None,
            Some(context_tar.into()),
        );
        while let Some(item) = stream.next().await {
            let info = item.context("the image build failed")?;
            if let Some(error) = info.error {
                bail!("the image build failed: {}", error.trim());
            }
            if let Some(line) = info.stream {
                for l in line.lines().filter(|l| !l.trim().is_empty()) {
                    on_line(l);
                }
            }
        }
        for tag in rest {
            let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
            self.docker
                .tag_image(
                    first,
                    Some(bollard::image::TagImageOptions { repo, tag: t }),
                )
                .await
                .with_context(|| format!("tagging {first} as {tag}"))?;
        }
        Ok(())
    }

    /// Images of `repository` (any tag), newest first.
    pub async fn images(&self, repository: &str) -> anyhow::Result<Vec<ImageInfo>> {
        let mut filters = HashMap::new();
        filters.insert("reference".to_string(), vec![repository.to_string()]);
        let mut images: Vec<ImageInfo> = self
            .docker
            .list_images(Some(ListImagesOptions {
                filters,
                ..Default::default()
            }))
            .await
            .context("listing images")?
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                tags: i.repo_tags,
                created: i.created,
                size: i.size,
            })
            .collect();
        images.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(images)
    }

    pub async fn remove_image(&self, reference: &str) -> anyhow::Result<()> {
        self.docker
            .remove_image(
                reference,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                }),
                None,
            )
            .await
            .with_context(|| format!("removing image {reference}"))?;
        Ok(())
    }
}
