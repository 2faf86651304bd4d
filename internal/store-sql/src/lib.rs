//! The SQL drivers of the [`Store`](upwatch_store::Store) port, over sqlx:
//!
//! - [`sqlite`]: the embedded store (SQLite, bundled);
//! - [`postgres`]: the distributed store (PostgreSQL), and the [`LeaderLock`] that elects one
//!   process of a role;
//! - this file: what both drivers share (the pure parts of their transaction scripts, the
//!   reading of rows back into domain values, and the mapping of sqlx errors to
//!   [`StoreError`]).
//!
//! Only `upwatch-app` (and tests) name this crate: every other crate takes the port.

pub mod postgres;
pub mod sqlite;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use upwatch_core::rollup::{rollup_keys, Resolution, Rollup};
use upwatch_core::{Alert, AlertKind, CheckError, CheckResult, Monitor, MonitorState};
use upwatch_store::{Incident, StoreError, StoreResult};
use uuid::Uuid;

pub use postgres::{LeaderLock, PostgresStore, MONITORS_CHANNEL};
pub use sqlite::SqliteStore;

/// A sqlx error as the port reports it: a unique violation is a [`StoreError::Conflict`],
/// anything else a [`StoreError::Database`] that keeps the driver's error as its text and
/// source chain without naming its type.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_string());
        }
    }
    StoreError::Database(Box::new(e))
}

/// `?` on a sqlx result inside a driver: `query.execute(..).await.db()?`.
pub(crate) trait Db<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> Db<T> for Result<T, sqlx::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(db_error)
    }
}

/// The rollups a batch of new results adds to, keyed by (monitor, resolution, bucket start)
/// in key order, which is also the order in which stores lock rollup rows.
pub(crate) fn rollup_deltas<'a>(
    new_results: impl IntoIterator<Item = &'a CheckResult>,
) -> BTreeMap<(Uuid, Resolution, DateTime<Utc>), Rollup> {
    let mut deltas: BTreeMap<(Uuid, Resolution, DateTime<Utc>), Rollup> = BTreeMap::new();
    for result in new_results {
        for (resolution, start) in rollup_keys(result.checked_at) {
            deltas
                .entry((result.monitor_id, resolution, start))
                .or_default()
                .add(result);
        }
    }
    deltas
}

/// A check error read back from its two columns (both NULL for a result that was up).
pub(crate) fn stored_error(kind: Option<String>, message: Option<String>) -> Option<CheckError> {
    kind.map(|kind| CheckError {
        kind: upwatch_core::ErrorKind::parse(&kind),
        message: message.unwrap_or_default(),
    })
}

/// A rollup read back from its columns, which both stores lay out alike.
pub(crate) fn rollup_from_columns<N: Into<i64>>(
    up: N,
    down: N,
    rt_sum: i64,
    rt_min: Option<N>,
    rt_max: Option<N>,
    sketch: &[u8],
) -> StoreResult<Rollup> {
    let count = |v: N, what: &str| {
        let v: i64 = v.into();
        u32::try_from(v)
            .map_err(|_| StoreError::Corrupt(format!("rollup {what} {v} is out of range")))
    };
    let (up, down) = (count(up, "up count")?, count(down, "down count")?);
    Ok(Rollup {
        checks: up.saturating_add(down),
        up,
        down,
        response_time_sum_ms: u64::try_from(rt_sum).map_err(|_| {
            StoreError::Corrupt(format!("rollup response time sum {rt_sum} is negative"))
        })?,
        response_time_min_ms: rt_min
            .map(|v| count(v, "minimum response time"))
            .transpose()?,
        response_time_max_ms: rt_max
            .map(|v| count(v, "maximum response time"))
            .transpose()?,
        sketch: upwatch_core::rollup::LatencySketch::from_bytes(sketch)
            .map_err(|e| StoreError::Corrupt(format!("rollup sketch: {e}")))?,
    })
}

/// The resolution stored as its bucket length in seconds.
pub(crate) fn resolution_from_seconds(seconds: i64) -> StoreResult<Resolution> {
    Resolution::ALL
        .into_iter()
        .find(|r| r.duration().num_seconds() == seconds)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown rollup resolution {seconds}")))
}

/// What applying a result did to a monitor's state.
pub(crate) enum Applied {
    /// Nothing: the monitor is paused, or the result is not newer than the last one applied.
    Ignored,
    /// The state changed; on a transition, here is its alert.
    Changed(Option<Alert>),
}

/// The incident change a transition's alert makes.
pub(crate) fn incident_change(alert: &Alert) -> IncidentChange {
    match alert.kind {
        AlertKind::Down => IncidentChange::Open(Incident {
            id: Uuid::now_v7(),
            monitor_id: alert.monitor_id,
            started_at: alert.at,
            ended_at: None,
            first_error: alert.error.clone(),
            status_code: alert.status_code,
            alerts_sent: 0,
        }),
        AlertKind::Recovery => IncidentChange::Close { at: alert.at },
    }
}

pub(crate) enum IncidentChange {
    Open(Incident),
    Close { at: DateTime<Utc> },
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
