//! The integration tests, one binary (linked once): the real bot, started through the same
//! `startup::start` as the binary, against local fakes of Slack, Fathom and Anthropic, on a
//! real SQLite and a real PostgreSQL.

#[macro_use]
mod support;

mod binary;
mod blocks;
mod doctor;
mod fake_google_selftest;
mod fake_slack_selftest;
mod fakes_selftest;
mod followup;
mod jobs;
mod log_secrets;
mod mirror_listing;
mod replicas;
mod sidecar;
mod socket_mode;
mod store;
