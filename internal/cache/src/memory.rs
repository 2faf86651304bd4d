//! The in-memory cache of the embedded mode: a map behind a read-write lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{is_not_older, CacheResult, LiveStatus, StaleMark, StatusCache};

/// A [`StatusCache`] in this process's memory.
#[derive(Default)]
pub struct MemoryCache {
    entries: RwLock<Entries>,
}

/// The entries and the watchdog's marks, under one lock so that a write and its clearing
/// of the mark are one step.
#[derive(Default)]
struct Entries {
    live: BTreeMap<Uuid, LiveStatus>,
    stale: HashMap<Uuid, DateTime<Utc>>,
}

impl Entries {
    /// `entry` with the watchdog's mark filled in.
    fn shown(&self, entry: &LiveStatus) -> LiveStatus {
        let mut entry = entry.clone();
        entry.stale_since = self.stale.get(&entry.id()).copied();
        entry
    }
}

impl MemoryCache {
    pub fn new() -> Self {
        MemoryCache::default()
    }
}

#[async_trait]
impl StatusCache for MemoryCache {
    async fn ping(&self) -> CacheResult<()> {
        Ok(())
    }

    async fn get(&self, id: Uuid) -> CacheResult<Option<LiveStatus>> {
        let entries = self.entries.read().expect("cache lock");
        Ok(entries.live.get(&id).map(|e| entries.shown(e)))
    }

    async fn list(&self) -> CacheResult<Vec<LiveStatus>> {
        let entries = self.entries.read().expect("cache lock");
        Ok(entries.live.values().map(|e| entries.shown(e)).collect())
    }

    async fn page(&self, after: Option<Uuid>, limit: usize) -> CacheResult<Vec<LiveStatus>> {
        use std::ops::Bound;
        let entries = self.entries.read().expect("cache lock");
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(entries
            .live
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, entry)| entries.shown(entry))
            .collect())
    }

    async fn put(&self, entry: &LiveStatus) -> CacheResult<bool> {
        let mut entries = self.entries.write().expect("cache lock");
        let old = entries.live.get(&entry.id());
        if old.is_some_and(|old| !is_not_older(entry, old)) {
            return Ok(false);
        }
        // A newer check time is the monitor's next result: it clears the watchdog's mark.
        if entry.state.last_checked > old.and_then(|o| o.state.last_checked) {
            entries.stale.remove(&entry.id());
        }
        entries.live.insert(entry.id(), entry.clone());
        Ok(true)
    }

    async fn remove(&self, id: Uuid) -> CacheResult<()> {
        let mut entries = self.entries.write().expect("cache lock");
        entries.live.remove(&id);
        entries.stale.remove(&id);
        Ok(())
    }

    async fn check_times(&self) -> CacheResult<HashMap<Uuid, Option<DateTime<Utc>>>> {
        let entries = self.entries.read().expect("cache lock");
        Ok(entries
            .live
            .iter()
            .map(|(id, e)| (*id, e.state.last_checked))
            .collect())
    }

    async fn set_stale(&self, marks: &[StaleMark], cleared: &[Uuid]) -> CacheResult<()> {
        let mut entries = self.entries.write().expect("cache lock");
        for id in cleared {
            entries.stale.remove(id);
        }
        for mark in marks {
            let current = entries
                .live
                .get(&mark.monitor_id)
                .and_then(|e| e.state.last_checked);
            if current == mark.seen {
                entries.stale.insert(mark.monitor_id, mark.since);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[tokio::test]
    async fn contract_round_trip() {
        contract::entries_round_trip(&MemoryCache::new()).await;
    }

    #[tokio::test]
    async fn contract_concurrent_writers_keep_newest() {
        let cache = MemoryCache::new();
        contract::concurrent_writers_keep_newest(&cache, &cache).await;
    }

    #[tokio::test]
    async fn contract_older_never_overwrites_newer() {
        contract::older_never_overwrites_newer(&MemoryCache::new()).await;
    }

    #[tokio::test]
    async fn contract_stale_marks() {
        contract::stale_marks(&MemoryCache::new()).await;
    }

    #[tokio::test]
    async fn contract_many_at_once() {
        contract::many_at_once(&MemoryCache::new()).await;
    }
}
