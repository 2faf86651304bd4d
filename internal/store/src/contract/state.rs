//! State machines: applying results, alerts and incidents ([`StateStore`](crate::StateStore), [`StateReader`](crate::StateReader)).

use chrono::Duration;
use upwatch_core::state::RegionStatus;
use upwatch_core::{
    AlertKind, CheckError, CheckResult, ErrorKind, MonitorInput, MonitorStatus, Webhook,
};
use uuid::Uuid;

use crate::{IncidentQuery, Store};

use super::*;

/// Applying results runs the state machine: the first up result alerts nothing, going down
/// and recovering alert once each, with one pending delivery per enabled webhook when the
/// monitor names none; repeated and older results change nothing; the state is stored.
pub async fn apply_result_alerts_on_transitions(store: &dyn Store) {
    let w1 = webhook("first", 1);
    let w2 = webhook("second", 2);
    let off = Webhook {
        enabled: false,
        disabled_reason: Some("gone".into()),
        ..webhook("off", 3)
    };
    for w in [&w1, &w2, &off] {
        store.upsert_webhook(w).await.unwrap();
    }
    let m = monitor("http://127.0.0.1:70/");
    store.insert_monitor(&m).await.unwrap();

    assert_eq!(
        store.apply_result(&result(&m, 10, true)).await.unwrap(),
        None,
        "pending to up"
    );
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Up);
    assert_eq!(state.last_checked, Some(t(10)));
    assert_eq!(state.last_status_change, Some(t(10)));
    assert_eq!(state.consecutive_successes, 1);
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);

    // The result still carries an older name and URL; the alert shows the monitor's own.
    let mut down = result(&m, 20, false);
    down.monitor_name = "stale name".into();
    down.url = "http://127.0.0.1:79/stale".into();
    let alert = store
        .apply_result(&down)
        .await
        .unwrap()
        .expect("up to down alerts");
    assert_eq!(alert.kind, AlertKind::Down);
    assert_eq!(alert.monitor_id, m.id);
    assert_eq!(alert.monitor_name, m.name);
    assert_eq!(alert.monitor_url, m.url);
    assert_eq!(alert.at, t(20));
    assert_eq!(alert.status_code, Some(503));
    assert_eq!(alert.error, down.error);
    assert_eq!(alert.down_since, None);
    assert_eq!(
        store.pending_deliveries().await.unwrap(),
        2,
        "one per enabled webhook"
    );
    assert_eq!(store.webhooks_with_pending().await.unwrap().len(), 2);
    assert_eq!(
        sorted(store.webhooks_with_pending().await.unwrap()),
        sorted(vec![w1.id, w2.id])
    );
    for w in [&w1, &w2] {
        let d = store
            .next_delivery(w.id)
            .await
            .unwrap()
            .expect("a delivery per webhook");
        assert_eq!(d.alert, alert);
        assert_eq!(d.webhook, *w);
        assert_eq!(d.attempts, 0);
    }
    assert!(
        store.next_delivery(off.id).await.unwrap().is_none(),
        "disabled webhooks get nothing"
    );

    assert_eq!(
        store.apply_result(&down).await.unwrap(),
        None,
        "the same result twice alerts once"
    );
    assert_eq!(
        store.apply_result(&result(&m, 30, false)).await.unwrap(),
        None,
        "still down"
    );
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Down);
    assert_eq!(state.consecutive_failures, 2);
    assert_eq!(state.last_status_change, Some(t(20)));

    let recovery = store
        .apply_result(&result(&m, 40, true))
        .await
        .unwrap()
        .expect("down to up alerts");
    assert_eq!(recovery.kind, AlertKind::Recovery);
    assert_eq!(recovery.at, t(40));
    assert_eq!(recovery.down_since, Some(t(20)));
    assert_ne!(recovery.id, alert.id);
    assert_eq!(store.pending_deliveries().await.unwrap(), 4);

    assert_eq!(
        store.apply_result(&result(&m, 35, false)).await.unwrap(),
        None,
        "an older result"
    );
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Up);
    assert_eq!(state.last_checked, Some(t(40)));
    assert_eq!(state.response_time_ms, Some(80));
    assert_eq!(state.status_code, Some(200));
}

/// A monitor that names webhooks alerts those only, and only those that are enabled.
pub async fn apply_result_uses_the_monitors_webhooks(store: &dyn Store) {
    let chosen = webhook("chosen", 1);
    let other = webhook("other", 2);
    let chosen_off = Webhook {
        enabled: false,
        ..webhook("chosen-off", 3)
    };
    for w in [&chosen, &other, &chosen_off] {
        store.upsert_webhook(w).await.unwrap();
    }
    let m = monitor_from(MonitorInput {
        notifier_ids: Some(vec![chosen.id, chosen_off.id, Uuid::now_v7()]),
        ..MonitorInput::for_url("http://127.0.0.1:80/")
    });
    store.insert_monitor(&m).await.unwrap();

    let alert = store
        .apply_result(&result(&m, 10, false))
        .await
        .unwrap()
        .expect("a new monitor that is down alerts");
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(
        store.webhooks_with_pending().await.unwrap(),
        vec![chosen.id]
    );
    assert_eq!(
        store.next_delivery(chosen.id).await.unwrap().unwrap().alert,
        alert
    );
    assert!(store.next_delivery(other.id).await.unwrap().is_none());
    assert!(store.next_delivery(chosen_off.id).await.unwrap().is_none());
}

/// Results of paused and unknown monitors change nothing.
pub async fn apply_result_ignores_paused_and_unknown(store: &dyn Store) {
    store.upsert_webhook(&webhook("hook", 1)).await.unwrap();
    let paused = disabled_monitor("http://127.0.0.1:90/");
    store.insert_monitor(&paused).await.unwrap();
    let before = store.get_state(paused.id).await.unwrap().unwrap();

    assert_eq!(
        store
            .apply_result(&result(&paused, 10, false))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_state(paused.id).await.unwrap(), Some(before));

    let unknown = monitor("http://127.0.0.1:91/");
    assert_eq!(
        store
            .apply_result(&result(&unknown, 10, false))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_state(unknown.id).await.unwrap(), None);
    assert_eq!(store.list_states().await.unwrap().len(), 1);
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
}

/// Copies of one result applied at the same time alert exactly once: applying is an atomic
/// read-modify-write.
pub async fn apply_result_is_atomic(store: &dyn Store) {
    store.upsert_webhook(&webhook("hook", 1)).await.unwrap();
    let m = monitor("http://127.0.0.1:95/");
    store.insert_monitor(&m).await.unwrap();
    let down = result(&m, 10, false);
    let (a, b, c, d) = tokio::join!(
        store.apply_result(&down),
        store.apply_result(&down),
        store.apply_result(&down),
        store.apply_result(&down),
    );
    let outcomes = [a, b, c, d].map(|r| r.expect("concurrent applies succeed"));
    let alerts = outcomes.iter().filter(|o| o.is_some()).count();
    assert_eq!(alerts, 1, "one alert for one transition");
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(
        store
            .get_state(m.id)
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        1
    );
}

/// A transition to down opens an incident with the error that took the monitor down; the
/// recovery closes it; deliveries sent for its alerts are counted; listings are newest first
/// and page, filter by monitor and by being open.
pub async fn incidents_open_and_close_with_transitions(store: &dyn Store) {
    let hook = webhook("incidents", 1);
    store.upsert_webhook(&hook).await.unwrap();
    let a = monitor("http://127.0.0.1:1300/");
    let b = monitor("http://127.0.0.1:1301/");
    for m in [&a, &b] {
        store.insert_monitor(m).await.unwrap();
        store.apply_result(&result(m, 10, true)).await.unwrap();
    }
    let all = IncidentQuery {
        limit: 10,
        ..IncidentQuery::default()
    };
    assert!(store.incidents(&all).await.unwrap().is_empty(), "up: none");

    let down = store.apply_result(&result(&a, 20, false)).await.unwrap();
    assert_eq!(down.map(|x| x.kind), Some(AlertKind::Down));
    let open = store.incidents(&all).await.unwrap();
    assert_eq!(open.len(), 1);
    let first = &open[0];
    assert_eq!(first.monitor_id, a.id);
    assert_eq!(first.started_at, t(20));
    assert_eq!(first.ended_at, None);
    assert_eq!(first.status_code, Some(503));
    assert_eq!(
        first.first_error,
        Some(CheckError::new(
            ErrorKind::StatusMismatch,
            "got HTTP 503, expected 2xx"
        ))
    );
    assert_eq!(first.alerts_sent, 0);
    assert_eq!(first.duration(t(80)), Duration::seconds(60));

    // Still down: no second incident. The down alert's delivery is sent.
    store.apply_result(&result(&a, 30, false)).await.unwrap();
    let delivery = store.next_delivery(hook.id).await.unwrap().unwrap();
    store.delivery_sent(delivery.id).await.unwrap();
    assert_eq!(store.incidents(&all).await.unwrap().len(), 1);
    assert_eq!(store.incidents(&all).await.unwrap()[0].alerts_sent, 1);

    store.apply_result(&result(&b, 35, false)).await.unwrap();
    let recovery = store.apply_result(&result(&a, 40, true)).await.unwrap();
    assert_eq!(recovery.map(|x| x.kind), Some(AlertKind::Recovery));
    // Deliveries go out in order: b's down alert, then a's recovery.
    while let Some(delivery) = store.next_delivery(hook.id).await.unwrap() {
        store.delivery_sent(delivery.id).await.unwrap();
    }

    let listed = store.incidents(&all).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.monitor_id).collect::<Vec<_>>(),
        vec![b.id, a.id],
        "newest first"
    );
    let closed = &listed[1];
    assert_eq!(closed.id, first.id);
    assert_eq!(closed.ended_at, Some(t(40)));
    assert_eq!(closed.duration(t(1_000)), Duration::seconds(20));
    assert_eq!(closed.alerts_sent, 2, "down and recovery delivered");
    assert_eq!(listed[0].alerts_sent, 1, "b's down alert delivered");

    let open_only = IncidentQuery {
        open_only: true,
        ..all.clone()
    };
    let open = store.incidents(&open_only).await.unwrap();
    assert_eq!(
        open.iter().map(|i| i.monitor_id).collect::<Vec<_>>(),
        vec![b.id]
    );
    let of_a = IncidentQuery {
        monitor_id: Some(a.id),
        ..all.clone()
    };
    assert_eq!(store.incidents(&of_a).await.unwrap(), vec![closed.clone()]);
    // Pages: one at a time, continuing before the last one seen.
    let page = IncidentQuery {
        limit: 1,
        ..all.clone()
    };
    let p1 = store.incidents(&page).await.unwrap();
    let p2 = store
        .incidents(&IncidentQuery {
            before: Some(p1[0].id),
            ..page.clone()
        })
        .await
        .unwrap();
    let p3 = store
        .incidents(&IncidentQuery {
            before: Some(p2[0].id),
            ..page.clone()
        })
        .await
        .unwrap();
    assert_eq!((p1[0].monitor_id, p2[0].monitor_id), (b.id, a.id));
    assert!(p3.is_empty());

    // A second outage of `a` is a second incident.
    store.apply_result(&result(&a, 50, false)).await.unwrap();
    assert_eq!(store.incidents(&of_a).await.unwrap().len(), 2);
    assert_eq!(store.incidents(&open_only).await.unwrap().len(), 2);
}

/// Applying results in batches gives the states and alerts that applying them one by one
/// gives: the transitions of each monitor, in order, with results of several monitors, of an
/// unknown monitor and a repeated result mixed in; applying a batch again changes nothing.
pub async fn apply_results_in_batches_equals_one_by_one(store: &dyn Store) {
    let hook = webhook("batched", 1);
    store.upsert_webhook(&hook).await.unwrap();
    let a = monitor("http://127.0.0.1:1500/");
    let b = monitor("http://127.0.0.1:1501/");
    let gone = monitor("http://127.0.0.1:1502/");
    for m in [&a, &b] {
        store.insert_monitor(m).await.unwrap();
    }
    // a: up, down, down, up; b: down, down (thresholds of 1 by default alert at once).
    let batch = vec![
        result(&a, 10, true),
        result(&b, 10, false),
        result(&gone, 10, false),
        result(&a, 20, false),
        result(&b, 20, false),
        result(&a, 30, false),
        result(&a, 40, true),
    ];
    let mut with_repeat = batch.clone();
    with_repeat.push(batch[3].clone());
    let alerts = store.apply_results(&with_repeat).await.unwrap();
    let kinds: Vec<(Uuid, AlertKind)> = alerts.iter().map(|x| (x.monitor_id, x.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (b.id, AlertKind::Down),
            (a.id, AlertKind::Down),
            (a.id, AlertKind::Recovery)
        ]
    );
    assert_eq!(store.pending_deliveries().await.unwrap(), 3);
    let state_a = store.get_state(a.id).await.unwrap().unwrap();
    assert_eq!(state_a.status, MonitorStatus::Up);
    assert_eq!(state_a.last_checked, Some(t(40)));
    assert_eq!(
        store
            .get_state(b.id)
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        2
    );
    assert_eq!(store.get_state(gone.id).await.unwrap(), None);
    let all = IncidentQuery {
        limit: 10,
        ..IncidentQuery::default()
    };
    assert_eq!(store.incidents(&all).await.unwrap().len(), 2);

    assert!(
        store.apply_results(&batch).await.unwrap().is_empty(),
        "again: nothing"
    );
    assert!(store.apply_results(&[]).await.unwrap().is_empty());
    assert_eq!(store.pending_deliveries().await.unwrap(), 3);
}

/// A TLS-speaking monitor's certificate alerts once per threshold through the outbox, with no
/// incident (the site is up), and the state keeps the certificate so that a restart does not
/// alert again; a renewed certificate starts over.
pub async fn certificate_expiry_alerts_once_without_incident(store: &dyn Store) {
    let w = webhook("certs", 1);
    store.upsert_webhook(&w).await.unwrap();
    let m = monitor("https://127.0.0.1:71/");
    store.insert_monitor(&m).await.unwrap();
    let with_cert = |at: i64, fingerprint: &str, hours_left: i64| {
        let mut r = result(&m, at, true);
        r.cert_expiry_alert_days = vec![14, 7, 1];
        r.details.certificate = Some(upwatch_core::observation::Certificate {
            expires_at: t(at) + Duration::hours(hours_left),
            not_before: t(0),
            issuer: "CN=ca".into(),
            subject: "CN=site".into(),
            sans: vec!["127.0.0.1".into()],
            fingerprint: fingerprint.into(),
        });
        r
    };
    let alerts = store
        .apply_results(&[with_cert(10, "a", 30 * 24), with_cert(20, "a", 5 * 24)])
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.kind, AlertKind::CertificateExpiry);
    assert_eq!(alert.days_left, Some(5));
    assert_eq!(
        alert.certificate_expires_at,
        Some(t(20) + Duration::days(5))
    );
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Up);
    let watch = state.certificate.expect("the certificate is followed");
    assert_eq!(
        (watch.fingerprint.as_str(), watch.alerted_days),
        ("a", Some(7))
    );
    assert!(
        store
            .incidents(&IncidentQuery {
                monitor_id: Some(m.id),
                open_only: false,
                before: None,
                limit: 10,
            })
            .await
            .unwrap()
            .is_empty(),
        "a certificate alert opens no incident"
    );
    let delivery = store.next_delivery(w.id).await.unwrap().expect("queued");
    assert_eq!(delivery.alert, *alert);

    // The same certificate later, still above the next threshold: nothing again.
    let alerts = store
        .apply_results(&[with_cert(30, "a", 4 * 24)])
        .await
        .unwrap();
    assert!(alerts.is_empty(), "{alerts:?}");
    // Renewed, then close to expiry again: alerts again.
    let alerts = store
        .apply_results(&[with_cert(40, "b", 90 * 24), with_cert(50, "b", 12 * 24)])
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].days_left, Some(12));
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);
}

/// A result during a maintenance window is stored and shown as such, counts in no rollup,
/// and alerts nothing: its monitor is down underneath, and the first result after the window
/// that is still down alerts once.
pub async fn maintenance_results_are_kept_out_of_uptime_and_alerts(store: &dyn Store) {
    let w = webhook("maintenance", 1);
    store.upsert_webhook(&w).await.unwrap();
    let m = monitor("http://127.0.0.1:72/");
    store.insert_monitor(&m).await.unwrap();
    let during = |at: i64| {
        let mut r = result(&m, at, false);
        r.maintenance = true;
        r
    };
    let results = [result(&m, 10, true), during(20), during(30)];
    store.insert_results(&results).await.unwrap();
    assert!(store.apply_results(&results).await.unwrap().is_empty());
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Down, "down underneath");
    assert!(state.in_maintenance);
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
    let history = store.history(m.id, &query(10)).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.maintenance).collect::<Vec<_>>(),
        vec![true, true, false],
        "stored, newest first, marked"
    );
    let minute = upwatch_core::rollup::Resolution::Minute;
    let rollups = store
        .rollups(
            &[m.id],
            &[upwatch_core::rollup::RollupRun {
                resolution: minute,
                from: minute.bucket_start(t(0)),
                to: t(3600),
            }],
        )
        .await
        .unwrap();
    let (up, down): (u32, u32) = rollups
        .iter()
        .fold((0, 0), |(u, d), r| (u + r.rollup.up, d + r.rollup.down));
    assert_eq!((up, down), (1, 0), "maintenance counts neither up nor down");

    // Still down after the window: one down alert, with its incident.
    let after = result(&m, 40, false);
    store
        .insert_results(std::slice::from_ref(&after))
        .await
        .unwrap();
    let alerts = store.apply_results(&[after]).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::Down);
    assert_eq!(alerts[0].at, t(40));
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
}

/// Maintenance windows are stored whole, listed oldest first, updated and deleted, and every
/// change counts as a change of the monitors (so the scheduler reloads).
pub async fn maintenances_crud_and_version(store: &dyn Store) {
    use upwatch_core::maintenance::{Maintenance, MaintenanceInput};
    assert!(store.list_maintenances().await.unwrap().is_empty());
    let input: MaintenanceInput = serde_json::from_value(serde_json::json!({
        "title": "database upgrade", "all": true,
        "start": "2026-12-01T02:00:00Z", "end": "2026-12-01T03:00:00Z"
    }))
    .unwrap();
    let a = Maintenance::create(input.clone(), t(0)).unwrap();
    let b = Maintenance::create(input, t(1)).unwrap();
    let v0 = store.monitors_version().await.unwrap();
    store.insert_maintenance(&a).await.unwrap();
    store.insert_maintenance(&b).await.unwrap();
    assert!(matches!(
        store.insert_maintenance(&a).await,
        Err(crate::StoreError::Conflict(_))
    ));
    let v1 = store.monitors_version().await.unwrap();
    assert!(v1 > v0, "a new window counts as a change");
    assert_eq!(
        store.list_maintenances().await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.get_maintenance(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_maintenance(Uuid::now_v7()).await.unwrap(), None);

    let changed = a
        .apply_patch(&serde_json::json!({"title": "bigger upgrade"}), t(5))
        .unwrap();
    assert!(store.update_maintenance(&changed).await.unwrap());
    assert_eq!(store.get_maintenance(a.id).await.unwrap(), Some(changed));
    assert!(store.monitors_version().await.unwrap() > v1);
    assert!(store.delete_maintenance(b.id).await.unwrap());
    assert!(!store.delete_maintenance(b.id).await.unwrap());
    assert_eq!(store.list_maintenances().await.unwrap().len(), 1);
}

/// With several regions, each region's results go through the thresholds on their own and
/// the regions vote: one region down alone alerts nothing (the monitor stays up, the region
/// shows down), the quorum of regions down alerts once, naming how the regions saw it, and
/// the stored state keeps every region's view.
pub async fn regions_vote_with_a_quorum(store: &dyn Store) {
    let w = webhook("regions", 1);
    store.upsert_webhook(&w).await.unwrap();
    let m = monitor("http://127.0.0.1:73/");
    store.insert_monitor(&m).await.unwrap();
    let from = |region: &str, at: i64, up: bool| {
        let mut r = CheckResult::simulated(&m, t(at), up, 40).with_region(region);
        r.rules.quorum = 2;
        r.rules.interval_ms = 60_000;
        r
    };
    let mut applied = Vec::new();
    let mut apply = |results: Vec<CheckResult>| {
        applied.extend(results.iter().cloned());
        async move {
            store.insert_results(&results).await.unwrap();
            store.apply_results(&results).await.unwrap()
        }
    };

    // Every region sees it up: the monitor is up, silently.
    let alerts = apply(vec![
        from("a", 10, true),
        from("b", 10, true),
        from("c", 10, true),
    ])
    .await;
    assert!(alerts.is_empty(), "{alerts:?}");

    // c alone sees it down: below the quorum, no alert; c's own view is down.
    let alerts = apply(vec![from("c", 20, false)]).await;
    assert!(
        alerts.is_empty(),
        "one region of three is no quorum: {alerts:?}"
    );
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Up, "the monitor stays up");
    assert_eq!(state.regions.len(), 3);
    assert_eq!(state.regions["c"].status, RegionStatus::Down);
    assert_eq!(state.regions["a"].status, RegionStatus::Up);
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);

    // a and b see it down too: a's result makes the quorum (a and c) and alerts, once; b's
    // changes nothing more. The alert says how the regions saw it when the quorum was met.
    let alerts = apply(vec![from("a", 30, false), from("b", 30, false)]).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::Down);
    assert_eq!(alerts[0].at, t(30));
    assert_eq!(
        alerts[0].regions.as_deref(),
        Some("down from a, c; up from b")
    );
    let delivery = store.next_delivery(w.id).await.unwrap().expect("queued");
    assert_eq!(
        delivery.alert, alerts[0],
        "the stored alert names the regions"
    );
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Down);
    for region in ["a", "b", "c"] {
        assert_eq!(state.regions[region].status, RegionStatus::Down, "{region}");
    }

    // b up again leaves two regions down: still down. a up too: one region down, recovered.
    let alerts = apply(vec![from("b", 40, true)]).await;
    assert!(
        alerts.is_empty(),
        "a and c still make the quorum: {alerts:?}"
    );
    let alerts = apply(vec![from("a", 50, true)]).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::Recovery);
    assert_eq!(
        alerts[0].regions.as_deref(),
        Some("down from c; up from a, b")
    );

    // The stored state is the state machine's, every region's view included.
    let mut expected = m.initial_state();
    for r in &applied {
        expected.apply(r);
    }
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.regions, expected.regions, "the regions round-trip");
    assert_eq!(state, expected);
    assert_eq!(
        store.list_states().await.unwrap(),
        vec![expected],
        "listed alike"
    );
}
