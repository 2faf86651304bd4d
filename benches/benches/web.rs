//! The dashboard's server-side render with 1,000 monitors: what `GET /` costs the server,
//! without the network. Run with `cargo bench -p upwatch-bench --bench web`.
//!
//! The data: 1,000 monitors (500 of them public, 10 groups) with 60 stored checks each, in
//! SQLite and the memory cache, as `internal/web/tests/web.rs` seeds them. One render reads
//! the monitors and their live status and renders the HTML; the first render reads every
//! monitor's recent checks and uptime, later ones reuse them, as the live view does.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use upwatch_cache::{LiveStatus, MemoryCache, StatusCache};
use upwatch_core::{CheckResult, Monitor, MonitorInput, MonitorState};
use upwatch_store::Store;
use upwatch_store_sql::SqliteStore;
use upwatch_web::data::Data;
use upwatch_web::html;
use upwatch_web::live::Live;

const MONITORS: u32 = 1_000;

async fn seeded(dir: &tempfile::TempDir) -> Data {
    let url = format!("sqlite://{}", dir.path().join("web.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let cache: Arc<dyn StatusCache> = Arc::new(MemoryCache::new());
    let start = Utc::now() - TimeDelta::minutes(60);
    let mut monitors = Vec::new();
    let mut results = Vec::new();
    for i in 0..MONITORS {
        let monitor = Monitor::create(
            MonitorInput {
                name: Some(format!("Site {i:04}")),
                public: Some(i % 2 == 0),
                group: Some(format!("Team {}", i % 10)),
                ..MonitorInput::for_url(format!("https://site-{i}.example.test/"))
            },
            Utc::now(),
        )
        .unwrap();
        let mut state = MonitorState::new(monitor.id);
        for k in 0..60u32 {
            let result = CheckResult::simulated(
                &monitor,
                start + TimeDelta::minutes(i64::from(k)),
                !(i + k).is_multiple_of(97),
                20 + (k * 7 + i) % 180,
            );
            state.apply(&result);
            results.push(result);
        }
        cache.put(&LiveStatus::new(&monitor, state)).await.unwrap();
        monitors.push(monitor);
    }
    store.insert_monitors(&monitors).await.unwrap();
    for chunk in results.chunks(5_000) {
        store.insert_results(chunk).await.unwrap();
    }
    let live = Live::new(store.clone(), cache.clone());
    let stats = Arc::new(upwatch_service::Stats::new(
        store.clone(),
        Default::default(),
    ));
    Data::new(store, cache, stats, live)
}

fn dashboard(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = rt.block_on(seeded(&dir));
    let render = || async {
        let rows = data.dashboard().await.unwrap();
        html::dashboard(&rows, 0).into_string()
    };
    let first = rt.block_on(render());
    assert_eq!(first.matches("<tr id=").count(), MONITORS as usize);
    c.bench_function("dashboard render, 1,000 monitors", |b| {
        b.iter(|| black_box(rt.block_on(render()).len()))
    });
}

criterion_group!(benches, dashboard);
criterion_main!(benches);
