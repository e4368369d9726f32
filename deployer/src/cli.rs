//! The command line, parsed by clap. No I/O happens here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    about = "Blue-green deploys of the app behind nginx"
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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check deploy.yml and print the resolved configuration.
    Config,
}

/// Exit codes: 0 success, 2 bad configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
