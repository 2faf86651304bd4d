//! The behaviour every [`Store`] must show, as async functions that each implementation's
//! tests call, one test per function, each with a fresh, empty store.
//!
//! The functions panic (through `assert!`) on the first difference, naming what was expected.
//! Times used here are whole seconds, which every store keeps exactly (stores may keep times
//! to the millisecond only).

/// Calls the macro `$run` with the name of every contract function, so that each store's
/// test file makes one test per function from its own setup, and a new function is tested
/// on every store.
#[macro_export]
macro_rules! for_each_contract_test {
    ($run:ident) => {
        $run!(
            monitors_crud_and_version,
            monitors_list_in_id_order,
            monitor_found_by_url,
            new_monitors_start_pending_or_paused,
            delete_removes_history_and_state,
            results_are_idempotent,
            history_pages_newest_first,
            apply_result_alerts_on_transitions,
            apply_result_uses_the_monitors_webhooks,
            apply_result_ignores_paused_and_unknown,
            apply_result_is_atomic,
            pause_and_resume_via_update,
            webhooks_upsert_keeps_enabled,
            disable_webhook_fails_pending,
            enable_webhook_resumes_alerts,
            delete_webhook_removes_pending,
            outbox_delivers_in_order,
            rollups_equal_the_raw_rows_they_summarize,
            concurrent_batches_add_up,
            retention_prunes_exactly_what_is_older,
            incidents_open_and_close_with_transitions,
            delete_removes_rollups_and_incidents,
            apply_results_in_batches_equals_one_by_one,
            insert_monitors_is_all_or_nothing,
        );
    };
}

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use upwatch_core::rollup::{rollup_keys, Cutoffs, Resolution, Rollup, RollupRun};
use upwatch_core::{
    Alert, AlertKind, CheckError, CheckResult, CheckStatus, ErrorKind, Monitor, MonitorInput,
    MonitorStatus, Webhook, WebhookSource,
};
use uuid::Uuid;

use crate::{HistoryCursor, HistoryEntry, HistoryQuery, IncidentQuery, Pruned, Store, StoreError};

/// A fixed time, `s` seconds after 2023-11-14T22:13:20Z.
fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid time")
}

/// Now, cut to the millisecond so that any store gives it back unchanged.
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("valid time")
}

fn monitor_from(input: MonitorInput) -> Monitor {
    Monitor::create(input, t(0)).expect("a valid monitor")
}

fn monitor(url: &str) -> Monitor {
    monitor_from(MonitorInput::for_url(url))
}

fn disabled_monitor(url: &str) -> Monitor {
    monitor_from(MonitorInput {
        enabled: Some(false),
        ..MonitorInput::for_url(url)
    })
}

/// A result of `m` checked at `t(at)`: up with HTTP 200, or down with HTTP 503.
fn result(m: &Monitor, at: i64, up: bool) -> CheckResult {
    CheckResult::simulated(m, t(at), up, 40 + at.unsigned_abs() as u32)
}

/// Stores `webhooks` and a new monitor of `url`, then a failing check of it at `t(10)`: the
/// monitor is down, with one pending delivery per webhook. Returns the monitor and its alert.
async fn alerting_monitor(store: &dyn Store, url: &str, webhooks: &[&Webhook]) -> (Monitor, Alert) {
    for hook in webhooks {
        store.upsert_webhook(hook).await.unwrap();
    }
    let m = monitor(url);
    store.insert_monitor(&m).await.unwrap();
    let alert = store
        .apply_result(&result(&m, 10, false))
        .await
        .unwrap()
        .expect("a new monitor that is down alerts");
    (m, alert)
}

/// What history shows of `r`.
fn entry(r: &CheckResult) -> HistoryEntry {
    HistoryEntry {
        id: r.id,
        checked_at: r.checked_at,
        status: r.status,
        response_time_ms: r.response_time_ms,
        status_code: r.status_code,
        error: r.error.clone(),
    }
}

/// An enabled API webhook created at `t(created)`.
fn webhook(name: &str, created: i64) -> Webhook {
    Webhook {
        id: Uuid::now_v7(),
        name: name.to_string(),
        url: format!("http://127.0.0.1:9/hooks/{name}/secret"),
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Api,
        created_at: t(created),
    }
}

fn query(limit: u32) -> HistoryQuery {
    HistoryQuery {
        limit,
        ..HistoryQuery::default()
    }
}

fn cursor(e: &HistoryEntry) -> HistoryCursor {
    HistoryCursor {
        checked_at: e.checked_at,
        id: e.id,
    }
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// Monitors are created, read, updated and deleted; every successful write changes the
/// version, refused ones do not; a duplicate id is a conflict.
pub async fn monitors_crud_and_version(store: &dyn Store) {
    store.ping().await.unwrap();
    let mut versions = vec![store.monitors_version().await.unwrap()];
    let m = monitor("http://127.0.0.1:1/health");
    assert_eq!(store.get_monitor(m.id).await.unwrap(), None);
    assert!(store.all_monitors().await.unwrap().is_empty());

    store.insert_monitor(&m).await.unwrap();
    assert_eq!(store.get_monitor(m.id).await.unwrap(), Some(m.clone()));
    versions.push(store.monitors_version().await.unwrap());

    let err = store.insert_monitor(&m).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "a duplicate id is a conflict, got {err:?}"
    );
    assert_eq!(
        store.monitors_version().await.unwrap(),
        versions[1],
        "a refused insert is no change"
    );

    let changed = m
        .apply_patch(
            &serde_json::json!({"name": "renamed", "interval_seconds": 60, "keyword": "ok"}),
            t(10),
        )
        .unwrap();
    assert!(store.update_monitor(&changed).await.unwrap());
    assert_eq!(
        store.get_monitor(m.id).await.unwrap(),
        Some(changed.clone())
    );
    versions.push(store.monitors_version().await.unwrap());

    let ghost = monitor("http://127.0.0.1:2/");
    assert!(
        !store.update_monitor(&ghost).await.unwrap(),
        "updating an unknown monitor"
    );
    assert_eq!(
        store.get_monitor(ghost.id).await.unwrap(),
        None,
        "an update does not insert"
    );
    assert_eq!(store.monitors_version().await.unwrap(), versions[2]);
    assert_eq!(store.all_monitors().await.unwrap(), vec![changed]);

    assert!(store.delete_monitor(m.id).await.unwrap());
    assert_eq!(store.get_monitor(m.id).await.unwrap(), None);
    assert!(store.all_monitors().await.unwrap().is_empty());
    versions.push(store.monitors_version().await.unwrap());
    assert!(!store.delete_monitor(m.id).await.unwrap(), "deleting twice");
    assert_eq!(store.monitors_version().await.unwrap(), versions[3]);

    let mut distinct = versions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        versions.len(),
        "every write gives a new version: {versions:?}"
    );
}

/// Listing pages through monitors in id order, whatever the order of insertion.
pub async fn monitors_list_in_id_order(store: &dyn Store) {
    let monitors: Vec<Monitor> = (0..5)
        .map(|i| monitor(&format!("http://127.0.0.1:{}/", 10 + i)))
        .collect();
    for m in monitors.iter().rev() {
        store.insert_monitor(m).await.unwrap();
    }
    let mut expected = monitors.clone();
    expected.sort_by_key(|m| m.id);
    let ids = |page: Vec<Monitor>| page.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let all: Vec<Uuid> = expected.iter().map(|m| m.id).collect();

    assert_eq!(
        store.list_monitors(None, 2).await.unwrap(),
        expected[..2].to_vec()
    );
    assert_eq!(
        ids(store.list_monitors(Some(all[1]), 2).await.unwrap()),
        all[2..4]
    );
    assert_eq!(
        ids(store.list_monitors(Some(all[3]), 2).await.unwrap()),
        all[4..]
    );
    assert!(store
        .list_monitors(Some(all[4]), 2)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(ids(store.list_monitors(None, 100).await.unwrap()), all);
    assert_eq!(
        ids(store.list_monitors(Some(Uuid::nil()), 100).await.unwrap()),
        all
    );
    assert!(store
        .list_monitors(Some(Uuid::max()), 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.all_monitors().await.unwrap(), expected);
}

/// A monitor is found by its exact URL; with several, the first created (lowest id) wins.
pub async fn monitor_found_by_url(store: &dyn Store) {
    let a = monitor("http://127.0.0.1:20/a");
    let b = monitor("http://127.0.0.1:20/b");
    let a_again = monitor("http://127.0.0.1:20/a");
    for m in [&a_again, &b, &a] {
        store.insert_monitor(m).await.unwrap();
    }
    let first_a = if a.id < a_again.id { &a } else { &a_again };
    assert_eq!(
        store.find_monitor_by_url(&a.url).await.unwrap().as_ref(),
        Some(first_a)
    );
    assert_eq!(
        store.find_monitor_by_url(&b.url).await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        store
            .find_monitor_by_url("http://127.0.0.1:20/")
            .await
            .unwrap(),
        None
    );

    let moved = b
        .apply_patch(&serde_json::json!({"url": "http://127.0.0.1:20/c"}), t(5))
        .unwrap();
    assert!(store.update_monitor(&moved).await.unwrap());
    assert_eq!(
        store.find_monitor_by_url(&b.url).await.unwrap(),
        None,
        "the old URL is gone"
    );
    assert_eq!(
        store
            .find_monitor_by_url("http://127.0.0.1:20/c")
            .await
            .unwrap(),
        Some(moved)
    );
}

/// A new monitor starts `pending`, or `paused` when it is disabled.
pub async fn new_monitors_start_pending_or_paused(store: &dyn Store) {
    let on = monitor("http://127.0.0.1:30/");
    let off = disabled_monitor("http://127.0.0.1:31/");
    store.insert_monitor(&on).await.unwrap();
    store.insert_monitor(&off).await.unwrap();

    let on_state = store
        .get_state(on.id)
        .await
        .unwrap()
        .expect("a state for a new monitor");
    assert_eq!(on_state.monitor_id, on.id);
    assert_eq!(on_state.status, MonitorStatus::Pending);
    assert_eq!(on_state.last_checked, None);
    let off_state = store
        .get_state(off.id)
        .await
        .unwrap()
        .expect("a state for a disabled monitor");
    assert_eq!(off_state.status, MonitorStatus::Paused);
    assert_eq!(off_state.paused_from, Some(MonitorStatus::Pending));

    let mut states = store.list_states().await.unwrap();
    states.sort_by_key(|s| s.monitor_id);
    let mut expected = vec![on_state, off_state];
    expected.sort_by_key(|s| s.monitor_id);
    assert_eq!(states, expected);
    assert_eq!(store.get_state(Uuid::now_v7()).await.unwrap(), None);
}

/// Deleting a monitor deletes its history and state, and nothing of other monitors; results
/// that arrive for it afterwards are not stored and change nothing.
pub async fn delete_removes_history_and_state(store: &dyn Store) {
    let gone = monitor("http://127.0.0.1:40/");
    let kept = monitor("http://127.0.0.1:41/");
    store.insert_monitor(&gone).await.unwrap();
    store.insert_monitor(&kept).await.unwrap();
    let results = [
        result(&gone, 1, true),
        result(&gone, 2, false),
        result(&kept, 1, true),
    ];
    assert_eq!(store.insert_results(&results).await.unwrap(), 3);
    store.apply_result(&results[0]).await.unwrap();
    store.apply_result(&results[2]).await.unwrap();

    assert!(store.delete_monitor(gone.id).await.unwrap());
    assert!(store
        .history(gone.id, &query(100))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get_state(gone.id).await.unwrap(), None);
    assert_eq!(
        store.history(kept.id, &query(100)).await.unwrap(),
        vec![entry(&results[2])]
    );
    assert_eq!(
        store.get_state(kept.id).await.unwrap().unwrap().status,
        MonitorStatus::Up
    );
    let states = store.list_states().await.unwrap();
    assert_eq!(
        states.iter().map(|s| s.monitor_id).collect::<Vec<_>>(),
        vec![kept.id]
    );

    let late = result(&gone, 3, false);
    assert_eq!(
        store
            .insert_results(std::slice::from_ref(&late))
            .await
            .unwrap(),
        0,
        "late result of a deleted monitor"
    );
    assert!(store
        .history(gone.id, &query(100))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.apply_result(&late).await.unwrap(), None);
    assert_eq!(
        store.get_state(gone.id).await.unwrap(),
        None,
        "applying does not bring the state back"
    );
}

/// Storing results is idempotent on their id, within a batch and across batches.
pub async fn results_are_idempotent(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:50/");
    store.insert_monitor(&m).await.unwrap();
    let r: Vec<CheckResult> = (1..=5).map(|i| result(&m, i, i % 2 == 0)).collect();

    assert_eq!(store.insert_results(&[]).await.unwrap(), 0);
    assert_eq!(store.insert_results(&r[..3]).await.unwrap(), 3);
    assert_eq!(
        store
            .insert_results(&[r[1].clone(), r[3].clone(), r[0].clone()])
            .await
            .unwrap(),
        1,
        "only the new result counts"
    );
    assert_eq!(
        store
            .insert_results(&[r[4].clone(), r[4].clone()])
            .await
            .unwrap(),
        1
    );
    let history = store.history(m.id, &query(100)).await.unwrap();
    let expected: Vec<HistoryEntry> = r.iter().rev().map(entry).collect();
    assert_eq!(history, expected);
}

/// History is newest first by (checked_at, id); `since` is inclusive, `until` exclusive, the
/// cursor continues strictly after the entry it names, and `limit` bounds a page.
pub async fn history_pages_newest_first(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:60/");
    let other = monitor("http://127.0.0.1:61/");
    store.insert_monitor(&m).await.unwrap();
    store.insert_monitor(&other).await.unwrap();
    // Two results share t(30), so that the id decides their order.
    let results = vec![
        result(&m, 10, true),
        result(&m, 20, false),
        result(&m, 30, true),
        result(&m, 30, false),
        result(&m, 40, true),
        result(&m, 50, false),
    ];
    assert_eq!(store.insert_results(&results).await.unwrap(), 6);
    store
        .insert_results(&[result(&other, 35, true)])
        .await
        .unwrap();
    let mut newest_first: Vec<HistoryEntry> = results.iter().map(entry).collect();
    newest_first.sort_by_key(|e| std::cmp::Reverse((e.checked_at, e.id)));

    assert_eq!(
        store.history(m.id, &query(100)).await.unwrap(),
        newest_first
    );
    assert!(store
        .history(Uuid::now_v7(), &query(100))
        .await
        .unwrap()
        .is_empty());

    // Pages of three split the two results of t(30).
    let page1 = store.history(m.id, &query(3)).await.unwrap();
    assert_eq!(page1, newest_first[..3]);
    let next = HistoryQuery {
        after: Some(cursor(&page1[2])),
        ..query(3)
    };
    let page2 = store.history(m.id, &next).await.unwrap();
    assert_eq!(page2, newest_first[3..]);
    let end = HistoryQuery {
        after: Some(cursor(&page2[2])),
        ..query(3)
    };
    assert!(store.history(m.id, &end).await.unwrap().is_empty());

    let since = HistoryQuery {
        since: Some(t(20)),
        ..query(100)
    };
    assert_eq!(
        store.history(m.id, &since).await.unwrap(),
        newest_first[..5],
        "since is inclusive"
    );
    let until = HistoryQuery {
        until: Some(t(40)),
        ..query(100)
    };
    assert_eq!(
        store.history(m.id, &until).await.unwrap(),
        newest_first[2..],
        "until is exclusive"
    );

    let window = HistoryQuery {
        since: Some(t(20)),
        until: Some(t(40)),
        ..query(2)
    };
    let first = store.history(m.id, &window).await.unwrap();
    assert_eq!(first, newest_first[2..4]);
    let rest = HistoryQuery {
        after: Some(cursor(&first[1])),
        ..window
    };
    assert_eq!(
        store.history(m.id, &rest).await.unwrap(),
        newest_first[4..5]
    );
}

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
        webhook_ids: Some(vec![chosen.id, chosen_off.id, Uuid::now_v7()]),
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

/// Disabling a monitor through an update pauses it; enabling resumes it in its old status,
/// so that a site still down sends nothing new and its recovery still alerts. Updates that
/// leave `enabled` alone leave the state alone.
pub async fn pause_and_resume_via_update(store: &dyn Store) {
    store.upsert_webhook(&webhook("hook", 1)).await.unwrap();
    let m = monitor("http://127.0.0.1:100/");
    store.insert_monitor(&m).await.unwrap();
    assert!(store
        .apply_result(&result(&m, 10, false))
        .await
        .unwrap()
        .is_some());

    let renamed = m
        .apply_patch(&serde_json::json!({"name": "renamed"}), t(11))
        .unwrap();
    let before = store.get_state(m.id).await.unwrap();
    assert!(store.update_monitor(&renamed).await.unwrap());
    assert_eq!(
        store.get_state(m.id).await.unwrap(),
        before,
        "a rename keeps the state"
    );

    let off = renamed
        .apply_patch(&serde_json::json!({"enabled": false}), t(12))
        .unwrap();
    assert!(store.update_monitor(&off).await.unwrap());
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Paused);
    assert_eq!(state.paused_from, Some(MonitorStatus::Down));
    assert_eq!(
        store.apply_result(&result(&m, 20, true)).await.unwrap(),
        None,
        "paused"
    );
    assert_eq!(
        store.get_state(m.id).await.unwrap().unwrap().status,
        MonitorStatus::Paused
    );

    let on = off
        .apply_patch(&serde_json::json!({"enabled": true}), t(21))
        .unwrap();
    assert!(store.update_monitor(&on).await.unwrap());
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Down);
    assert_eq!(state.consecutive_failures, 0);
    assert_eq!(
        store.apply_result(&result(&m, 30, false)).await.unwrap(),
        None,
        "still down"
    );
    let recovery = store
        .apply_result(&result(&m, 40, true))
        .await
        .unwrap()
        .expect("recovery alerts");
    assert_eq!(recovery.kind, AlertKind::Recovery);
    assert_eq!(recovery.monitor_name, "renamed");
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);

    let later = disabled_monitor("http://127.0.0.1:101/");
    store.insert_monitor(&later).await.unwrap();
    let enabled = later
        .apply_patch(&serde_json::json!({"enabled": true}), t(50))
        .unwrap();
    assert!(store.update_monitor(&enabled).await.unwrap());
    assert_eq!(
        store.get_state(later.id).await.unwrap().unwrap().status,
        MonitorStatus::Pending
    );
}

/// Webhooks are listed oldest first; an upsert updates name, URL and source but keeps
/// whether the webhook is enabled (and why not), and its creation time.
pub async fn webhooks_upsert_keeps_enabled(store: &dyn Store) {
    assert!(store.list_webhooks().await.unwrap().is_empty());
    let newer = webhook("newer", 20);
    let older = webhook("older", 10);
    store.upsert_webhook(&newer).await.unwrap();
    store.upsert_webhook(&older).await.unwrap();
    assert_eq!(
        store.get_webhook(newer.id).await.unwrap(),
        Some(newer.clone())
    );
    assert_eq!(store.get_webhook(Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(
        store.list_webhooks().await.unwrap(),
        vec![older.clone(), newer.clone()]
    );

    let reason = "the endpoint answered HTTP 404 (unknown webhook)";
    store.disable_webhook(older.id, reason).await.unwrap();
    let disabled = store.get_webhook(older.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some(reason));

    let again = Webhook {
        name: "renamed".into(),
        url: "http://127.0.0.1:9/hooks/moved".into(),
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Config,
        created_at: t(99),
        ..older.clone()
    };
    store.upsert_webhook(&again).await.unwrap();
    let got = store.get_webhook(older.id).await.unwrap().unwrap();
    assert_eq!(got.name, "renamed");
    assert_eq!(got.url, again.url);
    assert_eq!(got.source, WebhookSource::Config);
    assert!(!got.enabled, "an upsert keeps a webhook disabled");
    assert_eq!(got.disabled_reason.as_deref(), Some(reason));
    assert_eq!(got.created_at, older.created_at);

    store
        .disable_webhook(Uuid::now_v7(), "whatever")
        .await
        .unwrap();
    assert!(store.delete_webhook(newer.id).await.unwrap());
    assert!(!store.delete_webhook(newer.id).await.unwrap());
    assert_eq!(store.list_webhooks().await.unwrap(), vec![got]);
}

/// Enabling a disabled webhook clears its reason and brings it back into new alerts, without
/// reviving the deliveries that failed while it was disabled.
pub async fn enable_webhook_resumes_alerts(store: &dyn Store) {
    let hook = webhook("revived", 1);
    let (m, _) = alerting_monitor(store, "http://127.0.0.1:111/", &[&hook]).await;
    store.disable_webhook(hook.id, "HTTP 404").await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);

    assert!(store.enable_webhook(hook.id).await.unwrap());
    let got = store.get_webhook(hook.id).await.unwrap().unwrap();
    assert!(got.enabled);
    assert_eq!(got.disabled_reason, None);
    assert_eq!(
        store.pending_deliveries().await.unwrap(),
        0,
        "failed deliveries stay failed"
    );
    assert!(store.enable_webhook(hook.id).await.unwrap(), "idempotent");
    assert!(!store.enable_webhook(Uuid::now_v7()).await.unwrap());

    store
        .apply_result(&result(&m, 20, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![hook.id]);
    let delivery = store.next_delivery(hook.id).await.unwrap().unwrap();
    assert_eq!(delivery.alert.kind, AlertKind::Recovery);
}

/// Disabling a webhook fails its pending deliveries and keeps it out of new alerts.
pub async fn disable_webhook_fails_pending(store: &dyn Store) {
    let dead = webhook("dead", 1);
    let alive = webhook("alive", 2);
    let (m, _) = alerting_monitor(store, "http://127.0.0.1:110/", &[&dead, &alive]).await;
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);

    store.disable_webhook(dead.id, "HTTP 404").await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![alive.id]);
    assert!(store.next_delivery(dead.id).await.unwrap().is_none());
    assert!(store.next_delivery(alive.id).await.unwrap().is_some());

    store
        .apply_result(&result(&m, 20, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.pending_deliveries().await.unwrap(),
        2,
        "only the enabled webhook"
    );
    assert!(store.next_delivery(dead.id).await.unwrap().is_none());
}

/// Deleting a webhook deletes its pending deliveries and nothing of other webhooks.
pub async fn delete_webhook_removes_pending(store: &dyn Store) {
    let gone = webhook("gone", 1);
    let kept = webhook("kept", 2);
    let (m, alert) = alerting_monitor(store, "http://127.0.0.1:120/", &[&gone, &kept]).await;
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);

    assert!(store.delete_webhook(gone.id).await.unwrap());
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![kept.id]);
    assert!(store.next_delivery(gone.id).await.unwrap().is_none());
    assert_eq!(
        store.next_delivery(kept.id).await.unwrap().unwrap().alert,
        alert
    );

    store
        .apply_result(&result(&m, 20, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);
}

/// Each webhook's deliveries go out oldest first, independently of other webhooks; the next
/// delivery is returned even when its retry time is in the future; a retry counts an attempt,
/// and sent or failed deliveries are no longer pending.
pub async fn outbox_delivers_in_order(store: &dyn Store) {
    let w = webhook("w", 1);
    let x = webhook("x", 2);
    store.upsert_webhook(&w).await.unwrap();
    store.upsert_webhook(&x).await.unwrap();
    let m = monitor("http://127.0.0.1:130/");
    store.insert_monitor(&m).await.unwrap();
    assert!(store.next_delivery(w.id).await.unwrap().is_none());
    assert!(store.webhooks_with_pending().await.unwrap().is_empty());

    let mut alerts = Vec::new();
    for (at, up) in [(10, false), (20, true), (30, false)] {
        alerts.push(
            store
                .apply_result(&result(&m, at, up))
                .await
                .unwrap()
                .expect("a transition"),
        );
    }
    assert_eq!(store.pending_deliveries().await.unwrap(), 6);

    let first = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(first.alert, alerts[0]);
    assert_eq!(first.webhook, w);
    assert_eq!(first.attempts, 0);
    assert!(
        first.next_attempt_at <= Utc::now(),
        "a new delivery is due at once"
    );

    let retry_at = now_ms() + Duration::hours(1);
    store
        .delivery_retry(first.id, retry_at, "HTTP 503")
        .await
        .unwrap();
    let again = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(again.id, first.id, "a retried delivery stays first in line");
    assert_eq!(again.attempts, 1);
    assert_eq!(again.next_attempt_at, retry_at);
    assert_eq!(store.pending_deliveries().await.unwrap(), 6);

    store.delivery_sent(first.id).await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 5);
    let second = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(second.alert, alerts[1]);
    assert_eq!(
        store.next_delivery(x.id).await.unwrap().unwrap().alert,
        alerts[0],
        "another webhook keeps its own order"
    );

    store.delivery_failed(second.id, "HTTP 400").await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 4);
    let third = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(third.alert, alerts[2]);
    store.delivery_sent(third.id).await.unwrap();
    assert!(store.next_delivery(w.id).await.unwrap().is_none());
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![x.id]);
    assert_eq!(store.pending_deliveries().await.unwrap(), 3);

    // A retry of a delivery that is done does not bring it back.
    store
        .delivery_retry(second.id, retry_at, "late")
        .await
        .unwrap();
    assert!(store.next_delivery(w.id).await.unwrap().is_none());

    while let Some(d) = store.next_delivery(x.id).await.unwrap() {
        store.delivery_sent(d.id).await.unwrap();
    }
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
    assert!(store.webhooks_with_pending().await.unwrap().is_empty());
}

// --- History at scale: rollups, incidents, retention ---

/// A small deterministic generator, so that "random" sequences are the same on every run and
/// a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every rollup a store holds for `m` in `[t(from), t(to))`, by (resolution, start).
async fn rollups_of(
    store: &dyn Store,
    m: Uuid,
    from: i64,
    to: i64,
) -> BTreeMap<(Resolution, DateTime<Utc>), Rollup> {
    let runs: Vec<RollupRun> = Resolution::ALL
        .into_iter()
        .map(|resolution| RollupRun {
            resolution,
            from: resolution.bucket_start(t(from)),
            to: t(to),
        })
        .collect();
    store
        .rollups(&[m], &runs)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(r.monitor_id, m);
            ((r.resolution, r.start), r.rollup)
        })
        .collect()
}

/// The rollups the raw rows of `m`'s history add up to, computed from history alone.
async fn rollups_from_history(
    store: &dyn Store,
    m: &Monitor,
) -> BTreeMap<(Resolution, DateTime<Utc>), Rollup> {
    let mut expected: BTreeMap<(Resolution, DateTime<Utc>), Rollup> = BTreeMap::new();
    for e in store.history(m.id, &query(100_000)).await.unwrap() {
        let mut r = result(m, 0, e.status == CheckStatus::Up);
        r.checked_at = e.checked_at;
        r.response_time_ms = e.response_time_ms;
        for key in rollup_keys(e.checked_at) {
            expected.entry(key).or_default().add(&r);
        }
    }
    expected
}

/// For random sequences of results (random times over three days, up or down, response
/// times from 0 ms to minutes), written in random batches with redeliveries mixed in, every
/// minute, hour and day rollup equals the aggregate of the raw rows it summarizes.
pub async fn rollups_equal_the_raw_rows_they_summarize(store: &dyn Store) {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let m = monitor(&format!("http://127.0.0.1:{}/", 1000 + seed));
        store.insert_monitor(&m).await.unwrap();
        let count = 1 + rng.below(300) as usize;
        let mut all: Vec<CheckResult> = (0..count)
            .map(|_| {
                let mut r = result(&m, rng.below(3 * 86_400) as i64, rng.below(4) != 0);
                r.checked_at += Duration::milliseconds(rng.below(1000) as i64);
                r.response_time_ms = match rng.below(10) {
                    0 => rng.below(300_000) as u32,
                    _ => rng.below(2_000) as u32,
                };
                r
            })
            .collect();
        // Redeliveries: some results come again, in a later batch or the same one.
        for _ in 0..rng.below(30) {
            let again = all[rng.below(all.len() as u64) as usize].clone();
            all.push(again);
        }
        let mut stored = 0;
        let mut rest = &all[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(50) as usize).min(rest.len());
            stored += store.insert_results(&rest[..n]).await.unwrap();
            rest = &rest[n..];
        }
        assert_eq!(stored, count as u64, "seed {seed}: each result stored once");
        let expected = rollups_from_history(store, &m).await;
        let actual = rollups_of(store, m.id, -86_400, 5 * 86_400).await;
        assert_eq!(actual.len(), expected.len(), "seed {seed}: rollup keys");
        for (key, rollup) in &expected {
            assert_eq!(actual.get(key), Some(rollup), "seed {seed}: rollup {key:?}");
        }
    }
}

/// Batches written at the same time that add to the same rollups lose no count.
pub async fn concurrent_batches_add_up(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:1100/");
    store.insert_monitor(&m).await.unwrap();
    let batches: Vec<Vec<CheckResult>> = (0..8)
        .map(|b| {
            (0..25)
                .map(|i| result(&m, b * 25 + i, i % 5 != 0))
                .collect()
        })
        .collect();
    let writes = batches.iter().map(|batch| store.insert_results(batch));
    let stored: u64 = futures::future::join_all(writes)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert_eq!(stored, 200);
    let day = rollups_of(store, m.id, 0, 1)
        .await
        .into_iter()
        .find(|((r, _), _)| *r == Resolution::Day)
        .expect("a day rollup")
        .1;
    assert_eq!((day.checks, day.up, day.down), (200, 160, 40));
    assert_eq!(day.sketch.count(), 200);
}

/// Pruning deletes the given monitors' raw results checked before the cutoff and the rollups
/// whose bucket ended before their cutoff, and nothing newer, nor other monitors' history.
pub async fn retention_prunes_exactly_what_is_older(store: &dyn Store) {
    let pruned_monitor = monitor("http://127.0.0.1:1200/");
    let other = monitor("http://127.0.0.1:1201/");
    for m in [&pruned_monitor, &other] {
        store.insert_monitor(m).await.unwrap();
        // One result every 10 minutes over two days.
        let results: Vec<CheckResult> = (0..288).map(|i| result(m, i * 600, true)).collect();
        assert_eq!(store.insert_results(&results).await.unwrap(), 288);
    }
    let before_raw = t(86_400); // raw results before day 1 go
    let before_minute = t(86_400 + 3_600 + 30); // minute buckets ended before this go
    let before_hour = t(2 * 3_600); // hour buckets ended before this go
    let cutoffs = Cutoffs {
        raw: Some(before_raw),
        rollups: [
            (Resolution::Minute, Some(before_minute)),
            (Resolution::Hour, Some(before_hour)),
            (Resolution::Day, None),
        ],
    };
    let before = rollups_of(store, pruned_monitor.id, -86_400, 3 * 86_400).await;
    let pruned = store.prune(&[pruned_monitor.id], &cutoffs).await.unwrap();

    let history = store
        .history(pruned_monitor.id, &query(1000))
        .await
        .unwrap();
    assert_eq!(history.len(), 144, "the second day's results stay");
    assert!(history.iter().all(|e| e.checked_at >= before_raw));
    assert_eq!(pruned.raw, 144);

    let after = rollups_of(store, pruned_monitor.id, -86_400, 3 * 86_400).await;
    let mut gone = 0;
    for (resolution, start) in before.keys() {
        // A bucket goes when it ended before its resolution's cutoff.
        let should_go = match resolution {
            Resolution::Minute => *start + resolution.duration() < before_minute,
            Resolution::Hour => *start + resolution.duration() < before_hour,
            Resolution::Day => false,
        };
        let went = !after.contains_key(&(*resolution, *start));
        assert_eq!(went, should_go, "{resolution:?} bucket at {start}");
        gone += u64::from(went);
    }
    assert_eq!(pruned.rollups, gone);
    assert_eq!(
        after.len() as u64,
        before.len() as u64 - gone,
        "nothing added"
    );
    // At the edges: the minute of the result at 89,400 s ended before the cutoff (90,030 s);
    // the minute of the one at 90,000 s ends after it, and stays.
    let minute = |s: i64| (Resolution::Minute, Resolution::Minute.bucket_start(t(s)));
    let hour = |s: i64| (Resolution::Hour, Resolution::Hour.bucket_start(t(s)));
    assert!(!after.contains_key(&minute(89_400)));
    assert!(after.contains_key(&minute(90_000)));
    assert!(!after.contains_key(&hour(0)));
    assert!(after.contains_key(&hour(7_200)));

    // The other monitor keeps everything; pruning again finds nothing more.
    assert_eq!(
        store.history(other.id, &query(1000)).await.unwrap().len(),
        288
    );
    assert_eq!(
        store.prune(&[pruned_monitor.id], &cutoffs).await.unwrap(),
        Pruned::default()
    );
    assert_eq!(store.prune(&[], &cutoffs).await.unwrap(), Pruned::default());
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

/// Deleting a monitor deletes its rollups and incidents, and no other monitor's.
pub async fn delete_removes_rollups_and_incidents(store: &dyn Store) {
    let gone = monitor("http://127.0.0.1:1400/");
    let kept = monitor("http://127.0.0.1:1401/");
    for m in [&gone, &kept] {
        store.insert_monitor(m).await.unwrap();
        let results = [result(m, 1, true), result(m, 2, false)];
        store.insert_results(&results).await.unwrap();
        for r in &results {
            store.apply_result(r).await.unwrap();
        }
    }
    let all = IncidentQuery {
        limit: 10,
        ..IncidentQuery::default()
    };
    assert_eq!(store.incidents(&all).await.unwrap().len(), 2);
    assert!(store.delete_monitor(gone.id).await.unwrap());
    assert!(rollups_of(store, gone.id, 0, 86_400).await.is_empty());
    assert_eq!(rollups_of(store, kept.id, 0, 86_400).await.len(), 3);
    let left = store.incidents(&all).await.unwrap();
    assert_eq!(
        left.iter().map(|i| i.monitor_id).collect::<Vec<_>>(),
        vec![kept.id]
    );
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

/// Several monitors are added in one call, all or none: a duplicate id adds nothing.
pub async fn insert_monitors_is_all_or_nothing(store: &dyn Store) {
    let version = store.monitors_version().await.unwrap();
    let batch: Vec<Monitor> = (0..5)
        .map(|i| monitor(&format!("http://127.0.0.1:{}/", 1600 + i)))
        .collect();
    store.insert_monitors(&batch).await.unwrap();
    assert_ne!(store.monitors_version().await.unwrap(), version);
    for m in &batch {
        assert_eq!(store.get_monitor(m.id).await.unwrap().as_ref(), Some(m));
        assert_eq!(
            store.get_state(m.id).await.unwrap().unwrap().status,
            MonitorStatus::Pending
        );
    }
    let version = store.monitors_version().await.unwrap();
    let fresh = monitor("http://127.0.0.1:1610/");
    let refused = store
        .insert_monitors(&[fresh.clone(), batch[2].clone()])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.get_monitor(fresh.id).await.unwrap(),
        None,
        "none added"
    );
    assert_eq!(store.monitors_version().await.unwrap(), version);
    store.insert_monitors(&[]).await.unwrap();
}
