//! A maintenance window in the embedded shape, under paused time: the real scheduler marks the
//! checks due inside the window, a worker that answers every job (down while the site is
//! down), and the state machine of the live status as the cache updater and the alerter run
//! it. Inside the window the site goes down: nothing alerts and the status reads
//! `maintenance`; it stays down past the window: exactly one down alert, at its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use upwatch_bus::{Bus, InProcessBus, Topic};
use upwatch_cache::{LiveStatus, MemoryCache, StatusCache};
use upwatch_core::maintenance::{Maintenance, MaintenanceInput};
use upwatch_core::{
    CheckError, CheckJob, CheckResult, ErrorKind, Monitor, MonitorInput, MonitorStatus, Transition,
};
use upwatch_pipeline::scheduler::{MonitorSource, Scheduler};
use upwatch_telemetry::Metrics;

/// A job's monitor, due time, and whether its result was marked as in maintenance.
type Marked = (uuid::Uuid, DateTime<Utc>, bool);

/// Fixed monitors and windows.
struct Fixed(Vec<Monitor>, Vec<Maintenance>);

#[async_trait]
impl MonitorSource for Fixed {
    async fn version(&self) -> Result<i64, String> {
        Ok(1)
    }
    async fn monitors(&self) -> Result<Vec<Monitor>, String> {
        Ok(self.0.clone())
    }
    async fn maintenances(&self) -> Result<Vec<Maintenance>, String> {
        Ok(self.1.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn a_site_down_inside_a_window_pages_nobody_and_alerts_once_after_it() {
    let start = Utc::now();
    let site = Monitor::create(
        MonitorInput {
            url: Some("http://127.0.0.1:1/".into()),
            name: Some("shop".into()),
            interval_seconds: Some(10),
            timeout_seconds: Some(1),
            ..Default::default()
        },
        start,
    )
    .unwrap();
    let other = Monitor::create(
        MonitorInput {
            url: Some("http://127.0.0.1:2/".into()),
            name: Some("blog".into()),
            interval_seconds: Some(10),
            timeout_seconds: Some(1),
            ..Default::default()
        },
        start,
    )
    .unwrap();
    // The window: from 60 s to 180 s after the start, covering the shop only.
    let window_start = start + chrono::Duration::seconds(60);
    let window_end = start + chrono::Duration::seconds(180);
    let input: MaintenanceInput = serde_json::from_value(serde_json::json!({
        "title": "shop database upgrade",
        "monitor_ids": [site.id],
        "start": window_start.to_rfc3339(),
        "end": window_end.to_rfc3339(),
    }))
    .unwrap();
    let window = Maintenance::create(input, start).unwrap();

    let cache = Arc::new(MemoryCache::new());
    for m in [&site, &other] {
        cache
            .put(&LiveStatus::new(m, m.initial_state()))
            .await
            .unwrap();
    }
    let bus = Arc::new(InProcessBus::new(100_000));
    let mut jobs = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let scheduler = Scheduler {
        source: Arc::new(Fixed(vec![site.clone(), other.clone()], vec![window])),
        bus: bus.clone(),
        metrics: Metrics::new(),
        reload_every: Duration::from_secs(3600),
        changed: Arc::new(Notify::new()),
        first_checks_per_second: 100,
        watchdog: None,
        cert_expiry_alert_days: vec![14, 7, 1],
        regions: vec!["default".to_string()],
    };
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));

    // The worker, the cache updater and the alerter in one: every job is answered (down while
    // `down` holds), its result applied to the live status, and every transition kept.
    let down = Arc::new(AtomicBool::new(false));
    let alerts: Arc<Mutex<Vec<(uuid::Uuid, Transition)>>> = Arc::default();
    // The shop's uptime as the logger's rollups count it.
    let uptime: Arc<Mutex<upwatch_core::rollup::Rollup>> = Arc::default();
    let marked: Arc<Mutex<Vec<Marked>>> = Arc::default();
    let worker = {
        let (cache, down, alerts, marked, uptime) = (
            cache.clone(),
            down.clone(),
            alerts.clone(),
            marked.clone(),
            uptime.clone(),
        );
        let site_id = site.id;
        tokio::spawn(async move {
            while let Some(message) = jobs.recv().await.unwrap() {
                let job: CheckJob = message.decode().unwrap();
                let failing = job.monitor_id == site_id && down.load(Ordering::SeqCst);
                let outcome = if failing {
                    Err(CheckError::new(
                        ErrorKind::StatusMismatch,
                        "got HTTP 503, expected 2xx",
                    ))
                } else {
                    Ok(())
                };
                let code = if failing { 503 } else { 200 };
                let result = CheckResult::for_job(&job, job.due_at, 5, Some(code), outcome);
                marked
                    .lock()
                    .unwrap()
                    .push((job.monitor_id, job.due_at, result.maintenance));
                if job.monitor_id == site_id {
                    uptime.lock().unwrap().add(&result);
                }
                let mut entry = cache.get(job.monitor_id).await.unwrap().unwrap();
                if let Some(t) = entry.state.apply(&result) {
                    alerts.lock().unwrap().push((job.monitor_id, t));
                }
                cache.put(&entry).await.unwrap();
                jobs.ack(&message).await.unwrap();
            }
        })
    };

    let shown = |id: uuid::Uuid| {
        let cache = cache.clone();
        async move { cache.get(id).await.unwrap().unwrap().shown_state().status }
    };

    // Before the window: up, nothing alerted.
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(shown(site.id).await, MonitorStatus::Up);
    // Inside the window the shop goes down.
    tokio::time::sleep(Duration::from_secs(30)).await;
    down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert_eq!(shown(site.id).await, MonitorStatus::Maintenance);
    assert_eq!(
        shown(other.id).await,
        MonitorStatus::Up,
        "the blog is not covered"
    );
    assert!(
        alerts.lock().unwrap().is_empty(),
        "nothing alerts in the window"
    );
    let state = cache.get(site.id).await.unwrap().unwrap().state;
    assert_eq!(state.status, MonitorStatus::Down, "down underneath");

    // Uptime so far is unchanged: the failures inside the window count neither up nor down.
    {
        let counted = uptime.lock().unwrap();
        assert!(counted.up >= 6, "the checks before the window: {counted:?}");
        assert_eq!(counted.down, 0, "{counted:?}");
    }

    // Past the window, still down: exactly one down alert, at the first check after it.
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(shown(site.id).await, MonitorStatus::Down);
    let sent = alerts.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (id, Transition::WentDown { at }) = sent[0] else {
        panic!("a down alert: {sent:?}");
    };
    assert_eq!(id, site.id);
    assert!(
        at >= window_end && at < window_end + chrono::Duration::seconds(10),
        "{at}"
    );

    // Exactly the shop's checks due inside the window were marked.
    for (monitor_id, due_at, in_window) in marked.lock().unwrap().iter() {
        let inside = *monitor_id == site.id && *due_at >= window_start && *due_at < window_end;
        assert_eq!(*in_window, inside, "{monitor_id} due {due_at}");
    }
    assert!(marked.lock().unwrap().iter().filter(|(_, _, m)| *m).count() >= 10);

    shutdown.cancel();
    scheduler.await.unwrap();
    bus.close(Topic::jobs("default")).await;
    worker.await.unwrap();
}
