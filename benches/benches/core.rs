//! Criterion micro-benchmarks of the hot pure code: the scheduler queue, the state machine and
//! result encoding. Run with `cargo bench -p upwatch-bench`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use upwatch_core::check::{
    CheckError, CheckJob, CheckRequest, CheckResult, CheckStatus, ErrorKind, StateRules,
};
use upwatch_core::schedule::Schedule;
use upwatch_core::{ExpectedStatus, MonitorState};
use uuid::Uuid;

fn result(monitor_id: Uuid, second: i64, up: bool) -> CheckResult {
    let at = DateTime::<Utc>::from_timestamp(1_700_000_000 + second, 0).unwrap();
    CheckResult {
        region: "default".to_string(),
        v: 1,
        id: Uuid::now_v7(),
        job_id: Uuid::now_v7(),
        monitor_id,
        monitor_name: "My Website".into(),
        url: "https://example.com/health".into(),
        due_at: at,
        checked_at: at,
        response_time_ms: 42,
        status_code: Some(if up { 200 } else { 503 }),
        status: if up {
            CheckStatus::Up
        } else {
            CheckStatus::Down
        },
        error: (!up)
            .then(|| CheckError::new(ErrorKind::StatusMismatch, "got HTTP 503, expected 200")),
        rules: StateRules::default(),
        details: Default::default(),
        cert_expiry_alert_days: Vec::new(),
        maintenance: false,
    }
}

fn schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule");
    const N: usize = 100_000;
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("upsert 100k monitors", |b| {
        let ids: Vec<Uuid> = (0..N).map(|_| Uuid::now_v7()).collect();
        b.iter(|| {
            let mut s = Schedule::new();
            for id in &ids {
                s.upsert(*id, 60_000, 0);
            }
            black_box(s.len())
        })
    });
    group.bench_function("pop 100k due slots", |b| {
        b.iter_batched(
            || {
                let mut s = Schedule::new();
                for _ in 0..N {
                    s.upsert(Uuid::now_v7(), 60_000, 0);
                }
                s
            },
            |mut s| {
                let mut n = 0;
                while s.pop_due(59_999).is_some() {
                    n += 1;
                }
                black_box(n)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn state_machine(c: &mut Criterion) {
    let id = Uuid::now_v7();
    let results: Vec<CheckResult> = (0..1000).map(|i| result(id, i, i % 7 != 0)).collect();
    let mut group = c.benchmark_group("state");
    group.throughput(Throughput::Elements(results.len() as u64));
    group.bench_function("apply 1000 results", |b| {
        b.iter(|| {
            let mut state = MonitorState::new(id);
            let mut transitions = 0;
            for r in &results {
                transitions += usize::from(state.apply(r).is_some());
            }
            black_box(transitions)
        })
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let r = result(Uuid::now_v7(), 0, false);
    let job = CheckJob {
        region: "default".to_string(),
        v: 1,
        id: Uuid::now_v7(),
        monitor_id: r.monitor_id,
        monitor_name: r.monitor_name.clone(),
        due_at: r.due_at,
        interval_ms: 60_000,
        rules: StateRules::default(),
        request: CheckRequest {
            proxy: None,
            url: r.url.clone(),
            method: "GET".into(),
            headers: BTreeMap::new(),
            body: None,
            timeout_ms: 10_000,
            expected_status_codes: ExpectedStatus::default(),
            keyword: None,
            follow_redirects: true,
            check_type: Default::default(),
            conditions: Vec::new(),
            dns: None,
            packets: None,
            tls_skip_verify: false,
            starttls: None,
        },
        cert_expiry_alert_days: vec![14, 7, 1],
        maintenance: false,
    };
    let encoded = serde_json::to_vec(&r).unwrap();
    let mut group = c.benchmark_group("encoding");
    group.bench_function("encode result", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&r)).unwrap()))
    });
    group.bench_function("decode result", |b| {
        b.iter(|| black_box(serde_json::from_slice::<CheckResult>(black_box(&encoded)).unwrap()))
    });
    group.bench_function("encode job", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&job)).unwrap()))
    });
    let encoded_job = serde_json::to_vec(&job).unwrap();
    group.bench_function("decode job", |b| {
        b.iter(|| black_box(serde_json::from_slice::<CheckJob>(black_box(&encoded_job)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, schedule, state_machine, encoding);
criterion_main!(benches);
