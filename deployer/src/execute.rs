//! Executes a [`Plan`], step by step, against the Docker engine and the host's files. The plan
//! decides *what*; this module only knows *how* to do each kind of step, and how to leave the
//! host safe when one fails: before the switch, a failure stops the slot this run started, so the
//! live slot keeps serving; after it, traffic is already on a healthy slot.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::host::Host;
use crate::plan::{poll_delay, BakeLimits, Fallback, HookAction, Plan, Revert, Schema, Slot, Step};
use crate::progress::Progress;
use crate::render::{self, Rendered};
use crate::traffic::{self, Tally};

/// A failed run: what failed, and whether traffic moved.
#[derive(Debug, thiserror::Error)]
#[error("step {step} failed: {source:#}")]
pub struct StepFailed {
    pub step: usize,
    pub switched: bool,
    #[source]
    pub source: anyhow::Error,
    /// What was measured before it failed (a failed bake's figures among them).
    pub timings: Timings,
}

impl StepFailed {
    /// The bake's verdict, when that is what failed.
    pub fn bake(&self) -> Option<&BakeFailed> {
        self.source.downcast_ref()
    }
}

/// The nginx container a plan works through.
fn nginx_of(plan: &Plan) -> Option<String> {
    plan.steps.iter().find_map(|s| match s {
        Step::Switch { container, .. }
        | Step::Routes { container, .. }
        | Step::Preview { container, .. }
        | Step::TestConfig { container, .. } => Some(container.clone()),
        _ => None,
    })
}

pub struct Executor<'a> {
    pub engine: &'a Engine,
    pub host: &'a Host,
    pub rendered: &'a Rendered,
    pub progress: &'a Progress,
}

/// Timings worth reporting (and benchmarking).
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub healthy_after: Option<Duration>,
    /// From the new slot answering healthy to traffic switched.
    pub healthy_to_switched: Option<Duration>,
    pub drained_in: Option<Duration>,
    /// When traffic moved (a switch, or a canary's share).
    pub moved_at: Option<SystemTime>,
    /// Each slot's answers through nginx from [`AROUND`] before traffic moved to the end of the
    /// run.
    pub around_switch: Option<BTreeMap<String, Tally>>,
    pub bake: Option<BakeFigures>,
    /// The release's schema, as its image reported it.
    pub schema: Option<Schema>,
    /// Each smoke check and what it got.
    pub smoke: Vec<String>,
}

/// How far before a switch its figures start counting.
pub const AROUND: Duration = Duration::from_secs(5);

/// What a bake saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BakeFigures {
    pub slot: String,
    pub passed: bool,
    /// Whether the bake saw at least `min_requests` answers (a bake without traffic judges
    /// nothing, and passes).
    #[serde(default)]
    pub judged: bool,
    pub watched_ms: u64,
    pub answers: Tally,
    /// The worst 5xx share and p99 in a judged window (parts per million, ms).
    pub worst_error_ppm: u64,
    pub worst_p99_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// From the answer that crossed a limit (as nginx timed it) to traffic back on the old slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossed_to_back_ms: Option<u64>,
}

/// A bake that crossed a limit; traffic is back where it was.
#[derive(Debug, thiserror::Error)]
#[error("the bake failed: {reason}; traffic went back to {back_to} {ms} ms after the limit was crossed, and {slot} was drained")]
pub struct BakeFailed {
    pub reason: String,
    pub slot: Slot,
    /// Where traffic went back to (the old slot, or live.sock's slot for a canary).
    pub back_to: String,
    pub ms: u64,
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl Executor<'_> {
    pub async fn run(&self, plan: &Plan) -> Result<Timings, StepFailed> {
        let mut timings = Timings::default();
        let mut switched = false;
        let mut healthy_at = None;
        let total = plan.steps.len();
        for (i, step) in plan.steps.iter().enumerate() {
            self.progress.step(i + 1, total, &step.to_string());
            let started = Instant::now();
            if let Err(source) = self.step(step, &mut timings).await {
                if !switched {
                    self.stop_started_slot(plan, i).await;
                }
                self.count_around_switch(plan, &mut timings).await;
                return Err(StepFailed {
                    step: i + 1,
                    switched,
                    source,
                    timings,
                });
            }
            match step {
                Step::WaitHealthy { .. } => {
                    timings.healthy_after = Some(started.elapsed());
                    healthy_at = Some(Instant::now());
                }
                Step::Switch { .. } => {
                    switched = true;
                    timings.healthy_to_switched = healthy_at.map(|t| t.elapsed());
                    timings.moved_at = Some(SystemTime::now());
                }
                Step::Routes {
                    canary: Some(_), ..
                } => timings.moved_at = Some(SystemTime::now()),
                Step::DrainAndStop { .. } => timings.drained_in = Some(started.elapsed()),
                _ => {}
            }
        }
        self.count_around_switch(plan, &mut timings).await;
        Ok(timings)
    }

    /// Runs steps that touch no slot (a fleet's build on this machine), each shown as it starts.
    pub async fn run_steps(&self, steps: &[Step]) -> anyhow::Result<()> {
        let mut timings = Timings::default();
        for (i, step) in steps.iter().enumerate() {
            self.progress.step(i + 1, steps.len(), &step.to_string());
            self.step(step, &mut timings).await?;
        }
        Ok(())
    }

    /// Counts each slot's answers in nginx's log from [`AROUND`] before traffic moved until
    /// now. Figures, not a condition: a log that cannot be read leaves them out.
    async fn count_around_switch(&self, plan: &Plan, timings: &mut Timings) {
        let (Some(moved), Some(nginx)) = (timings.moved_at, nginx_of(plan)) else {
            return;
        };
        let from = epoch(moved) - AROUND.as_secs_f64();
        let lines = self
            .engine
            .stdout_lines(&nginx, from.floor() as i64, false)
            .filter_map(|l| async move { l.ok().and_then(|l| traffic::parse(&l)) })
            .collect::<Vec<_>>()
            .await;
        timings.around_switch = Some(traffic::by_slot(&lines, from, epoch(SystemTime::now())));
    }

    /// Before the switch nothing routes to the slot this plan started: stop it (keep it for its
    /// logs), so the live slot alone serves, as before the run.
    async fn stop_started_slot(&self, plan: &Plan, failed: usize) {
        // Only a slot started by a step that ran (the failed one included: it may have started
        // the container and then failed).
        let started = plan.steps[..=failed].iter().find_map(|s| match s {
            Step::RunSlot { spec, .. } => Some(spec.name.clone()),
            Step::StartKeptSlot { name, .. } => Some(name.clone()),
            _ => None,
        });
        if let Some(name) = started {
            let serving = match plan.from {
                Some(live) => format!("{live} keeps serving"),
                None => "no slot was live before this run".to_string(),
            };
            self.progress.note(&format!("stopping {name}; {serving}"));
            if let Err(e) = self.engine.stop(&name, 10).await {
                self.progress.note(&format!("could not stop {name}: {e:#}"));
            }
        }
    }

    async fn step(&self, step: &Step, timings: &mut Timings) -> anyhow::Result<()> {
        let engine = self.engine;
        match step {
            Step::RunPre { command, dir } => {
                let status = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .current_dir(dir)
                    .stdout(std::process::Stdio::null())
                    .status()
                    .await
                    .with_context(|| format!("cannot run `{command}`"))?;
                if !status.success() {
                    bail!("`{command}` failed ({status}); fix it or deploy a built image with --image REF");
                }
            }
            Step::BuildImage {
                tags,
                context,
                dockerfile,
                args,
            } => {
                let tar = {
                    let (context, dockerfile) = (context.clone(), dockerfile.clone());
                    tokio::task::spawn_blocking(move || crate::context::tar(&context, &dockerfile))
                        .await
                        .context("packing the build context")??
                };
                self.progress
                    .note(&format!("build context: {:.1} MB", tar.len() as f64 / 1e6));
                let labels = Default::default();
                engine
                    .build(tar, dockerfile, tags, args, &labels, |line| {
                        self.progress.detail(line)
                    })
                    .await?;
            }
            Step::CreateNetwork { name } => {
                engine.create_network(name, &Default::default()).await?
            }
            Step::CreateVolume { name } => engine.create_volume(name, &Default::default()).await?,
            Step::WriteBaseConfig { path } => {
                let dir = path.parent().context("config path")?;
                self.host
                    .create_dir_all(&dir.join("live"))
                    .context("nginx.rendered_dir")?;
                self.host
                    .write_atomic(path, self.rendered.main_live.as_bytes())?;
            }
            Step::RunNginx { spec } => {
                let ssl = spec
                    .mounts
                    .iter()
                    .find(|m| m.target == render::SSL_DIR)
                    .map(|m| m.source.clone())
                    .unwrap_or_default();
                for file in ["cert.pem", "key.pem"] {
                    if !self.host.is_file(&Path::new(&ssl).join(file)) {
                        bail!("{ssl}/{file} is missing on {}: run scripts/gen-self-signed.sh for a local pair, or put the real certificate there", self.host);
                    }
                }
                if !engine.image_exists(&spec.image).await? {
                    bail!("the nginx image {} is not on this host: run scripts/make-base-images.sh (or set nginx.image to a registry image)", spec.image);
                }
                engine.run(spec).await?;
                self.expect_running(&spec.name).await?;
            }
            Step::StartNginx { name } => engine.restart(name, 5).await?,
            Step::StartKeptSlot { name, .. } => engine.start(name).await?,
            Step::PrepareSocketDir { container } => {
                self.exec_ok(container, &["chmod", "1777", render::SOCKET_DIR])
                    .await?;
            }
            Step::ReplaceSlot {
                name, grace_secs, ..
            } => {
                engine.stop(name, *grace_secs).await?;
                engine.remove(name).await?;
            }
            Step::RunSlot { spec, .. } => {
                if !engine.image_exists(&spec.image).await? {
                    bail!("the image {} is not on this host; build it (drop --skip-build) or pass --image with one that is", spec.image);
                }
                engine.run(spec).await?;
            }
            Step::WaitHealthy {
                container,
                url,
                expect_status,
                timeout_secs,
                max_interval_ms,
                ..
            } => {
                let took = self
                    .wait_healthy(
                        container,
                        url,
                        *expect_status,
                        Duration::from_secs(*timeout_secs),
                        Duration::from_millis(*max_interval_ms),
                    )
                    .await?;
                timings.healthy_after = Some(took);
            }
            Step::TestConfig { container, dir } => {
                let candidate = dir.join("candidate");
                self.host.write_atomic(
                    &candidate.join("sites").join("site.conf"),
                    self.rendered.site.as_bytes(),
                )?;
                self.host.write_atomic(
                    &candidate.join("nginx.conf"),
                    self.rendered.main_candidate.as_bytes(),
                )?;
                let conf = format!("{}/nginx.conf", render::CANDIDATE_DIR);
                let (code, output) = engine
                    .exec(container, &["nginx", "-t", "-c", &conf])
                    .await?;
                if code != 0 {
                    bail!(
                        "the rendered nginx config is invalid, so nothing was changed (the live config stays):\n{}\nfix the template and run again",
                        output.trim()
                    );
                }
            }
            Step::PromoteConfig {
                dir,
                reload,
                container,
            } => {
                self.host.write_atomic(
                    &dir.join("live").join("site.conf"),
                    self.rendered.site.as_bytes(),
                )?;
                self.host
                    .write_atomic(&dir.join("nginx.conf"), self.rendered.main_live.as_bytes())?;
                if *reload {
                    self.exec_ok(container, &["nginx", "-s", "reload"]).await?;
                }
            }
            Step::Switch { to, container, .. } => {
                self.expect_socket(container, *to).await?;
                self.point(container, render::LIVE_SOCKET, &to.socket_file())
                    .await?;
            }
            Step::Routes { canary, container } => self.routes(container, *canary).await?,
            Step::Preview {
                slot: Some(slot),
                container,
            } => {
                self.expect_socket(container, *slot).await?;
                self.point(container, render::PREVIEW_SOCKET, &slot.socket_file())
                    .await?;
            }
            Step::Preview {
                slot: None,
                container,
            } => {
                self.exec_ok(container, &["rm", "-f", render::PREVIEW_SOCKET])
                    .await?
            }
            Step::Bake {
                limits,
                fallback,
                on_rollback,
            } => {
                if let Err(failed) = self.bake(limits, fallback, timings).await {
                    // Traffic is back: tell whoever on_rollback tells. A hook's failure is
                    // reported beside the bake's, which stays the reason.
                    for hook in on_rollback {
                        if let Step::Hook {
                            stage,
                            action,
                            timeout_secs,
                            ..
                        } = hook
                        {
                            let timeout = Duration::from_secs(*timeout_secs);
                            if let Err(e) = self.hook(stage, action, timeout).await {
                                self.progress.note(&format!("{e:#}"));
                            }
                        }
                    }
                    return Err(failed);
                }
            }
            Step::Hook {
                stage,
                action,
                timeout_secs,
                fallback,
            } => {
                let timeout = Duration::from_secs(*timeout_secs);
                if let Err(e) = self.hook(stage, action, timeout).await {
                    let Some(fallback) = fallback else {
                        return Err(e);
                    };
                    let back_to = self.send_back(fallback).await?;
                    self.drain_tried(fallback).await?;
                    return Err(e.context(format!(
                        "traffic went back to {back_to} and {} was drained",
                        fallback.slot
                    )));
                }
            }
            Step::ReadSchema { spec, floor } => {
                let schema = self.read_schema(spec).await?;
                self.progress.note(&format!(
                    "schema: version {}, runs on schemas from {}",
                    schema.version, schema.oldest_compatible
                ));
                if let Some((floor, by)) = floor.as_ref().filter(|(f, _)| schema.version < *f) {
                    bail!(
                        "{} is at schema {}, but {by} migrated the database to a schema that code older than schema {floor} cannot run on; deploy a release at schema {floor} or newer",
                        spec.image,
                        schema.version
                    );
                }
                timings.schema = Some(schema);
            }
            Step::DrainAndStop {
                name, grace_secs, ..
            } => {
                engine.stop(name, *grace_secs).await?;
            }
            Step::Smoke { slot, checks } => self.smoke(*slot, checks, timings).await?,
            Step::Verify { url, slot } => self.verify(url, *slot).await?,
        }
        Ok(())
    }

    async fn expect_socket(&self, container: &str, slot: Slot) -> anyhow::Result<()> {
        let socket = format!("{}/{}", render::SOCKET_DIR, slot.socket_file());
        self.exec_ok(container, &["test", "-S", &socket])
            .await
            .map_err(|_| {
                anyhow!("{slot} has no socket at {socket}: is APP_SOCKET honoured by this image?")
            })
    }

    /// Points `link` at `target` with a fresh symlink renamed over it: nginx sees the old target
    /// or the new one, never neither. One exec, so a revert is as quick as it can be.
    async fn point(&self, container: &str, link: &str, target: &str) -> anyhow::Result<()> {
        self.exec_ok(
            container,
            &[
                "sh",
                "-c",
                r#"ln -sfn "$1" "$2.tmp" && mv -Tf "$2.tmp" "$2""#,
                "sh",
                target,
                link,
            ],
        )
        .await
    }

    /// Points every route: the first `share` at the canary slot, the rest at `live.sock` (each
    /// an atomic rename). A client's key hashes to one route, so its slot changes only when its
    /// route's target does: raising a share keeps the canary's clients on the canary.
    async fn routes(&self, container: &str, canary: Option<(Slot, u8)>) -> anyhow::Result<()> {
        let (share, target) = match canary {
            Some((slot, share)) => (share, slot.socket_file()),
            None => (0, "live.sock".to_string()),
        };
        let script = r#"mkdir -p "$1" && cd "$1" || exit 1
i=0
while [ "$i" -lt "$2" ]; do
  if [ "$i" -lt "$3" ]; then t="../$4"; else t="../live.sock"; fi
  if [ "$(readlink "$i.sock")" != "$t" ]; then
    ln -sfn "$t" ".$i.tmp" && mv -Tf ".$i.tmp" "$i.sock" || exit 1
  fi
  i=$((i+1))
done"#;
        self.exec_ok(
            container,
            &[
                "sh",
                "-c",
                script,
                "sh",
                render::ROUTE_DIR,
                &render::ROUTES.to_string(),
                &share.to_string(),
                &target,
            ],
        )
        .await
    }

    /// Watches `slot`'s answers in nginx's access log for the bake's length. Crossing a limit
    /// (or the slot stopping, or the log ending) sends traffic back at once and fails.
    async fn bake(
        &self,
        limits: &BakeLimits,
        fallback: &Fallback,
        timings: &mut Timings,
    ) -> anyhow::Result<()> {
        let slot = fallback.slot;
        let nginx = fallback.nginx.as_str();
        let started = Instant::now();
        let since = epoch(SystemTime::now());
        let mut judge = traffic::Judge::new(
            slot.name(),
            traffic::Limits {
                window: Duration::from_millis(limits.window_ms),
                max_error_rate: limits.max_error_ppm as f64 / 1e6,
                max_p99: limits.max_p99_ms.map(Duration::from_millis),
                min_requests: limits.min_requests,
            },
        );
        let mut lines = self.engine.stdout_lines(nginx, since.floor() as i64, true);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.duration_ms);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        self.progress.note(&format!(
            "baking {slot} for {}s: watching its answers in nginx's log (--no-bake skips this)",
            limits.duration_ms / 1000
        ));
        let crossed = loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break None,
                line = lines.next() => match line {
                    Some(Ok(line)) => {
                        let Some(answer) = traffic::parse(&line).filter(|a| a.t >= since) else {
                            continue;
                        };
                        if let Some(crossed) = judge.observe(&answer) {
                            break Some(crossed);
                        }
                    }
                    Some(Err(e)) => break Some(traffic::Crossed {
                        at: epoch(SystemTime::now()),
                        reason: format!("nginx's log cannot be read ({e:#}), so the release cannot be judged"),
                    }),
                    None => break Some(traffic::Crossed {
                        at: epoch(SystemTime::now()),
                        reason: "nginx's log ended (did nginx stop?), so the release cannot be judged".into(),
                    }),
                },
                _ = tick.tick() => {
                    let running = self
                        .engine
                        .container(&fallback.container)
                        .await?
                        .is_some_and(|c| c.running);
                    if !running {
                        break Some(traffic::Crossed {
                            at: epoch(SystemTime::now()),
                            reason: format!("{slot} stopped during the bake"),
                        });
                    }
                    let elapsed = started.elapsed().as_secs();
                    if elapsed > 0 && elapsed.is_multiple_of(10) && elapsed * 1000 < limits.duration_ms {
                        self.progress.note(&format!(
                            "bake: {} answers from {slot}, {} 5xx; {}s left",
                            judge.total.requests,
                            judge.total.errors_5xx,
                            (limits.duration_ms / 1000).saturating_sub(elapsed)
                        ));
                    }
                }
            }
        };
        drop(lines);
        let mut figures = BakeFigures {
            slot: slot.name().into(),
            passed: crossed.is_none(),
            judged: crossed.is_some() || judge.total.requests >= limits.min_requests as u64,
            watched_ms: started.elapsed().as_millis() as u64,
            answers: judge.total,
            worst_error_ppm: (judge.worst_error_rate * 1e6).round() as u64,
            worst_p99_ms: judge.worst_p99_ms.round() as u64,
            reason: None,
            crossed_to_back_ms: None,
        };
        let Some(crossed) = crossed else {
            let answers = judge.total.requests;
            self.progress.note(&if answers < limits.min_requests as u64 {
                format!(
                    "bake ended: only {answers} answers from {slot}, fewer than min_requests ({}), so nothing was judged",
                    limits.min_requests
                )
            } else {
                format!(
                    "bake passed: {answers} answers from {slot}, {} 5xx",
                    judge.total.errors_5xx
                )
            });
            timings.bake = Some(figures);
            return Ok(());
        };
        // Traffic back first (one rename), then the baked slot drains.
        let back_to = self.send_back(fallback).await?;
        let ms = ((epoch(SystemTime::now()) - crossed.at) * 1000.0).max(0.0) as u64;
        figures.reason = Some(crossed.reason.clone());
        figures.crossed_to_back_ms = Some(ms);
        timings.bake = Some(figures);
        self.progress.note(&format!(
            "bake failed: {}; traffic back to {back_to} in {ms} ms",
            crossed.reason
        ));
        self.drain_tried(fallback).await?;
        Err(BakeFailed {
            reason: crossed.reason,
            slot,
            back_to,
            ms,
        }
        .into())
    }

    /// Sends traffic away from the slot being tried, back to where it was: one rename of
    /// `live.sock`, or the canary's routes back to `live.sock`. Returns where it went.
    async fn send_back(&self, fallback: &Fallback) -> anyhow::Result<String> {
        let nginx = &fallback.nginx;
        Ok(match fallback.revert {
            Revert::SwitchBack { to } => {
                self.point(nginx, render::LIVE_SOCKET, &to.socket_file())
                    .await?;
                to.name().to_string()
            }
            Revert::WithdrawCanary => {
                self.routes(nginx, None).await?;
                self.exec_ok(nginx, &["rm", "-f", render::PREVIEW_SOCKET])
                    .await?;
                "live.sock".to_string()
            }
        })
    }

    /// Drains and stops the slot traffic was sent away from (kept for its logs).
    async fn drain_tried(&self, fallback: &Fallback) -> anyhow::Result<()> {
        self.engine
            .stop(&fallback.container, fallback.grace_secs)
            .await
    }

    /// Runs one hook to its end; a non-zero exit is an error with the hook's last lines.
    async fn hook(
        &self,
        stage: &str,
        action: &HookAction,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let (what, code, output) = match action {
            HookAction::Container { spec } => {
                let argv = spec.command_line();
                let (code, output) = self.engine.run_once(spec, timeout).await?;
                (argv, code, output)
            }
            HookAction::Local { command, dir, env } => {
                let run = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .current_dir(dir)
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .kill_on_drop(true)
                    .output();
                let out = tokio::time::timeout(timeout, run)
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "hook {stage} `{command}` did not finish within {}s (killed)",
                            timeout.as_secs()
                        )
                    })?
                    .with_context(|| format!("cannot run hook {stage} `{command}`"))?;
                let output = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                (
                    command.clone(),
                    out.status.code().unwrap_or(-1) as i64,
                    output,
                )
            }
        };
        let last: Vec<&str> = output.lines().rev().take(20).collect();
        let last: Vec<&str> = last.into_iter().rev().collect();
        if code != 0 {
            bail!(
                "hook {stage} `{what}` failed (exit code {code}); its last lines:\n{}",
                last.join("\n")
            );
        }
        self.progress.note(&format!("hook {stage} `{what}`: ok"));
        Ok(())
    }

    /// Runs the schema command in a one-off container and reads its answer.
    async fn read_schema(&self, spec: &crate::engine::ContainerSpec) -> anyhow::Result<Schema> {
        let argv = spec.command_line();
        let (code, output) = self.engine.run_once(spec, Duration::from_secs(60)).await?;
        let parsed = output
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Schema>(l.trim()).ok());
        match (code, parsed) {
            (0, Some(schema)) => Ok(schema),
            _ => bail!(
                "`{argv}` in {} should print {{\"version\": N, \"oldest_compatible\": M}} and exit 0; it exited {code} with:\n{}\nfix the image or deploy.yml's schema.command",
                spec.image,
                output.trim_end()
            ),
        }
    }

    async fn exec_ok(&self, container: &str, cmd: &[&str]) -> anyhow::Result<()> {
        let (code, output) = self.engine.exec(container, cmd).await?;
        if code != 0 {
            bail!(
                "`{}` in {container} failed ({code}): {}",
                cmd.join(" "),
                output.trim()
            );
        }
        Ok(())
    }

    async fn expect_running(&self, name: &str) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        match self.engine.container(name).await? {
            Some(c) if c.running => Ok(()),
            _ => bail!(
                "{name} stopped right after starting; its last lines:\n{}",
                self.engine.logs_tail(name, 20).await
            ),
        }
    }

    /// Polls `url` until it answers `expect`: quick polls first, backing off to `max_interval`;
    /// fails at once when the container exits or restarts.
    async fn wait_healthy(
        &self,
        container: &str,
        url: &str,
        expect: u16,
        timeout: Duration,
        max_interval: Duration,
    ) -> anyhow::Result<Duration> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("HTTP client")?;
        let reach = self.host.reach(url)?;
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let info = self.engine.container(container).await?;
            match info {
                None => bail!("{container} disappeared while starting"),
                Some(c) if !c.running || c.restart_count > 0 => {
                    bail!(
                        "{container} {} (exit code {}) before turning healthy; its last lines:\n{}",
                        if c.restart_count > 0 {
                            "restarted"
                        } else {
                            "exited"
                        },
                        c.exit_code,
                        self.engine.logs_tail(container, 30).await.trim_end()
                    );
                }
                Some(_) => {}
            }
            attempt += 1;
            let last = match http.get(&reach).send().await {
                Ok(r) if r.status().as_u16() == expect => {
                    self.progress.health_done(started.elapsed(), attempt);
                    return Ok(started.elapsed());
                }
                Ok(r) => format!(
                    "{} {}",
                    r.status().as_u16(),
                    r.text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(120)
                        .collect::<String>()
                ),
                Err(e) => short_error(&e),
            };
            self.progress.health_wait(started.elapsed(), attempt, &last);
            if started.elapsed() >= timeout {
                bail!(
                    "{container} did not answer {expect} at {url} within {}s (last answer: {last}); its last lines:\n{}",
                    timeout.as_secs(),
                    self.engine.logs_tail(container, 30).await.trim_end()
                );
            }
            tokio::time::sleep(poll_delay(attempt - 1, max_interval)).await;
        }
    }

    /// After the switch and drain, a request through nginx must reach the new slot.
    /// Every smoke check, once each: a check that fails stops the run before any traffic
    /// moves, saying what was asked and what came back.
    async fn smoke(
        &self,
        slot: Slot,
        checks: &[crate::plan::Smoke],
        timings: &mut Timings,
    ) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().build().context("HTTP client")?;
        for check in checks {
            let reach = self.host.reach(&check.url)?;
            let method = reqwest::Method::from_bytes(check.method.as_bytes())
                .context("a smoke check's method")?;
            let mut request = http
                .request(method.clone(), &reach)
                .timeout(Duration::from_millis(check.timeout_ms));
            if method == reqwest::Method::POST {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body("{}");
            }
            let started = Instant::now();
            let (status, body) = match request.send().await {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(e) => bail!(
                    "smoke check {check} on {slot} got no answer ({}); traffic stays where it was",
                    short_error(&e)
                ),
            };
            let body_ok = check
                .body_contains
                .as_deref()
                .is_none_or(|text| body.contains(text));
            let took = started.elapsed().as_millis();
            if status != check.expect_status || !body_ok {
                timings
                    .smoke
                    .push(format!("{check}: FAILED, {status} in {took} ms"));
                let shown: String = body.trim().chars().take(300).collect();
                bail!(
                    "smoke check {check} on {slot} failed: {status} {shown}; traffic stays where it was"
                );
            }
            timings
                .smoke
                .push(format!("{check}: {status} in {took} ms"));
            self.progress
                .note(&format!("smoke {check}: {status} in {took} ms"));
        }
        Ok(())
    }

    async fn verify(&self, url: &str, slot: Slot) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(3))
            .build()
            .context("HTTP client")?;
        let reach = self.host.reach(url)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = match http.get(&reach).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if status == 200 && body["slot"] == slot.name() {
                        return Ok(());
                    }
                    format!("{status} from slot {}", body["slot"])
                }
                Err(e) => short_error(&e),
            };
            if Instant::now() > deadline {
                bail!("{url} does not answer from {slot} (last: {answer})");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn short_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else {
        // The innermost cause says it best ("Connection refused", "connection reset").
        let mut source: &dyn std::error::Error = e;
        while let Some(inner) = source.source() {
            source = inner;
        }
        source.to_string()
    }
}
