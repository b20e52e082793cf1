//! A Slack-first follow-up assistant for sales teams.
//!
//! Data flows one way (see ARCHITECTURE.md): `startup` builds `services` and runs the
//! `features`, which `dispatch` reaches from the Socket Mode loop in `slack` and `jobs` from
//! the queue; below them the adapters (`store`, `clients`, `slack`, `server`) and, at the
//! bottom, the plain types of `domain`.

pub mod blocks;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod dispatch;
pub mod doctor;
pub mod domain;
pub mod features;
pub mod jobs;
pub mod registry;
pub mod retry;
pub mod server;
pub mod services;
pub mod slack;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod workspace;
