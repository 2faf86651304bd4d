//! The behaviour every [`StatusCache`] must show; each implementation's tests call these
//! functions with a fresh, empty cache (a fresh key prefix for a server).

use chrono::{DateTime, Utc};
use upwatch_core::{MonitorState, MonitorStatus};
use uuid::Uuid;

use crate::{LiveStatus, StatusCache};

fn entry(id: Uuid, status: MonitorStatus, checked: Option<i64>) -> LiveStatus {
    let mut state = MonitorState::new(id);
    state.status = status;
    state.last_checked =
        checked.map(|s| DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap());
    state.response_time_ms = Some(12);
    LiveStatus {
        name: format!("site {id}"),
        url: "http://127.0.0.1:1/".into(),
        state,
    }
}

/// Entries come back as written, listed in id order, and go when removed.
pub async fn entries_round_trip(cache: &dyn StatusCache) {
    cache.ping().await.unwrap();
    let mut ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    ids.sort();
    assert_eq!(cache.get(ids[0]).await.unwrap(), None);
    for id in ids.iter().rev() {
        assert!(cache
            .put(&entry(*id, MonitorStatus::Up, Some(1)))
            .await
            .unwrap());
    }
    assert_eq!(
        cache.get(ids[1]).await.unwrap(),
        Some(entry(ids[1], MonitorStatus::Up, Some(1)))
    );
    let listed: Vec<Uuid> = cache
        .list()
        .await
        .unwrap()
        .iter()
        .map(LiveStatus::id)
        .collect();
    assert_eq!(listed, ids);
    cache.remove(ids[1]).await.unwrap();
    assert_eq!(cache.get(ids[1]).await.unwrap(), None);
    assert_eq!(cache.list().await.unwrap().len(), 2);
}

/// A redelivered older status never replaces a newer one; same-age writes (a pause) do.
pub async fn older_never_overwrites_newer(cache: &dyn StatusCache) {
    let id = Uuid::now_v7();
    assert!(cache
        .put(&entry(id, MonitorStatus::Pending, None))
        .await
        .unwrap());
    assert!(cache
        .put(&entry(id, MonitorStatus::Down, Some(10)))
        .await
        .unwrap());
    assert!(!cache
        .put(&entry(id, MonitorStatus::Up, Some(5)))
        .await
        .unwrap());
    assert!(!cache
        .put(&entry(id, MonitorStatus::Pending, None))
        .await
        .unwrap());
    assert_eq!(
        cache.get(id).await.unwrap().unwrap().state.status,
        MonitorStatus::Down
    );
    assert!(cache
        .put(&entry(id, MonitorStatus::Paused, Some(10)))
        .await
        .unwrap());
    assert_eq!(
        cache.get(id).await.unwrap().unwrap().state.status,
        MonitorStatus::Paused
    );
}
