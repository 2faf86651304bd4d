//! Live status of every monitor, for the API's fast path: the [`StatusCache`] trait and its
//! implementations.
//!
//! The cache holds, per monitor, its name and URL and the state machine's [`MonitorState`].
//! The cache updater runs the state machine on each result over the cached entry; the API
//! writes entries when monitors are created, edited, paused or deleted.
//!
//! Layout: this file has the trait (the port); [`memory`] the embedded implementation;
//! `contract` (behind the `contract` feature, for drivers' tests) the behaviour every
//! implementation must show. The distributed implementation is a driver of its own,
//! `upwatch-cache-redis`, so that nothing that only needs the port links a Redis client.

#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod memory;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use upwatch_core::{Monitor, MonitorState, MonitorStatus};
use uuid::Uuid;

pub use memory::MemoryCache;

/// What the cache knows of one monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStatus {
    pub name: String,
    pub url: String,
    pub state: MonitorState,
    /// When the watchdog found the monitor without a result for too long; `None` while its
    /// results come. The cache keeps this mark apart from the entry and fills it in on every
    /// read, whatever a writer passed; the monitor's next result clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<DateTime<Utc>>,
}

impl LiveStatus {
    /// The entry of `monitor` in `state`.
    pub fn new(monitor: &Monitor, state: MonitorState) -> Self {
        LiveStatus {
            name: monitor.name.clone(),
            url: monitor.url.clone(),
            state,
            stale_since: None,
        }
    }

    /// The state as people see it: the state machine's, except that an enabled monitor the
    /// watchdog marked shows [`MonitorStatus::Stale`] (its last result and error stay, for
    /// the time of its last result), and one whose newest result came during a maintenance
    /// window shows [`MonitorStatus::Maintenance`].
    pub fn shown_state(&self) -> MonitorState {
        let mut state = self.state.clone();
        if state.status == MonitorStatus::Paused {
            return state;
        }
        if self.stale_since.is_some() {
            state.status = MonitorStatus::Stale;
        } else if state.in_maintenance {
            state.status = MonitorStatus::Maintenance;
        }
        state
    }

    /// An entry per monitor, in the monitors' order, each with its state from `states` or,
    /// when it has none, [`Monitor::initial_state`]: the live status as the store has it.
    pub fn join(monitors: &[Monitor], states: Vec<MonitorState>) -> Vec<LiveStatus> {
        let mut states: std::collections::HashMap<Uuid, MonitorState> =
            states.into_iter().map(|s| (s.monitor_id, s)).collect();
        monitors
            .iter()
            .map(|m| {
                let state = states.remove(&m.id).unwrap_or_else(|| m.initial_state());
                LiveStatus::new(m, state)
            })
            .collect()
    }

    pub fn id(&self) -> Uuid {
        self.state.monitor_id
    }
}

/// What can go wrong in a cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The cache server could not be reached or answered with an error.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// An entry could not be encoded or decoded.
    #[error("bad cache entry: {0}")]
    Codec(#[from] serde_json::Error),
}

pub type CacheResult<T> = Result<T, CacheError>;

/// Latest status of every monitor.
#[async_trait]
pub trait StatusCache: Send + Sync + 'static {
    /// Succeeds when the cache answers.
    async fn ping(&self) -> CacheResult<()>;
    /// One monitor's entry.
    async fn get(&self, id: Uuid) -> CacheResult<Option<LiveStatus>>;
    /// Every entry, ordered by monitor id.
    async fn list(&self) -> CacheResult<Vec<LiveStatus>>;
    /// The entries after `after` in monitor-id order, at most `limit` of them: one page of
    /// [`StatusCache::list`], without reading every entry where the cache can avoid it.
    async fn page(&self, after: Option<Uuid>, limit: usize) -> CacheResult<Vec<LiveStatus>> {
        let entries = self.list().await?;
        let start = after.map_or(0, |after| entries.partition_point(|e| e.id() <= after));
        Ok(entries.into_iter().skip(start).take(limit).collect())
    }
    /// Writes an entry unless the cached one was checked more recently (a redelivered, older
    /// result never overwrites a newer status). Returns whether it was written.
    async fn put(&self, entry: &LiveStatus) -> CacheResult<bool>;
    /// The entries of `ids` that exist, by monitor id: [`StatusCache::get`] for many, in one
    /// round trip where the cache can.
    async fn get_many(&self, ids: &[Uuid]) -> CacheResult<HashMap<Uuid, LiveStatus>> {
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = self.get(*id).await? {
                found.insert(*id, entry);
            }
        }
        Ok(found)
    }
    /// [`StatusCache::put`] of entries of distinct monitors, in as few round trips as the
    /// cache can; whether each was written, in order.
    async fn put_many(&self, entries: &[LiveStatus]) -> CacheResult<Vec<bool>> {
        let mut written = Vec::with_capacity(entries.len());
        for entry in entries {
            written.push(self.put(entry).await?);
        }
        Ok(written)
    }
    /// Forgets a monitor.
    async fn remove(&self, id: Uuid) -> CacheResult<()>;
    /// Every monitor's newest check time (`None`: no result yet), read by the watchdog.
    async fn check_times(&self) -> CacheResult<HashMap<Uuid, Option<DateTime<Utc>>>>;
    /// Marks monitors stale and clears the marks of `cleared`. A mark is set only while the
    /// monitor's check time is still the one the watchdog judged (`seen`), so a result that
    /// arrived meanwhile is never marked stale; a later result clears the mark by itself.
    async fn set_stale(&self, marks: &[StaleMark], cleared: &[Uuid]) -> CacheResult<()>;
}

/// The watchdog's verdict on one monitor, for [`StatusCache::set_stale`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleMark {
    pub monitor_id: Uuid,
    /// The check time the verdict was based on.
    pub seen: Option<DateTime<Utc>>,
    /// When the monitor was found stale.
    pub since: DateTime<Utc>,
}

/// Whether `new` may replace `old`: never move `last_checked` backwards.
pub fn is_not_older(new: &LiveStatus, old: &LiveStatus) -> bool {
    match (new.state.last_checked, old.state.last_checked) {
        (Some(n), Some(o)) => n >= o,
        (None, Some(_)) => false,
        _ => true,
    }
}
