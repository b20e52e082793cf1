//! A Slack-first follow-up assistant for sales teams.
//!
//! Ingress (`slack`) parses and acks Socket Mode envelopes, `handlers` hold one module per
//! feature, `store` is the database, `jobs` the durable queue, `server` the HTTP sidecar.

pub mod app;
pub mod blocks;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod doctor;
pub mod drafting;
pub mod features;
pub mod handlers;
pub mod ids;
pub mod jobs;
pub mod server;
pub mod slack;
pub mod store;
pub mod telemetry;
