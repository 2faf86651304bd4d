//! The scheduler role: keeps every enabled monitor on its fixed-rate schedule and publishes a
//! job for each due check.
//!
//! Monitors are reloaded when the store's monitor version changes (polled every
//! `reload_every`) or at once when `changed` is notified (the API does that in the embedded
//! mode), so creating, editing, pausing and deleting take effect at the next decision.
//!
//! A monitor that appears in a reload (created, or resumed) or whose URL or method changed is
//! checked at once, then falls onto its spread slots. When many appear in one reload (a bulk
//! creation, an import), their first checks are spread at `first_checks_per_second`, the
//! worker pool's capacity, and never later than their first slot. The monitors of the first
//! load keep their slots, so a restart or a failover does not cause a burst of checks.
//!
//! The scheduler also tells its [`Watchdog`] which monitors it expects results of, so that
//! the watchdog runs exactly where scheduling does (the leader, in the distributed mode).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use upwatch_bus::{publish_json, Bus, BusError, Topic};
use upwatch_core::calendar::Calendar;
use upwatch_core::maintenance::Maintenance;
use upwatch_core::observation::CheckType;
use upwatch_core::schedule::{first_slot, Schedule};
use upwatch_core::watchdog::{Expected, Heartbeat};
use upwatch_core::{CheckJob, Monitor};
use upwatch_store::{MaintenanceStore, MonitorReader};
use upwatch_telemetry::{Metrics, TopicLabel};
use uuid::Uuid;

use crate::clock::Clock;
use crate::retry::Backoff;
use crate::watchdog::{ExpectedSet, Watchdog};

/// The most jobs published at once. Each monitor is due at most once per decision, so the
/// jobs of one batch have different keys (or, one per region, different topics) and their
/// order does not matter.
const PUBLISH_BATCH: usize = 1000;

/// Where the scheduler reads monitors from (the store, or a fixed list in tests).
#[async_trait]
pub trait MonitorSource: Send + Sync + 'static {
    /// A number that changes whenever the monitors change.
    async fn version(&self) -> Result<i64, String>;
    /// Every monitor, enabled or not.
    async fn monitors(&self) -> Result<Vec<Monitor>, String>;
    /// Every maintenance window (the checks due in one are marked); none by default.
    async fn maintenances(&self) -> Result<Vec<Maintenance>, String> {
        Ok(Vec::new())
    }
}

/// What the watchdog should expect of the monitors loaded.
fn expected_set(loaded: &Loaded) -> ExpectedSet {
    loaded
        .monitors
        .values()
        .map(|m| {
            (
                m.id,
                Expected {
                    name: m.name.clone(),
                    interval_ms: i64::from(m.interval_seconds) * 1000,
                    since_ms: loaded.since_ms.get(&m.id).copied().unwrap_or_default(),
                    push: (m.check_type == CheckType::Push).then(|| Heartbeat {
                        grace_ms: i64::from(m.push_grace_seconds.unwrap_or_default()) * 1000,
                        url: m.url.clone(),
                        rules: m.rules(),
                        windows: loaded
                            .calendar
                            .windows()
                            .filter(|w| w.covers(m.id, m.group.as_deref()))
                            .cloned()
                            .collect(),
                    }),
                },
            )
        })
        .collect()
}

/// The store as a [`MonitorSource`]: its monitors and its maintenance windows.
pub struct StoreMonitors {
    pub monitors: Arc<dyn MonitorReader>,
    pub maintenances: Arc<dyn MaintenanceStore>,
}

#[async_trait]
impl MonitorSource for StoreMonitors {
    async fn version(&self) -> Result<i64, String> {
        self.monitors
            .monitors_version()
            .await
            .map_err(|e| error_chain(&e))
    }

    async fn monitors(&self) -> Result<Vec<Monitor>, String> {
        self.monitors
            .all_monitors()
            .await
            .map_err(|e| error_chain(&e))
    }

    async fn maintenances(&self) -> Result<Vec<Maintenance>, String> {
        self.maintenances
            .list_maintenances()
            .await
            .map_err(|e| error_chain(&e))
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
    /// How fast first checks of monitors that appear together are started: the worker
    /// pool's capacity in checks per second.
    pub first_checks_per_second: u32,
    /// The watchdog to run beside the scheduler, if any.
    pub watchdog: Option<Watchdog>,
    /// Days before certificate expiry at which monitors that set none alert
    /// (`UPWATCH_CERT_EXPIRY_ALERT_DAYS`).
    pub cert_expiry_alert_days: Vec<u32>,
    /// The regions that exist (`UPWATCH_REGIONS`): each due check is one job per region
    /// that checks the monitor, on that region's jobs topic.
    pub regions: Vec<String>,
}

struct Loaded {
    monitors: HashMap<Uuid, Monitor>,
    /// The maintenance windows: a check due in one of its monitor's is marked.
    calendar: Calendar,
    /// Since when results of each enabled monitor are expected.
    since_ms: HashMap<Uuid, i64>,
    version: Option<i64>,
}

impl Scheduler {
    /// Runs until `shutdown` is cancelled or the jobs topic is closed.
    pub async fn run(self, shutdown: CancellationToken) {
        let clock = Clock::new();
        let mut schedule = Schedule::new();
        let mut loaded = Loaded {
            monitors: HashMap::new(),
            calendar: Calendar::default(),
            since_ms: HashMap::new(),
            version: None,
        };
        let (expected, watching) = watch::channel(Arc::new(ExpectedSet::new()));
        let watchdog = self.watchdog.clone().map(|w| {
            let stop = shutdown.child_token();
            (tokio::spawn(w.run(watching, clock, stop.clone())), stop)
        });
        self.schedule_until_stopped(&clock, &mut schedule, &mut loaded, &expected, &shutdown)
            .await;
        if let Some((task, stop)) = watchdog {
            stop.cancel();
            let _ = task.await;
        }
    }

    async fn schedule_until_stopped(
        &self,
        clock: &Clock,
        schedule: &mut Schedule,
        loaded: &mut Loaded,
        expected: &watch::Sender<Arc<ExpectedSet>>,
        shutdown: &CancellationToken,
    ) {
        let mut force = true;
        let mut next_reload = Instant::now();
        loop {
            if force || Instant::now() >= next_reload {
                if self.reload(schedule, loaded, clock.now_ms(), force).await {
                    expected.send_replace(Arc::new(expected_set(loaded)));
                }
                next_reload = Instant::now() + self.reload_every;
                force = false;
            }
            let now = clock.now_ms();
            let mut jobs = Vec::new();
            loop {
                let due = schedule.pop_due(now);
                if let Some(due) = &due {
                    // Push monitors are not checked: they report in, and the watchdog records
                    // their missed heartbeats.
                    if let Some(monitor) = loaded
                        .monitors
                        .get(&due.monitor_id)
                        .filter(|m| m.check_type != CheckType::Push)
                    {
                        self.metrics.schedule_missed.inc_by(due.missed);
                        let due_at =
                            DateTime::from_timestamp_millis(due.due_ms).unwrap_or_else(Utc::now);
                        let mut job = CheckJob::for_monitor_with(
                            monitor,
                            due_at,
                            &self.cert_expiry_alert_days,
                        );
                        job.maintenance = loaded
                            .calendar
                            .covering(monitor.id, monitor.group.as_deref(), due_at)
                            .is_some();
                        let regions = monitor.regions_in(&self.regions);
                        let quorum = monitor.quorum_of(regions.len());
                        for region in regions {
                            let mut one = job.clone().in_region(region, quorum);
                            one.id = Uuid::now_v7();
                            jobs.push(one);
                        }
                    }
                }
                if jobs.len() >= PUBLISH_BATCH || (due.is_none() && !jobs.is_empty()) {
                    if !self.publish_all(&jobs, shutdown).await {
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

    /// Reloads the monitors when they changed (or when forced). Returns whether the set of
    /// monitors was replaced.
    async fn reload(
        &self,
        schedule: &mut Schedule,
        loaded: &mut Loaded,
        now_ms: i64,
        force: bool,
    ) -> bool {
        let version = match self.source.version().await {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "cannot read the monitor version; keeping the current schedule");
                return false;
            }
        };
        if !force && loaded.version == Some(version) {
            return false;
        }
        let monitors = match self.source.monitors().await {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, "cannot load monitors; keeping the current schedule");
                return false;
            }
        };
        let windows = match self.source.maintenances().await {
            Ok(w) => w,
            Err(error) => {
                tracing::warn!(%error, "cannot load maintenance windows; keeping the current schedule");
                return false;
            }
        };
        let first_load = loaded.version.is_none();
        let mut next = HashMap::with_capacity(monitors.len());
        let mut since = HashMap::with_capacity(monitors.len());
        let mut soon = Vec::new();
        for monitor in monitors.into_iter().filter(|m| m.enabled) {
            let interval_ms = i64::from(monitor.interval_seconds) * 1000;
            let before = loaded.monitors.get(&monitor.id);
            let wants_result_now = !first_load
                && before.is_none_or(|b| b.url != monitor.url || b.method != monitor.method);
            if wants_result_now {
                soon.push((monitor.id, interval_ms));
            } else {
                schedule.upsert(monitor.id, interval_ms, now_ms);
            }
            let expected_since = match before {
                Some(_) => loaded.since_ms.get(&monitor.id).copied().unwrap_or(now_ms),
                None => now_ms,
            };
            since.insert(monitor.id, expected_since);
            next.insert(monitor.id, monitor);
        }
        self.schedule_first_checks(schedule, &soon, now_ms);
        for id in loaded.monitors.keys() {
            if !next.contains_key(id) {
                schedule.remove(*id);
            }
        }
        tracing::debug!(
            monitors = next.len(),
            checked_now = soon.len(),
            version,
            "schedule reloaded"
        );
        self.metrics.monitors_scheduled.set(next.len() as i64);
        loaded.monitors = next;
        loaded.calendar = Calendar::new(windows);
        loaded.since_ms = since;
        loaded.version = Some(version);
        true
    }

    /// Gives each of `monitors` a check now, spread at the worker pool's capacity so that a
    /// bulk creation does not fire all at once; a monitor whose own first slot comes sooner
    /// than its turn keeps that slot.
    fn schedule_first_checks(
        &self,
        schedule: &mut Schedule,
        monitors: &[(Uuid, i64)],
        now_ms: i64,
    ) {
        let per_second = i64::from(self.first_checks_per_second.max(1));
        for (i, (id, interval_ms)) in monitors.iter().enumerate() {
            let at = now_ms + i as i64 * 1000 / per_second;
            if at < first_slot(*id, *interval_ms, now_ms) {
                schedule.upsert_soon(*id, *interval_ms, at);
            } else {
                schedule.upsert(*id, *interval_ms, now_ms);
            }
        }
    }

    /// Publishes jobs of different monitors (or regions) at once, so that a networked bus's round trips
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
                published = publish_json(self.bus.as_ref(), Topic::jobs(&job.region), job.monitor_id, job) => published,
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
        let jobs = bus.subscribe(Topic::jobs("default"), "test").await.unwrap();
        let changed = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let scheduler = Scheduler {
            source: source.clone(),
            bus,
            metrics: Metrics::new(),
            reload_every: Duration::from_secs(3600),
            changed: changed.clone(),
            first_checks_per_second: 100,
            watchdog: None,
            cert_expiry_alert_days: vec![14, 7, 1],
            regions: vec!["default".to_string()],
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

    /// Applies `monitors` as the new list and returns the jobs of the next `secs` seconds.
    async fn change_to(
        h: &mut Harness,
        monitors: Vec<Monitor>,
        secs: u64,
    ) -> Vec<(Instant, CheckJob)> {
        h.source.set(monitors);
        h.changed.notify_one();
        tokio::task::yield_now().await;
        collect(h.jobs.as_mut(), Instant::now() + Duration::from_secs(secs)).await
    }

    fn of(jobs: &[(Instant, CheckJob)], id: Uuid) -> Vec<(Instant, CheckJob)> {
        jobs.iter()
            .filter(|(_, j)| j.monitor_id == id)
            .cloned()
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn created_resumed_and_moved_monitors_are_checked_at_once_then_on_their_slots() {
        let old = monitor(300);
        let mut h = start(vec![old.clone()]).await;
        let _ = collect(h.jobs.as_mut(), Instant::now() + Duration::from_secs(1)).await;

        // Created: checked within a second, then on its grid, at least half an interval later.
        let new = monitor(300);
        let t0 = Instant::now();
        let jobs = change_to(&mut h, vec![old.clone(), new.clone()], 900).await;
        let mine = of(&jobs, new.id);
        assert!(
            mine[0].0 - t0 < Duration::from_secs(1),
            "first check at once"
        );
        let grid: Vec<i64> = mine[1..]
            .iter()
            .map(|(_, j)| j.due_at.timestamp_millis())
            .collect();
        assert!(grid.len() >= 2, "{} checks after the first", grid.len());
        let phase = upwatch_core::schedule::phase_ms(new.id, 300_000);
        assert!(
            grid.iter().all(|ms| ms.rem_euclid(300_000) == phase),
            "on its slots"
        );
        assert!(mine[1].0 - mine[0].0 >= Duration::from_secs(150));
        // The monitor that did not change keeps its slots: no extra check.
        assert!(of(&jobs, old.id).len() <= 4);

        // Resumed after a pause: checked at once again.
        let mut paused = new.clone();
        paused.enabled = false;
        let jobs = change_to(&mut h, vec![old.clone(), paused], 5).await;
        assert!(of(&jobs, new.id).is_empty());
        let t1 = Instant::now();
        let jobs = change_to(&mut h, vec![old.clone(), new.clone()], 2).await;
        let mine = of(&jobs, new.id);
        assert_eq!(mine.len(), 1);
        assert!(mine[0].0 - t1 < Duration::from_secs(1));

        // Its URL or method changed: checked at once. A rename is not.
        let mut renamed = new.clone();
        renamed.name = "renamed".into();
        let jobs = change_to(&mut h, vec![old.clone(), renamed.clone()], 2).await;
        assert!(
            of(&jobs, new.id).is_empty(),
            "a new name waits for the slot"
        );
        let mut moved = renamed.clone();
        moved.url = "http://127.0.0.1:2/".into();
        let t2 = Instant::now();
        let jobs = change_to(&mut h, vec![old.clone(), moved.clone()], 2).await;
        let mine = of(&jobs, new.id);
        assert_eq!(mine.len(), 1);
        assert!(mine[0].0 - t2 < Duration::from_secs(1));
        assert_eq!(mine[0].1.request.url, "http://127.0.0.1:2/");
        let mut head = moved.clone();
        head.method = "HEAD".into();
        let jobs = change_to(&mut h, vec![old, head], 2).await;
        assert_eq!(of(&jobs, new.id).len(), 1);
        h.shutdown.cancel();
        h.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_bulk_creation_spreads_its_first_checks_at_the_pool_capacity() {
        let mut h = start(vec![]).await;
        let _ = collect(h.jobs.as_mut(), Instant::now() + Duration::from_secs(1)).await;
        // 1,500 monitors at 300 s, 100 first checks per second: about 15 s, not one burst.
        let bulk: Vec<Monitor> = (0..1500).map(|_| monitor(300)).collect();
        let t0 = Instant::now();
        let jobs = change_to(&mut h, bulk.clone(), 20).await;
        assert_eq!(jobs.len(), 1500, "each monitor once");
        let mut per_second = [0u32; 20];
        for (at, _) in &jobs {
            per_second[(*at - t0).as_secs() as usize] += 1;
        }
        assert!(per_second[15..].iter().all(|n| *n == 0), "{per_second:?}");
        // Some monitors' own first slot comes before their turn and they keep it (about one
        // in twenty here), so a second may hold a few more than the rate.
        assert!(per_second.iter().all(|n| *n <= 125), "{per_second:?}");
        h.shutdown.cancel();
        h.task.await.unwrap();

        // Never over more than one interval: 1,500 monitors at 5 s all start within 5 s.
        let mut h = start(vec![]).await;
        let _ = collect(h.jobs.as_mut(), Instant::now() + Duration::from_secs(1)).await;
        let fast: Vec<Monitor> = (0..1500).map(|_| monitor(5)).collect();
        let t0 = Instant::now();
        let jobs = change_to(&mut h, fast.clone(), 5).await;
        let mut first = std::collections::HashSet::new();
        for (at, j) in &jobs {
            assert!(*at - t0 <= Duration::from_secs(5));
            first.insert(j.monitor_id);
        }
        assert_eq!(first.len(), 1500, "every monitor within one interval");
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
