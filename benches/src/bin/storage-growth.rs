//! The storage-growth benchmark: how many bytes history costs in each store.
//!
//! It simulates `--monitors` monitors checked every 60 s for `--days` days, writing the
//! results through the real `Store::insert_results` in batches as the logger does (so the
//! rollups are maintained as in production) and pruning once per simulated day with the
//! default retention, as the pruner does. Then it reports, per store:
//! - bytes on disk per raw result, the table's clustered key or primary-key index included;
//! - the steady-state footprint per monitor: every table and index of history (raw results,
//!   rollups, incidents), divided by the number of monitors;
//! - how many rollup rows, and how long, reading 30-day uptime takes after 7 days of history
//!   and after all of it, to show that it does not grow with the history.
//!
//! `cargo run --release -p upwatch-bench --bin storage-growth -- --write BENCHMARKS.md`
//! (add `--postgres postgres://postgres@127.0.0.1:5432/postgres` for PostgreSQL too).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use sqlx::{Connection, Executor};
use upwatch_core::rollup::{uptime_over, Retention};
use upwatch_core::{CheckResult, Monitor, MonitorInput};
use upwatch_store::{read_rollups, Store};
use upwatch_store_sql::{PostgresStore, SqliteStore};
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(about = "Bytes on disk per raw result and per monitor, with the default retention")]
struct Args {
    /// Monitors to simulate.
    #[arg(long, default_value_t = 10)]
    monitors: usize,
    /// Days of history to simulate (the hour rollups' retention is 90 days).
    #[arg(long, default_value_t = 91)]
    days: i64,
    /// Also measure PostgreSQL: a server URL; a fresh database is created and dropped.
    #[arg(long)]
    postgres: Option<String>,
    /// Write the table into this Markdown file, between the storage-growth markers.
    #[arg(long)]
    write: Option<PathBuf>,
}

const INTERVAL_S: i64 = 60;
const BATCH: usize = 1_000;
const BEGIN: &str = "<!-- storage-growth:begin -->";
const END: &str = "<!-- storage-growth:end -->";

/// What one store measured.
struct Report {
    store: &'static str,
    raw_rows: u64,
    raw_bytes: u64,
    history_bytes: u64,
    by_relation: Vec<(String, u64)>,
    uptime_30d_early: (usize, Duration),
    uptime_30d_late: (usize, Duration),
    elapsed: Duration,
}

/// A deterministic generator of plausible response times: mostly 40 to 400 ms with a long
/// tail, and an outage now and then.
struct Traffic(u64);

impl Traffic {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn result(&mut self, m: &Monitor, at: DateTime<Utc>) -> CheckResult {
        let roll = self.next() % 10_000;
        let down = roll < 30; // 0.3% of checks fail
        let ms = if down {
            10_000
        } else {
            // A product of uniforms gives a skewed, long-tailed spread around ~120 ms.
            let a = 40 + self.next() % 120;
            let b = 100 + self.next() % 200;
            (a * b / 100) as u32
        };
        let at = at + TimeDelta::milliseconds((self.next() % 50) as i64);
        CheckResult::simulated(m, at, !down, ms)
    }
}

/// Times reading a monitor's 30-day uptime from rollups: rows read and the median time.
async fn time_uptime_30d(
    store: &dyn Store,
    m: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, Duration)> {
    // A time inside an hour, so that the range has minute and hour edges as well as days.
    let now = now - TimeDelta::minutes(137);
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..51 {
        let started = Instant::now();
        let (from, to, read) = read_rollups(
            store,
            &[m],
            now - TimeDelta::days(30),
            now,
            now,
            &Retention::default(),
        )
        .await?;
        let as_tuples: Vec<_> = read
            .iter()
            .map(|r| (r.start, r.resolution, r.rollup.clone()))
            .collect();
        std::hint::black_box(uptime_over(&as_tuples, from, to));
        times.push(started.elapsed());
        rows = read.len();
    }
    times.sort();
    Ok((rows, times[times.len() / 2]))
}

/// Feeds `days` of results for every monitor, pruning daily; returns the uptime read timings
/// after 7 days and at the end.
///
/// With `vacuum`, a PostgreSQL connection, dead row versions are vacuumed every simulated hour
/// as autovacuum does on a live server (where an hour is many autovacuum naps; here it passes in
/// a few milliseconds).
async fn simulate(
    store: &dyn Store,
    args: &Args,
    label: &str,
    mut vacuum: Option<&mut sqlx::PgConnection>,
) -> anyhow::Result<((usize, Duration), (usize, Duration))> {
    let start = Utc::now() - TimeDelta::days(args.days);
    let start = start - TimeDelta::seconds(start.timestamp().rem_euclid(86_400));
    let mut monitors = Vec::new();
    for i in 0..args.monitors {
        let m = Monitor::create(
            MonitorInput::for_url(format!("http://127.0.0.1:{}/site", 10_000 + i)),
            start,
        )?;
        store.insert_monitor(&m).await?;
        monitors.push(m);
    }
    let ids: Vec<Uuid> = monitors.iter().map(|m| m.id).collect();
    let mut traffic = Traffic(0x2545_f491_4f6c_dd1d);
    let mut batch = Vec::with_capacity(BATCH);
    let mut early = None;
    let steps = args.days * 86_400 / INTERVAL_S;
    let began = Instant::now();
    for step in 0..steps {
        let at = start + TimeDelta::seconds(step * INTERVAL_S);
        for m in &monitors {
            batch.push(traffic.result(m, at));
            if batch.len() == BATCH {
                store.insert_results(&batch).await?;
                batch.clear();
            }
        }
        let next = at + TimeDelta::seconds(INTERVAL_S);
        if next.timestamp() % 3_600 == 0 {
            if let Some(conn) = vacuum.as_deref_mut() {
                store.insert_results(&batch).await?;
                batch.clear();
                conn.execute("VACUUM results, rollups").await?;
            }
        }
        if next.timestamp() % 86_400 == 0 {
            store.insert_results(&batch).await?;
            batch.clear();
            let cutoffs = Retention::default().cutoffs(next);
            // As the pruner does: whole days first (PostgreSQL's partitions), then the rest.
            store.prune_days(cutoffs.raw, next).await?;
            for chunk in ids.chunks(50) {
                store.prune(chunk, &cutoffs).await?;
            }
            let day = (next - start).num_days();
            if day == 7 {
                early = Some(time_uptime_30d(store, ids[0], next).await?);
            }
            if day % 10 == 0 {
                eprintln!(
                    "{label}: day {day}/{} simulated ({:.0} s)",
                    args.days,
                    began.elapsed().as_secs_f64()
                );
            }
        }
    }
    store.insert_results(&batch).await?;
    let end = start + TimeDelta::seconds(steps * INTERVAL_S);
    let cutoffs = Retention::default().cutoffs(end);
    store.prune_days(cutoffs.raw, end).await?;
    for chunk in ids.chunks(50) {
        store.prune(chunk, &cutoffs).await?;
    }
    let late = time_uptime_30d(store, ids[0], end).await?;
    Ok((early.unwrap_or(late), late))
}

async fn measure_sqlite(args: &Args) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("storage.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url).await?;
    let began = Instant::now();
    let (early, late) = simulate(&store, args, "sqlite", None).await?;
    let elapsed = began.elapsed();
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    // Pages in use by each table and index (free pages, reused by later writes, excluded).
    let sizes: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
            .fetch_all(&mut conn)
            .await?;
    let raw_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM results")
        .fetch_one(&mut conn)
        .await?;
    let history = ["results", "rollups", "incidents"];
    let by_relation: Vec<(String, u64)> = sizes
        .into_iter()
        .map(|(name, bytes)| (name, bytes as u64))
        .collect();
    let bytes_of = |pred: &dyn Fn(&str) -> bool| -> u64 {
        by_relation
            .iter()
            .filter(|(n, _)| pred(n))
            .map(|(_, b)| b)
            .sum()
    };
    Ok(Report {
        store: "SQLite (embedded)",
        raw_rows: raw_rows as u64,
        // WITHOUT ROWID: the table is its own primary-key index.
        raw_bytes: bytes_of(&|n| n == "results"),
        history_bytes: bytes_of(&|n| {
            history.contains(&n)
                || n.starts_with("incidents_")
                || n.starts_with("sqlite_autoindex_incidents")
        }),
        by_relation,
        uptime_30d_early: early,
        uptime_30d_late: late,
        elapsed,
    })
}

async fn measure_postgres(args: &Args, server: &str) -> anyhow::Result<Report> {
    let db = format!("upwatch_storage_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .context("cannot reach PostgreSQL")?;
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await?;
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    let url = format!("{base}/{db}");
    let outcome = async {
        PostgresStore::migrate(&url).await?;
        let store = PostgresStore::connect(&url).await?;
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        let began = Instant::now();
        let (early, late) = simulate(&store, args, "postgres", Some(&mut conn)).await?;
        let elapsed = began.elapsed();
        store.close().await;
        conn.execute("VACUUM ANALYZE").await?;
        let mut by_relation = Vec::new();
        // A partitioned table's size is that of its partitions (one per day for results),
        // each with its indexes.
        for table in ["results", "rollups", "incidents", "series"] {
            let bytes: i64 = sqlx::query_scalar(
                "SELECT COALESCE( \
                     (SELECT sum(pg_total_relation_size(relid)) \
                      FROM pg_partition_tree($1::regclass)), \
                     pg_total_relation_size($1::regclass) \
                 )::bigint",
            )
            .bind(table)
            .fetch_one(&mut conn)
            .await?;
            by_relation.push((table.to_string(), bytes as u64));
        }
        let raw_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM results")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        anyhow::Ok(Report {
            store: "PostgreSQL (distributed)",
            raw_rows: raw_rows as u64,
            raw_bytes: by_relation[0].1,
            history_bytes: by_relation.iter().map(|(_, b)| b).sum(),
            by_relation,
            uptime_30d_early: early,
            uptime_30d_late: late,
            elapsed,
        })
    }
    .await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await?;
    outcome
}

fn table(args: &Args, reports: &[Report]) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut out = String::new();
    out.push_str(&format!(
        "Simulated: {} monitors checked every {INTERVAL_S} s for {} days (about {} results \
         each), written through `Store::insert_results` in batches of {BATCH} and pruned daily \
         with the default retention (raw 7 d, minute rollups 48 h, hour rollups 90 d, day \
         rollups kept).\n\n",
        args.monitors,
        args.days,
        args.days * 86_400 / INTERVAL_S,
    ));
    out.push_str("| store | raw rows kept | bytes per raw result | steady-state history per monitor | 30-day uptime after 7 days: rows, time | after all days: rows, time |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in reports {
        out.push_str(&format!(
            "| {} | {} | **{:.1} B** | **{:.2} MiB** | {}, {:.2} ms | {}, {:.2} ms |\n",
            r.store,
            r.raw_rows,
            r.raw_bytes as f64 / r.raw_rows.max(1) as f64,
            mib(r.history_bytes / args.monitors.max(1) as u64),
            r.uptime_30d_early.0,
            r.uptime_30d_early.1.as_secs_f64() * 1e3,
            r.uptime_30d_late.0,
            r.uptime_30d_late.1.as_secs_f64() * 1e3,
        ));
    }
    out.push('\n');
    for r in reports {
        let parts: Vec<String> = r
            .by_relation
            .iter()
            .filter(|(_, b)| *b >= 10 * 1024)
            .map(|(n, b)| format!("`{n}` {:.2} MiB", mib(*b)))
            .collect();
        out.push_str(&format!(
            "- {} ({:.0} s to simulate), relations of 10 KiB or more: {}.\n",
            r.store,
            r.elapsed.as_secs_f64(),
            parts.join(", ")
        ));
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut reports = vec![measure_sqlite(&args).await?];
    if let Some(server) = &args.postgres {
        reports.push(measure_postgres(&args, server).await?);
    }
    let text = table(&args, &reports);
    println!("{text}");
    if let Some(path) = &args.write {
        let command = format!(
            "cargo run --release -p upwatch-bench --bin storage-growth -- --monitors {} --days {}{} --write {}",
            args.monitors,
            args.days,
            args.postgres
                .as_ref()
                .map(|p| format!(" --postgres {p}"))
                .unwrap_or_default(),
            path.display()
        );
        let section = format!("{BEGIN}\n{text}\nCommand: `{command}`\n{END}");
        let current = std::fs::read_to_string(path).unwrap_or_default();
        let updated = match (current.find(BEGIN), current.find(END)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{section}{}", &current[..b], &current[e + END.len()..])
            }
            _ => format!("{current}\n## Storage growth\n\n{section}\n"),
        };
        std::fs::write(path, updated)?;
    }
    Ok(())
}
