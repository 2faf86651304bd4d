//! The worker pool against a real loopback site and the in-process bus.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use upwatch_bus::{publish_json, Bus, InProcessBus, Subscription, Topic};
use upwatch_checker::{Checker, CheckerConfig};
use upwatch_core::{CheckJob, CheckResult, CheckStatus, Monitor, MonitorInput};
use upwatch_pipeline::worker::WorkerPool;
use upwatch_telemetry::Metrics;
use upwatch_testkit::target::TargetServer;

struct Pool {
    bus: InProcessBus,
    results: Box<dyn Subscription>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(concurrency: usize) -> Pool {
    let bus = InProcessBus::new(1000);
    let jobs = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    let results = bus.subscribe(Topic::Results, "results").await.unwrap();
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let pool = WorkerPool {
        bus: Arc::new(bus.clone()),
        checker: Checker::new(CheckerConfig::default()).unwrap(),
        metrics: metrics.clone(),
        concurrency,
        drain_timeout: Duration::from_secs(10),
        connectivity: None,
    };
    let task = tokio::spawn(pool.run(jobs, shutdown.clone()));
    Pool {
        bus,
        results,
        metrics,
        shutdown,
        task,
    }
}

fn monitor(url: String) -> Monitor {
    Monitor::create(
        MonitorInput {
            url: Some(url),
            interval_seconds: Some(60),
            ..Default::default()
        },
        Utc::now(),
    )
    .unwrap()
}

async fn next_result(results: &mut dyn Subscription) -> CheckResult {
    let message = tokio::time::timeout(Duration::from_secs(20), results.recv())
        .await
        .expect("a result within the deadline")
        .unwrap()
        .unwrap();
    message.decode().unwrap()
}

#[tokio::test]
async fn checks_jobs_and_publishes_results() {
    let target = TargetServer::start().await;
    let mut pool = start(4).await;
    let m = monitor(target.url("/ok"));
    let job = CheckJob::for_monitor(&m, Utc::now());
    publish_json(&pool.bus, Topic::jobs("default"), m.id, &job)
        .await
        .unwrap();
    let result = next_result(pool.results.as_mut()).await;
    assert_eq!(
        (result.monitor_id, result.job_id, result.status),
        (m.id, job.id, CheckStatus::Up)
    );
    pool.shutdown.cancel();
    pool.task.await.unwrap();
}

#[tokio::test]
async fn stale_and_overlapping_jobs_are_skipped_and_counted() {
    let target = TargetServer::start().await;
    let mut pool = start(4).await;
    // Due two intervals ago: the next check is already due, so this one is skipped.
    let stale = monitor(target.url("/ok"));
    let old = CheckJob::for_monitor(&stale, Utc::now() - chrono::Duration::seconds(120));
    publish_json(&pool.bus, Topic::jobs("default"), stale.id, &old)
        .await
        .unwrap();
    // Two jobs of one monitor while its first check is still running: the second is skipped.
    let slow = monitor(target.url("/slow/500"));
    for _ in 0..2 {
        let job = CheckJob::for_monitor(&slow, Utc::now());
        publish_json(&pool.bus, Topic::jobs("default"), slow.id, &job)
            .await
            .unwrap();
    }
    let result = next_result(pool.results.as_mut()).await;
    assert_eq!(result.monitor_id, slow.id);
    pool.shutdown.cancel();
    pool.task.await.unwrap();
    pool.bus.close(Topic::Results).await;
    assert!(
        pool.results.recv().await.unwrap().is_none(),
        "exactly one result"
    );
    assert_eq!(pool.metrics.jobs_stale.get(), 1);
    assert_eq!(pool.metrics.jobs_overlapping.get(), 1);
    assert_eq!(target.hits("/ok"), 0);
    assert_eq!(target.hits("/slow/500"), 1);
}

#[tokio::test]
async fn concurrency_is_bounded_and_nothing_is_dropped() {
    let target = TargetServer::start().await;
    let mut pool = start(3).await;
    let monitors: Vec<Monitor> = (0..12).map(|_| monitor(target.url("/slow/200"))).collect();
    let started = std::time::Instant::now();
    for m in &monitors {
        publish_json(
            &pool.bus,
            Topic::jobs("default"),
            m.id,
            &CheckJob::for_monitor(m, Utc::now()),
        )
        .await
        .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..monitors.len() {
        seen.insert(next_result(pool.results.as_mut()).await.monitor_id);
    }
    assert_eq!(seen.len(), monitors.len(), "every job produced a result");
    // 12 checks of 200 ms, 3 at a time, take at least 4 rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    pool.shutdown.cancel();
    pool.task.await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_checks_finish_and_publish() {
    let target = TargetServer::start().await;
    let mut pool = start(8).await;
    let m = monitor(target.url("/slow/700"));
    publish_json(
        &pool.bus,
        Topic::jobs("default"),
        m.id,
        &CheckJob::for_monitor(&m, Utc::now()),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while target.hits("/slow/700") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the check never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.shutdown.cancel();
    pool.task.await.unwrap();
    let result = next_result(pool.results.as_mut()).await;
    assert_eq!(
        result.status,
        CheckStatus::Up,
        "the in-flight check finished after shutdown"
    );
}

/// The in-process bus, with a results topic that refuses every publish while `down` is set,
/// as a broker that went away does.
struct BrokerGone {
    inner: InProcessBus,
    down: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl Bus for BrokerGone {
    async fn publish(
        &self,
        topic: Topic,
        key: uuid::Uuid,
        payload: bytes::Bytes,
    ) -> upwatch_bus::BusResult<()> {
        if topic == Topic::Results && self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(upwatch_bus::BusError::Unavailable(
                "the broker is gone".into(),
            ));
        }
        self.inner.publish(topic, key, payload).await
    }

    async fn subscribe(
        &self,
        topic: Topic,
        group: &str,
    ) -> upwatch_bus::BusResult<Box<dyn Subscription>> {
        self.inner.subscribe(topic, group).await
    }

    async fn close(&self, topic: Topic) {
        self.inner.close(topic).await
    }
}

/// Back-pressure, not memory growth: while results cannot be published, the pool holds at
/// most one result per worker and takes no more jobs; when the broker is back, every result
/// goes out, each once.
#[tokio::test]
async fn a_pool_whose_results_cannot_be_published_stops_taking_jobs() {
    let target = TargetServer::start().await;
    let bus = InProcessBus::new(1000);
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let jobs = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    let mut results = bus.subscribe(Topic::Results, "results").await.unwrap();
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let pool = WorkerPool {
        bus: Arc::new(BrokerGone {
            inner: bus.clone(),
            down: down.clone(),
        }),
        checker: Checker::new(CheckerConfig::default()).unwrap(),
        metrics: metrics.clone(),
        concurrency: 4,
        drain_timeout: Duration::from_secs(10),
        connectivity: None,
    };
    let task = tokio::spawn(pool.run(jobs, shutdown.clone()));
    let monitors: Vec<Monitor> = (0..40).map(|_| monitor(target.url("/ok"))).collect();
    for m in &monitors {
        publish_json(
            &bus,
            Topic::jobs("default"),
            m.id,
            &CheckJob::for_monitor(m, Utc::now()),
        )
        .await
        .unwrap();
    }
    let failures = || {
        metrics
            .publish_failures
            .get_or_create(&upwatch_telemetry::TopicLabel { topic: "results" })
            .get()
    };
    // Each held result has been refused three times at least: the pool had every chance to
    // take more jobs meanwhile.
    upwatch_testkit::wait::until(
        "the results to be refused again and again",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async { (failures() >= 12).then_some(()) },
    )
    .await;
    assert_eq!(target.hits("/ok"), 4, "one check per worker, no more");
    assert_eq!(
        bus.depth(Topic::jobs("default"), "workers"),
        36,
        "the other jobs wait in the bus"
    );
    assert_eq!(metrics.checks_in_flight.get(), 4);

    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..monitors.len() {
        seen.insert(next_result(results.as_mut()).await.monitor_id);
    }
    assert_eq!(seen.len(), monitors.len(), "every monitor's result arrived");
    shutdown.cancel();
    task.await.unwrap();
    bus.close(Topic::Results).await;
    assert!(
        results.recv().await.unwrap().is_none(),
        "and each exactly once"
    );
}
