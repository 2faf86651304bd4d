//! The alert-storm benchmark: 10,000 monitors go down at once in the embedded mode's store
//! (SQLite) and the real dispatcher delivers the outbox to three channels of different kinds
//! (Discord, Slack, a generic webhook) on loopback receivers. Reported: the time the alerter's
//! transactions take to store the alerts (the limit: no message can leave before its alert
//! is stored), the time until every channel has its grouped message(s), how many messages
//! each channel got, the outbox's rows, and the process's CPU time.
//!
//! ```sh
//! cargo run --release -p upwatch-bench --bin alert-storm -- --monitors 10000
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::Parser;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use upwatch_core::{ChannelOptions, CheckResult, Monitor, MonitorInput, Webhook, WebhookSource};
use upwatch_notifiers::Channels;
use upwatch_notify::{Dispatcher, RetryPolicy, StormPolicy};
use upwatch_store::prelude::*;
use upwatch_store_sql::SqliteStore;
use upwatch_telemetry::Metrics;
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Monitors that go down together.
    #[arg(long, default_value_t = 10_000)]
    monitors: usize,
    /// Results per alerter transaction (UPWATCH_ALERTER_BATCH_SIZE's default).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn channel(name: &str, kind: &str, settings: serde_json::Value) -> Webhook {
    Webhook {
        id: Uuid::now_v7(),
        name: name.into(),
        url: settings["webhook_url"].as_str().unwrap_or_default().into(),
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Api,
        created_at: Utc::now(),
        kind: kind.into(),
        settings,
        options: ChannelOptions {
            default: true,
            ..ChannelOptions::default()
        },
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/storm.db", dir.path().display());
    let store = Arc::new(SqliteStore::connect(&url).await.context("open SQLite")?);

    let discord = HttpReceiver::start(Answer::status(204)).await;
    let slack = HttpReceiver::start(Answer::text(200, "ok")).await;
    let hook = HttpReceiver::start(Answer::status(200)).await;
    let channels = [
        channel(
            "discord",
            "discord",
            json!({"webhook_url": format!("{}/api/webhooks/1/t", discord.url())}),
        ),
        channel(
            "slack",
            "slack",
            json!({"webhook_url": format!("{}/services/T/B/x", slack.url())}),
        ),
        channel(
            "webhook",
            "webhook",
            json!({"url": format!("{}/in", hook.url())}),
        ),
    ];
    for c in &channels {
        store.upsert_webhook(c).await?;
    }
    let monitors: Vec<Monitor> = (0..args.monitors)
        .map(|i| {
            Monitor::create(
                MonitorInput {
                    name: Some(format!("site-{i:05}")),
                    ..MonitorInput::for_url(format!("http://10.0.{}.{}/", i / 250, i % 250))
                },
                Utc::now(),
            )
            .expect("a valid monitor")
        })
        .collect();
    for chunk in monitors.chunks(1000) {
        store.insert_monitors(chunk).await?;
    }
    let results: Vec<CheckResult> = monitors
        .iter()
        .map(|m| CheckResult::simulated(m, Utc::now(), false, 10))
        .collect();

    // The dispatcher runs from the start, as in `upwatch serve`, woken by each batch.
    let stop = CancellationToken::new();
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(Channels::default()),
        Metrics::new(),
        RetryPolicy::default(),
    )
    .with_storms(StormPolicy::default());
    let waker = dispatcher.waker();
    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let task = tokio::spawn(dispatcher.run(stop.clone(), Duration::from_secs(10)));
    let mut alerts = 0;
    for batch in results.chunks(args.batch) {
        alerts += store.apply_results(batch).await?.len();
        waker.notify_one();
    }
    let stored = started.elapsed();
    let mut first_message = [None; 3];
    loop {
        for (i, r) in [&discord, &slack, &hook].iter().enumerate() {
            if first_message[i].is_none() && !r.accepted().is_empty() {
                first_message[i] = Some(started.elapsed());
            }
        }
        if store.pending_deliveries().await? == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "deliveries still pending after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = started.elapsed();
    let cpu = cpu_seconds() - cpu_start;
    stop.cancel();
    task.await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_deliveries")
        .fetch_one(&sqlx::SqlitePool::connect(&url).await?)
        .await?;

    println!(
        "alert storm: {} monitors down at once, 3 channels (discord, slack, webhook), SQLite",
        args.monitors
    );
    println!(
        "  alerts stored (limit: the alerter's transactions): {alerts} in {:.2} s",
        stored.as_secs_f64()
    );
    for (i, (name, r)) in [("discord", &discord), ("slack", &slack), ("webhook", &hook)]
        .iter()
        .enumerate()
    {
        let messages = r.accepted().len();
        let listed: usize = r
            .accepted()
            .iter()
            .map(|q| q.text().matches("site-").count().min(25))
            .sum();
        println!(
            "  {name}: {messages} message(s), first at {:.2} s, names listed (max 25 per message): {listed}",
            first_message[i].map_or(f64::NAN, |d| d.as_secs_f64())
        );
    }
    println!(
        "  every channel settled (outbox empty) at {:.2} s",
        delivered.as_secs_f64()
    );
    println!(
        "  outbox rows: {rows} ({} per alert)",
        rows as f64 / alerts.max(1) as f64
    );
    println!(
        "  CPU: {:.2} s in all, {:.3} ms per alert and channel",
        cpu,
        cpu * 1000.0 / rows.max(1) as f64
    );
    Ok(())
}
