//! Blue-green deployment orchestrator for the app, behind nginx.
//!
//! # Layout
//! - [`config`]: `deploy.yml`, parsed strictly with errors that name key, line and fix.
//! - [`cli`]: the command line (clap): parsing only, no I/O.
//!
//! Building, health polling, the nginx switch, locking and rollback arrive with the deployer
//! issue; their shape is fixed in ARCHITECTURE.md (parse → resolve → plan → execute).

pub mod cli;
pub mod config;
