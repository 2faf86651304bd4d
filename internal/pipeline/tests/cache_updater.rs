//! The cache updater against a real SQLite store, with the in-memory cache and with a real
//! Redis (env `UPWATCH_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`, under a key prefix of
//! its own): a missing entry is rebuilt from the store, and a deleted monitor's late result
//! brings nothing back.

use std::sync::Arc;
use upwatch_store::prelude::*;

use chrono::{TimeDelta, Utc};
use upwatch_cache::{MemoryCache, StatusCache};
use upwatch_cache_redis::RedisCache;
use upwatch_core::{CheckResult, Monitor, MonitorInput, MonitorStatus};
use upwatch_pipeline::cache_updater::{apply, apply_batch};
use upwatch_store::Store;
use upwatch_store_sql::SqliteStore;

async fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    (Arc::new(SqliteStore::connect(&url).await.unwrap()), dir)
}

/// The caches to run each case against: the embedded one and Redis.
async fn caches() -> Vec<(&'static str, Arc<dyn StatusCache>)> {
    let url = std::env::var("UPWATCH_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("upwatch-test:{}:", uuid::Uuid::new_v4());
    let redis = RedisCache::connect(&url, &prefix).await.unwrap();
    vec![
        ("memory", Arc::new(MemoryCache::new())),
        ("redis", Arc::new(redis)),
    ]
}

async fn monitor(store: &dyn Store, port: u16) -> Monitor {
    let m = Monitor::create(
        MonitorInput::for_url(format!("http://127.0.0.1:{port}/")),
        Utc::now() - TimeDelta::minutes(10),
    )
    .unwrap();
    store.insert_monitor(&m).await.unwrap();
    m
}

#[tokio::test]
async fn a_result_rebuilds_a_missing_entry_from_the_store() {
    for (name, cache) in caches().await {
        let (store, _dir) = store().await;
        let m = monitor(store.as_ref(), 3001).await;
        assert_eq!(cache.get(m.id).await.unwrap(), None, "{name}");

        let up = CheckResult::simulated(&m, Utc::now() - TimeDelta::seconds(5), true, 21);
        apply(cache.as_ref(), store.as_ref(), &up).await.unwrap();
        let entry = cache.get(m.id).await.unwrap().expect("rebuilt");
        assert_eq!(entry.name, m.name, "{name}");
        assert_eq!(entry.url, m.url, "{name}");
        assert_eq!(entry.state.status, MonitorStatus::Up, "{name}");
        assert_eq!(entry.state.last_checked, Some(up.checked_at), "{name}");
        assert_eq!(entry.state.response_time_ms, Some(21), "{name}");

        // From then on the entry is updated as usual.
        let down = CheckResult::simulated(&m, Utc::now(), false, 5);
        apply(cache.as_ref(), store.as_ref(), &down).await.unwrap();
        let entry = cache.get(m.id).await.unwrap().unwrap();
        assert_eq!(entry.state.last_checked, Some(down.checked_at), "{name}");
        assert_eq!(entry.state.consecutive_failures, 1, "{name}");
        cache.remove(m.id).await.unwrap();
    }
}

#[tokio::test]
async fn a_rebuilt_entry_starts_from_the_alerters_state_and_never_goes_back() {
    for (name, cache) in caches().await {
        let (store, _dir) = store().await;
        let m = monitor(store.as_ref(), 3002).await;
        let newer = CheckResult::simulated(&m, Utc::now(), false, 9);
        store.apply_result(&newer).await.unwrap();

        // An older result, redelivered after the cache lost its entry.
        let older = CheckResult::simulated(&m, newer.checked_at - TimeDelta::seconds(60), true, 3);
        apply(cache.as_ref(), store.as_ref(), &older).await.unwrap();
        let entry = cache.get(m.id).await.unwrap().expect("rebuilt");
        assert_eq!(
            entry.state,
            store.get_state(m.id).await.unwrap().unwrap(),
            "{name}"
        );
        assert_eq!(entry.state.last_checked, Some(newer.checked_at), "{name}");
        cache.remove(m.id).await.unwrap();
    }
}

#[tokio::test]
async fn a_late_result_of_a_deleted_monitor_is_not_cached() {
    for (name, cache) in caches().await {
        let (store, _dir) = store().await;
        let m = monitor(store.as_ref(), 3003).await;
        assert!(store.delete_monitor(m.id).await.unwrap());

        let late = CheckResult::simulated(&m, Utc::now(), true, 7);
        apply(cache.as_ref(), store.as_ref(), &late).await.unwrap();
        assert_eq!(cache.get(m.id).await.unwrap(), None, "{name}");
        assert!(cache.list().await.unwrap().is_empty(), "{name}");
    }
}

/// A batch (a backlog after Redis was away, say) leaves every entry as applying its results
/// one by one would: results in order per monitor, redelivered ones ignored, a missing entry
/// rebuilt, a deleted monitor's result dropped.
#[tokio::test]
async fn a_batch_lands_as_its_results_one_by_one() {
    for (name, cache) in caches().await {
        let (store, _dir) = store().await;
        let a = monitor(store.as_ref(), 3004).await;
        let b = monitor(store.as_ref(), 3005).await;
        let gone = monitor(store.as_ref(), 3006).await;
        assert!(store.delete_monitor(gone.id).await.unwrap());
        let t0 = Utc::now() - TimeDelta::seconds(60);
        let at = |s: i64| t0 + TimeDelta::seconds(s);
        let batch = vec![
            CheckResult::simulated(&a, at(1), true, 1),
            CheckResult::simulated(&b, at(1), false, 2),
            CheckResult::simulated(&gone, at(1), true, 3),
            CheckResult::simulated(&a, at(2), false, 4),
            CheckResult::simulated(&b, at(2), false, 5),
            // Redelivered: older than what the batch already applied.
            CheckResult::simulated(&a, at(1), true, 6),
            CheckResult::simulated(&a, at(3), false, 7),
        ];
        let one_by_one = MemoryCache::new();
        for result in &batch {
            apply(&one_by_one, store.as_ref(), result).await.unwrap();
        }
        apply_batch(cache.as_ref(), store.as_ref(), &batch)
            .await
            .unwrap();
        for m in [&a, &b] {
            let got = cache.get(m.id).await.unwrap().expect("an entry");
            let want = one_by_one.get(m.id).await.unwrap().unwrap();
            assert_eq!(got, want, "{name}");
        }
        let a_entry = cache.get(a.id).await.unwrap().unwrap();
        assert_eq!(a_entry.state.last_checked, Some(at(3)), "{name}");
        assert_eq!(a_entry.state.consecutive_failures, 2, "{name}");
        assert_eq!(a_entry.state.response_time_ms, Some(7), "{name}");
        assert_eq!(cache.get(gone.id).await.unwrap(), None, "{name}");
        // Applying the same batch again changes nothing.
        apply_batch(cache.as_ref(), store.as_ref(), &batch)
            .await
            .unwrap();
        assert_eq!(cache.get(a.id).await.unwrap().unwrap(), a_entry, "{name}");
        for m in [&a, &b] {
            cache.remove(m.id).await.unwrap();
        }
    }
}
