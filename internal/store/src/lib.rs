//! Durable storage: the [`Store`] trait and its implementations.
//!
//! Layout:
//! - this file: the trait, its value types and errors;
//! - [`sqlite`]: the embedded implementation (SQLite through sqlx, bundled);
//! - [`postgres`]: the distributed implementation (PostgreSQL through sqlx), and the leader
//!   lock that elects one process of a role;
//! - [`contract`]: the behaviour every implementation must show, as async functions that the
//!   tests of each implementation call.
//!
//! Architecture invariant: the store is the only place that persists state; every method is
//! one transaction, so a crash leaves either all of a method's effects or none.

pub mod contract;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use upwatch_core::{Alert, CheckError, CheckResult, CheckStatus, Monitor, MonitorState, Webhook};
use uuid::Uuid;

pub use postgres::{LeaderLock, PostgresStore};
pub use sqlite::SqliteStore;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict(db.message().to_string());
            }
        }
        StoreError::Database(e)
    }
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

/// What applying a result did to a monitor's state.
pub(crate) enum Applied {
    /// Nothing: the monitor is paused, or the result is not newer than the last one applied.
    Ignored,
    /// The state changed; on a transition, here is its alert.
    Changed(Option<Alert>),
}

/// The pure part of [`Store::apply_result`], shared by every implementation: runs the state
/// machine and builds a transition's alert. The result carries the name and URL the monitor
/// had when its job was emitted; the alert shows what the monitor is called now.
pub(crate) fn apply_to_state(
    monitor: &Monitor,
    state: &mut MonitorState,
    result: &CheckResult,
) -> Applied {
    if !state.accepts(result) {
        return Applied::Ignored;
    }
    let alert = state.apply(result).map(|transition| {
        let mut alert = Alert::new(&transition, result);
        alert.monitor_name.clone_from(&monitor.name);
        alert.monitor_url.clone_from(&monitor.url);
        alert
    });
    Applied::Changed(alert)
}

/// Durable storage of everything upwatch must not forget.
///
/// Times are kept to the millisecond: a time read back may lack the microseconds it was
/// written with (monitors, states and alerts, stored whole, keep theirs).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Adds a monitor, with a `pending` state (or `paused` when it is disabled).
    /// A duplicate id is a [`StoreError::Conflict`].
    async fn insert_monitor(&self, monitor: &Monitor) -> StoreResult<()>;
    async fn get_monitor(&self, id: Uuid) -> StoreResult<Option<Monitor>>;
    /// Monitors in id order (which is creation order), those after `after`, at most `limit`.
    async fn list_monitors(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<Monitor>>;
    /// Every monitor, for the scheduler.
    async fn all_monitors(&self) -> StoreResult<Vec<Monitor>>;
    /// The first monitor with exactly this URL, used to seed `SITES_TO_MONITOR` once.
    async fn find_monitor_by_url(&self, url: &str) -> StoreResult<Option<Monitor>>;
    /// Replaces a monitor's settings; pauses or resumes its state when `enabled` changed.
    /// Returns false when there is no such monitor.
    async fn update_monitor(&self, monitor: &Monitor) -> StoreResult<bool>;
    /// Deletes a monitor with its results and state. Returns false when there was none.
    async fn delete_monitor(&self, id: Uuid) -> StoreResult<bool>;
    /// A number that changes whenever a monitor is created, updated or deleted, so that a
    /// scheduler can poll cheaply for changes.
    async fn monitors_version(&self) -> StoreResult<i64>;

    /// Stores a batch of results in one transaction. Idempotent on result id: a redelivered
    /// result is not stored twice. Results of monitors that do not exist (any more) are not
    /// stored, so that a late result cannot bring back part of a deleted monitor's history.
    /// Returns how many were new.
    async fn insert_results(&self, results: &[CheckResult]) -> StoreResult<u64>;
    /// A monitor's results, newest first.
    async fn history(
        &self,
        monitor_id: Uuid,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryEntry>>;

    async fn get_state(&self, monitor_id: Uuid) -> StoreResult<Option<MonitorState>>;
    async fn list_states(&self) -> StoreResult<Vec<MonitorState>>;
    /// Runs the monitor's state machine on `result` and, in the same transaction, stores the
    /// new state and, on a transition, the alert with one pending delivery per applicable
    /// enabled webhook (the monitor's `webhook_ids`, or all when empty). Results of unknown or
    /// paused monitors, and results already applied, change nothing and return `None`.
    async fn apply_result(&self, result: &CheckResult) -> StoreResult<Option<Alert>>;

    /// Inserts a webhook, or updates name, URL and source of the one with the same id
    /// (keeping whether it is enabled).
    async fn upsert_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn get_webhook(&self, id: Uuid) -> StoreResult<Option<Webhook>>;
    /// Every webhook, oldest first.
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>>;
    /// Deletes a webhook and its pending deliveries. Returns false when there was none.
    async fn delete_webhook(&self, id: Uuid) -> StoreResult<bool>;
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
    /// Number of deliveries still pending, for readiness and metrics.
    async fn pending_deliveries(&self) -> StoreResult<u64>;
}
