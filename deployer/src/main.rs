use std::process::ExitCode;

use clap::Parser;
use deployer::cli::{Cli, Command, LockAction, MaintenanceAction, RunArgs, SlotArg};
use deployer::commands::{self, exit, Failure, RunOptions, UpOptions};
use deployer::config::DeployConfig;
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
    match run(cli.command, &config).await {
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
        Command::Rollback {
            version,
            run,
            force,
        } => act(config, Intent::Rollback(version), run, force, &progress).await?,
        Command::Promote { run } => act(config, Intent::Promote, run, false, &progress).await?,
        Command::Canary { percent, run } => {
            act(config, Intent::Canary(percent), run, false, &progress).await?
        }
        Command::Abort { dry_run, output } => {
            let run = RunArgs {
                dry_run,
                no_bake: true,
                json: output.json,
            };
            act(config, Intent::Abort, run, false, &progress).await?
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

/// A command that moves traffic among the slots already on the host.
async fn act(
    config: &DeployConfig,
    intent: Intent,
    run: RunArgs,
    force: bool,
    progress: &Progress,
) -> commands::Outcome {
    let opts = RunOptions {
        dry_run: run.dry_run,
        no_bake: run.no_bake,
        force,
    };
    let done = commands::act(config, &intent, opts, progress).await?;
    report(&done, run.dry_run, run.json);
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
