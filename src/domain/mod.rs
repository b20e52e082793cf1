//! Plain types shared by the store, the clients and the features: people and their settings,
//! follow-ups and drafts, meetings and transcripts, ids, providers. Domain imports only domain.

pub mod crm;
pub mod followup;
pub mod ids;
pub mod language;
pub mod meeting;
pub mod person;
pub mod provider;
