//! The watchdog: makes any silent gap in checking loud, whatever its cause.
//!
//! It runs beside the scheduler (so, in the distributed mode, only in the leader, and never in
//! a worker, which is among what it watches). The scheduler tells it which monitors are
//! enabled and since when results are expected; every tick it reads the check times the
//! status cache keeps and judges each monitor with [`upwatch_core::watchdog::is_stale`]. A
//! monitor without a result for `stale_after_intervals` intervals is marked stale in the cache
//! (the API and the pages show `stale`), counted in `upwatch_monitors_stale`, and makes this
//! process report not-ready; one message per burst goes to every webhook, and one when all
//! are checked again. Nothing here alerts as a down would, nor opens an incident: an unchecked
//! monitor is unknown, not down.
//!
//! In the distributed mode it also samples the workers' consumer lag on every partition of the
//! jobs topic and reports a partition whose lag keeps growing, by number.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use upwatch_bus::{groups, publish_json, Bus, Topic};
use upwatch_cache::{StaleMark, StatusCache};
use upwatch_core::alert::human_duration;
use upwatch_core::watchdog::{is_stale, missed_heartbeat, Bursts, Expected, LagTrend, Notice};
use upwatch_core::{CheckError, CheckResult, ErrorKind};
use upwatch_notify::{Message, Notifier, SendError};
use upwatch_store::WebhookStore;
use upwatch_telemetry::{Metrics, PartitionLabel};
use uuid::Uuid;

use crate::clock::Clock;
use crate::retry::Backoff;
use crate::scheduler::error_chain;

/// The enabled monitors the scheduler expects results of.
pub type ExpectedSet = HashMap<Uuid, Expected>;

/// The name under which the watchdog reports unchecked monitors in `/readyz`.
const STALE_PROBLEM: &str = "watchdog: unchecked monitors";
/// The name under which the watchdog reports partitions falling behind in `/readyz`.
const LAG_PROBLEM: &str = "watchdog: jobs lag";
/// Attempts to deliver one notice to one webhook.
const NOTICE_ATTEMPTS: u32 = 5;

/// Every this many judgements (30 s at one a second) the watchdog writes all its marks again.
const RESEND_MARKS_EVERY: u64 = 30;

/// Where the watchdog's messages go.
#[async_trait]
pub trait Announce: Send + Sync + 'static {
    /// Delivers `notice` wherever people are told, retrying what may pass.
    async fn announce(&self, notice: Notice);
}

/// Announces to every enabled webhook in the store, each in turn with retries (a 429 waits
/// for its `retry_after`, network errors and 5xx back off), logging what could not be sent.
///
/// The notices do not go through the alert outbox: they are about upwatch, not about a
/// monitor, and a lost all-clear is less harmful than a schema change of the outbox for
/// them. They are still retried, and each failure is logged.
pub struct WebhookAnnouncer {
    pub store: Arc<dyn WebhookStore>,
    pub notifier: Arc<dyn Notifier>,
}

#[async_trait]
impl Announce for WebhookAnnouncer {
    async fn announce(&self, notice: Notice) {
        let webhooks = match self.store.list_webhooks().await {
            Ok(webhooks) => webhooks,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "cannot list webhooks for the watchdog's message");
                return;
            }
        };
        let everyone = matches!(
            notice,
            Notice::Unchecked { .. } | Notice::CheckedAgain { .. }
        );
        let webhooks = upwatch_core::webhook::system_channels(webhooks, everyone);
        if webhooks.is_empty() {
            tracing::warn!(title = notice.title(), text = %notice.text(), "no channel is marked `system` for this message: it goes to the log only");
            return;
        }
        let message = Message::Notice(notice);
        let sends = webhooks.into_iter().map(|webhook| {
            let message = &message;
            async move {
                let backoff = Backoff::default();
                for attempt in 1..=NOTICE_ATTEMPTS {
                    let wait = match self.notifier.send(&webhook, message).await {
                        Ok(()) => {
                            tracing::info!(webhook = %webhook.id, "watchdog message delivered");
                            return;
                        }
                        Err(SendError::RateLimited { retry_after }) => retry_after,
                        Err(SendError::Retryable(why)) => {
                            tracing::warn!(webhook = %webhook.id, attempt, error = %why, "watchdog message not delivered; retrying");
                            backoff.delay(attempt)
                        }
                        Err(error) => {
                            tracing::warn!(webhook = %webhook.id, %error, "watchdog message refused");
                            return;
                        }
                    };
                    tokio::time::sleep(wait).await;
                }
                tracing::warn!(webhook = %webhook.id, attempts = NOTICE_ATTEMPTS, "watchdog message given up");
            }
        });
        futures::future::join_all(sends).await;
    }
}

/// The watchdog role. Cheap to clone.
#[derive(Clone)]
pub struct Watchdog {
    /// Where check times are read and stale marks written.
    pub cache: Arc<dyn StatusCache>,
    pub announce: Arc<dyn Announce>,
    pub metrics: Arc<Metrics>,
    /// Intervals without a result after which a monitor is stale.
    pub stale_after_intervals: u32,
    /// How often monitors are judged.
    pub every: Duration,
    /// The bus whose jobs lag is watched, in the distributed mode.
    pub lag_of: Option<Arc<dyn Bus>>,
    /// The regions whose jobs topics' lag is watched (each by its own workers' group).
    pub lag_regions: Vec<String>,
    /// How often the lag is sampled.
    pub lag_every: Duration,
    /// Where push monitors' missed heartbeats are published (the results stream).
    pub results: Arc<dyn Bus>,
}

impl Watchdog {
    /// Judges the monitors of `expected` every [`Watchdog::every`] on `clock` until `stop`.
    pub async fn run(
        self,
        mut expected: watch::Receiver<Arc<ExpectedSet>>,
        clock: Clock,
        stop: CancellationToken,
    ) {
        let mut state = State {
            marked: None,
            judged: 0,
            bursts: Bursts::new(),
            lag: HashMap::new(),
            reported: 0,
            missed: HashMap::new(),
            blind: false,
            seeing_since_ms: None,
            absent_since_ms: HashMap::new(),
        };
        let mut next_lag = Instant::now();
        loop {
            let set = expected.borrow_and_update().clone();
            self.judge(&set, clock.now_ms(), &mut state).await;
            if let Some(bus) = &self.lag_of {
                if Instant::now() >= next_lag {
                    let mut growing = Vec::new();
                    for region in &self.lag_regions {
                        let trend = state.lag.entry(region.clone()).or_default();
                        growing.extend(self.sample_lag(bus.as_ref(), region, trend).await);
                    }
                    if growing.is_empty() {
                        self.metrics.health.clear_problem(LAG_PROBLEM);
                    } else {
                        self.metrics
                            .health
                            .set_problem(LAG_PROBLEM, growing.join(" "));
                    }
                    next_lag = Instant::now() + self.lag_every;
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
        // Another process's watchdog takes over, or none is needed any more.
        self.metrics.health.clear_problem(STALE_PROBLEM);
        self.metrics.health.clear_problem(LAG_PROBLEM);
    }

    async fn judge(&self, expected: &ExpectedSet, now_ms: i64, state: &mut State) {
        let times = match self.cache.check_times().await {
            Ok(times) => times,
            Err(error) => {
                state.blind = true;
                tracing::warn!(error = %error_chain(&error), "watchdog: cannot read check times; trying again");
                self.metrics.health.set_problem(
                    STALE_PROBLEM,
                    "The watchdog cannot read check times from the status cache.".to_owned(),
                );
                return;
            }
        };
        state.saw(expected, &times, now_ms);
        self.record_missed_heartbeats(expected, &times, now_ms, state)
            .await;
        let intervals = self.stale_after_intervals;
        let stale: Vec<(Uuid, Option<DateTime<chrono::Utc>>)> = expected
            .iter()
            // A push monitor is never stale: its silence is a missed heartbeat, a down.
            .filter(|(_, e)| e.push.is_none())
            .filter_map(|(id, e)| {
                let seen = times.get(id).copied().flatten();
                let silent = state.silent_since(id, seen.map(|at| at.timestamp_millis()));
                is_stale(e, silent, now_ms, intervals).then_some((*id, seen))
            })
            .collect();
        let stale_ids: HashSet<Uuid> = stale.iter().map(|(id, _)| *id).collect();
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        // Each monitor keeps the time it was first found stale, also when its mark is sent
        // again.
        let since_of = |id: &Uuid| {
            state
                .marked
                .as_ref()
                .and_then(|marked| marked.get(id).copied())
                .unwrap_or(now)
        };
        // Now and then every mark is written again, so that marks the cache lost (a Redis
        // that was flushed or restarted empty) come back; writing a mark that is there
        // changes nothing.
        let resend = state.judged.is_multiple_of(RESEND_MARKS_EVERY);
        state.judged += 1;
        let (marks, cleared): (Vec<StaleMark>, Vec<Uuid>) = match &state.marked {
            Some(marked) => (
                stale
                    .iter()
                    .filter(|(id, _)| resend || !marked.contains_key(id))
                    .map(|(id, seen)| mark(*id, *seen, since_of(id)))
                    .collect(),
                marked
                    .keys()
                    .filter(|id| !stale_ids.contains(id))
                    .copied()
                    .collect(),
            ),
            // The first judgement after taking over: marks left by another watchdog (or by
            // this one before a restart) are not known, so every other monitor is cleared.
            None => (
                stale
                    .iter()
                    .map(|(id, seen)| mark(*id, *seen, now))
                    .collect(),
                times
                    .keys()
                    .filter(|id| !stale_ids.contains(id))
                    .copied()
                    .collect(),
            ),
        };
        if !marks.is_empty() || !cleared.is_empty() {
            if let Err(error) = self.cache.set_stale(&marks, &cleared).await {
                tracing::warn!(error = %error_chain(&error), "watchdog: cannot write stale marks; trying again");
                return;
            }
        }
        let marked: HashMap<Uuid, DateTime<chrono::Utc>> =
            stale_ids.iter().map(|id| (*id, since_of(id))).collect();
        state.marked = Some(marked);
        self.metrics.monitors_stale.set(stale.len() as i64);
        let mut names: Vec<String> = stale
            .iter()
            .filter_map(|(id, _)| expected.get(id).map(|e| e.name.clone()))
            .collect();
        names.sort();
        if names.is_empty() {
            self.metrics.health.clear_problem(STALE_PROBLEM);
            if state.reported > 0 {
                tracing::info!("watchdog: every monitor has results again");
            }
        } else {
            let reason = format!(
                "{} enabled monitors have had no result for {intervals} intervals (first: {}); upwatch_monitors_stale counts them.",
                names.len(),
                names[0]
            );
            if names.len() != state.reported {
                tracing::warn!(
                    stale = names.len(),
                    first = %names[0],
                    intervals,
                    "watchdog: monitors are not being checked"
                );
            }
            self.metrics.health.set_problem(STALE_PROBLEM, reason);
        }
        state.reported = names.len();
        if let Some(notice) = state.bursts.step(now_ms, &names, intervals) {
            tracing::warn!(message = %notice.text(), "watchdog: telling every webhook");
            let announce = self.announce.clone();
            tokio::spawn(async move { announce.announce(notice).await });
        }
    }

    /// Publishes a `missed_heartbeat` result for each push monitor whose push is overdue, once
    /// per deadline. The result is dated at the deadline, so that the next deadline follows
    /// it by one interval plus the grace (the check times read next may not show it yet, hence
    /// the memo of deadlines already missed).
    async fn record_missed_heartbeats(
        &self,
        expected: &ExpectedSet,
        times: &HashMap<Uuid, Option<DateTime<chrono::Utc>>>,
        now_ms: i64,
        state: &mut State,
    ) {
        state.missed.retain(|id, _| expected.contains_key(id));
        for (id, e) in expected {
            let Some(heartbeat) = &e.push else {
                continue;
            };
            let seen = times
                .get(id)
                .copied()
                .flatten()
                .map(|t| t.timestamp_millis());
            let seen = state.silent_since(id, seen);
            let last = match (seen, state.missed.get(id).copied()) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let Some(deadline) = missed_heartbeat(e, heartbeat, last, now_ms) else {
                continue;
            };
            let at = DateTime::from_timestamp_millis(deadline).unwrap_or_default();
            let waited = human_duration(chrono::Duration::milliseconds(
                e.interval_ms + heartbeat.grace_ms,
            ));
            let mut result = CheckResult::heartbeat(
                *id,
                &e.name,
                &heartbeat.url,
                heartbeat.rules,
                at,
                Err(CheckError::new(
                    ErrorKind::MissedHeartbeat,
                    format!("no push within {waited} (the interval plus the grace)"),
                )),
            );
            result.maintenance = heartbeat.in_maintenance(at);
            match publish_json(self.results.as_ref(), Topic::Results, *id, &result).await {
                Ok(()) => {
                    tracing::info!(monitor_id = %id, deadline = %at, "push monitor missed its heartbeat");
                    state.missed.insert(*id, deadline);
                }
                Err(error) => {
                    // Tried again at the next judgement: the deadline is still missed.
                    tracing::warn!(monitor_id = %id, %error, "cannot publish a missed heartbeat; trying again");
                }
            }
        }
    }

    /// Samples the lag of `region`'s jobs topic; says where it keeps growing, if it does.
    async fn sample_lag(
        &self,
        bus: &dyn Bus,
        region: &str,
        trend: &mut LagTrend,
    ) -> Option<String> {
        let lags = match bus
            .consumer_lag(Topic::jobs(region), &groups::workers(region))
            .await
        {
            Ok(Some(lags)) => lags,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, region, "watchdog: cannot read the workers' consumer lag");
                return None;
            }
        };
        for lag in &lags {
            self.metrics
                .jobs_partition_lag
                .get_or_create(&PartitionLabel {
                    partition: lag.partition,
                })
                .set(lag.lag);
        }
        let pairs: Vec<(i32, i64)> = lags.iter().map(|l| (l.partition, l.lag)).collect();
        let growing = trend.record(&pairs);
        if growing.is_empty() {
            return None;
        }
        let list = growing
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        tracing::warn!(
            partitions = %list,
            region,
            "watchdog: the workers' lag keeps growing on these partitions of the region's jobs topic; no worker may be consuming them"
        );
        Some(format!(
            "The workers' lag keeps growing on {} {list} of the jobs topic of region {region}.",
            if growing.len() == 1 {
                "partition"
            } else {
                "partitions"
            }
        ))
    }
}

struct State {
    /// The monitors this watchdog marked stale, with when each was first found stale; `None`
    /// before its first judgement.
    marked: Option<HashMap<Uuid, DateTime<chrono::Utc>>>,
    /// Judgements made, to write every mark again each [`RESEND_MARKS_EVERY`].
    judged: u64,
    bursts: Bursts,
    lag: HashMap<String, LagTrend>,
    /// Stale monitors at the last judgement, to log changes only.
    reported: usize,
    /// The newest missed-heartbeat deadline recorded per push monitor.
    missed: HashMap<Uuid, i64>,
    /// Whether the last read of the check times failed.
    blind: bool,
    /// When the check times could be read again after failed reads.
    seeing_since_ms: Option<i64>,
    /// When each expected monitor was first found without an entry in the cache.
    absent_since_ms: HashMap<Uuid, i64>,
}

impl State {
    /// Takes in a read of the check times at `now_ms`: notes a return from blindness and the
    /// monitors the cache has no entry of.
    fn saw(
        &mut self,
        expected: &ExpectedSet,
        times: &HashMap<Uuid, Option<DateTime<chrono::Utc>>>,
        now_ms: i64,
    ) {
        if std::mem::take(&mut self.blind) {
            self.seeing_since_ms = Some(now_ms);
        }
        self.absent_since_ms
            .retain(|id, _| expected.contains_key(id) && !times.contains_key(id));
        for id in expected.keys().filter(|id| !times.contains_key(id)) {
            self.absent_since_ms.entry(*id).or_insert(now_ms);
        }
    }

    /// The time a monitor's silence counts from, as far as the watchdog could see: its newest
    /// check time `seen_ms`, but never before the watchdog could read the cache again after
    /// it was away, nor before the cache was found without the monitor's entry. A cache that
    /// came back (empty, or behind the results it missed) is given a whole stale period for
    /// the cache updater to catch up, instead of being taken for monitors nobody checks; if
    /// no result comes in that period, the monitor is stale as usual.
    fn silent_since(&self, id: &Uuid, seen_ms: Option<i64>) -> Option<i64> {
        [
            seen_ms,
            self.seeing_since_ms,
            self.absent_since_ms.get(id).copied(),
        ]
        .into_iter()
        .flatten()
        .max()
    }
}

fn mark(
    monitor_id: Uuid,
    seen: Option<DateTime<chrono::Utc>>,
    since: DateTime<chrono::Utc>,
) -> StaleMark {
    StaleMark {
        monitor_id,
        seen,
        since,
    }
}
