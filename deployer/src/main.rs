use std::process::ExitCode;

use clap::Parser;
use deployer::cli::{Cli, Command, HostsAction, LockAction, MaintenanceAction, RunArgs, SlotArg};
use deployer::commands::{self, exit, Failure, RunOptions, UpOptions};
use deployer::config::DeployConfig;
use deployer::fleet;
use deployer::plan::{Intent, Slot, UpMode};
use deployer::progress::Progress;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Completions need no deploy.yml.
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "deployer",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let config = match DeployConfig::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("deployer: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let result = match (&cli.host, config.is_fleet()) {
        (Some(name), true) => match config.fleet().into_iter().find(|h| &h.name == name) {
            Some(entry) => run(cli.command, &config.for_host(&entry)).await,
            None => Err(Failure::new(
                exit::CONFIG,
                anyhow::anyhow!(
                    "--host {name}: no such host in deploy.yml; the hosts: {}",
                    host_names(&config)
                ),
            )),
        },
        (Some(_), false) => Err(Failure::new(
            exit::CONFIG,
            anyhow::anyhow!("--host names one of deploy.yml's hosts:, and it has none"),
        )),
        (None, true) => fleet(cli.command, &config).await,
        (None, false) => run(cli.command, &config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("deployer: {error:#}");
            ExitCode::from(code)
        }
    }
}

async fn run(command: Command, config: &DeployConfig) -> commands::Outcome {
    let progress = Progress::auto();
    match command {
        Command::Up {
            run,
            skip_build,
            image,
            no_switch,
            canary,
        } => {
            let mode = match (no_switch, canary) {
                (_, Some(share)) => UpMode::Canary(share),
                (true, None) => UpMode::Preview,
                (false, None) => UpMode::Switch,
            };
            let opts = UpOptions {
                dry_run: run.dry_run,
                skip_build,
                image,
                mode,
                no_bake: run.no_bake,
            };
            let done = commands::up(config, &opts, &progress).await?;
            report(&done, run.dry_run, run.json);
        }
        moving @ (Command::Rollback { .. }
        | Command::Promote { .. }
        | Command::Canary { .. }
        | Command::Abort { .. }) => {
            let (intent, opts, json) = traffic_intent(moving);
            act(config, intent, opts, json, &progress).await?
        }
        Command::Status { json } => {
            let status = commands::status(config).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).expect("serializable")
                );
            } else {
                commands::print_status(&status);
            }
        }
        Command::Logs { slot, follow, tail } => {
            let slot = slot.map(|s| match s {
                SlotArg::Blue => Slot::Blue,
                SlotArg::Green => Slot::Green,
            });
            commands::logs(config, slot, follow, tail).await?;
        }
        Command::Lock { action } => {
            let state = commands::state_dir(config).await?;
            match action {
                LockAction::Status => match state.holder() {
                    Some(h) => println!(
                        "held by {h}{}",
                        if h.is_stale() {
                            " (stale: its process is gone)"
                        } else {
                            ""
                        }
                    ),
                    None => println!("free"),
                },
                LockAction::Release => match state.release()? {
                    Some(h) => println!("released the lock held by {h}"),
                    None => println!("the lock was free"),
                },
            }
        }
        Command::Prune { dry_run } => {
            let removed = commands::prune(config, dry_run).await?;
            let verb = if dry_run { "would remove" } else { "removed" };
            if removed.is_empty() {
                println!("nothing to prune (keeping {} images)", config.keep_images);
            }
            for r in removed {
                println!("{verb} {r}");
            }
        }
        Command::Config => println!("{config:#?}"),
        Command::Completions { .. } => unreachable!("handled before deploy.yml is read"),
        Command::Hosts { .. } => {
            return Err(Failure::new(
                exit::CONFIG,
                anyhow::anyhow!(
                    "deploy.yml has no hosts: (one host, no balancer): nothing to drain"
                ),
            ))
        }
        Command::Maintenance { action, output } => {
            let (on, message) = match action {
                MaintenanceAction::On { message } => (true, message),
                MaintenanceAction::Off => (false, String::new()),
            };
            commands::maintenance(config, on, &message, &progress).await?;
            if output.json {
                let out = serde_json::json!({"maintenance": on, "message": on.then_some(&message)});
                println!("{out}");
                return Ok(());
            }
            println!(
                "maintenance mode {}",
                if on {
                    "on: every route but /health and /ready answers 503 (Retry-After: 60)"
                } else {
                    "off: serving"
                }
            );
        }
        Command::History { json, n } => {
            let records = commands::history(config, n).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&records).expect("serializable")
                );
            } else if records.is_empty() {
                println!("no releases yet");
            }
            for r in records.iter().filter(|_| !json) {
                let figures = r.figures.as_ref().map_or(String::new(), history_figures);
                println!(
                    "{}  {:<15} {:<6} {:<24} by {}: {}{}{}",
                    r.at,
                    r.command,
                    r.live_slot.as_deref().unwrap_or("-"),
                    r.version.as_deref().unwrap_or("-"),
                    r.user,
                    r.outcome,
                    r.reason.as_deref().map_or(String::new(), |why| {
                        let first: String = why
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .chars()
                            .take(200)
                            .collect();
                        format!(" ({first})")
                    }),
                    figures
                );
            }
        }
        Command::Check { json } => {
            let report = commands::check(config).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serializable")
                );
            } else {
                print!("{report}");
            }
            let failed = report.failed().len();
            if failed > 0 {
                return Err(Failure::new(
                    exit::PREFLIGHT,
                    anyhow::anyhow!("{failed} check(s) failed; each says how to fix it"),
                ));
            }
        }
    }
    Ok(())
}

/// The intent of a command that moves traffic among the slots already there, how it runs, and
/// whether it prints JSON.
fn traffic_intent(command: Command) -> (Intent, RunOptions, bool) {
    let (intent, run, force) = match command {
        Command::Rollback {
            version,
            run,
            force,
        } => (Intent::Rollback(version), run, force),
        Command::Promote { run } => (Intent::Promote, run, false),
        Command::Canary { percent, run } => (Intent::Canary(percent), run, false),
        Command::Abort { dry_run, output } => {
            let run = RunArgs {
                dry_run,
                no_bake: true,
                json: output.json,
            };
            (Intent::Abort, run, false)
        }
        other => unreachable!("not a command that moves traffic: {other:?}"),
    };
    let opts = RunOptions {
        dry_run: run.dry_run,
        no_bake: run.no_bake,
        force,
        locked: false,
    };
    (intent, opts, run.json)
}

fn host_names(config: &DeployConfig) -> String {
    let names: Vec<String> = config.fleet().into_iter().map(|h| h.name).collect();
    names.join(", ")
}

/// A command on a fleet (`hosts:`): releases move by `rollout:`; the rest runs on each host.
async fn fleet(command: Command, config: &DeployConfig) -> commands::Outcome {
    let progress = Progress::auto();
    match command {
        Command::Up {
            run,
            skip_build,
            image,
            no_switch,
            canary,
        } => {
            if no_switch || canary.is_some() {
                return Err(Failure::new(
                    exit::CONFIG,
                    anyhow::anyhow!("--no-switch and --canary work one host at a time: add --host NAME, or use rollout.strategy: two_phase to check every host before any switches"),
                ));
            }
            let opts = UpOptions {
                dry_run: run.dry_run,
                skip_build,
                image,
                mode: UpMode::Switch,
                no_bake: run.no_bake,
            };
            let report = fleet::run::up(config, &opts, &progress).await?;
            if run.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serializable")
                );
                return Ok(());
            }
            if report.dry_run {
                println!("dry run: nothing was changed on any host. A real run would do:");
                print!("{}", report.plan);
                for (host, done) in &report.host_plans {
                    println!("host {host} ({}):", done.host);
                    print!("{}", done.plan);
                }
                return Ok(());
            }
            for s in &report.shipped {
                println!(
                    "shipped {} to {}: {:.1} MB in {:.2}s ({:.1} MB/s to each, {:.1} MB/s in all)",
                    s.image,
                    s.hosts.join(", "),
                    s.bytes as f64 / 1e6,
                    s.seconds,
                    s.mb_per_s,
                    s.mb_per_s * s.hosts.len() as f64
                );
            }
            if let Some(ms) = report.mixed_window_ms {
                println!("two versions served together for {ms} ms");
            }
            println!(
                "release {} done on {} host(s) in {:.1}s:\n{}",
                report.plan.version,
                report.hosts.len(),
                report.took_ms as f64 / 1000.0,
                fleet::run::summary(report.hosts.iter())
            );
        }
        moving @ (Command::Rollback { .. }
        | Command::Promote { .. }
        | Command::Canary { .. }
        | Command::Abort { .. }) => {
            let (intent, opts, json) = traffic_intent(moving);
            fleet_act(config, intent, opts, json, &progress).await?
        }
        Command::Status { json } => {
            let status = fleet::run::status(config).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).expect("serializable")
                );
            } else {
                print_fleet_status(&status);
            }
        }
        Command::Hosts { action } => {
            let (name, drained) = match &action {
                HostsAction::Drain { name } => (name, true),
                HostsAction::Undrain { name } => (name, false),
            };
            fleet::run::drain(config, name, drained).await?;
            println!(
                "{name} {}",
                if drained {
                    "drained: the balancer sends it no new request"
                } else {
                    "back in rotation"
                }
            );
        }
        Command::Logs { .. } => {
            return Err(Failure::new(
                exit::CONFIG,
                anyhow::anyhow!(
                    "logs come from one host: add --host NAME ({})",
                    host_names(config)
                ),
            ))
        }
        // The rest: on each host in turn, under its name.
        command => {
            let mut failed = None;
            for entry in config.fleet() {
                println!("== {} ==", entry.name);
                if let Err(f) = Box::pin(run(command.clone(), &config.for_host(&entry))).await {
                    eprintln!("deployer: {}: {:#}", entry.name, f.error);
                    failed.get_or_insert(f.code);
                }
            }
            if let Some(code) = failed {
                return Err(Failure::new(
                    code,
                    anyhow::anyhow!("failed on at least one host (above)"),
                ));
            }
        }
    }
    Ok(())
}

fn print_fleet_status(status: &serde_json::Value) {
    println!(
        "service {}: {} host(s)",
        status["service"].as_str().unwrap_or("?"),
        status["hosts"].as_array().map_or(0, Vec::len)
    );
    println!(
        "  {:<14} {:<6} {:<28} {:<10} NOTE",
        "HOST", "LIVE", "VERSION", "NGINX"
    );
    let balancer = &status["balancer"];
    for h in status["hosts"].as_array().into_iter().flatten() {
        let name = h["name"].as_str().unwrap_or("?");
        if let Some(e) = h["error"].as_str() {
            println!(
                "  {name:<14} {:<6} {:<28} {:<10} unreachable: {}",
                "-",
                "-",
                "-",
                e.lines().next().unwrap_or_default()
            );
            continue;
        }
        let live = h["live"].as_str().unwrap_or("none");
        let version = h["slots"][live]["version"].as_str().unwrap_or("-");
        let nginx = h["nginx"]["state"].as_str().unwrap_or("missing");
        let mut notes = Vec::new();
        if let Some(rot) = balancer["hosts"].as_array() {
            match rot.iter().find(|r| r[0] == name).map(|r| &r[1]) {
                Some(r) if r == "drained" => notes.push("DRAINED".to_string()),
                Some(r) if r == "starting" => {
                    notes.push("out of rotation until a release makes it serve".to_string())
                }
                _ => {}
            }
        }
        if h["maintenance"] == true {
            notes.push("maintenance".into());
        }
        if let Some(l) = h["lock"].as_object() {
            notes.push(format!(
                "locked by {}",
                l.get("user").and_then(|u| u.as_str()).unwrap_or("?")
            ));
        }
        println!(
            "  {name:<14} {live:<6} {version:<28} {nginx:<10} {}",
            notes.join(", ")
        );
    }
    match balancer {
        serde_json::Value::Null => println!("no balancer in deploy.yml"),
        b if b["error"].is_string() => {
            println!("balancer: {}", b["error"].as_str().unwrap_or_default())
        }
        b => println!(
            "balancer {}: {} on port {}",
            b["container"].as_str().unwrap_or("?"),
            if b["running"] == true {
                "running"
            } else {
                "NOT RUNNING"
            },
            b["https_port"]
        ),
    }
}

async fn fleet_act(
    config: &DeployConfig,
    intent: Intent,
    opts: RunOptions,
    json: bool,
    progress: &Progress,
) -> commands::Outcome {
    let outcomes = fleet::run::act(config, &intent, opts, progress).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcomes).expect("serializable")
        );
    } else {
        println!("{}", fleet::run::summary(outcomes.iter()));
    }
    Ok(())
}

/// A command that moves traffic among the slots already on the host.
async fn act(
    config: &DeployConfig,
    intent: Intent,
    opts: RunOptions,
    json: bool,
    progress: &Progress,
) -> commands::Outcome {
    let done = commands::act(config, &intent, opts, progress).await?;
    report(&done, opts.dry_run, json);
    Ok(())
}

/// A history record's figures, on one line.
fn history_figures(f: &deployer::state::Figures) -> String {
    let ms = |v: Option<u64>| v.map_or("-".into(), |v| format!("{v} ms"));
    let mut out = format!(
        "; healthy after {}, switched {} later, old slot drained in {}",
        ms(f.healthy_after_ms),
        ms(f.healthy_to_switched_ms),
        ms(f.drained_in_ms)
    );
    if let Some(around) = &f.around_switch {
        let slots: Vec<String> = around
            .iter()
            .map(|(slot, t)| format!("{slot} {} ({} 5xx)", t.requests, t.errors_5xx))
            .collect();
        out.push_str(&format!(
            "; answers around the switch: {}",
            slots.join(", ")
        ));
    }
    if let Some(b) = &f.bake {
        out.push_str(&format!(
            "; bake {} {:.0}s: {} answers, {} 5xx",
            match (b.passed, b.judged) {
                (false, _) => "FAILED",
                (true, true) => "passed",
                (true, false) => "judged nothing (too few answers)",
            },
            b.watched_ms as f64 / 1000.0,
            b.answers.requests,
            b.answers.errors_5xx
        ));
        if let Some(ms) = b.crossed_to_back_ms {
            out.push_str(&format!(
                ", traffic back {ms} ms after the limit was crossed"
            ));
        }
    }
    out
}

fn report(done: &commands::Done, dry_run: bool, json: bool) {
    if json {
        let figures = done.timings.as_ref().map(deployer::state::Figures::of);
        let out = serde_json::json!({
            "dry_run": dry_run,
            "host": done.host,
            "plan": done.plan,
            "steps": done.plan.steps.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "figures": figures,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serializable")
        );
        return;
    }
    if dry_run {
        println!(
            "dry run: nothing was changed on {}. A real run would do:",
            done.host
        );
        print!("{}", done.plan);
        return;
    }
    let t = done.timings.clone().unwrap_or_default();
    let plan = &done.plan;
    let bake = t.bake.as_ref().map_or(String::new(), |b| {
        format!(
            "; baked {:.0}s: {} answers from {}, {} 5xx",
            b.watched_ms as f64 / 1000.0,
            b.answers.requests,
            b.slot,
            b.answers.errors_5xx
        )
    });
    let live = plan.live_after.map_or("nothing", Slot::name);
    if plan.intent == "abort" {
        let withdrawn = plan.from.map_or("nothing", Slot::name);
        println!(
            "abort: {withdrawn} (version {}) withdrawn and drained; {live} is live",
            plan.version
        );
        return;
    }
    if plan.live_after != Some(plan.to) {
        let what = if plan.intent.contains("canary") {
            "on trial as a canary"
        } else {
            "in preview"
        };
        println!(
            "{}: {} (version {}) {what}; {live} is live{bake}",
            plan.intent, plan.to, plan.version
        );
        return;
    }
    println!(
        "{}: {} is live (version {}); healthy after {:.2}s, switched {:.0} ms after healthy, old slot drained in {:.2}s",
        done.plan.intent,
        done.plan.to,
        done.plan.version,
        t.healthy_after.map_or(0.0, |d| d.as_secs_f64()),
        t.healthy_to_switched.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        t.drained_in.map_or(0.0, |d| d.as_secs_f64()),
    );
    if !bake.is_empty() {
        println!("{}", bake.trim_start_matches("; "));
    }
}
