//! The cache updater role: runs the state machine over each monitor's cached live status, so
//! that the API's status reads are one cache lookup.
//!
//! The API writes a monitor's entry when the monitor is created, and start-up warms the cache
//! from the store. An entry can still be missing: the monitor was created by `upwatch import`
//! while the API ran, or Redis lost its data. A result of a monitor without an entry therefore
//! rebuilds it from the store (its settings and the alerter's state), and a result of a monitor
//! the store no longer has (a deleted one) is skipped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use upwatch_bus::Subscription;
use upwatch_cache::{CacheError, LiveStatus, StatusCache};
use upwatch_core::CheckResult;
use upwatch_store::Reads;
use uuid::Uuid;

use crate::consume::{each_batch, Batching};
use crate::retry::{until_ok, Backoff};

/// The cache updater role.
pub struct CacheUpdater {
    pub cache: Arc<dyn StatusCache>,
    /// Where entries missing from the cache are rebuilt from.
    pub store: Arc<dyn Reads>,
}

impl CacheUpdater {
    /// Runs until the results subscription ends, applying results in batches: one read of
    /// the batch's entries and one write of those that changed, so that a backlog (after
    /// Redis was away, say) drains at a few round trips per batch instead of two per result.
    pub async fn run(self, results: Box<dyn Subscription>) {
        let batching = Batching {
            size: BATCH_SIZE,
            wait: BATCH_WAIT,
        };
        each_batch("cache-updater", results, batching, |batch| {
            let (cache, store) = (self.cache.clone(), self.store.clone());
            async move {
                until_ok("update live status", Backoff::default(), || {
                    apply_batch(cache.as_ref(), store.as_ref(), &batch)
                })
                .await;
            }
        })
        .await;
    }
}

/// Results applied together at most.
pub const BATCH_SIZE: usize = 500;

/// How long the first result of a batch waits for others: short, since a status read must
/// never be more than a second behind the newest result.
pub const BATCH_WAIT: Duration = Duration::from_millis(10);

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
    apply_batch(cache, store, std::slice::from_ref(result)).await
}

/// Applies `results`, in order, to their monitors' cached entries: reads every entry at
/// once, rebuilds missing ones from `store`, runs the state machine and writes back the
/// entries that changed at once. Applying is idempotent (a result no newer than its entry is
/// ignored), so a batch that failed part-way is simply applied again.
pub async fn apply_batch(
    cache: &dyn StatusCache,
    store: &dyn Reads,
    results: &[CheckResult],
) -> Result<(), ApplyError> {
    let mut ids: Vec<Uuid> = results.iter().map(|r| r.monitor_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let mut entries = cache.get_many(&ids).await?;
    let mut rebuilt = Vec::new();
    for id in &ids {
        if entries.contains_key(id) {
            continue;
        }
        let Some(monitor) = store.get_monitor(*id).await? else {
            continue; // deleted: its late results bring nothing back
        };
        let state = match store.get_state(*id).await? {
            Some(state) => state,
            None => monitor.initial_state(),
        };
        entries.insert(*id, LiveStatus::new(&monitor, state));
        rebuilt.push(*id);
    }
    let mut changed: HashSet<Uuid> = rebuilt.iter().copied().collect();
    for result in results {
        let Some(entry) = entries.get_mut(&result.monitor_id) else {
            continue;
        };
        if entry.state.accepts(result) {
            entry.state.apply(result);
            // The certificate's expiry is shown with the status; its alerts are the alerter's.
            entry.state.observe_certificate(result);
            entry.name.clone_from(&result.monitor_name);
            entry.url.clone_from(&result.url);
            changed.insert(result.monitor_id);
        }
    }
    let writes: Vec<LiveStatus> = ids
        .iter()
        .filter(|id| changed.contains(id))
        .filter_map(|id| entries.remove(id))
        .collect();
    if !writes.is_empty() {
        cache.put_many(&writes).await?;
    }
    if rebuilt.is_empty() {
        return Ok(());
    }
    // One line per batch: after Redis lost its data, every monitor is rebuilt.
    tracing::info!(monitors = rebuilt.len(), first = %rebuilt[0], "live status rebuilt from the store");
    for id in rebuilt {
        // A delete that ran between the read above and the write must not leave an entry.
        if store.get_monitor(id).await?.is_none() {
            cache.remove(id).await?;
        }
    }
    Ok(())
}
