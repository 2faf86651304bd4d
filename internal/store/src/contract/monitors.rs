//! Monitors: creating, listing, finding, changing, pausing and deleting them ([`MonitorReader`](crate::MonitorReader), [`MonitorStore`](crate::MonitorStore)).

use upwatch_core::{AlertKind, Monitor, MonitorStatus};
use uuid::Uuid;

use crate::{Store, StoreError};

use super::*;

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
