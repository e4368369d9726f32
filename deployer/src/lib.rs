//! Blue-green deployment orchestrator for the app, behind nginx.
//!
//! # Layout (parse → observe → plan → execute)
//! - [`config`]: `deploy.yml`, parsed strictly with errors that name key, line and fix.
//! - [`cli`]: the command line (clap): parsing only, no I/O.
//! - [`engine`]: the Docker engine API (bollard); the only module that talks to Docker.
//! - [`render`]: the nginx config from the tera templates (pure).
//! - [`plan`]: the steps of `up` and `rollback`, computed as data from config + observations
//!   (pure; `--dry-run` prints it).
//! - [`execute`]: runs a plan's steps; stops a half-started slot if a step fails before the
//!   switch.
//! - [`context`]: the build context as a tar, honouring `.dockerignore`.
//! - [`host`]: the machine deployed to (this one or a remote one): its files, its Docker
//!   engine, its `127.0.0.1` ports.
//! - [`remote`]: SSH (ssh2): forwarded Docker socket and ports, SFTP, host key check.
//! - [`tunnel`]: forwarded connections multiplexed over one SSH session.
//! - [`state`]: the deploy lock and history on the host (atomic writes).
//! - [`progress`]: what the operator sees while waiting.
//! - [`check`]: preflight checks (`deployer check`, the first thing `up` does): pass, warn or
//!   fail, each failure with its fix.
//! - [`traffic`]: nginx's JSON access log read as figures: each slot's answers around a switch,
//!   and the bake's judge (pure).
//! - [`commands`]: each command: observe, plan, execute, under the lock.

pub mod balancer;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod engine;
pub mod execute;
pub mod fleet;
pub mod host;
pub mod plan;
pub mod progress;
pub mod remote;
pub mod render;
pub mod state;
pub mod traffic;
pub mod tunnel;
