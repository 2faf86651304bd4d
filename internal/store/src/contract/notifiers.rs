//! Channels of every kind: their settings and options, routing, the storm detector's reads
//! and reminders.

use chrono::Utc;
use serde_json::json;
use upwatch_core::{Alert, AlertKind, ChannelOptions, MonitorInput, Webhook, WebhookSource};
use uuid::Uuid;

use super::{monitor_from, result, t, webhook};
use crate::{IncidentQuery, Store};

/// A Slack channel named `name`, created at `t(created)`, with `options`.
fn slack(name: &str, created: i64, options: ChannelOptions) -> Webhook {
    Webhook {
        id: Uuid::now_v7(),
        name: name.to_string(),
        url: String::new(),
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Api,
        created_at: t(created),
        kind: "slack".into(),
        settings: json!({"webhook_url": format!("http://127.0.0.1:9/services/{name}/secret")}),
        options,
    }
}

/// A channel reads back with its kind, settings and options; an upsert replaces them.
pub async fn channels_keep_kind_settings_and_options(store: &dyn Store) {
    let mut c = slack(
        "kinds",
        1,
        ChannelOptions {
            default: false,
            groups: vec!["prod".into()],
            reminder_interval_seconds: Some(3600),
            group_alerts: Some(false),
            system: false,
        },
    );
    store.upsert_webhook(&c).await.unwrap();
    assert_eq!(store.get_webhook(c.id).await.unwrap(), Some(c.clone()));
    c.settings = json!({"webhook_url": "http://127.0.0.1:9/services/other"});
    c.options.reminder_interval_seconds = None;
    c.name = "renamed".into();
    store.upsert_webhook(&c).await.unwrap();
    assert_eq!(store.get_webhook(c.id).await.unwrap(), Some(c.clone()));
    // A Discord channel's URL is its setting too.
    let d = webhook("discord", 2);
    store.upsert_webhook(&d).await.unwrap();
    let read = store.get_webhook(d.id).await.unwrap().unwrap();
    assert_eq!(read.settings["webhook_url"], json!(d.url));
    assert!(read.options.default);
}

/// A monitor's alerts go to the channels it names; else to those of its group; else to the
/// default ones.
pub async fn alerts_route_by_monitor_then_group_then_default(store: &dyn Store) {
    let default = webhook("default", 1);
    let of_group = slack(
        "prod",
        2,
        ChannelOptions {
            groups: vec!["prod".into()],
            ..ChannelOptions::default()
        },
    );
    let named = slack("named", 3, ChannelOptions::default());
    for c in [&default, &of_group, &named] {
        store.upsert_webhook(c).await.unwrap();
    }
    let cases = [
        (None, vec![], default.id),
        (Some("prod"), vec![], of_group.id),
        (Some("staging"), vec![], default.id),
        (Some("prod"), vec![named.id], named.id),
    ];
    for (i, (group, ids, expected)) in cases.into_iter().enumerate() {
        let m = monitor_from(MonitorInput {
            group: group.map(str::to_string),
            notifier_ids: Some(ids),
            ..MonitorInput::for_url(format!("http://127.0.0.1:{}/", 100 + i))
        });
        store.insert_monitor(&m).await.unwrap();
        let alert = store
            .apply_result(&result(&m, 10, false))
            .await
            .unwrap()
            .expect("a new monitor that is down alerts");
        for c in [&default, &of_group, &named] {
            let pending = store.pending_deliveries_of(c.id, 100).await.unwrap();
            let has = pending.iter().any(|d| d.alert.id == alert.id);
            assert_eq!(has, c.id == expected, "case {i}: channel {}", c.name);
        }
    }
}

/// The storm detector counts a channel's recent deliveries of one kind; a storm's
/// deliveries are read in order and settled together.
pub async fn storm_reads_count_and_settle_together(store: &dyn Store) {
    let c = webhook("storm", 1);
    store.upsert_webhook(&c).await.unwrap();
    let before = Utc::now() - chrono::Duration::seconds(5);
    let mut alerts = Vec::new();
    for i in 0..5 {
        let m = monitor_from(MonitorInput::for_url(format!(
            "http://127.0.0.1:{}/",
            200 + i
        )));
        store.insert_monitor(&m).await.unwrap();
        alerts.push(
            store
                .apply_result(&result(&m, 10, false))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        store
            .recent_deliveries(c.id, AlertKind::Down, before)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        store
            .recent_deliveries(c.id, AlertKind::Recovery, before)
            .await
            .unwrap(),
        0
    );
    let later = Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(
        store
            .recent_deliveries(c.id, AlertKind::Down, later)
            .await
            .unwrap(),
        0
    );

    let pending = store.pending_deliveries_of(c.id, 3).await.unwrap();
    let ids: Vec<Uuid> = pending.iter().map(|d| d.alert.id).collect();
    assert_eq!(ids, alerts[..3].iter().map(|a| a.id).collect::<Vec<_>>());
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
    let delivery_ids: Vec<i64> = pending.iter().map(|d| d.id).collect();
    store.deliveries_sent(&delivery_ids).await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);
    let rest: Vec<i64> = store
        .pending_deliveries_of(c.id, 100)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(rest.len(), 2);
    store.deliveries_failed(&rest, "refused").await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
    // Sent or failed, they still count for the window.
    assert_eq!(
        store
            .recent_deliveries(c.id, AlertKind::Down, before)
            .await
            .unwrap(),
        5
    );
}

/// A reminder is stored once however often it is decided, goes to its channel, and counts
/// in its incident's `alerts_sent` once sent.
pub async fn reminders_are_stored_once_and_counted(store: &dyn Store) {
    let c = webhook("reminders", 1);
    let off = Webhook {
        enabled: false,
        ..webhook("reminders-off", 2)
    };
    store.upsert_webhook(&c).await.unwrap();
    store.upsert_webhook(&off).await.unwrap();
    let m = monitor_from(MonitorInput::for_url("http://127.0.0.1:300/"));
    store.insert_monitor(&m).await.unwrap();
    let down = store
        .apply_result(&result(&m, 10, false))
        .await
        .unwrap()
        .unwrap();
    let first = store.next_delivery(c.id).await.unwrap().unwrap();
    store.delivery_sent(first.id).await.unwrap();
    let incident = store
        .incidents(&IncidentQuery {
            monitor_id: Some(m.id),
            open_only: true,
            before: None,
            limit: 10,
        })
        .await
        .unwrap()
        .pop()
        .expect("an open incident");
    assert_eq!(incident.alerts_sent, 1);
    let due = down.at + chrono::Duration::hours(1);
    let reminder = Alert::reminder(
        incident.id,
        &m,
        incident.started_at,
        incident.first_error.clone(),
        incident.status_code,
        c.id,
        due,
    );
    assert!(store
        .queue_reminder(incident.id, &reminder, c.id)
        .await
        .unwrap());
    assert!(!store
        .queue_reminder(incident.id, &reminder, c.id)
        .await
        .unwrap());
    // Not to a disabled channel.
    let to_off = Alert::reminder(
        incident.id,
        &m,
        incident.started_at,
        None,
        None,
        off.id,
        due,
    );
    assert!(!store
        .queue_reminder(incident.id, &to_off, off.id)
        .await
        .unwrap());
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    let d = store.next_delivery(c.id).await.unwrap().unwrap();
    assert_eq!(d.alert, reminder);
    assert_eq!(d.alert.kind, AlertKind::Reminder);
    store.delivery_sent(d.id).await.unwrap();
    let incident = store
        .incidents(&IncidentQuery {
            monitor_id: Some(m.id),
            open_only: false,
            before: None,
            limit: 10,
        })
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(incident.alerts_sent, 2);
}
