//! The command line, parsed by clap. No I/O happens here.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    about = "Blue-green deploys of the app behind nginx",
    after_help = "Exit codes: 0 ok; 1 deploy/rollback failed (the message says where traffic is); \
                  2 bad deploy.yml or arguments; 3 another deploy holds the lock; \
                  4 Docker engine unreachable (with remote: the SSH connection failed); \
                  5 nothing to roll back to, promote or abort; 6 a preflight check failed (nothing changed); \
                  7 a release is in preview or canary (promote or abort it first); \
                  8 the bake saw the new release fail and sent traffic back; \
                  9 rollback refused by the schema check (--force overrides)."
)]
pub struct Cli {
    /// Path to the deploy configuration.
    #[arg(
        short = 'c',
        long = "config",
        default_value = "deploy.yml",
        global = true
    )]
    pub config: PathBuf,
    /// With `hosts:` in deploy.yml: run the command on this host alone, as on a single host
    /// (`deployer logs --host web-2`).
    #[arg(long, global = true, value_name = "NAME")]
    pub host: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Build, start the idle slot, wait for health, switch nginx to it, drain the old slot.
    Up {
        #[command(flatten)]
        run: RunArgs,
        /// Deploy the already-built image of the current commit.
        #[arg(long, conflicts_with = "image")]
        skip_build: bool,
        /// Deploy this image instead of building one.
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        /// Stop before traffic moves: the new slot is shown on the preview port only; then
        /// `deployer promote`, `deployer canary PCT` or `deployer abort`.
        #[arg(long, conflicts_with = "canary")]
        no_switch: bool,
        /// Send this share of clients (sticky, by cookie) to the new slot, the rest staying on
        /// the live one; then raise it with `deployer canary PCT`, `promote` or `abort`.
        #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u8).range(1..=100))]
        canary: Option<u8>,
    },
    /// Back to the previous release (the kept slot), or to VERSION, one of the last
    /// `keep_images` releases (`deployer history`): its slot is re-created from its image when
    /// no container holds it, with the same health, smoke and switch rules.
    Rollback {
        /// A recent release's version (default: the one before the live one).
        version: Option<String>,
        #[command(flatten)]
        run: RunArgs,
        /// Go back even to a release the schema check refuses (its schema is older than a
        /// contract migration since allows).
        #[arg(long)]
        force: bool,
    },
    /// Put the release in preview or canary live (switch all traffic to it), bake it, and
    /// drain the old slot.
    Promote {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Withdraw the release in preview or canary: its clients go back to the live slot, and it
    /// drains and stops.
    Abort {
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Send this share of clients to the release in preview or canary (0 withdraws the share
    /// and keeps the preview). No reload, no failed request; clients keep their slot as the
    /// share grows.
    Canary {
        #[arg(value_parser = clap::value_parser!(u8).range(0..=100))]
        percent: u8,
        #[command(flatten)]
        run: RunArgs,
    },
    /// The live slot, versions, container states and the last deploy, read from the host.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// A slot's logs (the live slot's by default).
    Logs {
        slot: Option<SlotArg>,
        #[arg(short, long)]
        follow: bool,
        /// Lines from the end to start with.
        #[arg(long, default_value_t = 100)]
        tail: usize,
    },
    /// The deploy lock.
    Lock {
        #[command(subcommand)]
        action: LockAction,
    },
    /// Remove old images, keeping `keep_images` (and any a slot uses).
    Prune {
        #[arg(long)]
        dry_run: bool,
    },
    /// Check deploy.yml and print the resolved configuration.
    Config,
    /// Maintenance mode: nginx answers 503 with Retry-After and a page on every route but the
    /// probes (`/health`, `/ready`), with no reload.
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
        #[command(flatten)]
        output: OutputArg,
    },
    /// The recent releases: who, when, version, outcome, why, and what the switch cost.
    History {
        #[arg(long)]
        json: bool,
        /// How many, newest last.
        #[arg(short, long, default_value_t = 20)]
        n: usize,
    },
    /// The hosts of deploy.yml's `hosts:` in the balancer: take one out of rotation for
    /// maintenance, or put it back, with no reload and no failed request.
    Hosts {
        #[command(subcommand)]
        action: HostsAction,
    },
    /// Prints a shell completion script (`deployer completions bash > /etc/bash_completion.d/deployer`).
    Completions { shell: clap_complete::Shell },
    /// Preflight: the engine, SSH, free disk, the certificate, required env keys, the nginx
    /// image. Each passes, warns or fails with its fix; every `up` runs these first.
    Check {
        #[arg(long)]
        json: bool,
    },
}

/// The flags of every command that moves traffic.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RunArgs {
    /// Print the exact steps a real run would take, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip deploy.yml's bake: do not watch the new slot's answers after traffic moves.
    #[arg(long)]
    pub no_bake: bool,
    /// Print the plan and, after a real run, its figures as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArg {
    /// Print the plan and, after a real run, its figures as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SlotArg {
    Blue,
    Green,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LockAction {
    /// Who holds the lock, since when, doing what.
    Status,
    /// Release the lock (after making sure its holder is gone).
    Release,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MaintenanceAction {
    /// Every route but the probes answers 503 with this page.
    On {
        /// The text on the page.
        #[arg(
            long,
            default_value = "We are updating the service and will be back in a few minutes."
        )]
        message: String,
    },
    /// Back to serving.
    Off,
}

#[derive(Debug, Clone, Subcommand)]
pub enum HostsAction {
    /// The balancer sends this host no new request; its open connections finish first.
    Drain { name: String },
    /// Back in rotation.
    Undrain { name: String },
}
