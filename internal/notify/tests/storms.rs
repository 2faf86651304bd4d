//! Alert storms and reminders: a real SQLite store, the real dispatcher and reminder task,
//! and a notifier that records what each channel is sent (the providers' own requests are
//! tested against loopback servers in `upwatch-notifiers`).
//!
//! Time: tokio's paused clock cannot drive sqlx's SQLite pool (its acquire timeouts fire as
//! soon as the runtime idles on the database thread), so reminders are driven by their
//! explicit clock (`Reminders::tick(now)`), and storms run in real time: their only wait is
//! the 2 s quiet period.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use upwatch_core::{
    AlertKind, ChannelOptions, CheckResult, Monitor, MonitorInput, Webhook, WebhookSource,
};
use upwatch_notify::{
    Dispatcher, Message, Notifier, Provider, Reminders, RetryPolicy, SendError, StormPolicy,
};
use upwatch_store::prelude::*;
use upwatch_store::IncidentQuery;
use upwatch_store_sql::SqliteStore;
use upwatch_telemetry::Metrics;
use uuid::Uuid;

/// Records every message, by channel name.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(String, Message)>>,
}

impl Recorder {
    fn to(&self, channel: &str) -> Vec<Message> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == channel)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

#[async_trait]
impl Notifier for Recorder {
    async fn send(&self, channel: &Webhook, message: &Message) -> Result<(), SendError> {
        self.sent
            .lock()
            .unwrap()
            .push((channel.name.clone(), message.clone()));
        Ok(())
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec!["discord"]
    }

    fn provider(&self, _kind: &str) -> Option<&dyn Provider> {
        None
    }
}

struct Env {
    _dir: TempDir,
    store: Arc<SqliteStore>,
    recorder: Arc<Recorder>,
    monitors: Vec<Monitor>,
}

fn channel(name: &str, options: ChannelOptions) -> Webhook {
    Webhook {
        id: Uuid::now_v7(),
        name: name.into(),
        url: String::new(),
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Api,
        created_at: Utc::now(),
        kind: "discord".into(),
        settings: json!({"webhook_url": "http://127.0.0.1:9/unused"}),
        options,
    }
}

impl Env {
    /// `n` monitors and two default channels: `grouped` (storms as one message) and
    /// `single` (`group_alerts: false`, as PagerDuty is by default).
    async fn new(n: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let default = ChannelOptions {
            default: true,
            ..ChannelOptions::default()
        };
        store
            .upsert_webhook(&channel("grouped", default.clone()))
            .await
            .unwrap();
        store
            .upsert_webhook(&channel(
                "single",
                ChannelOptions {
                    group_alerts: Some(false),
                    ..default
                },
            ))
            .await
            .unwrap();
        let mut monitors = Vec::new();
        for i in 0..n {
            let m = Monitor::create(
                MonitorInput {
                    name: Some(format!("site-{i:02}")),
                    ..MonitorInput::for_url(format!("http://127.0.0.1:{}/", 1000 + i))
                },
                Utc::now(),
            )
            .unwrap();
            store.insert_monitor(&m).await.unwrap();
            monitors.push(m);
        }
        Env {
            _dir: dir,
            store,
            recorder: Arc::new(Recorder::default()),
            monitors,
        }
    }

    /// Every monitor in `range` goes down (or up) with a check at `at_s` seconds ago.
    async fn all(&self, range: std::ops::Range<usize>, up: bool, ago_s: i64) {
        for m in &self.monitors[range] {
            let at = Utc::now() - chrono::Duration::seconds(ago_s);
            let result = CheckResult::simulated(m, at, up, 10);
            self.store.apply_result(&result).await.unwrap();
        }
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.store.clone(),
            self.recorder.clone(),
            Metrics::new(),
            RetryPolicy::default(),
        )
        .with_storms(StormPolicy {
            threshold: 10,
            window: Duration::from_secs(60),
            dashboard_url: Some("https://status.example.com/".into()),
        })
    }

    /// Runs a dispatcher until every delivery is settled (at most a minute).
    async fn deliver_all(&self) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.dispatcher().run(stop.clone(), Duration::from_secs(5)));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.store.pending_deliveries().await.unwrap() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "deliveries still pending"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.cancel();
        task.await.unwrap();
    }
}

fn storm_of(m: &Message) -> &upwatch_notify::Storm {
    match m {
        Message::Storm(s) => s,
        other => panic!("expected a storm message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_storm_reaches_a_channel_as_one_message_and_recoveries_too() {
    let env = Env::new(30).await;
    env.all(0..30, false, 1).await;
    env.deliver_all().await;

    let grouped = env.recorder.to("grouped");
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    let storm = storm_of(&grouped[0]);
    assert_eq!(storm.kind, AlertKind::Down);
    assert_eq!(storm.alerts.len(), 30);
    let text = grouped[0].text();
    assert!(text.starts_with("🔴 30 monitors are down"), "{text}");
    assert!(text.contains("• site-24\n• and 5 more"), "{text}");
    assert!(
        text.contains("Dashboard: https://status.example.com/"),
        "{text}"
    );
    // The channel that does not group gets one message per monitor.
    let single = env.recorder.to("single");
    assert_eq!(single.len(), 30);
    assert!(single
        .iter()
        .all(|m| matches!(m, Message::Alert(a) if a.kind == AlertKind::Down)));
    // Every incident records its alert: one delivery to each channel.
    let incidents = env
        .store
        .incidents(&IncidentQuery {
            monitor_id: None,
            open_only: true,
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(incidents.len(), 30);
    assert!(
        incidents.iter().all(|i| i.alerts_sent == 2),
        "{incidents:?}"
    );

    env.all(0..30, true, 0).await;
    env.deliver_all().await;
    let grouped = env.recorder.to("grouped");
    assert_eq!(grouped.len(), 2);
    assert_eq!(storm_of(&grouped[1]).kind, AlertKind::Recovery);
    assert!(grouped[1].text().starts_with("🟢 30 monitors are up again"));
    assert_eq!(env.recorder.to("single").len(), 60);
}

#[tokio::test]
async fn ten_alerts_are_no_storm() {
    let env = Env::new(10).await;
    env.all(0..10, false, 1).await;
    env.deliver_all().await;
    let grouped = env.recorder.to("grouped");
    assert_eq!(grouped.len(), 10);
    assert!(grouped.iter().all(|m| matches!(m, Message::Alert(_))));
}

#[tokio::test]
async fn a_restart_inside_the_window_loses_and_repeats_nothing() {
    let env = Env::new(30).await;
    env.all(0..15, false, 2).await;
    env.deliver_all().await;
    // The first 15 (more than 10): one storm message.
    assert_eq!(env.recorder.to("grouped").len(), 1);
    // A new process, within the same minute: 15 more go down. The window still holds the
    // first 15, so these are a storm too, and only they are listed.
    env.all(15..30, false, 1).await;
    env.deliver_all().await;
    let grouped = env.recorder.to("grouped");
    assert_eq!(grouped.len(), 2, "{grouped:?}");
    let second: Vec<&str> = storm_of(&grouped[1])
        .alerts
        .iter()
        .map(|a| a.monitor_name.as_str())
        .collect();
    assert_eq!(second.len(), 15);
    assert_eq!(second[0], "site-15");
    let mut every: Vec<Uuid> = grouped
        .iter()
        .flat_map(|m| storm_of(m).alerts.iter().map(|a| a.monitor_id))
        .collect();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), 30, "each monitor's alert listed exactly once");
}

#[tokio::test]
async fn a_down_monitor_is_reminded_at_its_channels_interval() {
    let env = Env::new(2).await;
    // Reminders every hour on a third channel, which the first monitor names.
    let hourly = channel(
        "hourly",
        ChannelOptions {
            reminder_interval_seconds: Some(3600),
            ..ChannelOptions::default()
        },
    );
    env.store.upsert_webhook(&hourly).await.unwrap();
    let mut named = env.monitors[0].clone();
    named.notifier_ids = vec![hourly.id];
    env.store.update_monitor(&named).await.unwrap();
    // The second monitor turns reminders off for itself on the same channel.
    let mut quiet = env.monitors[1].clone();
    quiet.notifier_ids = vec![hourly.id];
    quiet.reminder_interval_seconds = Some(0);
    env.store.update_monitor(&quiet).await.unwrap();
    env.all(0..2, false, 0).await;
    let started = env
        .store
        .incidents(&IncidentQuery {
            monitor_id: Some(named.id),
            open_only: true,
            before: None,
            limit: 1,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .started_at;
    let at = |minutes: i64| started + chrono::Duration::minutes(minutes);

    let mut reminders = Reminders::new(env.store.clone(), Arc::new(Notify::new()));
    // Within the first hour: none.
    assert_eq!(reminders.tick(at(59)).await.unwrap(), 0);
    // After an hour: one, for the monitor that did not turn them off; once however often
    // it is looked at, and by however many processes.
    assert_eq!(reminders.tick(at(61)).await.unwrap(), 1);
    assert_eq!(reminders.tick(at(62)).await.unwrap(), 0);
    let mut other_process = Reminders::new(env.store.clone(), Arc::new(Notify::new()));
    assert_eq!(other_process.tick(at(63)).await.unwrap(), 0);
    // After two hours: the second.
    assert_eq!(reminders.tick(at(121)).await.unwrap(), 1);
    env.deliver_all().await;

    let reminders_of = |name: &str| {
        env.recorder
            .to("hourly")
            .into_iter()
            .filter(|m| matches!(m, Message::Alert(a) if a.kind == AlertKind::Reminder && a.monitor_name == name))
            .collect::<Vec<_>>()
    };
    let sent = reminders_of("site-00");
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].headline().contains("still down for 1h 0m"),
        "{}",
        sent[0].headline()
    );
    assert!(
        sent[1].headline().contains("still down for 2h 0m"),
        "{}",
        sent[1].headline()
    );
    assert!(
        reminders_of("site-01").is_empty(),
        "reminders are off for this monitor"
    );
    // The incident counts its down alert and its two reminders.
    let incident = env
        .store
        .incidents(&IncidentQuery {
            monitor_id: Some(named.id),
            open_only: true,
            before: None,
            limit: 1,
        })
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(incident.alerts_sent, 3);
}
