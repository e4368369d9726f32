//! HTTP-level tests of the simulator: a real server on a free port, a real HTTP client, and
//! exact statuses and body shapes. One binary, one module per concern.

mod helpers;

mod associations;
mod batch;
mod events;
mod faults;
mod gdpr;
mod oauth;
mod objects;
mod official_client;
mod rate_limits;
mod search;
mod webhooks;
