//! A Slack-first follow-up assistant for sales teams.
//!
//! Ingress (`slack`) parses and acks Socket Mode envelopes, `handlers` hold one module per
//! feature, `store` is the database, `jobs` the durable queue, `server` the HTTP sidecar.

pub mod config;
pub mod crypto;
pub mod ids;
pub mod store;
