//! Monitors' use cases: each writes the store (the truth), then the live-status cache, then
//! tells the scheduler, in one place, so that every way in (the API, bulk creation, YAML
//! import, `SITES_TO_MONITOR`) leaves the three agreeing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;
use upwatch_cache::{LiveStatus, StatusCache};
use upwatch_core::check::DEFAULT_REGION;
use upwatch_core::{Monitor, MonitorInput, MonitorState, ValidationError};
use upwatch_store::{Store, StoreError, StoreResult};
use uuid::Uuid;

/// How long [`MonitorService::checked_by`] reuses what it read of a monitor. A change made
/// through this service is seen at once; one made by another process within this time.
pub const CHECKED_BY_TTL: Duration = Duration::from_secs(10);

/// What the live status of a monitor needs of its settings: the regions that check it (of the
/// known ones, in the monitor's order) and its interval, by which a silent region is judged
/// `unknown` ([`upwatch_core::state::RegionState::status_at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBy {
    pub regions: Vec<String>,
    pub interval_ms: u64,
}

/// Creates, changes and deletes monitors.
#[derive(Clone)]
pub struct MonitorService {
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    changed: Arc<Notify>,
    /// Every region there is (`UPWATCH_REGIONS`); a monitor may name only these.
    regions: Arc<Vec<String>>,
    /// [`CheckedBy`] per monitor, read at most every [`CHECKED_BY_TTL`].
    checked_by: Arc<Mutex<HashMap<Uuid, (Instant, CheckedBy)>>>,
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
            regions: Arc::new(vec![DEFAULT_REGION.to_string()]),
            checked_by: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The same service, knowing that the regions are `regions` (`UPWATCH_REGIONS`; the
    /// default is the one region `default`). An empty list keeps the default.
    pub fn with_regions(mut self, regions: Vec<String>) -> MonitorService {
        if !regions.is_empty() {
            self.regions = Arc::new(regions);
        }
        self
    }

    /// Every region there is (`UPWATCH_REGIONS`).
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// Checks a monitor's `regions` and `quorum` against the regions there are
    /// ([`Monitor::validate_regions_against`]): every way in (the API's create, bulk create
    /// and patch, and the import, before it writes anything) calls this before
    /// [`MonitorService::create`] or [`MonitorService::update`], and answers the error like
    /// any other field's.
    pub fn check_regions(&self, monitor: &Monitor) -> Result<(), ValidationError> {
        monitor.validate_regions_against(&self.regions)
    }

    /// The regions that check monitor `id` and its interval; `None` when there is no such
    /// monitor. Read from the store at most every [`CHECKED_BY_TTL`] per monitor, so that the
    /// live-status endpoint stays a cache read.
    pub async fn checked_by(&self, id: Uuid) -> StoreResult<Option<CheckedBy>> {
        {
            let memo = self.checked_by.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, found)) = memo.get(&id) {
                if at.elapsed() < CHECKED_BY_TTL {
                    return Ok(Some(found.clone()));
                }
            }
        }
        let Some(monitor) = self.store.get_monitor(id).await? else {
            self.forget(id);
            return Ok(None);
        };
        Ok(Some(self.remember(&monitor)))
    }

    /// The regions that check `monitor` and its interval, remembered for
    /// [`MonitorService::checked_by`].
    pub fn remember(&self, monitor: &Monitor) -> CheckedBy {
        let found = CheckedBy {
            regions: monitor
                .regions_in(&self.regions)
                .into_iter()
                .map(str::to_string)
                .collect(),
            interval_ms: u64::from(monitor.interval_seconds) * 1000,
        };
        let mut memo = self.checked_by.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= 100_000 {
            memo.retain(|_, (at, _)| at.elapsed() < CHECKED_BY_TTL);
        }
        memo.insert(monitor.id, (Instant::now(), found.clone()));
        found
    }

    fn forget(&self, id: Uuid) {
        self.checked_by
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// For a tool that writes monitors while no process of its own serves them (`upwatch
    /// import`): its cache and notice reach nobody, and running processes learn of the
    /// changes through the store's monitors version (their schedulers poll it, and the API
    /// reads a monitor missing from the cache from the store). Give it the regions with
    /// [`MonitorService::with_regions`] like any other.
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
    /// scheduler once for all of them. Callers check each with
    /// [`MonitorService::check_regions`] first.
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
    /// longer exists. Callers check `updated` with [`MonitorService::check_regions`] first.
    pub async fn update(&self, existing: &Monitor, updated: &Monitor) -> StoreResult<bool> {
        let id = updated.id;
        let stored = self.store.update_monitor(updated).await?;
        self.forget(id);
        if !stored {
            return Ok(false);
        }
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
        let deleted = self.store.delete_monitor(id).await?;
        self.forget(id);
        if !deleted {
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
