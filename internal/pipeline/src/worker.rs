//! The worker pool role: takes jobs, performs checks with at most `concurrency` in flight, and
//! publishes each result.
//!
//! A job waits in the bus while every worker is busy (that wait shows as schedule lag and in
//! the queue wait histogram); nothing is dropped silently. Two jobs are skipped on purpose,
//! and counted: a job picked up more than one interval after its due time (the next check is
//! already due), and a job whose monitor still has a check in flight here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use upwatch_bus::{publish_json, Bus, BusError, Message, Subscription, Topic};
use upwatch_checker::connectivity::Connectivity;
use upwatch_checker::Checker;
use upwatch_core::{CheckJob, CheckResult};
use upwatch_telemetry::{Metrics, TopicLabel};
use uuid::Uuid;

use crate::retry::Backoff;

/// The worker pool role.
pub struct WorkerPool {
    pub bus: Arc<dyn Bus>,
    pub checker: Checker,
    pub metrics: Arc<Metrics>,
    /// Checks in flight at most.
    pub concurrency: usize,
    /// How long in-flight checks may take to finish after shutdown.
    pub drain_timeout: Duration,
    /// The worker's own network, when it watches it: a failed check made while no
    /// connectivity target answers is inconclusive.
    pub connectivity: Option<Arc<Connectivity>>,
}

impl WorkerPool {
    /// Runs until `shutdown` is cancelled or the jobs subscription ends, then lets in-flight
    /// checks finish (bounded by the drain timeout) and publishes their results.
    pub async fn run(self, mut jobs: Box<dyn Subscription>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let in_flight: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
        let tracker = TaskTracker::new();
        // Each finished check sends its job back to be acknowledged, and whether its result
        // was published.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Message, bool)>();
        let mut recv_failures = 0u32;
        let mut published = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some((done, ok)) = done_rx.recv() => {
                    published += u64::from(ok);
                    ack(jobs.as_mut(), &done).await;
                }
                received = jobs.recv(), if permits.available_permits() > 0 => match received {
                    Ok(Some(message)) => {
                        recv_failures = 0;
                        self.start(message, &permits, &in_flight, &tracker, &done_tx, jobs.as_mut()).await;
                    }
                    Ok(None) => break,
                    Err(error) => {
                        recv_failures += 1;
                        let wait = Backoff::default().delay(recv_failures);
                        tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "cannot receive jobs; retrying");
                        tokio::time::sleep(wait).await;
                    }
                },
            }
        }
        tracker.close();
        let running = tracker.len();
        if running > 0 {
            tracing::info!(running, "waiting for in-flight checks to finish");
        }
        if tokio::time::timeout(self.drain_timeout, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                abandoned = tracker.len(),
                "drain timeout reached; abandoning checks still running"
            );
        }
        drop(done_tx);
        while let Ok((done, ok)) = done_rx.try_recv() {
            published += u64::from(ok);
            ack(jobs.as_mut(), &done).await;
        }
        // Read by the load benchmark to check that every result produced was stored.
        tracing::info!(results_published = published, "worker pool stopped");
    }

    async fn start(
        &self,
        message: Message,
        permits: &Arc<Semaphore>,
        in_flight: &Arc<Mutex<HashSet<Uuid>>>,
        tracker: &TaskTracker,
        done_tx: &mpsc::UnboundedSender<(Message, bool)>,
        jobs: &mut dyn Subscription,
    ) {
        let job: CheckJob = match message.decode() {
            Ok(job) => job,
            Err(error) => {
                tracing::error!(%error, key = %message.key, "dropping a job that cannot be decoded");
                ack(jobs, &message).await;
                return;
            }
        };
        let now = Utc::now();
        if job.is_stale(now) {
            self.metrics.jobs_stale.inc();
            tracing::debug!(monitor_id = %job.monitor_id, due_at = %job.due_at, "skipping a stale job");
            ack(jobs, &message).await;
            return;
        }
        if !in_flight
            .lock()
            .expect("in-flight lock")
            .insert(job.monitor_id)
        {
            self.metrics.jobs_overlapping.inc();
            tracing::debug!(monitor_id = %job.monitor_id, "previous check still running; skipping");
            ack(jobs, &message).await;
            return;
        }
        let permit = permits
            .clone()
            .try_acquire_owned()
            .expect("a permit is free when receiving");
        self.metrics
            .queue_wait
            .observe((now - job.due_at).num_milliseconds().max(0) as f64 / 1000.0);
        self.metrics.checks_in_flight.inc();
        let checker = self.checker.clone();
        let bus = self.bus.clone();
        let metrics = self.metrics.clone();
        let in_flight = in_flight.clone();
        let done_tx = done_tx.clone();
        let connectivity = self.connectivity.clone();
        tracker.spawn(async move {
            let mut result = checker.check(&job).await;
            if let Some(connectivity) = &connectivity {
                result = connectivity.judge(result).await;
            }
            metrics.record_check(&result);
            let ok = publish_result(bus.as_ref(), &metrics, &result).await;
            metrics.checks_in_flight.dec();
            in_flight
                .lock()
                .expect("in-flight lock")
                .remove(&job.monitor_id);
            drop(permit);
            let _ = done_tx.send((message, ok));
        });
    }
}

async fn ack(jobs: &mut dyn Subscription, message: &Message) {
    if let Err(error) = jobs.ack(message).await {
        tracing::warn!(%error, "cannot acknowledge a job");
    }
}

/// Publishes a result, retrying while the bus is unavailable: a result is never dropped
/// while the process runs. Returns false when the results topic closed first.
async fn publish_result(bus: &dyn Bus, metrics: &Metrics, result: &CheckResult) -> bool {
    let backoff = Backoff::default();
    let mut attempt = 0;
    loop {
        match publish_json(bus, Topic::Results, result.monitor_id, result).await {
            Ok(()) => return true,
            Err(BusError::Closed(_)) => {
                tracing::error!(result_id = %result.id, "results topic closed before a result was published");
                return false;
            }
            Err(error) => {
                attempt += 1;
                metrics
                    .publish_failures
                    .get_or_create(&TopicLabel { topic: "results" })
                    .inc();
                tracing::warn!(%error, attempt, result_id = %result.id, "cannot publish a result; retrying");
                tokio::time::sleep(backoff.delay(attempt)).await;
            }
        }
    }
}
