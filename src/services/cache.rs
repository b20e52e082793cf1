//! Autocomplete answers, kept briefly per team.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::ids::TenantId;

/// Autocomplete answers per (team, list, query), kept briefly: typing back and forth asks
/// the CRM once.
#[derive(Default)]
pub struct SuggestCache {
    entries: Mutex<HashMap<CacheKey, (Instant, serde_json::Value)>>,
}

/// (team, list, query).
type CacheKey = (TenantId, &'static str, String);

const SUGGEST_FOR: Duration = Duration::from_secs(60);
const SUGGEST_MAX_ENTRIES: usize = 5_000;

impl SuggestCache {
    pub fn get(
        &self,
        tenant: TenantId,
        list: &'static str,
        query: &str,
    ) -> Option<serde_json::Value> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(tenant, list, query.to_owned()))
            .filter(|(at, _)| at.elapsed() < SUGGEST_FOR)
            .map(|(_, v)| v.clone())
    }

    pub fn put(
        &self,
        tenant: TenantId,
        list: &'static str,
        query: &str,
        options: serde_json::Value,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= SUGGEST_MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < SUGGEST_FOR);
            if entries.len() >= SUGGEST_MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert((tenant, list, query.to_owned()), (Instant::now(), options));
    }

    /// After the team's CRM changed (new keys), nothing from the old one is shown.
    pub fn forget_team(&self, tenant: TenantId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(t, _, _), _| *t != tenant);
    }
}
