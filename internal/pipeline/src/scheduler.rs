//! The scheduler role: keeps every enabled monitor on its fixed-rate schedule and publishes a
//! job for each due check.
//!
//! Monitors are reloaded when the store's monitor version changes (polled every
//! `reload_every`) or at once when `changed` is notified (the API does that in the embedded
//! mode), so creating, editing, pausing and deleting take effect at the next decision.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use upwatch_bus::{publish_json, Bus, BusError, Topic};
use upwatch_core::schedule::Schedule;
use upwatch_core::{CheckJob, Monitor};
use upwatch_store::Store;
use upwatch_telemetry::{Metrics, TopicLabel};
use uuid::Uuid;

use crate::retry::Backoff;

/// The most jobs published at once. Each monitor is due at most once per decision, so the
/// jobs of one batch have different keys and their order does not matter.
const PUBLISH_BATCH: usize = 1000;

/// Where the scheduler reads monitors from (the store, or a fixed list in tests).
#[async_trait]
pub trait MonitorSource: Send + Sync + 'static {
    /// A number that changes whenever the monitors change.
    async fn version(&self) -> Result<i64, String>;
    /// Every monitor, enabled or not.
    async fn monitors(&self) -> Result<Vec<Monitor>, String>;
}

/// The store as a [`MonitorSource`].
pub struct StoreMonitors(pub Arc<dyn Store>);

#[async_trait]
impl MonitorSource for StoreMonitors {
    async fn version(&self) -> Result<i64, String> {
        self.0.monitors_version().await.map_err(|e| error_chain(&e))
    }

    async fn monitors(&self) -> Result<Vec<Monitor>, String> {
        self.0.all_monitors().await.map_err(|e| error_chain(&e))
    }
}

/// An error with its sources, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The scheduler role.
#[derive(Clone)]
pub struct Scheduler {
    pub source: Arc<dyn MonitorSource>,
    pub bus: Arc<dyn Bus>,
    pub metrics: Arc<Metrics>,
    /// How often the monitor version is polled.
    pub reload_every: Duration,
    /// Notified after a monitor changed, to reload at once.
    pub changed: Arc<Notify>,
}

/// Maps wall-clock milliseconds onto tokio's clock, so that paused-time tests drive the
/// scheduler exactly and production timing is as precise as the timer wheel.
struct Clock {
    wall_ms: i64,
    instant: Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            wall_ms: Utc::now().timestamp_millis(),
            instant: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.wall_ms + self.instant.elapsed().as_millis() as i64
    }

    fn instant_at(&self, ms: i64) -> Instant {
        self.instant + Duration::from_millis((ms - self.wall_ms).max(0) as u64)
    }
}

struct Loaded {
    monitors: HashMap<Uuid, Monitor>,
    version: Option<i64>,
}

impl Scheduler {
    /// Runs until `shutdown` is cancelled or the jobs topic is closed.
    pub async fn run(self, shutdown: CancellationToken) {
        let clock = Clock::new();
        let mut schedule = Schedule::new();
        let mut loaded = Loaded {
            monitors: HashMap::new(),
            version: None,
        };
        let mut force = true;
        let mut next_reload = Instant::now();
        loop {
            if force || Instant::now() >= next_reload {
                self.reload(&mut schedule, &mut loaded, clock.now_ms(), force)
                    .await;
                next_reload = Instant::now() + self.reload_every;
                force = false;
            }
            let now = clock.now_ms();
            let mut jobs = Vec::new();
            loop {
                let due = schedule.pop_due(now);
                if let Some(due) = &due {
                    if let Some(monitor) = loaded.monitors.get(&due.monitor_id) {
                        self.metrics.schedule_missed.inc_by(due.missed);
                        let due_at =
                            DateTime::from_timestamp_millis(due.due_ms).unwrap_or_else(Utc::now);
                        jobs.push(CheckJob::for_monitor(monitor, due_at));
                    }
                }
                if jobs.len() >= PUBLISH_BATCH || (due.is_none() && !jobs.is_empty()) {
                    if !self.publish_all(&jobs, &shutdown).await {
                        return;
                    }
                    jobs.clear();
                }
                if due.is_none() {
                    break;
                }
            }
            let wake_at = schedule
                .next_due_ms()
                .map(|ms| clock.instant_at(ms))
                .map_or(next_reload, |at| at.min(next_reload));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.changed.notified() => force = true,
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn reload(&self, schedule: &mut Schedule, loaded: &mut Loaded, now_ms: i64, force: bool) {
        let version = match self.source.version().await {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "cannot read the monitor version; keeping the current schedule");
                return;
            }
        };
        if !force && loaded.version == Some(version) {
            return;
        }
        let monitors = match self.source.monitors().await {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, "cannot load monitors; keeping the current schedule");
                return;
            }
        };
        let mut next = HashMap::with_capacity(monitors.len());
        for monitor in monitors.into_iter().filter(|m| m.enabled) {
            schedule.upsert(
                monitor.id,
                i64::from(monitor.interval_seconds) * 1000,
                now_ms,
            );
            next.insert(monitor.id, monitor);
        }
        for id in loaded.monitors.keys() {
            if !next.contains_key(id) {
                schedule.remove(*id);
            }
        }
        tracing::debug!(monitors = next.len(), version, "schedule reloaded");
        self.metrics.monitors_scheduled.set(next.len() as i64);
        loaded.monitors = next;
        loaded.version = Some(version);
    }

    /// Publishes jobs of different monitors at once, so that a networked bus's round trips
    /// overlap instead of adding up. Returns false when the scheduler must stop.
    async fn publish_all(&self, jobs: &[CheckJob], shutdown: &CancellationToken) -> bool {
        let published =
            futures::future::join_all(jobs.iter().map(|job| self.publish(job, shutdown))).await;
        let ok = published.iter().filter(|p| **p).count();
        self.metrics.jobs_emitted.inc_by(ok as u64);
        ok == published.len()
    }

    /// Publishes a job, retrying while the bus is unavailable. Returns false when the
    /// scheduler must stop (shutdown, or the topic closed).
    async fn publish(&self, job: &CheckJob, shutdown: &CancellationToken) -> bool {
        let backoff = Backoff::default();
        let mut attempt = 0;
        loop {
            // The bus may hold the publish back (a full queue); shutdown must still get through.
            let published = tokio::select! {
                _ = shutdown.cancelled() => return false,
                published = publish_json(self.bus.as_ref(), Topic::Jobs, job.monitor_id, job) => published,
            };
            match published {
                Ok(()) => return true,
                Err(BusError::Closed(_)) => return false,
                Err(error) => {
                    attempt += 1;
                    self.metrics
                        .publish_failures
                        .get_or_create(&TopicLabel { topic: "jobs" })
                        .inc();
                    tracing::warn!(%error, attempt, monitor_id = %job.monitor_id, "cannot publish a job; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff.delay(attempt)) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use upwatch_bus::{InProcessBus, Subscription};
    use upwatch_core::MonitorInput;

    /// A fixed, editable list of monitors.
    #[derive(Default)]
    struct Fixed {
        monitors: Mutex<(i64, Vec<Monitor>)>,
    }

    impl Fixed {
        fn set(&self, monitors: Vec<Monitor>) {
            let mut guard = self.monitors.lock().unwrap();
            guard.0 += 1;
            guard.1 = monitors;
        }
    }

    #[async_trait]
    impl MonitorSource for Fixed {
        async fn version(&self) -> Result<i64, String> {
            Ok(self.monitors.lock().unwrap().0)
        }
        async fn monitors(&self) -> Result<Vec<Monitor>, String> {
            Ok(self.monitors.lock().unwrap().1.clone())
        }
    }

    fn monitor(interval: u32) -> Monitor {
        Monitor::create(
            MonitorInput {
                url: Some("http://127.0.0.1:1/".into()),
                interval_seconds: Some(interval),
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap()
    }

    struct Harness {
        source: Arc<Fixed>,
        changed: Arc<Notify>,
        jobs: Box<dyn Subscription>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    async fn start(monitors: Vec<Monitor>) -> Harness {
        let source = Arc::new(Fixed::default());
        source.set(monitors);
        let bus = Arc::new(InProcessBus::new(100_000));
        let jobs = bus.subscribe(Topic::Jobs, "test").await.unwrap();
        let changed = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let scheduler = Scheduler {
            source: source.clone(),
            bus,
            metrics: Metrics::new(),
            reload_every: Duration::from_secs(3600),
            changed: changed.clone(),
        };
        let task = tokio::spawn(scheduler.run(shutdown.clone()));
        Harness {
            source,
            changed,
            jobs,
            shutdown,
            task,
        }
    }

    /// Receives every job published until `until` (virtual time), with its receive time.
    async fn collect(jobs: &mut dyn Subscription, until: Instant) -> Vec<(Instant, CheckJob)> {
        let mut got = Vec::new();
        loop {
            tokio::select! {
                m = jobs.recv() => {
                    let m = m.unwrap().unwrap();
                    got.push((Instant::now(), m.decode::<CheckJob>().unwrap()));
                }
                _ = tokio::time::sleep_until(until) => return got,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn emits_each_monitor_at_its_fixed_rate_on_time() {
        let (a, b, c) = (monitor(1), monitor(5), monitor(60));
        let mut h = start(vec![a.clone(), b.clone(), c.clone()]).await;
        let start = Instant::now();
        let jobs = collect(h.jobs.as_mut(), start + Duration::from_secs(120)).await;
        for (m, want) in [(&a, 120usize), (&b, 24), (&c, 2)] {
            let mine: Vec<_> = jobs.iter().filter(|(_, j)| j.monitor_id == m.id).collect();
            assert!(
                mine.len().abs_diff(want) <= 1,
                "{} checks of a {} s monitor",
                mine.len(),
                m.interval_seconds
            );
            for pair in mine.windows(2) {
                let gap = pair[1].1.due_at - pair[0].1.due_at;
                assert_eq!(
                    gap.num_milliseconds(),
                    i64::from(m.interval_seconds) * 1000,
                    "no drift"
                );
                let emitted_gap = pair[1].0 - pair[0].0;
                assert_eq!(
                    emitted_gap,
                    Duration::from_secs(u64::from(m.interval_seconds))
                );
            }
        }
        h.shutdown.cancel();
        h.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn first_checks_are_spread_over_the_interval() {
        let monitors: Vec<_> = (0..600).map(|_| monitor(60)).collect();
        let mut h = start(monitors).await;
        let start = Instant::now();
        let jobs = collect(h.jobs.as_mut(), start + Duration::from_secs(60)).await;
        assert_eq!(jobs.len(), 600, "each monitor once in its first interval");
        let mut per_10s = [0u32; 6];
        for (at, _) in &jobs {
            per_10s[((*at - start).as_secs() / 10).min(5) as usize] += 1;
        }
        assert!(
            per_10s.iter().all(|n| (50..=150).contains(n)),
            "uneven: {per_10s:?}"
        );
        h.shutdown.cancel();
        h.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn edits_pauses_and_deletes_apply_at_the_next_decision() {
        let (a, b) = (monitor(1), monitor(1));
        let mut h = start(vec![a.clone(), b.clone()]).await;
        let t0 = Instant::now();
        let first = collect(h.jobs.as_mut(), t0 + Duration::from_secs(5)).await;
        assert!(first.iter().any(|(_, j)| j.monitor_id == a.id));
        // Pause a, delete b, add c: then only c is checked.
        let mut paused = a.clone();
        paused.enabled = false;
        let c = monitor(2);
        h.source.set(vec![paused, c.clone()]);
        h.changed.notify_one();
        tokio::task::yield_now().await;
        let t1 = Instant::now();
        let after = collect(h.jobs.as_mut(), t1 + Duration::from_secs(10)).await;
        assert!(
            after.iter().all(|(_, j)| j.monitor_id == c.id),
            "only c after the change"
        );
        assert!(after.len() >= 4, "c every 2 s: {}", after.len());
        // A new URL is used by the next job.
        let mut moved = c.clone();
        moved.url = "http://127.0.0.1:2/".into();
        h.source.set(vec![moved]);
        h.changed.notify_one();
        tokio::task::yield_now().await;
        let t2 = Instant::now();
        let later = collect(h.jobs.as_mut(), t2 + Duration::from_secs(4)).await;
        assert!(!later.is_empty());
        assert!(later
            .iter()
            .all(|(_, j)| j.request.url == "http://127.0.0.1:2/"));
        h.shutdown.cancel();
        h.task.await.unwrap();
    }
}
