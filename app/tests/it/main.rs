//! The app's integration tests, in one binary (one link instead of nine): each module drives
//! the real app (in-process or as processes) against the real simulator, SQLite, PostgreSQL,
//! Docker or Chromium, as its doc says. `common` holds the helpers they share.

#[allow(dead_code)] // each helper serves some of the modules
mod common;

mod api;
mod client;
mod dashboard;
mod figures;
mod image;
mod layers;
mod lifecycle;
mod oauth;
mod outbox;
mod postgres;
mod privacy;
mod schema;
mod sync;
mod two_way;
mod webhooks;
