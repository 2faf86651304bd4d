//! The outbox dispatcher: delivers the alerts the store holds, with retries.
//!
//! One loop finds the webhooks that have pending deliveries (when woken by the alerter, and
//! every second anyway) and makes sure one worker task runs per such webhook. A worker
//! delivers its webhook's deliveries strictly in order (a recovery never overtakes its down
//! alert) and exits when none is left. Webhooks never wait for one another, and nothing here
//! touches the path of a check: the dispatcher only reads and updates the outbox.
//!
//! Failures, by [`SendError`]:
//! - `RateLimited`: tried again after the time the endpoint asked for;
//! - `Retryable`: tried again after an exponential backoff with ±20% jitter
//!   ([`RetryPolicy`]);
//! - `Disabled`: the channel is disabled in the store with the service's reason (its pending
//!   deliveries fail with it) until someone enables it again;
//! - `Rejected`: this delivery is given up, the next one is tried.
//!
//! Alert storms ([`StormPolicy`]): when a channel's next delivery is a down (or recovery)
//! alert and more than `threshold` such alerts were queued for that channel within `window`,
//! the worker stops sending them one by one. It waits until no new one joined for
//! [`STORM_QUIET`] (at most `window`), then sends one [`Storm`] message listing every pending
//! one and marks them all sent together. The deliveries stay pending in the store until
//! then, so a restart inside a window loses nothing and sends nothing twice: the next
//! process sees the same count and groups what is left. Per monitor, the order holds: a
//! monitor whose later alert of another kind is pending is left out of the group and goes
//! after it. Channels whose kind deduplicates incidents itself (PagerDuty, Opsgenie) are not
//! grouped unless their `group_alerts` says so.
//!
//! Store errors are logged and the operation is tried again after a short pause; a delivery
//! whose outcome could not be recorded is not sent a second time by this process.
//!
//! On shutdown the dispatcher keeps delivering what falls due within the drain timeout and
//! then stops; whatever is left stays pending in the store for the next start.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};
use upwatch_store::{Delivery, Outbox, StoreResult};
use upwatch_telemetry::Metrics;
use uuid::Uuid;

use crate::{Message, Notifier, SendError, Storm};
use upwatch_core::{AlertKind, Webhook};

/// How often the outbox is looked at when nobody wakes the dispatcher.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Pause before trying a failed store operation again.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// How long a storm group waits for more members: it is sent once none joined for this long
/// (or its window is over).
pub const STORM_QUIET: Duration = Duration::from_secs(2);
/// The most deliveries one storm message settles; more go in the next one.
pub const STORM_MAX: usize = 10_000;

/// When alerts are grouped into one message per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormPolicy {
    /// More than this many down (or recovery) alerts to one channel within `window` make a
    /// storm (`UPWATCH_ALERT_GROUP_THRESHOLD`, default 10); 0 switches grouping off.
    pub threshold: u32,
    /// `UPWATCH_ALERT_GROUP_WINDOW`, default 60 s.
    pub window: Duration,
    /// The dashboard's address for the storm message's link (`UPWATCH_PUBLIC_URL`).
    pub dashboard_url: Option<String>,
}

impl Default for StormPolicy {
    fn default() -> Self {
        StormPolicy {
            threshold: 10,
            window: Duration::from_secs(60),
            dashboard_url: None,
        }
    }
}

/// The deliveries of `pending` (one channel's, oldest first) that one storm message of `kind`
/// settles: those of `kind`, except a monitor's that come after a pending alert of another
/// kind for the same monitor (which must go first).
pub fn storm_group(pending: &[Delivery], kind: AlertKind) -> Vec<&Delivery> {
    let mut blocked = HashSet::new();
    let mut group = Vec::new();
    for d in pending {
        if d.alert.kind == kind && !blocked.contains(&d.alert.monitor_id) {
            group.push(d);
        } else if d.alert.kind != kind {
            blocked.insert(d.alert.monitor_id);
        }
    }
    group
}

/// How long to wait before trying a delivery again after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles with each further failure.
    pub base: Duration,
    /// The longest wait, before jitter.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// One second, doubling up to five minutes.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after a failure of a delivery that had `attempts` earlier failed attempts,
    /// before jitter: `min(base * 2^attempts, max)`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.min(31));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// [`RetryPolicy::backoff`] spread by ±20% so that many deliveries failing together do
    /// not all come back at the same instant.
    pub fn jittered(&self, attempts: u32) -> Duration {
        jitter(self.backoff(attempts), random_unit())
    }
}

/// `d` scaled by a factor between 0.8 (`unit` = 0) and 1.2 (`unit` = 1).
fn jitter(d: Duration, unit: f64) -> Duration {
    d.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)`.
fn random_unit() -> f64 {
    // 53 random bits from a v4 UUID, which the uuid crate draws from the system's generator.
    (Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Delivers the store's outbox through a [`Notifier`]. Build it, keep its [`waker`], then
/// [`run`] it.
///
/// [`waker`]: Dispatcher::waker
/// [`run`]: Dispatcher::run
pub struct Dispatcher {
    store: Arc<dyn Outbox>,
    notifier: Arc<dyn Notifier>,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
    storms: StormPolicy,
    wake: Arc<Notify>,
    poll_interval: Duration,
}

impl Dispatcher {
    /// A dispatcher over `store`'s outbox, sending through `notifier`.
    pub fn new(
        store: Arc<dyn Outbox>,
        notifier: Arc<dyn Notifier>,
        metrics: Arc<Metrics>,
        policy: RetryPolicy,
    ) -> Self {
        Dispatcher {
            store,
            notifier,
            metrics,
            policy,
            storms: StormPolicy::default(),
            wake: Arc::new(Notify::new()),
            poll_interval: POLL_INTERVAL,
        }
    }

    /// Groups alert storms by `storms` (default [`StormPolicy::default`]).
    pub fn with_storms(mut self, storms: StormPolicy) -> Self {
        self.storms = storms;
        self
    }

    /// The handle to poke (with [`Notify::notify_one`]) after storing an alert, so that it
    /// goes out at once rather than at the next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Looks for due deliveries every `every` when not woken (default [`POLL_INTERVAL`]).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Uses `wake` as the waker, so that one handle survives a dispatcher being replaced (a
    /// new leadership term in the distributed mode).
    pub fn with_waker(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Delivers until `shutdown` is cancelled, then keeps delivering what falls due for up
    /// to `drain_timeout` and returns. Deliveries not made stay pending in the store.
    pub async fn run(self, shutdown: CancellationToken, drain_timeout: Duration) {
        let shared = Arc::new(Shared {
            store: self.store,
            notifier: self.notifier,
            metrics: self.metrics,
            policy: self.policy,
            storms: self.storms,
            wake: self.wake,
            shutdown: shutdown.clone(),
            drain_timeout,
            drain_deadline: OnceLock::new(),
            hard_stop: CancellationToken::new(),
            active: Mutex::new(HashSet::new()),
        });
        let tracker = TaskTracker::new();
        info!("alert dispatcher started");

        loop {
            spawn_workers(&shared, &tracker).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }

        // Drain: pick up what was stored just before the shutdown, then give the workers
        // until the deadline.
        let deadline = shared.drain_deadline();
        spawn_workers(&shared, &tracker).await;
        tracker.close();
        if tokio::time::timeout_at(deadline, tracker.wait())
            .await
            .is_err()
        {
            let left = shared.active.lock().expect("active set lock").len();
            warn!(
                webhooks = left,
                "alert deliveries still in progress at the end of the drain timeout; they stay pending"
            );
            shared.hard_stop.cancel();
            tracker.wait().await;
        }
        info!("alert dispatcher stopped");
    }
}

/// What the loop and its workers share.
struct Shared {
    store: Arc<dyn Outbox>,
    notifier: Arc<dyn Notifier>,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
    storms: StormPolicy,
    wake: Arc<Notify>,
    /// Cancelled when the dispatcher should drain and stop.
    shutdown: CancellationToken,
    drain_timeout: Duration,
    /// Set by whoever first sees `shutdown` cancelled.
    drain_deadline: OnceLock<Instant>,
    /// Cancelled at the drain deadline: workers stop at once.
    hard_stop: CancellationToken,
    /// Webhooks with a running worker.
    active: Mutex<HashSet<Uuid>>,
}

impl Shared {
    fn drain_deadline(&self) -> Instant {
        *self
            .drain_deadline
            .get_or_init(|| Instant::now() + self.drain_timeout)
    }

    /// Whether waiting until `at` is worth it: always while running, and only when `at`
    /// comes before the drain deadline once shutting down.
    fn may_wait_until(&self, at: Instant) -> bool {
        !self.shutdown.is_cancelled() || at <= self.drain_deadline()
    }

    /// Sleeps until `at`, or until it is clear that the dispatcher stops first. Returns
    /// false when the worker should stop.
    async fn sleep_until(&self, at: Instant) -> bool {
        loop {
            if !self.may_wait_until(at) || self.hard_stop.is_cancelled() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(at) => return true,
                _ = self.hard_stop.cancelled() => return false,
                // Shutting down: loop to look at the deadline.
                _ = self.shutdown.cancelled(), if !self.shutdown.is_cancelled() => {}
            }
        }
    }

    /// Runs a store operation until it succeeds; `None` when the dispatcher stopped first.
    async fn persist<T, F, Fut>(&self, what: &str, webhook_id: Uuid, mut op: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        loop {
            match op().await {
                Ok(value) => return Some(value),
                Err(e) => {
                    warn!(%webhook_id, error = %e, "could not {what}; trying again");
                    if !self.sleep_until(Instant::now() + STORE_RETRY).await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Starts a worker for every webhook with pending deliveries that has none.
async fn spawn_workers(shared: &Arc<Shared>, tracker: &TaskTracker) {
    let ids = match shared.store.webhooks_with_pending().await {
        Ok(ids) => ids,
        Err(e) => {
            warn!(error = %e, "could not list webhooks with pending alerts");
            return;
        }
    };
    for id in ids {
        let is_new = shared.active.lock().expect("active set lock").insert(id);
        if is_new {
            let shared = shared.clone();
            let span = tracing::info_span!("alert_worker", webhook_id = %id);
            tracker.spawn(
                async move {
                    work(&shared, id).await;
                    shared.active.lock().expect("active set lock").remove(&id);
                    // A delivery stored between our last look and the removal above would
                    // otherwise wait for the next poll.
                    shared.wake.notify_one();
                }
                .instrument(span),
            );
        }
    }
}

/// Delivers one webhook's deliveries in order until none is left or the dispatcher stops.
async fn work(shared: &Shared, webhook_id: Uuid) {
    loop {
        if shared.hard_stop.is_cancelled() {
            return;
        }
        let next = shared
            .persist("read the next delivery", webhook_id, || {
                shared.store.next_delivery(webhook_id)
            })
            .await;
        let Some(Some(delivery)) = next else {
            return;
        };
        let due_in = (delivery.next_attempt_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        if !due_in.is_zero() && !shared.sleep_until(Instant::now() + due_in).await {
            return;
        }
        if shared.hard_stop.is_cancelled() {
            return;
        }
        let go_on = match storm_kind(shared, &delivery).await {
            Some(kind) => deliver_storm(shared, &delivery.webhook, kind).await,
            None => deliver(shared, &delivery).await,
        };
        if !go_on {
            return;
        }
    }
}

/// The kind of storm `d` belongs to, when its channel is in one: `d` is a down or recovery
/// alert, the channel groups storms, and more than the threshold of such alerts were queued
/// for it within the window.
async fn storm_kind(shared: &Shared, d: &Delivery) -> Option<AlertKind> {
    let kind = d.alert.kind;
    let policy = &shared.storms;
    if policy.threshold == 0 || !matches!(kind, AlertKind::Down | AlertKind::Recovery) {
        return None;
    }
    let channel = &d.webhook;
    let groups = channel
        .options
        .group_alerts
        .unwrap_or_else(|| shared.notifier.groups_storms(&channel.kind));
    if !groups {
        return None;
    }
    let window = chrono::Duration::from_std(policy.window).unwrap_or(chrono::Duration::MAX);
    let since = Utc::now()
        .checked_sub_signed(window)
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let count = shared
        .persist("count the recent alerts", channel.id, || {
            shared.store.recent_deliveries(channel.id, kind, since)
        })
        .await?;
    (count > u64::from(policy.threshold)).then_some(kind)
}

/// Collects `channel`'s pending alerts of `kind` until none joined for [`STORM_QUIET`] (at
/// most the window), sends them as one message and settles them together. Returns false
/// when the worker should stop.
async fn deliver_storm(shared: &Shared, channel: &Webhook, kind: AlertKind) -> bool {
    let id = channel.id;
    let started = Instant::now();
    let mut size = 0;
    let mut changed = started;
    let group = loop {
        let Some(pending) = shared
            .persist("read the pending deliveries", id, || {
                shared.store.pending_deliveries_of(id, STORM_MAX)
            })
            .await
        else {
            return false;
        };
        let group: Vec<Delivery> = storm_group(&pending, kind).into_iter().cloned().collect();
        let now = Instant::now();
        if group.len() != size {
            size = group.len();
            changed = now;
        }
        let close_at = (changed + STORM_QUIET).min(started + shared.storms.window);
        if now >= close_at || shared.shutdown.is_cancelled() || size >= STORM_MAX {
            break group;
        }
        let next_look = (now + STORM_QUIET / 4).min(close_at);
        if !shared.sleep_until(next_look).await {
            return false;
        }
    };
    let Some(head) = group.first() else {
        return true;
    };
    if group.len() == 1 {
        return deliver(shared, head).await;
    }
    let ids: Vec<i64> = group.iter().map(|d| d.id).collect();
    let storm = Message::Storm(Storm {
        kind,
        alerts: group.iter().map(|d| d.alert.clone()).collect(),
        dashboard_url: shared.storms.dashboard_url.clone(),
    });
    let span = tracing::info_span!(
        "storm_delivery",
        channel = %channel.name,
        kind = kind.as_str(),
        alerts = ids.len(),
        attempt = head.attempts + 1,
    );
    async {
        let outcome = tokio::select! {
            outcome = shared.notifier.send(channel, &storm) => outcome,
            _ = shared.hard_stop.cancelled() => return false,
        };
        let store = &shared.store;
        match outcome {
            Ok(()) => {
                shared.metrics.alerts_sent.inc_by(ids.len() as u64);
                info!("alert storm delivered as one message");
                shared
                    .persist("record sent deliveries", id, || store.deliveries_sent(&ids))
                    .await
                    .is_some()
            }
            Err(error) => {
                shared.metrics.alerts_failed.inc();
                settle_failure(shared, head, error, Some(&ids)).await
            }
        }
    }
    .instrument(span)
    .await
}

/// Sends one delivery and records the outcome. Returns false when the worker should stop.
async fn deliver(shared: &Shared, d: &Delivery) -> bool {
    let attempt = d.attempts + 1;
    let span = tracing::info_span!(
        "delivery",
        channel = %d.webhook.name,
        channel_kind = %d.webhook.kind,
        delivery_id = d.id,
        alert_id = %d.alert.id,
        monitor_id = %d.alert.monitor_id,
        kind = d.alert.kind.as_str(),
        attempt,
    );
    async {
        let message = Message::Alert(d.alert.clone());
        let outcome = tokio::select! {
            outcome = shared.notifier.send(&d.webhook, &message) => outcome,
            // The request is abandoned; the delivery stays pending for the next start.
            _ = shared.hard_stop.cancelled() => return false,
        };
        let store = &shared.store;
        let id = d.webhook.id;
        match outcome {
            Ok(()) => {
                shared.metrics.alerts_sent.inc();
                info!("alert delivered");
                shared
                    .persist("record a sent delivery", id, || store.delivery_sent(d.id))
                    .await
                    .is_some()
            }
            Err(error) => {
                shared.metrics.alerts_failed.inc();
                settle_failure(shared, d, error, None).await
            }
        }
    }
    .instrument(span)
    .await
}

/// Records what a failed attempt at `d` (or at the storm `group` that `d` heads) means.
/// Returns false when the worker should stop.
async fn settle_failure(
    shared: &Shared,
    d: &Delivery,
    error: SendError,
    group: Option<&[i64]>,
) -> bool {
    let store = &shared.store;
    let id = d.webhook.id;
    let text = error.to_string();
    match error {
        SendError::RateLimited { retry_after } => {
            warn!(?retry_after, "alert delivery rate limited");
            retry(shared, d, retry_after, &text).await
        }
        SendError::Retryable(_) => {
            let wait = shared.policy.jittered(d.attempts);
            warn!(error = %text, retry_in = ?wait, "alert delivery failed; will retry");
            retry(shared, d, wait, &text).await
        }
        SendError::Disabled(reason) => {
            warn!(%reason, "the channel refused for good; disabling it");
            shared
                .persist("disable a refused channel", id, || {
                    store.disable_webhook(id, &reason)
                })
                .await;
            false
        }
        SendError::Rejected(_) => {
            warn!(error = %text, "alert delivery rejected; giving it up");
            let single = [d.id];
            let ids = group.unwrap_or(&single);
            shared
                .persist("record a failed delivery", id, || {
                    store.deliveries_failed(ids, &text)
                })
                .await
                .is_some()
        }
    }
}

/// Records a failed attempt to be tried again after `wait`.
async fn retry(shared: &Shared, d: &Delivery, wait: Duration, error: &str) -> bool {
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    let at = Utc::now()
        .checked_add_signed(wait)
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
    debug!(next_attempt_at = %at, "delivery rescheduled");
    shared
        .persist("reschedule a delivery", d.webhook.id, || {
            shared.store.delivery_retry(d.id, at, error)
        })
        .await
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_secs(1));
        assert_eq!(p.backoff(1), Duration::from_secs(2));
        assert_eq!(p.backoff(5), Duration::from_secs(32));
        assert_eq!(p.backoff(9), Duration::from_secs(300));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let d = Duration::from_secs(10);
        assert_eq!(jitter(d, 0.0), Duration::from_secs(8));
        assert_eq!(jitter(d, 1.0), Duration::from_secs(12));
        assert_eq!(jitter(d, 0.5), Duration::from_secs(10));
        let p = RetryPolicy::default();
        let samples: Vec<Duration> = (0..200).map(|_| p.jittered(3)).collect();
        assert!(samples
            .iter()
            .all(|s| (Duration::from_millis(6400)..=Duration::from_millis(9600)).contains(s)));
        // Not all equal: the jitter is random.
        assert!(samples.iter().any(|s| *s != samples[0]));
    }

    #[test]
    fn random_unit_is_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
