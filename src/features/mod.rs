//! The features, one folder or file each: its handlers, its views and its own jobs. A feature
//! never imports another feature; what two share lives in `services` or `domain`. This file
//! lists them all, and startup takes that list.

pub use crate::registry::Features;

pub mod connect;
pub mod crm;
pub mod fallback;
pub mod followup;
pub mod google;
pub mod home;
pub mod install;
pub mod recordings;
pub mod retention;
pub mod settings;
pub mod team;

/// Every feature of the shipped bot.
pub fn all() -> Features {
    let mut features = Features::new(fallback::Unknown);
    connect::register(&mut features);
    crm::register(&mut features);
    followup::register(&mut features);
    google::register(&mut features);
    recordings::register(&mut features);
    retention::register(&mut features);
    settings::register(&mut features);
    team::register(&mut features);
    home::register(&mut features);
    install::register(&mut features);
    features
}
