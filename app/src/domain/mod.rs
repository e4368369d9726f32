//! The domain: the app's own types and rules, pure. What a contact write is and how one is
//! validated ([`contact`]), the outbox's ordering rules ([`outbox`]), where a pull sync stands
//! ([`sync`]), and the port of HubSpot's shared budget ([`budget`]).
//!
//! May not import: `sqlx`, `axum`, `reqwest`, or any other part of the app (`crate::`) except
//! the leaves `mask` and `secret`. Everything here can be tested without a database, a server
//! or HubSpot.

pub mod access;
pub mod budget;
pub mod contact;
pub mod currency;
pub mod event;
pub mod figures;
pub mod lifecycle;
pub mod mapping;
pub mod object;
pub mod outbox;
pub mod portal;
pub mod privacy;
pub mod search;
pub mod sync;
