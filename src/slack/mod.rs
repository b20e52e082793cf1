//! Slack ingress (our Socket Mode loop and envelope parsing) and the Web API trait.

pub mod api;
pub mod envelope;
pub mod manifest;
pub mod payload;
pub mod socket;
