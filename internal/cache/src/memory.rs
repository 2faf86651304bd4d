//! The in-memory cache of the embedded mode: a map behind a read-write lock.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{is_not_older, CacheResult, LiveStatus, StatusCache};

/// A [`StatusCache`] in this process's memory.
#[derive(Default)]
pub struct MemoryCache {
    entries: RwLock<BTreeMap<Uuid, LiveStatus>>,
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
        Ok(self.entries.read().expect("cache lock").get(&id).cloned())
    }

    async fn list(&self) -> CacheResult<Vec<LiveStatus>> {
        Ok(self
            .entries
            .read()
            .expect("cache lock")
            .values()
            .cloned()
            .collect())
    }

    async fn page(&self, after: Option<Uuid>, limit: usize) -> CacheResult<Vec<LiveStatus>> {
        use std::ops::Bound;
        let entries = self.entries.read().expect("cache lock");
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(entries
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, entry)| entry.clone())
            .collect())
    }

    async fn put(&self, entry: &LiveStatus) -> CacheResult<bool> {
        let mut entries = self.entries.write().expect("cache lock");
        match entries.get(&entry.id()) {
            Some(old) if !is_not_older(entry, old) => Ok(false),
            _ => {
                entries.insert(entry.id(), entry.clone());
                Ok(true)
            }
        }
    }

    async fn remove(&self, id: Uuid) -> CacheResult<()> {
        self.entries.write().expect("cache lock").remove(&id);
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
}
