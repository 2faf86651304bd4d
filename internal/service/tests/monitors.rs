//! The monitor use cases on a real SQLite store and the memory cache: what the store and the
//! live-status cache hold after each, and that the scheduler is told.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use upwatch_cache::{MemoryCache, StatusCache};
use upwatch_core::{Monitor, MonitorInput, MonitorStatus};
use upwatch_service::MonitorService;
use upwatch_store::prelude::*;
use upwatch_store_sql::SqliteStore;

async fn told(changed: &Notify) -> bool {
    tokio::time::timeout(Duration::from_secs(1), changed.notified())
        .await
        .is_ok()
}

#[tokio::test]
async fn pause_resume_and_delete_keep_store_and_cache_agreeing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("service.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let cache = Arc::new(MemoryCache::new());
    let changed = Arc::new(Notify::new());
    let service = MonitorService::new(store.clone(), cache.clone(), changed.clone());

    let monitor =
        Monitor::create(MonitorInput::for_url("http://127.0.0.1:9/"), Utc::now()).unwrap();
    service
        .create(std::slice::from_ref(&monitor))
        .await
        .unwrap();
    assert!(told(&changed).await);
    let live = cache
        .get(monitor.id)
        .await
        .unwrap()
        .expect("cached at once");
    assert_eq!(live.state.status, MonitorStatus::Pending);

    let paused = service
        .set_enabled(monitor.id, false)
        .await
        .unwrap()
        .expect("found");
    assert!(!paused.enabled);
    assert!(told(&changed).await);
    assert!(
        !store
            .get_monitor(monitor.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    assert_eq!(
        store.get_state(monitor.id).await.unwrap().unwrap().status,
        MonitorStatus::Paused
    );
    assert_eq!(
        cache.get(monitor.id).await.unwrap().unwrap().state.status,
        MonitorStatus::Paused
    );

    let resumed = service
        .set_enabled(monitor.id, true)
        .await
        .unwrap()
        .expect("found");
    assert!(resumed.enabled);
    assert_eq!(
        cache.get(monitor.id).await.unwrap().unwrap().state.status,
        MonitorStatus::Pending
    );

    assert!(service.delete(monitor.id).await.unwrap());
    assert!(told(&changed).await);
    assert!(store.get_monitor(monitor.id).await.unwrap().is_none());
    assert!(cache.get(monitor.id).await.unwrap().is_none());
    assert!(!service.delete(monitor.id).await.unwrap());
    assert!(service
        .set_enabled(monitor.id, true)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn monitors_name_only_known_regions_and_changes_are_seen_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("service.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let service = MonitorService::new(
        store.clone(),
        Arc::new(MemoryCache::new()),
        Arc::new(Notify::new()),
    );
    assert_eq!(service.regions(), ["default"]);
    let service = service.with_regions(vec!["a".into(), "b".into()]);
    assert_eq!(service.regions(), ["a", "b"]);

    let input = |regions: Option<Vec<String>>, quorum: Option<u32>| MonitorInput {
        regions,
        quorum,
        ..MonitorInput::for_url("http://127.0.0.1:9/")
    };
    let unknown = Monitor::create(input(Some(vec!["c".into()]), None), Utc::now()).unwrap();
    assert_eq!(
        service.check_regions(&unknown).unwrap_err().field,
        "regions"
    );
    let too_many = Monitor::create(input(None, Some(3)), Utc::now()).unwrap();
    assert_eq!(
        service.check_regions(&too_many).unwrap_err().field,
        "quorum"
    );

    let monitor = Monitor::create(input(Some(vec!["b".into()]), None), Utc::now()).unwrap();
    service.check_regions(&monitor).unwrap();
    service
        .create(std::slice::from_ref(&monitor))
        .await
        .unwrap();
    let checked = service.checked_by(monitor.id).await.unwrap().unwrap();
    assert_eq!(checked.regions, ["b"]);
    assert_eq!(
        checked.interval_ms,
        u64::from(monitor.interval_seconds) * 1000
    );
    // An update through the service is seen at once, not after the memo's time.
    let everywhere = Monitor {
        regions: Vec::new(),
        ..monitor.clone()
    };
    assert!(service.update(&monitor, &everywhere).await.unwrap());
    let checked = service.checked_by(monitor.id).await.unwrap().unwrap();
    assert_eq!(checked.regions, ["a", "b"]);
    assert!(service.delete(monitor.id).await.unwrap());
    assert!(service.checked_by(monitor.id).await.unwrap().is_none());
}
