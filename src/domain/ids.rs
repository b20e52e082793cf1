//! Newtypes for our own row ids, so a tenant id can never be passed where a user id belongs.
//! Slack's own ids (team, user, channel) use slack-morphism's newtypes.

use serde::{Deserialize, Serialize};

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// A row of `tenants`: one Slack workspace.
    TenantId
);
row_id!(
    /// A row of `users`: one person in one workspace.
    UserId
);
row_id!(
    /// A row of `jobs`.
    JobId
);

/// The opaque, unguessable id of a follow-up, carried by its buttons.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct FollowupId(pub String);

impl FollowupId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl Default for FollowupId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for FollowupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
