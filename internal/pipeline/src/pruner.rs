//! The pruner: deletes history older than its retention, a few monitors per transaction.
//!
//! It walks the monitors in id order, [`Pruner::batch_monitors`] at a time, and gives each
//! batch one short [`Store::prune`] transaction, so writers (the logger's batches) wait at most
//! for one small batch. Deleted monitors need no pruning: their history goes with them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use upwatch_core::rollup::Retention;
use upwatch_store::{Pruned, Store, StoreResult};
use upwatch_telemetry::Metrics;

/// The pruner role (run by the logger in the distributed mode, by `serve` in the embedded one).
#[derive(Clone)]
pub struct Pruner {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub retention: Retention,
    /// Time between the start of one pass and the next.
    pub every: Duration,
    /// Monitors per transaction.
    pub batch_monitors: usize,
}

impl Pruner {
    /// Prunes at once, then every [`Pruner::every`], until `shutdown`. A pass that fails
    /// (the database went away) is logged and tried again at the next tick, where it left off
    /// counting for nothing: pruning is idempotent.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let pass = tokio::select! {
                _ = shutdown.cancelled() => return,
                pass = self.prune_once(Utc::now()) => pass,
            };
            match pass {
                Ok(pruned) if pruned != Pruned::default() => {
                    tracing::info!(raw = pruned.raw, rollups = pruned.rollups, "history pruned")
                }
                Ok(_) => tracing::debug!("nothing to prune"),
                Err(error) => tracing::warn!(%error, "cannot prune history; trying again later"),
            }
        }
    }

    /// One pass over every monitor with the cutoffs of `now`.
    pub async fn prune_once(&self, now: DateTime<Utc>) -> StoreResult<Pruned> {
        let cutoffs = self.retention.cutoffs(now);
        let mut total = Pruned::default();
        if cutoffs.raw.is_none() && cutoffs.rollups.iter().all(|(_, c)| c.is_none()) {
            return Ok(total);
        }
        // Whole days first, where the store keeps them apart; then what is left, per monitor.
        let days = self.store.prune_days(cutoffs.raw, now).await?;
        self.metrics.history_pruned.inc_by(days);
        total.raw += days;
        let batch = self.batch_monitors.max(1);
        let mut after = None;
        loop {
            let monitors = self.store.list_monitors(after, batch as u32).await?;
            let Some(last) = monitors.last() else {
                break;
            };
            after = Some(last.id);
            let ids: Vec<_> = monitors.iter().map(|m| m.id).collect();
            let pruned = self.store.prune(&ids, &cutoffs).await?;
            self.metrics
                .history_pruned
                .inc_by(pruned.raw + pruned.rollups);
            total.raw += pruned.raw;
            total.rollups += pruned.rollups;
            if monitors.len() < batch {
                break;
            }
            // Let writers in between batches.
            tokio::task::yield_now().await;
        }
        Ok(total)
    }
}
