//! What each page shows, read from the same store and cache as the API, with the store
//! functions the API's history endpoints use (`read_rollups`, `Store::rollups`,
//! `Store::incidents`).
//!
//! Uptime over 24 hours and 30 days comes from the service layer ([`Stats`]), with the
//! definition and the memo the API's status endpoints use, so that both show the same figure.
//! The 90-day bars change slowly and cost a read of every public monitor's rollups, so the
//! status page keeps them for [`SLOW_TTL`] and refreshes them in the background while serving
//! the previous answer.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use upwatch_cache::{LiveStatus, StatusCache};
use upwatch_core::rollup::{series, Resolution, Retention, Rollup};
use upwatch_core::{Monitor, MonitorState};
use upwatch_service::stats::{by_monitor, Counts, Stats, DAY, MONTH};
use upwatch_store::{read_rollups, Incident, IncidentQuery, Reads, StoreError};
use uuid::Uuid;

use crate::live::{Live, Monitors, Tick};

/// How long uptime figures and daily bars are reused before they are read again.
pub const SLOW_TTL: Duration = Duration::from_secs(15);
/// Days in the daily uptime bars.
pub const DAYS: i64 = 90;

/// Uptime of one monitor over the last 24 hours and 30 days, in percent as
/// [`Counts::percent`] rounds it (`None`: no checks then).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Uptime {
    pub day: Option<f64>,
    pub month: Option<f64>,
}

/// One day of a daily bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    pub start: DateTime<Utc>,
    pub up: u32,
    pub down: u32,
}

impl Day {
    /// The share of checks that were up; `None` when there were none.
    pub fn uptime(&self) -> Option<f64> {
        let total = u64::from(self.up) + u64::from(self.down);
        (total > 0).then(|| f64::from(self.up) / total as f64)
    }
}

/// One bucket of the response-time chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub start: DateTime<Utc>,
    pub p50: Option<u32>,
    pub p95: Option<u32>,
    pub checks: u32,
    pub down: u32,
}

/// The windows of the response-time chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Day,
    Week,
    Month,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Day, Window::Week, Window::Month];

    pub fn parse(text: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
        }
    }

    pub fn span(self) -> TimeDelta {
        match self {
            Window::Day => TimeDelta::hours(24),
            Window::Week => TimeDelta::days(7),
            Window::Month => TimeDelta::days(30),
        }
    }

    /// The chart's bucket and the finest kept resolution that tiles it.
    fn buckets(self, retention: &Retention) -> (TimeDelta, Resolution) {
        let kept = |r: Resolution| retention.of(r).is_none_or(|keep| keep >= self.span());
        match self {
            Window::Day if kept(Resolution::Minute) => (TimeDelta::minutes(10), Resolution::Minute),
            Window::Day | Window::Week if kept(Resolution::Hour) => {
                (TimeDelta::hours(1), Resolution::Hour)
            }
            Window::Month if kept(Resolution::Hour) => (TimeDelta::hours(4), Resolution::Hour),
            _ => (TimeDelta::days(1), Resolution::Day),
        }
    }
}

/// A value computed now and then, shared by every page.
struct Memo<K, V> {
    slot: Mutex<Option<(Instant, K, Arc<V>)>>,
    refreshing: std::sync::atomic::AtomicBool,
}

impl<K: PartialEq + Clone + Send + 'static, V: Send + Sync + 'static> Memo<K, V> {
    fn new() -> Self {
        Memo {
            slot: Mutex::new(None),
            refreshing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The value for `key`: computed now when there is none for this key, reused while fresh,
    /// and reused once more while a background task computes a new one when stale.
    async fn get<F, Fut>(self: &Arc<Self>, key: K, compute: F) -> Result<Arc<V>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, StoreError>> + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        let current = self
            .slot
            .lock()
            .expect("memo lock")
            .as_ref()
            .filter(|(_, k, _)| *k == key)
            .map(|(at, _, v)| (*at, v.clone()));
        match current {
            Some((at, value)) if at.elapsed() < SLOW_TTL => Ok(value),
            Some((_, value)) => {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let memo = self.clone();
                    let future = compute();
                    tokio::spawn(async move {
                        match future.await {
                            Ok(fresh) => {
                                *memo.slot.lock().expect("memo lock") =
                                    Some((Instant::now(), key, Arc::new(fresh)));
                            }
                            Err(error) => tracing::warn!(%error, "cannot refresh page figures"),
                        }
                        memo.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(value)
            }
            None => {
                let fresh = Arc::new(compute().await?);
                *self.slot.lock().expect("memo lock") = Some((Instant::now(), key, fresh.clone()));
                Ok(fresh)
            }
        }
    }
}

/// The daily bars of a set of monitors.
type DaysMemo = Memo<Vec<Uuid>, HashMap<Uuid, Vec<Day>>>;

/// Reads what the pages show.
pub struct Data {
    pub store: Arc<dyn Reads>,
    pub cache: Arc<dyn StatusCache>,
    pub stats: Arc<Stats>,
    pub live: Arc<Live>,
    days: Arc<DaysMemo>,
}

/// One row of the dashboard.
#[derive(Debug, Clone)]
pub struct Row {
    pub monitor: Monitor,
    pub state: MonitorState,
    pub uptime: Uptime,
    pub recent: Vec<Tick>,
}

/// Everything about one monitor.
#[derive(Debug, Clone)]
pub struct SiteView {
    pub monitor: Monitor,
    pub state: MonitorState,
    pub uptime: Uptime,
    pub days: Vec<Day>,
    pub window: Window,
    pub points: Vec<Point>,
    pub bucket: TimeDelta,
    pub incidents: Vec<Incident>,
}

/// A monitor on the public status page: never its URL or settings.
#[derive(Debug, Clone)]
pub struct PublicRow {
    pub id: Uuid,
    pub name: String,
    pub group: Option<String>,
    pub state: MonitorState,
    pub days: Vec<Day>,
}

/// The public status page.
#[derive(Debug, Clone)]
pub struct StatusView {
    pub rows: Vec<PublicRow>,
    /// Open incidents first, then those that ended in the last week, newest first.
    pub incidents: Vec<(Incident, String)>,
}

impl Data {
    pub fn new(
        store: Arc<dyn Reads>,
        cache: Arc<dyn StatusCache>,
        stats: Arc<Stats>,
        live: Arc<Live>,
    ) -> Data {
        Data {
            store,
            cache,
            stats,
            live,
            days: Arc::new(Memo::new()),
        }
    }

    /// Every monitor's live status, from the cache, or the store when the cache fails.
    async fn statuses(
        &self,
        monitors: &[Monitor],
    ) -> Result<HashMap<Uuid, LiveStatus>, StoreError> {
        match self.cache.list().await {
            Ok(entries) => return Ok(entries.into_iter().map(|e| (e.id(), e)).collect()),
            Err(error) => {
                tracing::warn!(%error, "status cache listing failed; pages use the store");
            }
        }
        let states = self.store.list_states().await?;
        Ok(LiveStatus::join(monitors, states)
            .into_iter()
            .map(|e| (e.id(), e))
            .collect())
    }

    async fn monitors(&self) -> Result<Monitors, StoreError> {
        match self.live.monitors().await {
            Ok(monitors) => Ok(monitors),
            // The live view only keeps the message; read again for the typed error.
            Err(_) => Ok(Monitors {
                version: -1,
                list: Arc::new(self.store.all_monitors().await?),
            }),
        }
    }

    /// The dashboard: every monitor, in name order.
    pub async fn dashboard(&self) -> Result<Vec<Row>, StoreError> {
        let monitors = self.monitors().await?.list;
        let live = self.statuses(&monitors).await?;
        let ids: Vec<Uuid> = monitors.iter().map(|m| m.id).collect();
        let uptimes = uptimes(&self.stats, &ids).await?;
        let mut recent = self.live.recent(&ids, &live).await;
        let mut rows: Vec<Row> = monitors
            .iter()
            .map(|m| Row {
                state: live
                    .get(&m.id)
                    .map(LiveStatus::shown_state)
                    .unwrap_or_else(|| m.initial_state()),
                uptime: uptimes.get(&m.id).copied().unwrap_or_default(),
                recent: recent.remove(&m.id).unwrap_or_default(),
                monitor: m.clone(),
            })
            .collect();
        rows.sort_by(|a, b| {
            a.monitor
                .name
                .to_lowercase()
                .cmp(&b.monitor.name.to_lowercase())
        });
        Ok(rows)
    }

    /// One monitor's page; `None` when there is no such monitor.
    pub async fn site(&self, id: Uuid, window: Window) -> Result<Option<SiteView>, StoreError> {
        let Some(monitor) = self.store.get_monitor(id).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let state = match self.cache.get(id).await {
            Ok(Some(live)) => live.shown_state(),
            _ => self
                .store
                .get_state(id)
                .await?
                .unwrap_or_else(|| monitor.initial_state()),
        };
        let uptime = uptimes(&self.stats, &[id])
            .await?
            .remove(&id)
            .unwrap_or_default();
        let days = daily(self.store.as_ref(), &[id], now, self.stats.retention())
            .await?
            .remove(&id)
            .unwrap_or_default();
        let (bucket, resolution) = window.buckets(self.stats.retention());
        let to = resolution.bucket_start(now) + resolution.duration();
        let from = to - window.span();
        let points = self
            .stats
            .series(id, from, to, bucket, resolution)
            .await?
            .into_iter()
            .map(|(start, r)| point(start, &r))
            .collect();
        let incidents = self
            .store
            .incidents(&IncidentQuery {
                monitor_id: Some(id),
                limit: 50,
                ..IncidentQuery::default()
            })
            .await?;
        Ok(Some(SiteView {
            monitor,
            state,
            uptime,
            days,
            window,
            points,
            bucket,
            incidents,
        }))
    }

    /// The public status page: monitors marked public only.
    pub async fn status_page(&self) -> Result<StatusView, StoreError> {
        let monitors = self.monitors().await?.list;
        let public: Vec<&Monitor> = monitors.iter().filter(|m| m.public).collect();
        let ids: Vec<Uuid> = public.iter().map(|m| m.id).collect();
        let live = self.statuses(&monitors).await?;
        let days = {
            let (store, retention, key) =
                (self.store.clone(), *self.stats.retention(), ids.clone());
            self.days
                .get(key, move || async move {
                    daily(store.as_ref(), &ids, Utc::now(), &retention).await
                })
                .await?
        };
        let mut rows: Vec<PublicRow> = public
            .iter()
            .map(|m| PublicRow {
                id: m.id,
                name: m.name.clone(),
                group: m.group.clone(),
                state: live
                    .get(&m.id)
                    .map(LiveStatus::shown_state)
                    .unwrap_or_else(|| m.initial_state()),
                days: days.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect();
        rows.sort_by_key(|r| r.name.to_lowercase());
        let names: HashMap<Uuid, &str> = public.iter().map(|m| (m.id, m.name.as_str())).collect();
        let week_ago = Utc::now() - TimeDelta::days(7);
        let mut incidents: Vec<(Incident, String)> = Vec::new();
        for open_only in [true, false] {
            let found = self
                .store
                .incidents(&IncidentQuery {
                    open_only,
                    limit: 200,
                    ..IncidentQuery::default()
                })
                .await?;
            for incident in found {
                let Some(name) = names.get(&incident.monitor_id) else {
                    continue;
                };
                let wanted = if open_only {
                    incident.ended_at.is_none()
                } else {
                    incident.ended_at.is_some_and(|end| end >= week_ago)
                };
                if wanted {
                    incidents.push((incident, (*name).to_string()));
                }
            }
        }
        Ok(StatusView { rows, incidents })
    }
}

fn point(start: DateTime<Utc>, rollup: &Rollup) -> Point {
    Point {
        start,
        p50: rollup.sketch.quantile(0.5),
        p95: rollup.sketch.quantile(0.95),
        checks: rollup.checks,
        down: rollup.down,
    }
}

/// Uptime over 24 hours and 30 days of each of `ids`, as the API's status endpoints show it.
pub async fn uptimes(stats: &Stats, ids: &[Uuid]) -> Result<HashMap<Uuid, Uptime>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let now = Utc::now();
    let day = stats.counts(ids, DAY, now).await?;
    let month = stats.counts(ids, MONTH, now).await?;
    Ok(ids
        .iter()
        .map(|id| {
            let uptime = Uptime {
                day: day.get(id).and_then(Counts::percent),
                month: month.get(id).and_then(Counts::percent),
            };
            (*id, uptime)
        })
        .collect())
}

/// The last [`DAYS`] days (today included) of each monitor, oldest first.
pub async fn daily(
    store: &dyn Reads,
    ids: &[Uuid],
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<HashMap<Uuid, Vec<Day>>, StoreError> {
    let to = Resolution::Day.bucket_start(now) + TimeDelta::days(1);
    let from = to - TimeDelta::days(DAYS);
    let mut grouped = if ids.is_empty() {
        HashMap::new()
    } else {
        by_monitor(read_rollups(store, ids, from, to, now, retention).await?.2)
    };
    Ok(ids
        .iter()
        .map(|id| {
            let rollups = grouped.remove(id).unwrap_or_default();
            let days = series(&rollups, from, to, TimeDelta::days(1))
                .into_iter()
                .map(|(start, r)| Day {
                    start,
                    up: r.up,
                    down: r.down,
                })
                .collect();
            (*id, days)
        })
        .collect())
}
