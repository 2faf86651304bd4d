//! The pruner against a real SQLite store: it walks every monitor in batches and deletes only
//! what outlived its retention.

use std::sync::Arc;
use std::time::Duration;
use upwatch_store::prelude::*;

use chrono::{TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use upwatch_core::rollup::Retention;
use upwatch_core::{CheckResult, Monitor, MonitorInput};
use upwatch_pipeline::pruner::Pruner;
use upwatch_store::{HistoryQuery, Store};
use upwatch_store_sql::SqliteStore;
use upwatch_telemetry::Metrics;

fn result(m: &Monitor, age: TimeDelta) -> CheckResult {
    CheckResult::simulated(m, Utc::now() - age, true, 12)
}

async fn history_len(store: &dyn Store, m: &Monitor) -> usize {
    let query = HistoryQuery {
        limit: 1_000,
        ..HistoryQuery::default()
    };
    store.history(m.id, &query).await.unwrap().len()
}

/// Five monitors, each with results 1 h, 3 days and 10 days old.
async fn seeded() -> (Arc<SqliteStore>, Vec<Monitor>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let mut monitors = Vec::new();
    for i in 0..5 {
        let m = Monitor::create(
            MonitorInput::for_url(format!("http://127.0.0.1:{}/", 2000 + i)),
            Utc::now(),
        )
        .unwrap();
        store.insert_monitor(&m).await.unwrap();
        let results: Vec<CheckResult> =
            [TimeDelta::hours(1), TimeDelta::days(3), TimeDelta::days(10)]
                .into_iter()
                .map(|age| result(&m, age))
                .collect();
        assert_eq!(store.insert_results(&results).await.unwrap(), 3);
        monitors.push(m);
    }
    (store, monitors, dir)
}

#[tokio::test]
async fn a_pass_prunes_every_monitor_in_small_batches_and_keeps_what_is_newer() {
    let (store, monitors, _dir) = seeded().await;
    let metrics = Metrics::new();
    let pruner = Pruner {
        store: store.clone(),
        metrics: metrics.clone(),
        retention: Retention::default(),
        every: Duration::from_secs(600),
        batch_monitors: 2,
    };
    let pruned = pruner.prune_once(Utc::now()).await.unwrap();
    // Per monitor, with the default retention: the 10-day-old result (raw results are kept
    // 7 days), and the minute rollups of the 3- and 10-day-old ones (minutes are kept 48 h);
    // their hours and days stay (90 days, forever).
    assert_eq!(pruned.raw, 5, "one raw result per monitor");
    assert_eq!(pruned.rollups, 10, "two minute rollups per monitor");
    for m in &monitors {
        assert_eq!(history_len(store.as_ref(), m).await, 2);
    }
    assert_eq!(
        pruner.prune_once(Utc::now()).await.unwrap(),
        upwatch_store::Pruned::default(),
        "a second pass finds nothing"
    );
    let rendered = metrics.render();
    assert!(
        rendered.contains("upwatch_history_pruned_total 15"),
        "{rendered}"
    );
}

#[tokio::test]
async fn keeping_everything_prunes_nothing() {
    let (store, monitors, _dir) = seeded().await;
    let pruner = Pruner {
        store: store.clone(),
        metrics: Metrics::new(),
        retention: Retention {
            raw: None,
            minute: None,
            hour: None,
            day: None,
        },
        every: Duration::from_secs(600),
        batch_monitors: 50,
    };
    assert_eq!(
        pruner.prune_once(Utc::now()).await.unwrap(),
        upwatch_store::Pruned::default()
    );
    assert_eq!(history_len(store.as_ref(), &monitors[0]).await, 3);
}

#[tokio::test]
async fn the_running_pruner_prunes_at_start_and_stops_on_shutdown() {
    let (store, monitors, _dir) = seeded().await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        Pruner {
            store: store.clone(),
            metrics: Metrics::new(),
            retention: Retention::default(),
            every: Duration::from_secs(3_600),
            batch_monitors: 3,
        }
        .run(shutdown.clone()),
    );
    upwatch_testkit::wait::until(
        "the first pass",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let mut done = true;
            for m in &monitors {
                done &= history_len(store.as_ref(), m).await == 2;
            }
            done.then_some(())
        },
    )
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops at once")
        .unwrap();
}
