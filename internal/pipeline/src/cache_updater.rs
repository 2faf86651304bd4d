//! The cache updater role: runs the state machine over each monitor's cached live status, so
//! that the API's status reads are one cache lookup.
//!
//! The API writes a monitor's entry when the monitor is created, and start-up warms the cache
//! from the store. An entry can still be missing: the monitor was created by `upwatch import`
//! while the API ran, or Redis lost its data. A result of a monitor without an entry therefore
//! rebuilds it from the store (its settings and the alerter's state), and a result of a monitor
//! the store no longer has (a deleted one) is skipped.

use std::sync::Arc;

use upwatch_bus::Subscription;
use upwatch_cache::{CacheError, LiveStatus, StatusCache};
use upwatch_core::CheckResult;
use upwatch_store::Reads;

use crate::consume::each_result;
use crate::retry::{until_ok, Backoff};

/// The cache updater role.
pub struct CacheUpdater {
    pub cache: Arc<dyn StatusCache>,
    /// Where entries missing from the cache are rebuilt from.
    pub store: Arc<dyn Reads>,
}

impl CacheUpdater {
    /// Runs until the results subscription ends.
    pub async fn run(self, results: Box<dyn Subscription>) {
        each_result("cache-updater", results, |result| {
            let (cache, store) = (self.cache.clone(), self.store.clone());
            async move {
                until_ok("update live status", Backoff::default(), || {
                    apply(cache.as_ref(), store.as_ref(), &result)
                })
                .await;
            }
        })
        .await;
    }
}

/// Why a result could not be applied to the cache; both are retried.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot read the monitor of a missing cache entry: {0}")]
    Store(#[from] upwatch_store::StoreError),
}

/// Applies one result to its monitor's cached entry, rebuilding a missing entry from `store`.
pub async fn apply(
    cache: &dyn StatusCache,
    store: &dyn Reads,
    result: &CheckResult,
) -> Result<(), ApplyError> {
    let id = result.monitor_id;
    let (mut entry, rebuilt) = match cache.get(id).await? {
        Some(entry) => (entry, false),
        None => {
            let Some(monitor) = store.get_monitor(id).await? else {
                return Ok(());
            };
            let state = match store.get_state(id).await? {
                Some(state) => state,
                None => monitor.initial_state(),
            };
            (LiveStatus::new(&monitor, state), true)
        }
    };
    if entry.state.accepts(result) {
        entry.state.apply(result);
        // The certificate's expiry is shown with the status; its alerts are the alerter's.
        entry.state.observe_certificate(result);
        entry.name.clone_from(&result.monitor_name);
        entry.url.clone_from(&result.url);
    } else if !rebuilt {
        return Ok(());
    }
    cache.put(&entry).await?;
    if rebuilt {
        tracing::info!(monitor_id = %id, "live status rebuilt from the store");
        // A delete that ran between the read above and the write must not leave an entry.
        if store.get_monitor(id).await?.is_none() {
            cache.remove(id).await?;
        }
    }
    Ok(())
}
