//! The watchdog in the embedded shape, under paused time: the real scheduler on the in-process
//! bus, the in-memory cache, and a worker pool (here a consumer that answers every job with an
//! up result, as the cache updater writes it) that is made to stop consuming. The watchdog must
//! notice within three intervals, show `stale`, count it, report not-ready, say so once, and
//! clear all of it when checks resume, with one message for that too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use upwatch_bus::{Bus, InProcessBus, Topic};
use upwatch_cache::{CacheError, CacheResult, LiveStatus, MemoryCache, StaleMark, StatusCache};
use upwatch_core::watchdog::Notice;
use upwatch_core::{CheckJob, CheckResult, Monitor, MonitorInput, MonitorStatus};
use upwatch_pipeline::scheduler::{MonitorSource, Scheduler};
use upwatch_pipeline::watchdog::{Announce, Watchdog};
use upwatch_telemetry::Metrics;
use uuid::Uuid;

/// A fixed list of monitors.
struct Fixed(Vec<Monitor>);

#[async_trait]
impl MonitorSource for Fixed {
    async fn version(&self) -> Result<i64, String> {
        Ok(1)
    }
    async fn monitors(&self) -> Result<Vec<Monitor>, String> {
        Ok(self.0.clone())
    }
}

/// Keeps every notice announced.
#[derive(Default)]
struct Heard(Mutex<Vec<Notice>>);

#[async_trait]
impl Announce for Heard {
    async fn announce(&self, notice: Notice) {
        self.0.lock().unwrap().push(notice);
    }
}

impl Heard {
    fn all(&self) -> Vec<Notice> {
        self.0.lock().unwrap().clone()
    }
}

fn monitor(name: &str, interval: u32) -> Monitor {
    Monitor::create(
        MonitorInput {
            url: Some("http://127.0.0.1:1/".into()),
            name: Some(name.into()),
            interval_seconds: Some(interval),
            timeout_seconds: Some(1),
            ..Default::default()
        },
        Utc::now(),
    )
    .unwrap()
}

/// The scheduler of `monitors` with its watchdog, stale after 3 intervals, judging every second.
fn watched_scheduler<C: StatusCache>(
    monitors: Vec<Monitor>,
    bus: &Arc<InProcessBus>,
    metrics: &Arc<Metrics>,
    cache: &Arc<C>,
    announce: Arc<Heard>,
) -> Scheduler {
    Scheduler {
        source: Arc::new(Fixed(monitors)),
        bus: bus.clone(),
        metrics: metrics.clone(),
        reload_every: Duration::from_secs(3600),
        changed: Arc::new(Notify::new()),
        first_checks_per_second: 100,
        watchdog: Some(Watchdog {
            cache: cache.clone(),
            announce,
            metrics: metrics.clone(),
            stale_after_intervals: 3,
            every: Duration::from_secs(1),
            lag_of: None,
            lag_every: Duration::from_secs(5),
            lag_regions: vec!["default".to_string()],
            results: bus.clone(),
        }),
        cert_expiry_alert_days: vec![14, 7, 1],
        regions: vec!["default".to_string()],
    }
}

/// Advances virtual time a second at a time until `done` holds, for at most `within`.
/// Returns how long it took.
async fn wait_until(within: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() <= within,
            "not done within {within:?} of virtual time"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    start.elapsed()
}

/// A memory cache holding `monitors` in their first state, as the API caches new monitors.
async fn cache_of(monitors: &[Monitor]) -> Arc<MemoryCache> {
    let cache = Arc::new(MemoryCache::new());
    for m in monitors {
        cache
            .put(&LiveStatus::new(m, m.initial_state()))
            .await
            .unwrap();
    }
    cache
}

async fn stale_count(cache: &MemoryCache) -> usize {
    cache
        .list()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.shown_state().status == MonitorStatus::Stale)
        .count()
}

/// A watched scheduler of `monitors` on `cache`, with a worker pool and cache updater in one:
/// it answers every job with an up result while `consuming` (a stopped one leaves the job
/// waiting, unanswered, until checks resume), rebuilding a missing entry as the cache updater
/// does.
struct Checked<C: StatusCache> {
    cache: Arc<C>,
    bus: Arc<InProcessBus>,
    metrics: Arc<Metrics>,
    heard: Arc<Heard>,
    shutdown: CancellationToken,
    scheduler: tokio::task::JoinHandle<()>,
    worker: tokio::task::JoinHandle<()>,
    consuming: Arc<AtomicBool>,
    resumed: Arc<Notify>,
}

impl<C: StatusCache> Checked<C> {
    async fn start(monitors: &[Monitor], cache: Arc<C>) -> Self {
        let bus = Arc::new(InProcessBus::new(100_000));
        let mut jobs = bus
            .subscribe(Topic::jobs("default"), "workers")
            .await
            .unwrap();
        let metrics = Metrics::new();
        let heard = Arc::new(Heard::default());
        let shutdown = CancellationToken::new();
        let scheduler = watched_scheduler(monitors.to_vec(), &bus, &metrics, &cache, heard.clone());
        let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
        let consuming = Arc::new(AtomicBool::new(true));
        let resumed = Arc::new(Notify::new());
        let worker = {
            let (cache, consuming, resumed) = (cache.clone(), consuming.clone(), resumed.clone());
            let monitors = monitors.to_vec();
            tokio::spawn(async move {
                loop {
                    let Some(message) = jobs.recv().await.unwrap() else {
                        return;
                    };
                    while !consuming.load(Ordering::SeqCst) {
                        resumed.notified().await;
                    }
                    let job: CheckJob = message.decode().unwrap();
                    let result = CheckResult::for_job(&job, job.due_at, 5, Some(200), Ok(()));
                    let mut entry = match cache.get(job.monitor_id).await.unwrap() {
                        Some(entry) => entry,
                        None => {
                            let m = monitors.iter().find(|m| m.id == job.monitor_id).unwrap();
                            LiveStatus::new(m, m.initial_state())
                        }
                    };
                    if entry.state.accepts(&result) {
                        entry.state.apply(&result);
                    }
                    cache.put(&entry).await.unwrap();
                    jobs.ack(&message).await.unwrap();
                }
            })
        };
        Checked {
            cache,
            bus,
            metrics,
            heard,
            shutdown,
            scheduler,
            worker,
            consuming,
            resumed,
        }
    }

    /// Stops or resumes the checks.
    fn consume(&self, on: bool) {
        self.consuming.store(on, Ordering::SeqCst);
        if on {
            self.resumed.notify_one();
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.scheduler.await.unwrap();
        self.bus.close(Topic::jobs("default")).await;
        self.worker.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn monitors_nobody_checks_go_stale_loudly_and_come_back() {
    let monitors: Vec<Monitor> = (0..5).map(|i| monitor(&format!("site-{i}"), 10)).collect();
    let checked = Checked::start(&monitors, cache_of(&monitors).await).await;
    let (cache, metrics, heard) = (&checked.cache, &checked.metrics, &checked.heard);

    // Checked as usual: nothing is stale however long it runs.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(stale_count(cache).await, 0);
    assert_eq!(metrics.monitors_stale.get(), 0);
    assert!(metrics.health.problems().is_empty());
    assert!(heard.all().is_empty());
    for m in &monitors {
        let entry = cache.get(m.id).await.unwrap().unwrap();
        assert_eq!(entry.shown_state().status, MonitorStatus::Up);
    }

    // The workers stop consuming: within three intervals (30 s) of each monitor's last result
    // and a tick, every monitor is stale, counted, and the process is not ready, saying why.
    checked.consume(false);
    let last_checked = cache
        .get(monitors[0].id)
        .await
        .unwrap()
        .unwrap()
        .state
        .last_checked;
    let took = wait_until(Duration::from_secs(32), async || {
        stale_count(cache).await == monitors.len()
    })
    .await;
    assert!(
        took >= Duration::from_secs(19),
        "stale only after 3 intervals: {took:?}"
    );
    assert_eq!(metrics.monitors_stale.get(), 5);
    let problems = metrics.health.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("5 enabled monitors have had no result for 3 intervals"),
        "{problems:?}"
    );
    let entry = cache.get(monitors[0].id).await.unwrap().unwrap();
    assert_eq!(
        entry.state.status,
        MonitorStatus::Up,
        "no down: the machine is untouched"
    );
    assert_eq!(
        entry.state.last_checked, last_checked,
        "the time of its last result"
    );
    assert!(entry.stale_since.is_some());

    // One message for the burst, however long it lasts. The monitors' last results were up
    // to an interval apart, so they went stale over up to 10 s: the message (5 s after the
    // first) names those stale by then, and the later ones join the burst silently.
    wait_until(Duration::from_secs(6), async || !heard.all().is_empty()).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let notices = heard.all();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let Notice::Unchecked {
        count,
        names,
        intervals,
    } = &notices[0]
    else {
        panic!("{notices:?}")
    };
    assert_eq!(*intervals, 3);
    assert!((1..=5).contains(count), "{count}");
    assert_eq!(names.len(), *count);
    assert!(names.iter().all(|n| n.starts_with("site-")), "{names:?}");

    // Checks resume: marks, count and problem clear, and one all-clear goes out.
    checked.consume(true);
    wait_until(Duration::from_secs(12), async || {
        stale_count(cache).await == 0
            && metrics.monitors_stale.get() == 0
            && metrics.health.problems().is_empty()
    })
    .await;
    wait_until(Duration::from_secs(2), async || heard.all().len() == 2).await;
    assert!(matches!(
        heard.all()[1],
        Notice::CheckedAgain { count: 5, .. }
    ));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(heard.all().len(), 2, "nothing more once all is well");
    assert_eq!(stale_count(cache).await, 0);

    checked.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_paused_or_new_monitor_is_not_stale_for_time_it_was_not_expected() {
    // A monitor resumed after a long pause, whose last result is old, counts from when it
    // was resumed: the scheduler's first load is that moment here.
    let mut old = monitor("old", 10);
    old.enabled = true;
    let cache = Arc::new(MemoryCache::new());
    let mut state = old.initial_state();
    let long_ago = Utc::now() - chrono::TimeDelta::days(3);
    state.apply(&CheckResult::simulated(&old, long_ago, true, 5));
    cache.put(&LiveStatus::new(&old, state)).await.unwrap();
    let bus = Arc::new(InProcessBus::new(1000));
    let _jobs = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let scheduler = watched_scheduler(
        vec![old.clone()],
        &bus,
        &metrics,
        &cache,
        Arc::new(Heard::default()),
    );
    let task = tokio::spawn(scheduler.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(
        stale_count(&cache).await,
        0,
        "not yet three intervals since expected"
    );
    wait_until(Duration::from_secs(3), async || {
        stale_count(&cache).await == 1
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert!(
        metrics.health.problems().is_empty(),
        "a stopped watchdog reports nothing"
    );
}

/// Marks the cache lost (a Redis flushed or restarted empty) are written again within the
/// watchdog's resend period, with the time each monitor was first found stale, and nobody is
/// told twice.
#[tokio::test(start_paused = true)]
async fn stale_marks_the_cache_lost_come_back_with_their_first_time() {
    let monitors: Vec<Monitor> = (0..3).map(|i| monitor(&format!("lost-{i}"), 10)).collect();
    let cache = cache_of(&monitors).await;
    let bus = Arc::new(InProcessBus::new(100_000));
    // Workers that never answer: every monitor goes stale.
    let _jobs = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    let metrics = Metrics::new();
    let heard = Arc::new(Heard::default());
    let shutdown = CancellationToken::new();
    let scheduler = watched_scheduler(monitors.clone(), &bus, &metrics, &cache, heard.clone());
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));

    wait_until(Duration::from_secs(60), async || {
        stale_count(&cache).await == monitors.len()
    })
    .await;
    let first: Vec<_> = {
        let mut since = Vec::new();
        for m in &monitors {
            since.push(cache.get(m.id).await.unwrap().unwrap().stale_since);
        }
        since
    };
    assert!(first.iter().all(Option::is_some), "{first:?}");
    // The burst is announced once it settles.
    wait_until(Duration::from_secs(10), async || heard.all().len() == 1).await;

    // The cache loses every mark.
    let ids: Vec<_> = monitors.iter().map(|m| m.id).collect();
    cache.set_stale(&[], &ids).await.unwrap();
    assert_eq!(stale_count(&cache).await, 0);

    // Within the resend period (30 judgements, a second apart) they are back, unchanged.
    let took = wait_until(Duration::from_secs(31), async || {
        stale_count(&cache).await == monitors.len()
    })
    .await;
    assert!(took <= Duration::from_secs(31), "{took:?}");
    for (m, since) in monitors.iter().zip(&first) {
        assert_eq!(&cache.get(m.id).await.unwrap().unwrap().stale_since, since);
    }
    assert_eq!(metrics.monitors_stale.get(), 3);
    assert_eq!(heard.all().len(), 1, "no second message: {:?}", heard.all());

    shutdown.cancel();
    scheduler.await.unwrap();
}

/// A push monitor under paused time: no job is ever emitted for it; without pushes, the
/// watchdog publishes one `missed_heartbeat` result per deadline (interval plus grace after the
/// newest result), and a push moves the next deadline; it is never stale.
#[tokio::test(start_paused = true)]
async fn a_push_monitor_misses_heartbeats_at_its_deadlines_only() {
    let push = Monitor::create(
        MonitorInput {
            check_type: Some(upwatch_core::observation::CheckType::Push),
            name: Some("backup".into()),
            interval_seconds: Some(10),
            push_grace_seconds: Some(5),
            ..Default::default()
        },
        Utc::now(),
    )
    .unwrap();
    let cache = cache_of(std::slice::from_ref(&push)).await;
    let bus = Arc::new(InProcessBus::new(100_000));
    let mut jobs = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    let mut results = bus
        .subscribe(Topic::Results, "cache-updater")
        .await
        .unwrap();
    let metrics = Metrics::new();
    let heard = Arc::new(Heard::default());
    let shutdown = CancellationToken::new();
    let scheduler = watched_scheduler(vec![push.clone()], &bus, &metrics, &cache, heard.clone());
    let started = Instant::now();
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));

    // The cache updater: each result reaches the cache, as in the real pipeline.
    let missed = next_result(&mut results, &cache).await;
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(15)..Duration::from_secs(17)).contains(&waited),
        "the first deadline is the interval plus the grace: {waited:?}"
    );
    assert_eq!(missed.monitor_id, push.id);
    let error = missed.error.clone().unwrap();
    assert_eq!(error.kind, upwatch_core::ErrorKind::MissedHeartbeat);
    assert_eq!(
        error.message,
        "no push within 15s (the interval plus the grace)"
    );
    assert_eq!(
        missed.url, push.url,
        "the result names the monitor's push URL"
    );

    // Still silent: the next one comes 15 s after the first deadline, not every second.
    let second = next_result(&mut results, &cache).await;
    assert_eq!(
        second.checked_at - missed.checked_at,
        chrono::Duration::seconds(15)
    );

    // A push (what the API publishes) 3 s later moves the next deadline to 15 s after it.
    // The watchdog's clock is virtual: the second deadline was a moment ago on it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pushed_at = second.checked_at + chrono::Duration::seconds(3);
    let up = CheckResult::heartbeat(
        push.id,
        &push.name,
        &push.url,
        push.rules(),
        pushed_at,
        Ok(()),
    );
    upwatch_bus::publish_json(bus.as_ref(), Topic::Results, push.id, &up)
        .await
        .unwrap();
    let seen = next_result(&mut results, &cache).await;
    assert_eq!(seen.id, up.id);
    let third = next_result(&mut results, &cache).await;
    assert_eq!(
        third.error.map(|e| e.kind),
        Some(upwatch_core::ErrorKind::MissedHeartbeat)
    );
    assert_eq!(
        third.checked_at - pushed_at,
        chrono::Duration::seconds(15),
        "the deadline follows the push"
    );

    // No job was ever emitted for it, and it never showed stale.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), jobs.recv())
            .await
            .is_err(),
        "the scheduler emits no jobs for push monitors"
    );
    assert_eq!(stale_count(&cache).await, 0);
    assert_eq!(metrics.monitors_stale.get(), 0);
    shutdown.cancel();
    scheduler.await.unwrap();
}

/// The next result on `results`, applied to the cache as the cache updater does.
async fn next_result(
    results: &mut Box<dyn upwatch_bus::Subscription>,
    cache: &MemoryCache,
) -> CheckResult {
    let message = results.recv().await.unwrap().unwrap();
    let result: CheckResult = message.decode().unwrap();
    let mut entry = cache.get(result.monitor_id).await.unwrap().unwrap();
    entry.state.apply(&result);
    cache.put(&entry).await.unwrap();
    results.ack(&message).await.unwrap();
    result
}

/// A cache that comes back empty (Redis restarted without its data) while the cache updater
/// still works through the results it missed is not taken for monitors nobody checks: each
/// monitor is given a whole stale period from when its entry was found missing. A monitor
/// whose entry stays missing because nobody checks it is still found stale after that period.
#[tokio::test(start_paused = true)]
async fn a_cache_that_lost_its_entries_gets_a_stale_period_to_catch_up() {
    let monitors: Vec<Monitor> = (0..5).map(|i| monitor(&format!("site-{i}"), 10)).collect();
    let checked = Checked::start(&monitors, cache_of(&monitors).await).await;
    let (cache, metrics, heard) = (&checked.cache, &checked.metrics, &checked.heard);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(metrics.monitors_stale.get(), 0);

    // The cache loses every entry while the updater is 20 s behind: the watchdog judges the
    // empty cache every second meanwhile, and says nothing.
    let ids: Vec<_> = monitors.iter().map(|m| m.id).collect();
    checked.consume(false);
    for id in &ids {
        cache.remove(*id).await.unwrap();
    }
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(metrics.monitors_stale.get(), 0, "stale while catching up");
        assert!(metrics.health.problems().is_empty());
    }
    checked.consume(true);
    wait_until(Duration::from_secs(15), async || {
        cache.get_many(&ids).await.unwrap().len() == ids.len()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(metrics.monitors_stale.get(), 0);
    assert!(heard.all().is_empty(), "{:?}", heard.all());

    // Lost again, and this time nobody checks: stale one stale period (30 s) after the loss.
    checked.consume(false);
    for id in &ids {
        cache.remove(*id).await.unwrap();
    }
    let took = wait_until(Duration::from_secs(33), async || {
        metrics.monitors_stale.get() == 5
    })
    .await;
    assert!(took >= Duration::from_secs(29), "stale too early: {took:?}");
    wait_until(Duration::from_secs(7), async || heard.all().len() == 1).await;
    assert!(matches!(heard.all()[0], Notice::Unchecked { count: 5, .. }));

    checked.stop().await;
}

/// A memory cache whose check times cannot be read while `away` is set, as the watchdog finds
/// a Redis that is away.
struct Away {
    inner: MemoryCache,
    away: AtomicBool,
}

#[async_trait]
impl StatusCache for Away {
    async fn ping(&self) -> CacheResult<()> {
        self.inner.ping().await
    }
    async fn get(&self, id: Uuid) -> CacheResult<Option<LiveStatus>> {
        self.inner.get(id).await
    }
    async fn list(&self) -> CacheResult<Vec<LiveStatus>> {
        self.inner.list().await
    }
    async fn put(&self, entry: &LiveStatus) -> CacheResult<bool> {
        self.inner.put(entry).await
    }
    async fn remove(&self, id: Uuid) -> CacheResult<()> {
        self.inner.remove(id).await
    }
    async fn check_times(&self) -> CacheResult<HashMap<Uuid, Option<DateTime<Utc>>>> {
        if self.away.load(Ordering::SeqCst) {
            return Err(CacheError::Unavailable(
                "redis at 127.0.0.1:1: connection refused".into(),
            ));
        }
        self.inner.check_times().await
    }
    async fn set_stale(&self, marks: &[StaleMark], cleared: &[Uuid]) -> CacheResult<()> {
        self.inner.set_stale(marks, cleared).await
    }
}

/// A cache that was away longer than a stale period and comes back behind (the cache updater
/// still works through the results it missed) is not taken for monitors nobody checks: the
/// silence counts from when the watchdog could read the cache again.
#[tokio::test(start_paused = true)]
async fn a_cache_back_from_an_outage_gets_a_stale_period_to_catch_up() {
    let monitors: Vec<Monitor> = (0..5).map(|i| monitor(&format!("site-{i}"), 10)).collect();
    let cache = Arc::new(Away {
        inner: MemoryCache::new(),
        away: AtomicBool::new(false),
    });
    for m in &monitors {
        cache
            .put(&LiveStatus::new(m, m.initial_state()))
            .await
            .unwrap();
    }
    let checked = Checked::start(&monitors, cache).await;
    let (cache, metrics, heard) = (&checked.cache, &checked.metrics, &checked.heard);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(metrics.monitors_stale.get(), 0);

    // Redis is away for 40 s, longer than a stale period (30 s); its updates wait.
    checked.consume(false);
    cache.away.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert!(
        !metrics.health.problems().is_empty(),
        "the watchdog says it cannot see"
    );
    // Back, 40 s behind; the updater catches up 20 s later. Nothing is stale meanwhile.
    cache.away.store(false, Ordering::SeqCst);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(metrics.monitors_stale.get(), 0, "stale while catching up");
    }
    checked.consume(true);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(metrics.monitors_stale.get(), 0);
    assert!(
        metrics.health.problems().is_empty(),
        "{:?}",
        metrics.health.problems()
    );
    assert!(heard.all().is_empty(), "{:?}", heard.all());

    checked.stop().await;
}
