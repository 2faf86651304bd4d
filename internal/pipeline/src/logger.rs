//! The logger role: writes results to the store in batches, bounded by size and time, and
//! acknowledges them only after the batch is committed.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use upwatch_bus::{Message, Subscription};
use upwatch_core::CheckResult;
use upwatch_store::Store;
use upwatch_telemetry::Metrics;

use crate::retry::{until_ok, Backoff};

/// The logger role.
pub struct Logger {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// A batch is written when it holds this many results...
    pub batch_size: usize,
    /// ...or when its first result has waited this long.
    pub batch_wait: Duration,
}

impl Logger {
    /// Runs until the results subscription ends, then writes the last batch.
    pub async fn run(self, mut results: Box<dyn Subscription>) {
        let mut batch: Vec<CheckResult> = Vec::with_capacity(self.batch_size);
        let mut last: Option<Message> = None;
        let mut deadline: Option<Instant> = None;
        let mut failures = 0u32;
        loop {
            let received = match deadline {
                Some(at) => tokio::select! {
                    r = results.recv() => r,
                    _ = tokio::time::sleep_until(at) => {
                        self.flush(&mut batch, &mut last, results.as_mut()).await;
                        deadline = None;
                        continue;
                    }
                },
                None => results.recv().await,
            };
            match received {
                Ok(Some(message)) => {
                    failures = 0;
                    match message.decode::<CheckResult>() {
                        Ok(result) => batch.push(result),
                        Err(error) => {
                            tracing::error!(%error, key = %message.key, "skipping a result that cannot be decoded")
                        }
                    }
                    last = Some(message);
                    if deadline.is_none() {
                        deadline = Some(Instant::now() + self.batch_wait);
                    }
                    if batch.len() >= self.batch_size {
                        self.flush(&mut batch, &mut last, results.as_mut()).await;
                        deadline = None;
                    }
                }
                Ok(None) => {
                    self.flush(&mut batch, &mut last, results.as_mut()).await;
                    return;
                }
                Err(error) => {
                    failures += 1;
                    let wait = Backoff::default().delay(failures);
                    tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "cannot receive results; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn flush(
        &self,
        batch: &mut Vec<CheckResult>,
        last: &mut Option<Message>,
        results: &mut dyn Subscription,
    ) {
        if !batch.is_empty() {
            let stored = until_ok("store a batch of results", Backoff::default(), || {
                self.store.insert_results(batch)
            })
            .await;
            self.metrics.results_stored.inc_by(stored);
            tracing::debug!(batch = batch.len(), stored, "results stored");
            batch.clear();
        }
        if let Some(message) = last.take() {
            if let Err(error) = results.ack(&message).await {
                tracing::warn!(%error, "cannot acknowledge stored results");
            }
        }
    }
}
