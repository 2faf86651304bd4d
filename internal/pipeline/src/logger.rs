//! The logger role: writes results to the store in batches, bounded by size and time, and
//! acknowledges them only after the batch is committed.

use std::sync::Arc;
use std::time::Duration;

use upwatch_bus::Subscription;
use upwatch_core::CheckResult;
use upwatch_store::ResultLog;
use upwatch_telemetry::Metrics;

use crate::consume::{each_batch, Batching};
use crate::retry::{until_ok, Backoff};

/// The logger role.
pub struct Logger {
    pub store: Arc<dyn ResultLog>,
    pub metrics: Arc<Metrics>,
    /// A batch is written when it holds this many results...
    pub batch_size: usize,
    /// ...or when its first result has waited this long.
    pub batch_wait: Duration,
}

impl Logger {
    /// Runs until the results subscription ends, then writes the last batch.
    pub async fn run(self, results: Box<dyn Subscription>) {
        let batching = Batching {
            size: self.batch_size,
            wait: self.batch_wait,
        };
        let stored = std::sync::atomic::AtomicU64::new(0);
        each_batch("logger", results, batching, |batch| async {
            let n = self.store_batch(batch).await;
            stored.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .await;
        // Read by the load benchmark to check that every result produced was stored.
        tracing::info!(results_stored = stored.into_inner(), "logger stopped");
    }

    /// Writes a batch, retrying until it is stored; returns how many results were new.
    async fn store_batch(&self, batch: Vec<CheckResult>) -> u64 {
        let stored = until_ok("store a batch of results", Backoff::default(), || {
            self.store.insert_results(&batch)
        })
        .await;
        self.metrics.results_stored.inc_by(stored);
        self.metrics
            .record_stored(&batch, chrono::Utc::now().timestamp_millis());
        tracing::debug!(batch = batch.len(), stored, "results stored");
        stored
    }
}
