//! Live status of every monitor, for the API's fast path: the [`StatusCache`] trait and its
//! implementations.
//!
//! The cache holds, per monitor, its name and URL and the state machine's [`MonitorState`].
//! The cache updater runs the state machine on each result over the cached entry; the API
//! writes entries when monitors are created, edited, paused or deleted.
//!
//! Layout: this file has the trait; [`memory`] the embedded implementation; [`redis_cache`] the
//! distributed one; [`contract`] the behaviour every implementation must show.

pub mod contract;
pub mod memory;
pub mod redis_cache;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use upwatch_core::{Monitor, MonitorState};
use uuid::Uuid;

pub use memory::MemoryCache;
pub use redis_cache::RedisCache;

/// What the cache knows of one monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStatus {
    pub name: String,
    pub url: String,
    pub state: MonitorState,
}

impl LiveStatus {
    /// The entry of `monitor` in `state`.
    pub fn new(monitor: &Monitor, state: MonitorState) -> Self {
        LiveStatus {
            name: monitor.name.clone(),
            url: monitor.url.clone(),
            state,
        }
    }

    /// The state of `monitor` before any result: pending, or paused when it is disabled.
    pub fn fresh_state(monitor: &Monitor) -> MonitorState {
        MonitorState::initial(monitor.id, monitor.enabled, monitor.updated_at)
    }

    /// An entry per monitor, in the monitors' order, each with its state from `states` or,
    /// when it has none, [`LiveStatus::fresh_state`]: the live status as the store has it.
    pub fn join(monitors: &[Monitor], states: Vec<MonitorState>) -> Vec<LiveStatus> {
        let mut states: std::collections::HashMap<Uuid, MonitorState> =
            states.into_iter().map(|s| (s.monitor_id, s)).collect();
        monitors
            .iter()
            .map(|m| {
                let state = states
                    .remove(&m.id)
                    .unwrap_or_else(|| LiveStatus::fresh_state(m));
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
    /// Forgets a monitor.
    async fn remove(&self, id: Uuid) -> CacheResult<()>;
}

/// Whether `new` may replace `old`: never move `last_checked` backwards.
pub fn is_not_older(new: &LiveStatus, old: &LiveStatus) -> bool {
    match (new.state.last_checked, old.state.last_checked) {
        (Some(n), Some(o)) => n >= o,
        (None, Some(_)) => false,
        _ => true,
    }
}
