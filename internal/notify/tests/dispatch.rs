//! The dispatcher end to end: a real SQLite store, the real Discord notifier and a loopback
//! Discord receiver.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use upwatch_store::prelude::*;

use chrono::{DateTime, Utc};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upwatch_core::check::SCHEMA_VERSION;
use upwatch_core::{
    Alert, AlertKind, CheckError, CheckResult, CheckStatus, ErrorKind, Monitor, MonitorInput,
    Webhook, WebhookSource,
};
use upwatch_notifiers::discord::message;
use upwatch_notifiers::discord::GONE_REASON;
use upwatch_notifiers::Channels;
use upwatch_notify::{Dispatcher, RetryPolicy};
use upwatch_store::intercept::Intercepted;
use upwatch_store::{Store, StoreError};
use upwatch_store_sql::SqliteStore;
use upwatch_telemetry::Metrics;
use upwatch_testkit::discord::{DiscordReceiver, Reply};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

/// A store in a temporary directory with one monitor.
struct Env {
    _dir: TempDir,
    store: Arc<SqliteStore>,
    monitor: Monitor,
    metrics: Arc<Metrics>,
    /// Time of the next result, so that each is newer than the last.
    clock: DateTime<Utc>,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let monitor = Monitor::create(
            MonitorInput {
                name: Some("My Website".into()),
                url: Some("https://example.com".into()),
                ..MonitorInput::default()
            },
            Utc::now(),
        )
        .unwrap();
        store.insert_monitor(&monitor).await.unwrap();
        Env {
            _dir: dir,
            store,
            monitor,
            metrics: Metrics::new(),
            clock: Utc::now() - chrono::Duration::minutes(10),
        }
    }

    async fn webhook(&self, receiver: &DiscordReceiver) -> Webhook {
        let webhook = Webhook {
            id: Uuid::now_v7(),
            name: "ops".into(),
            url: receiver.url(),
            enabled: true,
            disabled_reason: None,
            source: WebhookSource::Api,
            created_at: Utc::now(),
            kind: "discord".into(),
            settings: Default::default(),
            options: upwatch_core::ChannelOptions {
                default: true,
                ..Default::default()
            },
        };
        self.store.upsert_webhook(&webhook).await.unwrap();
        webhook
    }

    /// Applies a check result; returns the alert it caused.
    async fn check(&mut self, up: bool) -> Alert {
        self.clock += chrono::Duration::seconds(30);
        let result = CheckResult {
            region: "default".to_string(),
            v: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            job_id: Uuid::now_v7(),
            monitor_id: self.monitor.id,
            monitor_name: self.monitor.name.clone(),
            url: self.monitor.url.clone(),
            due_at: self.clock,
            checked_at: self.clock,
            response_time_ms: 42,
            status_code: Some(if up { 200 } else { 500 }),
            status: if up {
                CheckStatus::Up
            } else {
                CheckStatus::Down
            },
            error: (!up)
                .then(|| CheckError::new(ErrorKind::StatusMismatch, "got HTTP 500, expected 2xx")),
            rules: self.monitor.rules(),
            details: Default::default(),
            cert_expiry_alert_days: Vec::new(),
            maintenance: false,
        };
        self.store
            .apply_result(&result)
            .await
            .unwrap()
            .expect("the result should cause an alert")
    }

    fn start(&self, policy: RetryPolicy) -> Running {
        let dispatcher = Dispatcher::new(
            self.store.clone(),
            Arc::new(Channels::default()),
            self.metrics.clone(),
            policy,
        );
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(dispatcher.run(shutdown.clone(), Duration::from_secs(5)));
        Running { shutdown, task }
    }

    async fn pending(&self) -> u64 {
        self.store.pending_deliveries().await.unwrap()
    }
}

struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Shuts the dispatcher down and waits until it returned, so that nothing more is sent.
    async fn stop(self) -> Duration {
        let started = Instant::now();
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the dispatcher should stop within the drain timeout")
            .unwrap();
        started.elapsed()
    }
}

/// Waits until `condition` holds, looking every 20 ms; panics after `deadline`.
async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    while !condition().await {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(50),
        max: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn a_down_alert_is_delivered_exactly_once() {
    let receiver = DiscordReceiver::start().await;
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    let alert = env.check(false).await;
    assert_eq!(env.pending().await, 1);

    let running = env.start(RetryPolicy::default());
    let messages = receiver.wait_for_messages(1, WAIT).await;
    wait_until("the delivery is recorded as sent", WAIT, || async {
        env.pending().await == 0
    })
    .await;
    running.stop().await;

    assert_eq!(messages[0], message(&alert));
    assert_eq!(
        messages[0]["content"],
        format!(
            "🔴 Website Down Alert\nSite: My Website ({})\nStatus: DOWN\n\
             Time: {}\nError: status_mismatch: got HTTP 500, expected 2xx",
            env.monitor.url,
            alert.at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    );
    assert_eq!(receiver.messages().len(), 1);
    assert_eq!(receiver.attempts(), 1);
    assert_eq!(env.metrics.alerts_sent.get(), 1);
    assert_eq!(env.metrics.alerts_failed.get(), 0);
}

#[tokio::test]
async fn an_alert_stored_while_running_goes_out_when_the_waker_is_poked() {
    let receiver = DiscordReceiver::start().await;
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    // A dispatcher that would not poll again for an hour: only the waker can make it deliver.
    let looked = Arc::new(AtomicU32::new(0));
    let counted = looked.clone();
    let store = Arc::new(Intercepted::new(env.store.clone(), move |call| {
        if call.method == "webhooks_with_pending" {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }));
    let dispatcher = Dispatcher::new(
        store,
        Arc::new(Channels::default()),
        env.metrics.clone(),
        RetryPolicy::default(),
    )
    .with_poll_interval(Duration::from_secs(3600));
    let waker = dispatcher.waker();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(dispatcher.run(shutdown.clone(), Duration::from_secs(5)));
    // Its first look at the empty outbox.
    wait_until("the dispatcher looked at the outbox", WAIT, || async {
        looked.load(Ordering::SeqCst) >= 1
    })
    .await;

    env.check(false).await;
    waker.notify_one();
    receiver.wait_for_messages(1, WAIT).await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(receiver.attempts(), 1);
    assert!(looked.load(Ordering::SeqCst) >= 2, "woken, it looked again");
}

#[tokio::test]
async fn a_rate_limited_delivery_waits_retry_after_then_goes_out_once() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::RateLimited {
        retry_after_secs: 0.5,
    });
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    env.check(false).await;

    // Taken before the first attempt, so the retry must come at least 0.5 s after it.
    let started = Instant::now();
    let running = env.start(RetryPolicy::default());
    receiver.wait_for_attempts(1, WAIT).await;
    receiver.wait_for_messages(1, WAIT).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "retried after {:?}",
        started.elapsed()
    );
    wait_until("the delivery is recorded as sent", WAIT, || async {
        env.pending().await == 0
    })
    .await;
    running.stop().await;

    assert_eq!(receiver.messages().len(), 1);
    assert_eq!(receiver.attempts(), 2);
    assert_eq!(env.metrics.alerts_sent.get(), 1);
    assert_eq!(env.metrics.alerts_failed.get(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::Status(500));
    receiver.push_response(Reply::Status(500));
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    env.check(false).await;

    let running = env.start(fast_retries());
    receiver.wait_for_messages(1, WAIT).await;
    wait_until("the delivery is recorded as sent", WAIT, || async {
        env.pending().await == 0
    })
    .await;
    running.stop().await;

    assert_eq!(receiver.messages().len(), 1);
    assert_eq!(receiver.attempts(), 3);
    assert_eq!(env.metrics.alerts_sent.get(), 1);
    assert_eq!(env.metrics.alerts_failed.get(), 2);
}

#[tokio::test]
async fn a_rejected_delivery_is_given_up_and_the_next_one_goes_out() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::Status(400));
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    env.check(false).await;
    let recovery = env.check(true).await;

    let running = env.start(fast_retries());
    let messages = receiver.wait_for_messages(1, WAIT).await;
    wait_until("both deliveries are settled", WAIT, || async {
        env.pending().await == 0
    })
    .await;
    running.stop().await;

    assert_eq!(messages, vec![message(&recovery)]);
    assert_eq!(receiver.attempts(), 2);
    assert_eq!(env.metrics.alerts_failed.get(), 1);
}

#[tokio::test]
async fn a_404_disables_the_webhook_and_stops_sending_to_it() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::Status(404));
    let mut env = Env::new().await;
    let webhook = env.webhook(&receiver).await;
    env.check(false).await;
    env.check(true).await;
    assert_eq!(env.pending().await, 2);

    let running = env.start(fast_retries());
    let store = env.store.clone();
    wait_until("the webhook is disabled", WAIT, || {
        let store = store.clone();
        async move {
            !store
                .get_webhook(webhook.id)
                .await
                .unwrap()
                .unwrap()
                .enabled
        }
    })
    .await;
    running.stop().await;

    let stored = env.store.get_webhook(webhook.id).await.unwrap().unwrap();
    assert_eq!(stored.disabled_reason.as_deref(), Some(GONE_REASON));
    // The second delivery was failed with the webhook and never attempted.
    assert_eq!(env.pending().await, 0);
    assert_eq!(receiver.attempts(), 1);
    assert!(receiver.messages().is_empty());

    // New alerts no longer create deliveries for it.
    env.check(false).await;
    assert_eq!(env.pending().await, 0);
}

#[tokio::test]
async fn a_slow_webhook_does_not_hold_up_another() {
    let slow = DiscordReceiver::start().await;
    slow.push_response(Reply::Delay(Duration::from_secs(3)));
    let fast = DiscordReceiver::start().await;
    let mut env = Env::new().await;
    // The slow one first, so that an implementation going through webhooks one by one would
    // be stuck on it.
    env.webhook(&slow).await;
    env.webhook(&fast).await;
    let alert = env.check(false).await;
    assert_eq!(env.pending().await, 2);

    let running = env.start(RetryPolicy::default());
    slow.wait_for_attempts(1, WAIT).await;
    // Well before the slow webhook answers (3 s), with room for a loaded machine.
    let fast_messages = fast.wait_for_messages(1, Duration::from_millis(2500)).await;
    assert_eq!(fast_messages, vec![message(&alert)]);
    assert!(
        slow.messages().is_empty(),
        "the slow webhook answered early"
    );
    let slow_messages = slow.wait_for_messages(1, WAIT).await;
    assert_eq!(slow_messages, vec![message(&alert)]);
    wait_until("both deliveries are recorded", WAIT, || async {
        env.pending().await == 0
    })
    .await;
    running.stop().await;
    assert_eq!(env.metrics.alerts_sent.get(), 2);
}

#[tokio::test]
async fn down_then_recovery_arrive_in_order_even_when_the_first_is_retried() {
    let receiver = DiscordReceiver::start().await;
    // The down alert fails once: the recovery, pending meanwhile, must not overtake it.
    receiver.push_response(Reply::Status(500));
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    let down = env.check(false).await;
    let recovery = env.check(true).await;

    let running = env.start(fast_retries());
    let messages = receiver.wait_for_messages(2, WAIT).await;
    wait_until("both deliveries are recorded", WAIT, || async {
        env.pending().await == 0
    })
    .await;
    running.stop().await;

    assert_eq!(down.kind, AlertKind::Down);
    assert_eq!(recovery.kind, AlertKind::Recovery);
    assert_eq!(messages, vec![message(&down), message(&recovery)]);
    assert!(messages[1]["content"]
        .as_str()
        .unwrap()
        .ends_with("\nDowntime: 30s"));
    assert_eq!(receiver.attempts(), 3);
}

#[tokio::test]
async fn shutdown_finishes_a_delivery_in_flight() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::Delay(Duration::from_millis(700)));
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    env.check(false).await;

    let running = env.start(RetryPolicy::default());
    receiver.wait_for_attempts(1, WAIT).await;
    running.stop().await;

    assert_eq!(receiver.messages().len(), 1);
    assert_eq!(env.pending().await, 0);
    assert_eq!(env.metrics.alerts_sent.get(), 1);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_retry_due_after_the_drain() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::RateLimited {
        retry_after_secs: 60.0,
    });
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    env.check(false).await;

    let running = env.start(RetryPolicy::default());
    receiver.wait_for_attempts(1, WAIT).await;
    let store = env.store.clone();
    wait_until("the retry is scheduled", WAIT, || {
        let store = store.clone();
        async move {
            let ids = store.webhooks_with_pending().await.unwrap();
            let d = store.next_delivery(ids[0]).await.unwrap().unwrap();
            d.attempts == 1
        }
    })
    .await;
    let took = running.stop().await;

    // Due in a minute, far beyond the five-second drain: no reason to wait at all.
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(
        env.pending().await,
        1,
        "the delivery stays pending for the next start"
    );
    assert_eq!(receiver.attempts(), 1);
}

#[tokio::test]
async fn shutdown_abandons_a_delivery_slower_than_the_drain_and_keeps_it_pending() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::Delay(Duration::from_secs(8)));
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    env.check(false).await;

    let dispatcher = Dispatcher::new(
        env.store.clone(),
        Arc::new(Channels::default()),
        env.metrics.clone(),
        RetryPolicy::default(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(dispatcher.run(shutdown.clone(), Duration::from_millis(300)));
    receiver.wait_for_attempts(1, WAIT).await;
    let started = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    let took = started.elapsed();

    assert!(
        took >= Duration::from_millis(250),
        "stopped before the drain timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "stopped late: {took:?}");
    assert_eq!(env.pending().await, 1);
    assert_eq!(env.metrics.alerts_sent.get(), 0);
}

/// The outbox operations that fail, each a set number of times, before working.
const FLAKY: [(&str, u32); 3] = [
    ("webhooks_with_pending", 1),
    ("next_delivery", 1),
    ("delivery_sent", 2),
];

#[tokio::test]
async fn store_errors_are_retried_without_sending_twice() {
    let receiver = DiscordReceiver::start().await;
    let mut env = Env::new().await;
    env.webhook(&receiver).await;
    let alert = env.check(false).await;
    let left: Arc<Vec<AtomicU32>> =
        Arc::new(FLAKY.iter().map(|&(_, n)| AtomicU32::new(n)).collect());
    let counters = left.clone();
    let store = Arc::new(Intercepted::new(
        env.store.clone() as Arc<dyn Store>,
        move |call| {
            if let Some(i) = FLAKY.iter().position(|&(m, _)| m == call.method) {
                if counters[i].load(Ordering::SeqCst) > 0 {
                    counters[i].fetch_sub(1, Ordering::SeqCst);
                    return Err(StoreError::Corrupt("injected failure".into()));
                }
            }
            Ok(())
        },
    ));

    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(Channels::default()),
        env.metrics.clone(),
        RetryPolicy::default(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(dispatcher.run(shutdown.clone(), Duration::from_secs(5)));
    let messages = receiver.wait_for_messages(1, WAIT).await;
    assert_eq!(messages, vec![message(&alert)]);
    wait_until("the delivery is recorded as sent", WAIT, || async {
        env.pending().await == 0
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();

    // Every injected failure was hit and got past.
    assert!(
        left.iter().all(|c| c.load(Ordering::SeqCst) == 0),
        "every injected failure happened"
    );
    assert_eq!(
        receiver.attempts(),
        1,
        "a delivery whose outcome failed to save was sent again"
    );
    assert_eq!(env.metrics.alerts_sent.get(), 1);
}
