//! The logger role: writes results to the store in batches, bounded by size and time, and
//! acknowledges them only after the batch is committed.
//!
//! A batch the store refuses (the database is away, its disk is full or read-only) is kept
//! and written again with backoff until it is stored; meanwhile the logger takes nothing more
//! from the results stream, so what it holds is bounded by one batch and the stream's own
//! bound (the in-process bus then holds back the workers). While it retries, `/readyz` says
//! the database does not accept writes ([`STORE_WRITE_PROBLEM`]).

use std::sync::Arc;
use std::time::Duration;

use upwatch_bus::Subscription;
use upwatch_core::CheckResult;
use upwatch_store::ResultLog;
use upwatch_telemetry::Metrics;

use crate::consume::{each_batch, Batching};
use crate::retry::{until_ok, Backoff};

/// The readiness problem of a store that refuses the results' writes.
pub const STORE_WRITE_PROBLEM: &str = "store writes";

/// What `/readyz` says while the store refuses the results' writes (the error is in the log).
const STORE_WRITE_REASON: &str = "The database does not accept writes (its disk may be full \
     or read-only): results are held and written again until it does; the log has the error.";

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

    /// Writes a batch, retrying the same batch until it is stored, and reports the failures
    /// as a readiness problem until then; returns how many results were new.
    async fn store_batch(&self, batch: Vec<CheckResult>) -> u64 {
        let health = &self.metrics.health;
        let stored = until_ok("store a batch of results", Backoff::default(), || async {
            let written = self.store.insert_results(&batch).await;
            if written.is_err() {
                health.set_problem(STORE_WRITE_PROBLEM, STORE_WRITE_REASON.to_string());
            }
            written
        })
        .await;
        health.clear_problem(STORE_WRITE_PROBLEM);
        self.metrics.results_stored.inc_by(stored);
        self.metrics
            .record_stored(&batch, chrono::Utc::now().timestamp_millis());
        tracing::debug!(batch = batch.len(), stored, "results stored");
        stored
    }
}
