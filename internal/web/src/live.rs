//! What the pages show live: one poller per process watches the [`StatusCache`] and the
//! monitor list, turns what changed into numbered batches, and hands them to every open page
//! (server-sent events, or the polling fallback).
//!
//! Why a poller of the cache rather than a subscription to the results stream: the cache is
//! the one place both modes keep current (the in-process cache updater in `serve`, Redis in
//! the fleet, where an API process reads no stream at all), so one design serves both. One
//! poll every [`POLL_EVERY`] per process, whatever the number of open pages, keeps a status
//! flip on screen within a second, and a numbered log of recent batches lets a page that
//! reconnects (`Last-Event-ID`) receive exactly what it missed.
//!
//! The poller also keeps, per monitor, the newest [`RECENT`] results the dashboard draws as a
//! bar: read once from the store, then extended with each new check the cache shows.
//!
//! Nobody watching, nothing read: when no event stream is open and no page or update was asked
//! for within [`IDLE_AFTER`], the poller stops reading the cache (in the fleet, an `HGETALL`
//! of every entry) until someone looks again. The bars it kept are dropped then, since they
//! missed the checks of the idle time, and read from the store again when a page needs them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use upwatch_cache::{LiveStatus, StatusCache};
use upwatch_core::{Monitor, MonitorStatus};
use upwatch_store::{HistoryQuery, Reads};
use uuid::Uuid;

/// How often the poller reads the cache.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How many results the dashboard's bar shows per monitor.
pub const RECENT: usize = 60;
/// How long after the last page, update or event stream the poller goes on reading the cache.
/// The polling fallback asks every 5 s, well within it.
pub const IDLE_AFTER: Duration = Duration::from_secs(30);
/// How many batches are kept for pages that reconnect; older ones get a full snapshot.
const LOG_BATCHES: usize = 1200;

/// One monitor's change, as the dashboard receives it. It never carries the monitor's URL:
/// a push monitor's holds the token that lets anyone report for it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    pub id: Uuid,
    pub name: String,
    pub status: MonitorStatus,
    pub response_time_ms: Option<u32>,
    pub last_checked: Option<DateTime<Utc>>,
    /// The error of the newest check, for people (`timeout: ...`).
    pub error: Option<String>,
    /// The newest check, when this change is a new check.
    pub tick: Option<Tick>,
    /// Whether the monitor is on the public status page.
    #[serde(skip)]
    pub public: bool,
}

/// What the public status page receives of a change: no URL, latency or error.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PublicChange {
    pub id: Uuid,
    pub name: String,
    pub status: MonitorStatus,
}

/// One check in a monitor's bar of recent results.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Tick {
    pub at: DateTime<Utc>,
    pub up: bool,
    pub ms: u32,
}

/// A numbered set of changes seen in one poll. `reset` batches hold every monitor and
/// replace what a page shows (after a gap the log no longer covers).
#[derive(Debug, Clone)]
pub struct Batch {
    pub id: u64,
    pub reset: bool,
    pub changes: Arc<Vec<Change>>,
    /// A monitor was added, edited or deleted since the previous batch: the dashboard reads
    /// its rows again.
    pub monitors_changed: bool,
    /// The public monitors (which ones, their names or groups) changed: the status page reads
    /// its list again.
    pub public_changed: bool,
}

/// The monitors as last read from the store, with the version they were read at.
#[derive(Debug, Clone, Default)]
pub struct Monitors {
    pub version: i64,
    pub list: Arc<Vec<Monitor>>,
}

/// The process's live view of every monitor.
pub struct Live {
    store: Arc<dyn Reads>,
    cache: Arc<dyn StatusCache>,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Batch>,
}

#[derive(Default)]
struct Inner {
    /// What the last poll saw, per monitor.
    seen: HashMap<Uuid, LiveStatus>,
    /// Whether a first poll has happened (it only records what it sees).
    primed: bool,
    /// Recent batches, oldest first.
    log: VecDeque<Batch>,
    /// Every batch after this id is in `log`.
    log_covers_after: u64,
    last_id: u64,
    /// The bar of recent results per monitor, once read from the store.
    recent: HashMap<Uuid, VecDeque<Tick>>,
    monitors: Monitors,
    public: HashSet<Uuid>,
    /// When a page, an update or an event stream was last asked for.
    watched_at: Option<Instant>,
    /// Whether the poller skipped polls because nobody was watching.
    idle: bool,
    /// The monitors' version and public monitors as the previous poll saw them.
    polled_version: Option<i64>,
    polled_public: Vec<(Uuid, String, Option<String>)>,
}

impl Live {
    /// A live view over `cache` and `store`; nothing happens until [`Live::run`].
    pub fn new(store: Arc<dyn Reads>, cache: Arc<dyn StatusCache>) -> Arc<Live> {
        let (tx, _) = broadcast::channel(256);
        let start = now_id();
        Arc::new(Live {
            store,
            cache,
            inner: Mutex::new(Inner {
                last_id: start,
                log_covers_after: start,
                ..Inner::default()
            }),
            tx,
        })
    }

    /// Polls until `stop` is cancelled.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.watched() {
                continue;
            }
            match self.poll().await {
                Ok(()) => failing = false,
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "live view: cannot read the status cache or the monitors; retrying");
                }
                Err(_) => {}
            }
        }
    }

    /// Reads the monitors (when they changed) and the cache once, and publishes what changed.
    pub async fn poll(&self) -> Result<(), String> {
        let monitors = self.monitors().await?;
        let entries = self.cache.list().await.map_err(|e| e.to_string())?;
        let mut inner = self.inner.lock().expect("live view lock");
        let (mut monitors_changed, mut public_changed) = (false, false);
        if inner.polled_version != Some(monitors.version) {
            let public: Vec<(Uuid, String, Option<String>)> = monitors
                .list
                .iter()
                .filter(|m| m.public)
                .map(|m| (m.id, m.name.clone(), m.group.clone()))
                .collect();
            // After the first poll, and after an idle time (every open page was rendered since),
            // there is nothing a page could have missed.
            let known = inner.primed && inner.polled_version.is_some();
            monitors_changed = known;
            public_changed = known && public != inner.polled_public;
            inner.polled_version = Some(monitors.version);
            inner.polled_public = public;
        }
        let mut changes = Vec::new();
        let mut present = HashSet::with_capacity(entries.len());
        for mut entry in entries {
            // Pages show what people should see: `stale` where the watchdog marked a monitor.
            entry.state.status = entry.shown_state().status;
            let id = entry.id();
            present.insert(id);
            let old = inner.seen.get(&id);
            let changed = old.is_none_or(|old| {
                old.state.status != entry.state.status
                    || old.state.last_checked != entry.state.last_checked
                    || old.name != entry.name
            });
            if !changed {
                continue;
            }
            let new_check = entry.state.last_checked.is_some()
                && old.is_none_or(|old| old.state.last_checked != entry.state.last_checked);
            let tick = new_check.then(|| tick_of(&entry)).flatten();
            if let (Some(tick), Some(bar)) = (tick, inner.recent.get_mut(&id)) {
                push_tick(bar, tick);
            }
            if inner.primed {
                changes.push(change_of(&entry, tick, inner.public.contains(&id)));
            }
            inner.seen.insert(id, entry);
        }
        inner.seen.retain(|id, _| present.contains(id));
        inner.recent.retain(|id, _| present.contains(id));
        inner.primed = true;
        if !changes.is_empty() || monitors_changed {
            let batch = Batch {
                id: next_id(&mut inner),
                reset: false,
                changes: Arc::new(changes),
                monitors_changed,
                public_changed,
            };
            inner.log.push_back(batch.clone());
            while inner.log.len() > LOG_BATCHES {
                if let Some(dropped) = inner.log.pop_front() {
                    inner.log_covers_after = dropped.id;
                }
            }
            // No receiver is fine: no page is open.
            let _ = self.tx.send(batch);
        }
        Ok(())
    }

    /// Notes that someone looks: a page, an update or an event stream was asked for. After an
    /// idle time, the bars of recent results are dropped, to be read again from the store.
    pub fn watch(&self) {
        let mut inner = self.inner.lock().expect("live view lock");
        if inner.idle {
            inner.idle = false;
            inner.recent.clear();
            inner.polled_version = None;
            tracing::debug!("live view: watched again; polling the status cache");
        }
        inner.watched_at = Some(Instant::now());
    }

    /// Whether the poller should read the cache now: before its first poll (which primes what
    /// it has seen), while an event stream is open, or within [`IDLE_AFTER`] of a watch.
    fn watched(&self) -> bool {
        let mut inner = self.inner.lock().expect("live view lock");
        let watched = should_poll(
            inner.primed,
            self.tx.receiver_count(),
            inner.watched_at,
            Instant::now(),
        );
        if !watched && !inner.idle {
            inner.idle = true;
            tracing::debug!("live view: nobody watching; polling paused");
        }
        watched
    }

    /// The id of the newest batch: a page rendered now continues from here.
    pub fn last_id(&self) -> u64 {
        self.inner.lock().expect("live view lock").last_id
    }

    /// New batches as they come.
    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.tx.subscribe()
    }

    /// What a page that saw everything up to `after` has missed: the batches since, or one
    /// reset batch of every monitor when the log no longer reaches back that far (or `after`
    /// is not one of this process's ids).
    pub fn since(&self, after: u64) -> Vec<Batch> {
        let inner = self.inner.lock().expect("live view lock");
        if after >= inner.log_covers_after && after <= inner.last_id {
            return inner.log.iter().filter(|b| b.id > after).cloned().collect();
        }
        let changes = inner
            .seen
            .values()
            .map(|e| change_of(e, None, inner.public.contains(&e.id())))
            .collect();
        vec![Batch {
            id: inner.last_id,
            reset: true,
            changes: Arc::new(changes),
            monitors_changed: true,
            public_changed: true,
        }]
    }

    /// Every monitor, read again from the store only when its version changed.
    pub async fn monitors(&self) -> Result<Monitors, String> {
        let version = self
            .store
            .monitors_version()
            .await
            .map_err(|e| e.to_string())?;
        {
            let inner = self.inner.lock().expect("live view lock");
            if inner.monitors.version == version && version != 0 {
                return Ok(inner.monitors.clone());
            }
        }
        let list = self.store.all_monitors().await.map_err(|e| e.to_string())?;
        let mut inner = self.inner.lock().expect("live view lock");
        inner.public = list.iter().filter(|m| m.public).map(|m| m.id).collect();
        inner.monitors = Monitors {
            version,
            list: Arc::new(list),
        };
        Ok(inner.monitors.clone())
    }

    /// The bars of recent results of `ids`, newest last; monitors seen for the first time are
    /// read from the store (with the newest check of `live` added when the store does not
    /// have it yet).
    pub async fn recent(
        &self,
        ids: &[Uuid],
        live: &HashMap<Uuid, LiveStatus>,
    ) -> HashMap<Uuid, Vec<Tick>> {
        let missing: Vec<Uuid> = {
            let inner = self.inner.lock().expect("live view lock");
            ids.iter()
                .filter(|id| !inner.recent.contains_key(id))
                .copied()
                .collect()
        };
        if !missing.is_empty() {
            let loaded = futures::future::join_all(missing.iter().map(|&id| async move {
                let query = HistoryQuery {
                    region: None,
                    limit: RECENT as u32,
                    ..HistoryQuery::default()
                };
                (id, self.store.history(id, &query).await)
            }))
            .await;
            let mut inner = self.inner.lock().expect("live view lock");
            for (id, history) in loaded {
                let history = match history {
                    Ok(history) => history,
                    Err(error) => {
                        tracing::warn!(monitor_id = %id, %error, "cannot read recent results");
                        continue;
                    }
                };
                let mut bar: VecDeque<Tick> = history
                    .iter()
                    .rev()
                    .map(|e| Tick {
                        at: e.checked_at,
                        up: e.status == upwatch_core::CheckStatus::Up,
                        ms: e.response_time_ms,
                    })
                    .collect();
                if let Some(tick) = live.get(&id).and_then(tick_of) {
                    push_tick(&mut bar, tick);
                }
                inner.recent.entry(id).or_insert(bar);
            }
        }
        let inner = self.inner.lock().expect("live view lock");
        ids.iter()
            .map(|id| {
                let bar = inner
                    .recent
                    .get(id)
                    .map(|b| b.iter().copied().collect())
                    .unwrap_or_default();
                (*id, bar)
            })
            .collect()
    }
}

/// Whether to read the cache: before the first poll, while `streams` event streams are
/// open, or within [`IDLE_AFTER`] of the last watch.
fn should_poll(primed: bool, streams: usize, watched_at: Option<Instant>, now: Instant) -> bool {
    !primed || streams > 0 || watched_at.is_some_and(|at| now.duration_since(at) < IDLE_AFTER)
}

/// Adds a check to a bar unless the bar already has it (or something newer). Times are
/// compared to the millisecond, which is what the store keeps of them.
fn push_tick(bar: &mut VecDeque<Tick>, tick: Tick) {
    if bar
        .back()
        .is_some_and(|last| last.at.timestamp_millis() >= tick.at.timestamp_millis())
    {
        return;
    }
    bar.push_back(tick);
    while bar.len() > RECENT {
        bar.pop_front();
    }
}

/// The newest check of an entry, when it has one.
fn tick_of(entry: &LiveStatus) -> Option<Tick> {
    let at = entry.state.last_checked?;
    Some(Tick {
        at,
        up: entry.state.error.is_none(),
        ms: entry.state.response_time_ms.unwrap_or(0),
    })
}

fn change_of(entry: &LiveStatus, tick: Option<Tick>, public: bool) -> Change {
    Change {
        id: entry.id(),
        name: entry.name.clone(),
        status: entry.state.status,
        response_time_ms: entry.state.response_time_ms,
        last_checked: entry.state.last_checked,
        error: entry
            .state
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.kind.as_str(), e.message)),
        tick,
        public,
    }
}

/// Batch ids are milliseconds since the epoch, made strictly increasing, so that ids of one
/// process only grow and a page's `Last-Event-ID` from before a restart is older than the
/// new process's log.
fn next_id(inner: &mut Inner) -> u64 {
    inner.last_id = now_id().max(inner.last_id + 1);
    inner.last_id
}

fn now_id() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

impl From<&Change> for PublicChange {
    fn from(change: &Change) -> Self {
        PublicChange {
            id: change.id,
            name: change.name.clone(),
            status: change.status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_only_while_someone_watches() {
        let now = Instant::now();
        let before = |d: Duration| Some(now - d);
        assert!(should_poll(false, 0, None, now), "the first poll primes");
        assert!(!should_poll(true, 0, None, now), "never watched");
        assert!(should_poll(true, 1, None, now), "an open stream");
        assert!(should_poll(true, 0, before(Duration::ZERO), now));
        assert!(should_poll(
            true,
            0,
            before(IDLE_AFTER - Duration::from_millis(1)),
            now
        ));
        assert!(!should_poll(true, 0, before(IDLE_AFTER), now), "idle");
        assert!(should_poll(true, 2, before(IDLE_AFTER * 10), now));
    }
}
