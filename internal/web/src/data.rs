//! What each page shows, read from the same store and cache as the API, with the store
//! functions the API's history endpoints use (`read_rollups`, `Store::rollups`,
//! `Store::incidents`).
//!
//! Uptime over 24 hours and 30 days comes from the service layer ([`Stats`]), with the
//! definition and the memo the API's status endpoints use, so that both show the same figure.
//! The 90-day bars change slowly and cost a read of every public monitor's rollups, so the
//! status page keeps them for [`SLOW_TTL`] and refreshes them in the background while serving
//! the previous answer.
//!
//! Maintenance windows are read once per change of the monitors' version (every change of a
//! window bumps it), together with the days of the daily bars each window had an occurrence
//! in: each window's 90 days are expanded once, then every monitor's bar only ORs the days of
//! the windows that cover it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use upwatch_cache::{LiveStatus, StatusCache};
use upwatch_core::maintenance::{Maintenance, Occurrence};
use upwatch_core::rollup::{series, Resolution, Retention, Rollup};
use upwatch_core::{Monitor, MonitorState};
use upwatch_service::stats::{by_monitor, Counts, Stats, DAY, MONTH};
use upwatch_store::{read_rollups, Incident, IncidentQuery, MaintenanceStore, Reads, StoreError};
use uuid::Uuid;

use crate::live::{Live, Monitors, Tick};

/// How long uptime figures and daily bars are reused before they are read again.
pub const SLOW_TTL: Duration = Duration::from_secs(15);
/// Days in the daily uptime bars.
pub const DAYS: i64 = 90;
/// How far ahead the pages list upcoming maintenance.
pub const UPCOMING_DAYS: i64 = 7;
/// Later occurrences of one window in the upcoming days are counted up to this many.
pub const LATER_COUNTED: usize = 50;

// A window's days of the bars are the bits of a `u128`.
const _: () = assert!(DAYS <= 128);

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
    /// A maintenance window covering the monitor had an occurrence on this day.
    pub maintenance: bool,
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

/// What one region sees of a monitor, on its page (the core's [`RegionSeen`]).
pub type RegionRow = upwatch_core::state::RegionSeen;

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
/// The maintenance windows, by the monitors' version and the first day of the bars.
type WindowsMemo = Memo<(i64, DateTime<Utc>), Windows>;

/// Reads what the pages show.
pub struct Data {
    pub store: Arc<dyn Reads>,
    pub cache: Arc<dyn StatusCache>,
    pub stats: Arc<Stats>,
    pub live: Arc<Live>,
    /// Where maintenance windows are read; none: the pages show no maintenance.
    maintenances: Option<Arc<dyn MaintenanceStore>>,
    days: Arc<DaysMemo>,
    windows: Arc<WindowsMemo>,
}

/// The dashboard.
#[derive(Debug, Clone)]
pub struct DashboardView {
    /// Every monitor, in name order.
    pub rows: Vec<Row>,
    /// Every window, naming the monitors it covers.
    pub maintenance: MaintenanceList,
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
    /// What each region that checks the monitor sees, when more than one does; empty
    /// otherwise.
    pub regions: Vec<RegionRow>,
    /// The chart's buckets of each region, when more than one checks the monitor: folded from
    /// raw results, so only as far back as they are kept ([`SiteView::raw_kept`]).
    pub region_points: Vec<(String, Vec<Point>)>,
    /// How long raw results are kept (`None`: for ever).
    pub raw_kept: Option<TimeDelta>,
    pub incidents: Vec<Incident>,
    /// The windows that cover this monitor.
    pub maintenance: MaintenanceList,
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
    /// The windows that cover at least one public monitor, naming public monitors only.
    pub maintenance: MaintenanceList,
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
            maintenances: None,
            days: Arc::new(Memo::new()),
            windows: Arc::new(Memo::new()),
        }
    }

    /// The same, listing the maintenance windows of `maintenances` (read only).
    pub fn with_maintenances(mut self, maintenances: Arc<dyn MaintenanceStore>) -> Data {
        self.maintenances = Some(maintenances);
        self
    }

    /// Every maintenance window, read again when the monitors' `version` changed (a change of
    /// a window changes it) and every [`SLOW_TTL`]. A window that cannot be read shows no
    /// maintenance rather than no page.
    async fn windows(&self, version: i64, now: DateTime<Utc>) -> Arc<Windows> {
        let Some(store) = self.maintenances.clone() else {
            return Arc::new(Windows::default());
        };
        let from = days_from(now);
        let read = self
            .windows
            .get((version, from), move || async move {
                let list = store.list_maintenances().await?;
                Ok(Windows::new(list, from, Utc::now()))
            })
            .await;
        read.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the maintenance windows; pages show none");
            Arc::new(Windows::default())
        })
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

    /// The dashboard: every monitor, in name order, and every window.
    pub async fn dashboard(&self) -> Result<DashboardView, StoreError> {
        let Monitors {
            version,
            list: monitors,
        } = self.monitors().await?;
        let windows = self.windows(version, Utc::now()).await;
        let all: Vec<&Monitor> = monitors.iter().collect();
        let maintenance = windows.list(Utc::now(), |m| Some(reach_among(m, &all)));
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
        Ok(DashboardView { rows, maintenance })
    }

    /// One monitor's page; `None` when there is no such monitor. `all_regions` are the
    /// regions there are (`UPWATCH_REGIONS`): with more than one checking the monitor, the
    /// page shows a row and a chart line per region.
    pub async fn site(
        &self,
        id: Uuid,
        window: Window,
        all_regions: &[String],
    ) -> Result<Option<SiteView>, StoreError> {
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
        let mut days = daily(self.store.as_ref(), &[id], now, self.stats.retention())
            .await?
            .remove(&id)
            .unwrap_or_default();
        let windows = self.windows(self.monitors().await?.version, now).await;
        let group = monitor.group.as_deref();
        windows.mark(id, group, &mut days);
        let maintenance = windows.list(now, |m| m.covers(id, group).then_some(Reach::Unstated));
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
        let checking = monitor.regions_in(all_regions);
        let (regions, region_points) = if checking.len() > 1 {
            let interval_ms = u64::from(monitor.interval_seconds) * 1000;
            let rows = state.regions_seen(&checking, interval_ms, now);
            let mut lines = Vec::with_capacity(checking.len());
            for region in &checking {
                let points = self
                    .stats
                    .series_in_region(id, region, from, to, bucket)
                    .await?
                    .into_iter()
                    .map(|(start, r)| point(start, &r))
                    .collect();
                lines.push((region.to_string(), points));
            }
            (rows, lines)
        } else {
            (Vec::new(), Vec::new())
        };
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
            regions,
            region_points,
            raw_kept: self.stats.retention().raw,
            incidents,
            maintenance,
        }))
    }

    /// The public status page: monitors marked public only.
    pub async fn status_page(&self) -> Result<StatusView, StoreError> {
        let Monitors {
            version,
            list: monitors,
        } = self.monitors().await?;
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
        let now = Utc::now();
        let windows = self.windows(version, now).await;
        let maintenance = windows.list(now, |m| match reach_among(m, &public) {
            Reach::Names(names) if names.is_empty() => None,
            reach => Some(reach),
        });
        let mut rows: Vec<PublicRow> = public
            .iter()
            .map(|m| {
                let mut days = days.get(&m.id).cloned().unwrap_or_default();
                windows.mark(m.id, m.group.as_deref(), &mut days);
                PublicRow {
                    id: m.id,
                    name: m.name.clone(),
                    group: m.group.clone(),
                    state: live
                        .get(&m.id)
                        .map(LiveStatus::shown_state)
                        .unwrap_or_else(|| m.initial_state()),
                    days,
                }
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
        Ok(StatusView {
            rows,
            incidents,
            maintenance,
        })
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
    let from = days_from(now);
    let to = from + TimeDelta::days(DAYS);
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
                    maintenance: false,
                })
                .collect();
            (*id, days)
        })
        .collect())
}

/// The start of the first of the last [`DAYS`] days (today included).
pub fn days_from(now: DateTime<Utc>) -> DateTime<Utc> {
    Resolution::Day.bucket_start(now) + TimeDelta::days(1) - TimeDelta::days(DAYS)
}

/// Who a listed maintenance window affects, in the words of the page that lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every monitor the page shows.
    Everything,
    /// These monitors, by name, in name order (none: it covers no monitor at present).
    Names(Vec<String>),
    /// Not said: the page is about one monitor that it covers.
    Unstated,
}

/// One maintenance window as the pages list it: an ongoing occurrence, or the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceItem {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub occurrence: Occurrence,
    /// Occurrences after this one within [`UPCOMING_DAYS`], counted up to [`LATER_COUNTED`]
    /// (0 for an ongoing one).
    pub later: usize,
    pub reach: Reach,
}

/// The maintenance a page lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaintenanceList {
    /// Under way now, the first to end first.
    pub ongoing: Vec<MaintenanceItem>,
    /// Starting within [`UPCOMING_DAYS`], the soonest first: each window's next occurrence.
    pub upcoming: Vec<MaintenanceItem>,
}

impl MaintenanceList {
    pub fn is_empty(&self) -> bool {
        self.ongoing.is_empty() && self.upcoming.is_empty()
    }
}

/// Every maintenance window, with the days of the daily bars each had an occurrence in.
#[derive(Debug, Default)]
pub struct Windows {
    list: Vec<Maintenance>,
    /// Per window of `list`: bit `i` is set when an occurrence overlapped day `i` from `from`
    /// before the time the windows were read (the bars tell what was, not what is planned).
    days: Vec<u128>,
    from: DateTime<Utc>,
}

impl Windows {
    /// The windows, each with its occurrences over the [`DAYS`] days from `from` until `now`
    /// expanded once.
    pub fn new(list: Vec<Maintenance>, from: DateTime<Utc>, now: DateTime<Utc>) -> Windows {
        let to = now.min(from + TimeDelta::days(DAYS));
        let days = list.iter().map(|m| days_with(m, from, to)).collect();
        Windows { list, days, from }
    }

    /// The ongoing and upcoming maintenance of the windows `reach` gives a reach for.
    pub fn list(
        &self,
        now: DateTime<Utc>,
        mut reach: impl FnMut(&Maintenance) -> Option<Reach>,
    ) -> MaintenanceList {
        let horizon = now + TimeDelta::days(UPCOMING_DAYS);
        let mut out = MaintenanceList::default();
        for m in &self.list {
            let Some(reach) = reach(m) else {
                continue;
            };
            let item = |occurrence: Occurrence, later: usize| MaintenanceItem {
                id: m.id,
                title: m.title.clone(),
                description: m.description.clone(),
                occurrence,
                later,
                reach: reach.clone(),
            };
            if let Some(now_on) = m.active_at(now) {
                out.ongoing.push(item(now_on, 0));
            }
            // One more than counted, and one more for an occurrence under way now.
            let next: Vec<Occurrence> = m
                .occurrences_between(now, horizon, LATER_COUNTED + 2)
                .into_iter()
                .filter(|o| o.start > now)
                .collect();
            if let Some(first) = next.first() {
                out.upcoming
                    .push(item(*first, (next.len() - 1).min(LATER_COUNTED)));
            }
        }
        out.ongoing
            .sort_by(|a, b| (a.occurrence.end, &a.title).cmp(&(b.occurrence.end, &b.title)));
        out.upcoming
            .sort_by(|a, b| (a.occurrence.start, &a.title).cmp(&(b.occurrence.start, &b.title)));
        out
    }

    /// Marks the days of `days` on which a window covering the monitor had an occurrence.
    pub fn mark(&self, id: Uuid, group: Option<&str>, days: &mut [Day]) {
        let mut bits = 0u128;
        for (m, d) in self.list.iter().zip(&self.days) {
            if *d != 0 && m.covers(id, group) {
                bits |= d;
            }
        }
        if bits == 0 {
            return;
        }
        for day in days {
            let i = (day.start - self.from).num_days();
            if (0..DAYS).contains(&i) && bits & (1u128 << i) != 0 {
                day.maintenance = true;
            }
        }
    }
}

/// The days from `from` (bits of [`DAYS`] days) that an occurrence of `m` overlapped before
/// `to`. One look-up per run of marked days, each for the first occurrence overlapping what is
/// left.
fn days_with(m: &Maintenance, from: DateTime<Utc>, to: DateTime<Utc>) -> u128 {
    const DAY_MS: i64 = 86_400_000;
    let to = to.min(from + TimeDelta::days(DAYS));
    let index = |at: DateTime<Utc>| (at - from).num_milliseconds().div_euclid(DAY_MS);
    let mut bits = 0u128;
    let mut cursor = from;
    while cursor < to {
        let Some(o) = m.occurrences_between(cursor, to, 1).into_iter().next() else {
            break;
        };
        let first = index(o.start.max(cursor)).max(0);
        // The end is exclusive: an occurrence ending at midnight does not touch the next day.
        let last = index(o.end.min(to) - TimeDelta::milliseconds(1)).min(DAYS - 1);
        if last < first {
            break;
        }
        for i in first..=last {
            bits |= 1u128 << i;
        }
        cursor = from + TimeDelta::days(last + 1);
    }
    bits
}

/// Who `m` affects among `monitors` (those a page shows): all of them, or their names.
pub fn reach_among(m: &Maintenance, monitors: &[&Monitor]) -> Reach {
    let mut names: Vec<String> = monitors
        .iter()
        .filter(|x| m.covers(x.id, x.group.as_deref()))
        .map(|x| x.name.clone())
        .collect();
    if !names.is_empty() && names.len() == monitors.len() {
        return Reach::Everything;
    }
    names.sort_by_key(|n| n.to_lowercase());
    Reach::Names(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use upwatch_core::maintenance::MaintenanceInput;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn window(input: MaintenanceInput, created: &str) -> Maintenance {
        let input = MaintenanceInput {
            title: Some("Work".into()),
            ..input
        };
        Maintenance::create(input, utc(created)).unwrap()
    }

    fn once(start: DateTime<Utc>, end: DateTime<Utc>) -> Maintenance {
        let input = MaintenanceInput {
            all: Some(true),
            start: Some(start),
            end: Some(end),
            ..MaintenanceInput::default()
        };
        window(input, "2026-01-01T00:00:00Z")
    }

    fn recurring(rule: &str, duration: &str, created: &str) -> Maintenance {
        let input = MaintenanceInput {
            all: Some(true),
            rrule: Some(rule.into()),
            duration: Some(duration.into()),
            timezone: Some("UTC".into()),
            ..MaintenanceInput::default()
        };
        window(input, created)
    }

    fn bits(days: impl IntoIterator<Item = i64>) -> u128 {
        days.into_iter().fold(0, |b, d| b | 1 << d)
    }

    #[test]
    fn a_windows_days_are_those_its_occurrences_touch() {
        let from = utc("2026-03-01T00:00:00Z");
        let at = |day: i64, hour: i64| from + TimeDelta::days(day) + TimeDelta::hours(hour);
        assert_eq!(
            days_with_all(&once(at(2, 22), at(4, 1)), from),
            bits([2, 3, 4])
        );
        // The end is exclusive: a window ending at midnight leaves the next day alone.
        assert_eq!(days_with_all(&once(at(0, 10), at(1, 0)), from), bits([0]));
        // Clipped to the bars at both ends.
        assert_eq!(days_with_all(&once(at(-9, 0), at(0, 5)), from), bits([0]));
        assert_eq!(
            days_with_all(&once(at(89, 23), at(99, 0)), from),
            bits([89])
        );
        assert_eq!(days_with_all(&once(at(-9, 0), at(-8, 0)), from), 0);
        assert_eq!(days_with_all(&once(at(90, 0), at(91, 0)), from), 0);
        // Every day from the creation of a daily window on (2026-04-10 is day 40; its 03:00
        // came before the window was created at noon).
        let daily = recurring("FREQ=DAILY;BYHOUR=3", "1h", "2026-04-10T12:00:00Z");
        assert_eq!(days_with_all(&daily, from), bits(41..DAYS));
        // Weekly, across midnight: Sundays 23:00 to Mondays 01:00 (2026-03-01 is a Sunday).
        let weekly = recurring(
            "FREQ=WEEKLY;BYDAY=SU;BYHOUR=23",
            "2h",
            "2026-02-01T00:00:00Z",
        );
        let sundays = (0..DAYS).step_by(7);
        let expected = bits(sundays.flat_map(|d| [d, d + 1]).filter(|&d| d < DAYS));
        assert_eq!(days_with_all(&weekly, from), expected);
        // A window every 10 minutes costs one look-up per day at most, and marks every day.
        let often = recurring("FREQ=MINUTELY;INTERVAL=10", "5m", "2026-02-01T00:00:00Z");
        assert_eq!(days_with_all(&often, from), bits(0..DAYS));
        // Only what came before the end: not the rest of today.
        assert_eq!(days_with(&daily, from, at(50, 2)), bits(41..50));
        assert_eq!(
            days_with(&daily, from, at(50, 3) + TimeDelta::seconds(1)),
            bits(41..=50)
        );
    }

    fn days_with_all(m: &Maintenance, from: DateTime<Utc>) -> u128 {
        days_with(m, from, from + TimeDelta::days(DAYS))
    }

    #[test]
    fn lists_say_what_is_on_and_what_comes() {
        let now = utc("2026-05-10T12:00:00Z");
        let api = Uuid::now_v7();
        let web = Uuid::now_v7();
        let covering = |ids: Vec<Uuid>, start: DateTime<Utc>, end: DateTime<Utc>| {
            let input = MaintenanceInput {
                monitor_ids: Some(ids),
                start: Some(start),
                end: Some(end),
                ..MaintenanceInput::default()
            };
            window(input, "2026-05-01T00:00:00Z")
        };
        let h = TimeDelta::hours;
        let on = covering(vec![api], now - h(1), now + h(2));
        let soon = covering(vec![web], now + h(30), now + h(31));
        let later = covering(vec![api], now + h(3), now + h(4));
        let far = covering(
            vec![api, web],
            now + TimeDelta::days(8),
            now + TimeDelta::days(9),
        );
        let past = covering(
            vec![web],
            now - TimeDelta::days(3),
            now - TimeDelta::days(3) + h(1),
        );
        let hourly = recurring("FREQ=HOURLY;BYMINUTE=30", "10m", "2026-05-01T00:00:00Z");
        let windows = Windows::new(
            vec![
                on.clone(),
                soon.clone(),
                later.clone(),
                far,
                past,
                hourly.clone(),
            ],
            days_from(now),
            now,
        );

        let list = windows.list(now, |_| Some(Reach::Unstated));
        let ids = |items: &[MaintenanceItem]| items.iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(&list.ongoing), vec![on.id]);
        assert_eq!(list.ongoing[0].occurrence.end, now + h(2));
        // Each window once, by its next start; the hourly one counts what follows.
        assert_eq!(ids(&list.upcoming), vec![hourly.id, later.id, soon.id]);
        assert_eq!(
            list.upcoming[0].occurrence.start,
            now + TimeDelta::minutes(30)
        );
        assert_eq!(list.upcoming[0].later, LATER_COUNTED);
        assert_eq!(list.upcoming[1].later, 0);

        let only_web = windows.list(now, |m| m.covers(web, None).then_some(Reach::Unstated));
        assert!(only_web.ongoing.is_empty());
        assert_eq!(ids(&only_web.upcoming), vec![hourly.id, soon.id]);

        // The bars: only the windows covering the monitor.
        let mut days: Vec<Day> = (0..DAYS)
            .map(|i| Day {
                start: days_from(now) + TimeDelta::days(i),
                up: 0,
                down: 0,
                maintenance: false,
            })
            .collect();
        let other = Uuid::now_v7();
        windows.mark(other, None, &mut days);
        assert!(days.iter().take(DAYS as usize - 12).all(|d| !d.maintenance));
        windows.mark(web, None, &mut days);
        let marked: Vec<i64> = (0..DAYS)
            .filter(|&i| days[i as usize].maintenance)
            .collect();
        // The hourly window from its creation nine days ago, and the past one within that.
        assert_eq!(marked, ((DAYS - 10)..DAYS).collect::<Vec<_>>());
    }

    #[test]
    fn a_window_reaches_all_or_names() {
        let monitors: Vec<Monitor> = ["beta", "Alpha", "gamma"]
            .into_iter()
            .map(|name| {
                let input = upwatch_core::MonitorInput {
                    name: Some(name.into()),
                    group: (name == "gamma").then(|| "Core".to_string()),
                    ..upwatch_core::MonitorInput::for_url("https://example.test/")
                };
                Monitor::create(input, Utc::now()).unwrap()
            })
            .collect();
        let shown: Vec<&Monitor> = monitors.iter().collect();
        let covering = |ids: Vec<Uuid>, groups: Vec<String>, all: bool| {
            let input = MaintenanceInput {
                monitor_ids: Some(ids),
                groups: Some(groups),
                all: Some(all),
                start: Some(utc("2026-05-01T00:00:00Z")),
                end: Some(utc("2026-05-02T00:00:00Z")),
                ..MaintenanceInput::default()
            };
            window(input, "2026-05-01T00:00:00Z")
        };
        assert_eq!(
            reach_among(&covering(vec![], vec![], true), &shown),
            Reach::Everything
        );
        let ids: Vec<Uuid> = monitors[..2].iter().map(|m| m.id).collect();
        assert_eq!(
            reach_among(&covering(ids.clone(), vec![], false), &shown),
            Reach::Names(vec!["Alpha".into(), "beta".into()])
        );
        assert_eq!(
            reach_among(&covering(ids, vec!["Core".into()], false), &shown),
            Reach::Everything
        );
        assert_eq!(
            reach_among(&covering(vec![], vec!["Core".into()], false), &shown[..2]),
            Reach::Names(vec![])
        );
    }
}
