use std::process::ExitCode;

use clap::Parser;
use deployer::cli::{Cli, Command, EXIT_CONFIG};
use deployer::config::DeployConfig;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = cli.config.display().to_string();
    let text = match std::fs::read_to_string(&cli.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("deployer: cannot read {file}: {e} (pass another path with -c)");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::Config => match DeployConfig::parse(&file, &text) {
            Ok(config) => {
                println!("{config:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("deployer: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
    }
}
