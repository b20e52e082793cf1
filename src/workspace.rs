//! Which Slack workspace the current piece of work is for: set around each envelope, each
//! job, each poll of a person and each sidecar callback, so every Web API call made inside
//! uses that workspace's bot token (see `services::slack`) and every job queued inside
//! remembers it. Outside any scope (startup, housekeeping) there is no workspace.

use std::future::Future;

tokio::task_local! {
    static TEAM: String;
}

/// Runs `work` for the workspace `team` (a Slack team id, or an enterprise id).
pub async fn within<F: Future>(team: &str, work: F) -> F::Output {
    TEAM.scope(team.to_owned(), work).await
}

/// As `within`, taking the id (for futures that must be `'static`); an empty id is no
/// workspace.
pub async fn within_owned<F: Future>(team: String, work: F) -> F::Output {
    if team.is_empty() {
        return work.await;
    }
    TEAM.scope(team, work).await
}

/// The workspace of the current work, if any.
pub fn current() -> Option<String> {
    TEAM.try_with(Clone::clone).ok()
}
