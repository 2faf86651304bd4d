//! Durable storage, the port: the [`Store`] trait, its value types and errors. No driver
//! here: the SQLite and PostgreSQL implementations live in `upwatch-store-sql`, and only
//! `upwatch-app` names them.
//!
//! Layout:
//! - this file: the trait, its value types and errors;
//! - [`intercept`]: a wrapper that lets tests count or fail the calls made to a store;
//! - `contract` (feature `contract`, never in a production build): the behaviour every
//!   implementation must show, as async functions that the tests of each implementation call.
//!
//! Architecture invariant: the store is the only place that persists state; every method is
//! one transaction, so a crash leaves either all of a method's effects or none.

#[cfg(feature = "contract")]
pub mod contract;
pub mod intercept;

use async_trait::async_trait;

use chrono::{DateTime, TimeDelta, Utc};
use upwatch_core::maintenance::Maintenance;
use upwatch_core::rollup::{
    cover, readable_range, runs, Cutoffs, Resolution, Retention, Rollup, RollupRun,
};
use upwatch_core::{
    Alert, AlertKind, CheckError, CheckResult, CheckStatus, Monitor, MonitorState, Webhook,
};
use uuid::Uuid;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or answered with an error. The driver's error is
    /// kept boxed, so that this trait names no driver type.
    #[error("database error: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Migrations failed to apply, or the schema is older than this build expects.
    #[error("database schema: {0}")]
    Schema(String),
    /// A row could not be read back into a domain value.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A write conflicts with existing data (a duplicate id).
    #[error("conflict: {0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page request over a monitor's history, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only results checked at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only results checked before this time.
    pub until: Option<DateTime<Utc>>,
    /// Continue after this entry (the last one of the previous page).
    pub after: Option<HistoryCursor>,
    /// At most this many entries.
    pub limit: u32,
    /// Only results of this region's workers.
    pub region: Option<String>,
}

/// Position in a history listing: the `(checked_at, id)` of the last entry seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub checked_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One stored result, as history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: Uuid,
    pub checked_at: DateTime<Utc>,
    pub status: CheckStatus,
    pub response_time_ms: u32,
    pub status_code: Option<u16>,
    pub error: Option<CheckError>,
    /// Whether the check came during a maintenance window (left out of the rollups).
    pub maintenance: bool,
    /// The region of the worker that made the check.
    pub region: String,
}

/// One alert waiting to be delivered to one webhook (a row of the outbox).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub alert: Alert,
    pub webhook: Webhook,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not to be tried before this time (backoff, rate limits).
    pub next_attempt_at: DateTime<Utc>,
}

/// The rollup of one monitor over one bucket of time, as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRollup {
    pub monitor_id: Uuid,
    pub resolution: Resolution,
    /// The start of the bucket.
    pub start: DateTime<Utc>,
    pub rollup: Rollup,
}

/// One DOWN period of a monitor: opened by the transition to down, closed by the recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// A UUIDv7 made when the incident opened, so that id order is opening order.
    pub id: Uuid,
    pub monitor_id: Uuid,
    /// When the monitor went down (the time of the down alert).
    pub started_at: DateTime<Utc>,
    /// When it recovered; `None` while the incident is open.
    pub ended_at: Option<DateTime<Utc>>,
    /// The error of the check that took the monitor down.
    pub first_error: Option<CheckError>,
    /// The HTTP status of that check, when there was a response.
    pub status_code: Option<u16>,
    /// Notifications delivered for this incident (down and recovery, every webhook).
    pub alerts_sent: u32,
}

impl Incident {
    /// How long the monitor was (or, while open, has been so far) down.
    pub fn duration(&self, now: DateTime<Utc>) -> TimeDelta {
        (self.ended_at.unwrap_or(now) - self.started_at).max(TimeDelta::zero())
    }
}

/// A page request over incidents, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentQuery {
    /// Only this monitor's incidents; all monitors' when `None`.
    pub monitor_id: Option<Uuid>,
    /// Only incidents that have not ended.
    pub open_only: bool,
    /// Continue after this incident (the last one of the previous page).
    pub before: Option<Uuid>,
    /// At most this many incidents.
    pub limit: u32,
}

/// What one call to [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub raw: u64,
    pub rollups: u64,
}

/// The rollups of `monitor_ids` that cover `[from, to)` as closely as what is still kept at
/// `now` allows: whole days in the middle, hours and minutes at the edges (see
/// [`cover`] and [`readable_range`]). At most a few hundred rows per monitor, however long the
/// range and the history. Returns the range actually covered with the rollups.
pub async fn read_rollups(
    store: &dyn HistoryReader,
    monitor_ids: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    retention: &Retention,
) -> StoreResult<(DateTime<Utc>, DateTime<Utc>, Vec<StoredRollup>)> {
    let (from, to) = readable_range(from, to, now, retention);
    let runs = runs(&cover(from, to));
    let rows = store.rollups(monitor_ids, &runs).await?;
    Ok((from, to, rows))
}

/// Reading monitors: what the pages, the scheduler and the API's reads need.
#[async_trait]
pub trait MonitorReader: Send + Sync + 'static {
    async fn get_monitor(&self, id: Uuid) -> StoreResult<Option<Monitor>>;

    /// Monitors in id order (which is creation order), those after `after`, at most `limit`.
    async fn list_monitors(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<Monitor>>;

    /// Every monitor, for the scheduler.
    async fn all_monitors(&self) -> StoreResult<Vec<Monitor>>;

    /// The first monitor with exactly this URL, used to seed `SITES_TO_MONITOR` once.
    async fn find_monitor_by_url(&self, url: &str) -> StoreResult<Option<Monitor>>;

    /// A number that changes whenever a monitor is created, updated or deleted, so that a
    /// scheduler can poll cheaply for changes.
    async fn monitors_version(&self) -> StoreResult<i64>;
}

/// Writing monitors. The service layer's monitor use cases are its callers.
#[async_trait]
pub trait MonitorStore: Send + Sync + 'static {
    /// Adds a monitor, with a `pending` state (or `paused` when it is disabled).
    /// A duplicate id is a [`StoreError::Conflict`].
    async fn insert_monitor(&self, monitor: &Monitor) -> StoreResult<()> {
        self.insert_monitors(std::slice::from_ref(monitor)).await
    }

    /// Adds several monitors in one transaction, all or none: a duplicate id among them (or
    /// with a stored monitor) is a [`StoreError::Conflict`] and adds nothing.
    async fn insert_monitors(&self, monitors: &[Monitor]) -> StoreResult<()>;

    /// Replaces a monitor's settings; pauses or resumes its state when `enabled` changed.
    /// Returns false when there is no such monitor.
    async fn update_monitor(&self, monitor: &Monitor) -> StoreResult<bool>;

    /// Deletes a monitor with its results and state. Returns false when there was none.
    async fn delete_monitor(&self, id: Uuid) -> StoreResult<bool>;
}

/// Reading history: raw results, rollups and incidents.
#[async_trait]
pub trait HistoryReader: Send + Sync + 'static {
    /// A monitor's results, newest first.
    async fn history(
        &self,
        monitor_id: Uuid,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryEntry>>;

    /// The rollups of the given monitors in the given runs of buckets (a run holds the
    /// buckets of its resolution that start in `[from, to)`), in no particular order. The
    /// stores keep them up to date in [`Store::insert_results`], in the same transaction as
    /// the results, counting each new result once in its minute, hour and day.
    async fn rollups(
        &self,
        monitor_ids: &[Uuid],
        runs: &[RollupRun],
    ) -> StoreResult<Vec<StoredRollup>>;

    /// Incidents, newest first.
    async fn incidents(&self, query: &IncidentQuery) -> StoreResult<Vec<Incident>>;
}

/// The result log: storing results with their rollups (the logger), and pruning them.
#[async_trait]
pub trait ResultLog: Send + Sync + 'static {
    /// Stores a batch of results in one transaction. Idempotent on result id, which is the
    /// result's key ([`CheckResult::key_id`]: monitor, region and check time): a redelivered
    /// result is not stored twice. Results of monitors that do not exist (any more) are not
    /// stored, so that a late result cannot bring back part of a deleted monitor's history.
    /// Returns how many were new.
    async fn insert_results(&self, results: &[CheckResult]) -> StoreResult<u64>;

    /// Deletes the given monitors' raw results and rollups older than the cutoffs, in one
    /// short transaction. Pruning is meant to be called for a few monitors at a time, so that
    /// writers never wait long.
    async fn prune(&self, monitor_ids: &[Uuid], cutoffs: &Cutoffs) -> StoreResult<Pruned>;

    /// For stores that keep raw results in one partition per day (PostgreSQL): drops every
    /// day that ended before `raw_cutoff`, all monitors' results at once, and makes the
    /// partitions of `now`'s day and the next ready. Returns how many results went. The
    /// pruner calls it once per pass, before [`ResultLog::prune`] deletes what is left of the
    /// day the cutoff falls in; stores without day partitions do nothing here.
    async fn prune_days(
        &self,
        raw_cutoff: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let _ = (raw_cutoff, now);
        Ok(0)
    }
}

/// Reading the monitors' states.
#[async_trait]
pub trait StateReader: Send + Sync + 'static {
    async fn get_state(&self, monitor_id: Uuid) -> StoreResult<Option<MonitorState>>;

    async fn list_states(&self) -> StoreResult<Vec<MonitorState>>;
}

/// Applying results to the state machines (the alerter), with alerts, incidents and
/// deliveries in the same transaction.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Runs the monitor's state machine on `result` and, in the same transaction, stores the
    /// new state and, on a transition, the alert with one pending delivery per applicable
    /// enabled webhook (the monitor's `notifier_ids`, or all when empty). Results of unknown or
    /// paused monitors, and results already applied, change nothing and return `None`.
    /// A transition to down also opens an [`Incident`], and a recovery closes the open one.
    async fn apply_result(&self, result: &CheckResult) -> StoreResult<Option<Alert>> {
        Ok(self
            .apply_results(std::slice::from_ref(result))
            .await?
            .pop())
    }

    /// [`StateStore::apply_result`] on each result in order, in one transaction, returning the
    /// alerts made. A batch applied again changes nothing, since results already applied are
    /// ignored.
    async fn apply_results(&self, results: &[CheckResult]) -> StoreResult<Vec<Alert>>;
}

/// Notification destinations (webhooks).
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Inserts a webhook, or updates name, URL and source of the one with the same id
    /// (keeping whether it is enabled).
    async fn upsert_webhook(&self, webhook: &Webhook) -> StoreResult<()>;

    async fn get_webhook(&self, id: Uuid) -> StoreResult<Option<Webhook>>;

    /// Every webhook, oldest first.
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>>;

    /// Deletes a webhook and its pending deliveries. Returns false when there was none.
    async fn delete_webhook(&self, id: Uuid) -> StoreResult<bool>;

    /// Uses a disabled webhook again, forgetting why it was disabled: alerts from now on
    /// reach it (the deliveries failed while it was disabled stay failed). Returns false when
    /// there is no such webhook.
    async fn enable_webhook(&self, id: Uuid) -> StoreResult<bool>;
}

/// Maintenance windows: planned work during which checks go on but nothing alerts and
/// uptime does not count. Every change counts as a change of the monitors
/// ([`MonitorReader::monitors_version`]), so that the scheduler, which marks the checks due in
/// a window, reloads them within its reload period.
#[async_trait]
pub trait MaintenanceStore: Send + Sync + 'static {
    /// Every window, oldest first.
    async fn list_maintenances(&self) -> StoreResult<Vec<Maintenance>>;

    async fn get_maintenance(&self, id: Uuid) -> StoreResult<Option<Maintenance>>;

    /// Stores a new window; [`StoreError::Conflict`] when its id exists.
    async fn insert_maintenance(&self, maintenance: &Maintenance) -> StoreResult<()>;

    /// Replaces a window's settings. Returns false when there is none with its id.
    async fn update_maintenance(&self, maintenance: &Maintenance) -> StoreResult<bool>;

    /// Returns false when there was none.
    async fn delete_maintenance(&self, id: Uuid) -> StoreResult<bool>;
}

/// The delivery outbox: what the dispatcher takes, sends and settles.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Stops using a webhook (it answered 404), keeping the reason for people to see.
    /// Its pending deliveries are marked failed.
    async fn disable_webhook(&self, id: Uuid, reason: &str) -> StoreResult<()>;

    /// Ids of enabled webhooks that have pending deliveries.
    async fn webhooks_with_pending(&self) -> StoreResult<Vec<Uuid>>;

    /// The oldest pending delivery of a webhook (deliveries of one webhook go out in order).
    async fn next_delivery(&self, webhook_id: Uuid) -> StoreResult<Option<Delivery>>;

    /// Marks a delivery done.
    async fn delivery_sent(&self, delivery_id: i64) -> StoreResult<()>;

    /// Counts a failed attempt and sets when to try again.
    async fn delivery_retry(
        &self,
        delivery_id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()>;

    /// Gives a delivery up for good (the endpoint refused it permanently).
    async fn delivery_failed(&self, delivery_id: i64, error: &str) -> StoreResult<()>;

    /// Marks these deliveries done together (the alerts of one storm message).
    async fn deliveries_sent(&self, delivery_ids: &[i64]) -> StoreResult<()>;

    /// Gives these deliveries up together (a storm message refused for good).
    async fn deliveries_failed(&self, delivery_ids: &[i64], error: &str) -> StoreResult<()>;

    /// The pending deliveries of a channel, oldest first, at most `limit`, whenever due.
    async fn pending_deliveries_of(
        &self,
        webhook_id: Uuid,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>>;

    /// How many deliveries of alerts of `kind` were queued for a channel since `since`,
    /// whatever became of them: the storm detector's count.
    async fn recent_deliveries(
        &self,
        webhook_id: Uuid,
        kind: AlertKind,
        since: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Stores the reminder `alert` of the open incident `incident_id` with one pending
    /// delivery to `webhook_id`, unless an alert with its id exists (reminder ids are
    /// derived from what they remind of, so that deciding one twice stores it once).
    /// Counted in the incident's `alerts_sent` once delivered. Returns whether it was new.
    async fn queue_reminder(
        &self,
        incident_id: Uuid,
        alert: &Alert,
        webhook_id: Uuid,
    ) -> StoreResult<bool>;

    /// Number of deliveries still pending, for readiness and metrics.
    async fn pending_deliveries(&self) -> StoreResult<u64>;
}

/// Durable storage of everything upwatch must not forget: every concern above, for code
/// that needs them all (the wiring, the contract, the intercepting wrapper). Consumers take
/// the narrowest trait they use; an `Arc<dyn Store>` converts to any of them.
///
/// Times are kept to the millisecond: a time read back may lack the microseconds it was
/// written with (monitors, states and alerts, stored whole, keep theirs).
#[async_trait]
pub trait Store:
    MonitorReader
    + MonitorStore
    + HistoryReader
    + ResultLog
    + StateReader
    + StateStore
    + WebhookStore
    + Outbox
    + MaintenanceStore
    + Reads
    + Send
    + Sync
    + 'static
{
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;
}

/// What the pages read, and nothing they could write with: monitors, their states, and
/// history. Every [`Store`] is one (an `Arc<dyn Store>` converts to an `Arc<dyn Reads>`).
pub trait Reads: MonitorReader + HistoryReader + StateReader {}

impl<T: MonitorReader + HistoryReader + StateReader + ?Sized> Reads for T {}

/// Every trait of the store, for `use upwatch_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        HistoryReader, MaintenanceStore, MonitorReader, MonitorStore, Outbox, Reads, ResultLog,
        StateReader, StateStore, Store, WebhookStore,
    };
}
