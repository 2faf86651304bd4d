//! The cache updater role: runs the state machine over each monitor's cached live status, so
//! that the API's status reads are one cache lookup.
//!
//! Results of monitors without a cache entry (deleted ones) are skipped: the API creates the
//! entry when a monitor is created, and start-up warms the cache from the store.

use std::sync::Arc;

use upwatch_bus::Subscription;
use upwatch_cache::StatusCache;
use upwatch_core::CheckResult;

use crate::consume::each_result;
use crate::retry::{until_ok, Backoff};

/// The cache updater role.
pub struct CacheUpdater {
    pub cache: Arc<dyn StatusCache>,
}

impl CacheUpdater {
    /// Runs until the results subscription ends.
    pub async fn run(self, results: Box<dyn Subscription>) {
        each_result("cache-updater", results, |result| {
            let cache = self.cache.clone();
            async move {
                until_ok("update live status", Backoff::default(), || {
                    apply(cache.as_ref(), &result)
                })
                .await;
            }
        })
        .await;
    }
}

/// Applies one result to its monitor's cached entry.
pub async fn apply(
    cache: &dyn StatusCache,
    result: &CheckResult,
) -> upwatch_cache::CacheResult<()> {
    let Some(mut entry) = cache.get(result.monitor_id).await? else {
        return Ok(());
    };
    if !entry.state.accepts(result) {
        return Ok(());
    }
    entry.state.apply(result);
    entry.name.clone_from(&result.monitor_name);
    entry.url.clone_from(&result.url);
    cache.put(&entry).await?;
    Ok(())
}
