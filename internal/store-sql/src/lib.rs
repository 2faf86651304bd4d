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
mod script;
pub mod sqlite;

use upwatch_core::check::{default_region, DEFAULT_REGION};
use upwatch_core::rollup::{Resolution, Rollup};
use upwatch_core::{CheckError, CheckResult, CheckStatus, ErrorKind};
use upwatch_store::{StoreError, StoreResult};

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

/// A check error read back from its two columns (both NULL for a result that was up).
pub(crate) fn stored_error(kind: Option<String>, message: Option<String>) -> Option<CheckError> {
    kind.map(|kind| CheckError {
        kind: upwatch_core::ErrorKind::parse(&kind),
        message: message.unwrap_or_default(),
    })
}

/// The `error_kind` and `error_message` columns of a result. An inconclusive result (its
/// worker had lost its own network) is stored as not up with the kind `local_network`, which is
/// what tells it apart when it is read back ([`stored_status`]); one made without an error
/// still gets that kind.
pub(crate) fn error_columns(r: &CheckResult) -> (Option<&'static str>, Option<&str>) {
    match (&r.error, r.status) {
        (_, CheckStatus::Inconclusive) => (
            Some(ErrorKind::LocalNetwork.as_str()),
            Some(r.error.as_ref().map_or("", |e| e.message.as_str())),
        ),
        (Some(e), _) => (Some(e.kind.as_str()), Some(e.message.as_str())),
        (None, _) => (None, None),
    }
}

/// A result's status read back from its `up` column and its error: a result that was not up
/// is inconclusive when its error is of kind `local_network`, else down.
pub(crate) fn stored_status(up: bool, error: Option<&CheckError>) -> CheckStatus {
    match error {
        _ if up => CheckStatus::Up,
        Some(e) if e.kind == ErrorKind::LocalNetwork => CheckStatus::Inconclusive,
        _ => CheckStatus::Down,
    }
}

/// A result's `region` column: NULL for the default region, so that an install with one
/// region stores no region text.
pub(crate) fn region_column(region: &str) -> Option<&str> {
    (region != DEFAULT_REGION).then_some(region)
}

/// A result's region read back from its `region` column (NULL is the default region).
pub(crate) fn stored_region(region: Option<String>) -> String {
    region.unwrap_or_else(default_region)
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
