//! Monitors' use cases: each writes the store (the truth), then the live-status cache, then
//! tells the scheduler, in one place, so that every way in (the API, bulk creation, YAML
//! import, `SITES_TO_MONITOR`) leaves the three agreeing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Notify;
use upwatch_cache::{LiveStatus, StatusCache};
use upwatch_core::{Monitor, MonitorInput, MonitorState};
use upwatch_store::{Store, StoreError, StoreResult};
use uuid::Uuid;

/// Creates, changes and deletes monitors.
#[derive(Clone)]
pub struct MonitorService {
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    changed: Arc<Notify>,
}

impl MonitorService {
    /// `changed` is poked once after every write, so that a scheduler in this process reloads
    /// at once (schedulers elsewhere see the store's monitors version change).
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn StatusCache>,
        changed: Arc<Notify>,
    ) -> MonitorService {
        MonitorService {
            store,
            cache,
            changed,
        }
    }

    /// For a tool that writes monitors while no process of its own serves them (`upwatch
    /// import`): its cache and notice reach nobody, and running processes learn of the
    /// changes through the store's monitors version (their schedulers poll it, and the API
    /// reads a monitor missing from the cache from the store).
    pub fn offline(store: Arc<dyn Store>) -> MonitorService {
        MonitorService::new(
            store,
            Arc::new(upwatch_cache::MemoryCache::new()),
            Arc::new(Notify::new()),
        )
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stores new monitors, all or none (a duplicate id is a [`StoreError::Conflict`] and adds
    /// nothing), caches their first live status ([`Monitor::initial_state`]) and tells the
    /// scheduler once for all of them.
    pub async fn create(&self, monitors: &[Monitor]) -> StoreResult<()> {
        if monitors.is_empty() {
            return Ok(());
        }
        self.store.insert_monitors(monitors).await?;
        for monitor in monitors {
            self.put_cache(&LiveStatus::new(monitor, monitor.initial_state()))
                .await;
            tracing::info!(monitor_id = %monitor.id, name = %monitor.name, "monitor created");
        }
        self.changed.notify_one();
        Ok(())
    }

    /// Replaces `existing`'s settings with `updated`'s: pauses or resumes the monitor when
    /// `enabled` changed, and refreshes its live status. Returns false when the monitor no
    /// longer exists.
    pub async fn update(&self, existing: &Monitor, updated: &Monitor) -> StoreResult<bool> {
        if !self.store.update_monitor(updated).await? {
            return Ok(false);
        }
        let id = updated.id;
        let mut live = match self.cached_state(id).await {
            Some(live) => live,
            None => self
                .store
                .get_state(id)
                .await?
                .unwrap_or_else(|| updated.initial_state()),
        };
        if updated.enabled != existing.enabled {
            live.set_enabled(updated.enabled, Utc::now());
        }
        self.put_cache(&LiveStatus::new(updated, live)).await;
        self.changed.notify_one();
        tracing::info!(monitor_id = %id, enabled = updated.enabled, "monitor updated");
        Ok(true)
    }

    /// Pauses (`enabled` false) or resumes a monitor; `None` when there is no such monitor.
    /// A monitor already that way is left as it is.
    pub async fn set_enabled(&self, id: Uuid, enabled: bool) -> StoreResult<Option<Monitor>> {
        let Some(existing) = self.store.get_monitor(id).await? else {
            return Ok(None);
        };
        if existing.enabled == enabled {
            return Ok(Some(existing));
        }
        let updated = Monitor {
            enabled,
            updated_at: Utc::now(),
            ..existing.clone()
        };
        Ok(self.update(&existing, &updated).await?.then_some(updated))
    }

    /// Deletes a monitor with its history and live status. Returns false when there was none.
    pub async fn delete(&self, id: Uuid) -> StoreResult<bool> {
        if !self.store.delete_monitor(id).await? {
            return Ok(false);
        }
        if let Err(error) = self.cache.remove(id).await {
            tracing::warn!(monitor_id = %id, error = %error, "could not remove a deleted monitor from the status cache");
        }
        self.changed.notify_one();
        tracing::info!(monitor_id = %id, "monitor deleted");
        Ok(true)
    }

    /// Adds each `SITES_TO_MONITOR` URL that no monitor watches yet, with default settings.
    /// The id is derived from the URL, so that processes starting together add a site once.
    pub async fn seed(&self, sites: &[String]) -> Result<(), SeedError> {
        for site in sites {
            let now = Utc::now();
            let monitor = MonitorInput::for_url(site)
                .into_monitor(
                    Uuid::new_v5(&Uuid::NAMESPACE_URL, site.as_bytes()),
                    now,
                    now,
                )
                .map_err(|e| SeedError::Invalid(e.to_string()))?;
            if self
                .store
                .find_monitor_by_url(&monitor.url)
                .await?
                .is_some()
            {
                continue;
            }
            match self.create(std::slice::from_ref(&monitor)).await {
                Ok(()) => {
                    tracing::info!(url = %monitor.url, id = %monitor.id, "site from SITES_TO_MONITOR added")
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes every monitor's stored state into the live-status cache, where the cache has
    /// nothing newer. A cache failure is logged: the API then falls back to the store.
    pub async fn warm_cache(&self) -> StoreResult<()> {
        let mut states: HashMap<Uuid, MonitorState> = self
            .store
            .list_states()
            .await?
            .into_iter()
            .map(|s| (s.monitor_id, s))
            .collect();
        for monitor in self.store.all_monitors().await? {
            let state = states
                .remove(&monitor.id)
                .unwrap_or_else(|| monitor.initial_state());
            if let Err(error) = self.cache.put(&LiveStatus::new(&monitor, state)).await {
                tracing::warn!(%error, "cannot warm the live-status cache; the API falls back to the database");
                break;
            }
        }
        Ok(())
    }

    /// The cached state of a monitor; `None` on a miss or a cache failure (logged).
    async fn cached_state(&self, id: Uuid) -> Option<MonitorState> {
        match self.cache.get(id).await {
            Ok(entry) => entry.map(|e| e.state),
            Err(error) => {
                tracing::warn!(monitor_id = %id, error = %error, "status cache read failed; using the store");
                None
            }
        }
    }

    /// Writes a cache entry. The store already holds the truth, so a cache failure is logged
    /// and the use case still succeeds; the cache updater refreshes the entry with the next
    /// result.
    async fn put_cache(&self, entry: &LiveStatus) {
        if let Err(error) = self.cache.put(entry).await {
            tracing::warn!(monitor_id = %entry.id(), error = %error, "status cache write failed");
        }
    }
}

/// Why `SITES_TO_MONITOR` could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A URL is not a valid monitor (the message names what is wrong).
    #[error("SITES_TO_MONITOR: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
