//! Uptime over windows of time, read from rollups (never from raw results), and the small
//! per-process memo that serves the 24-hour uptime of the status listing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use upwatch_core::rollup::{combine_over, Resolution, Rollup};
use upwatch_store::{read_rollups, StoreResult, StoredRollup};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{IdPath, Query};
use crate::history::parse_time;
use crate::sites::no_site;
use crate::ApiState;

/// The windows `GET /api/v1/sites/{id}/uptime` answers without `from` and `to`.
pub const WINDOWS: [(&str, TimeDelta); 4] = [
    ("24h", TimeDelta::hours(24)),
    ("7d", TimeDelta::days(7)),
    ("30d", TimeDelta::days(30)),
    ("90d", TimeDelta::days(90)),
];

/// The longest range `from`..`to` accepted, in days: ten years.
const MAX_RANGE_DAYS: i64 = 3_660;

/// How long a memoized uptime is served before it is read again.
const MEMO_TTL: Duration = Duration::from_secs(60);

/// What the checks of one monitor over one window add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub up: u64,
    pub down: u64,
}

impl Counts {
    fn of(rollup: &Rollup) -> Self {
        Counts {
            up: u64::from(rollup.up),
            down: u64::from(rollup.down),
        }
    }

    pub fn checks(&self) -> u64 {
        self.up + self.down
    }

    /// The share of up checks in percent, rounded down to two decimals so that 100 means that
    /// no check failed; `None` when no check ran.
    pub fn percent(&self) -> Option<f64> {
        let checks = self.checks();
        (checks > 0).then(|| (self.up * 10_000 / checks) as f64 / 100.0)
    }
}

/// The rows of `read_rollups` grouped by monitor, as the functions of `rollup` take them.
pub(crate) fn by_monitor(
    rows: Vec<StoredRollup>,
) -> HashMap<Uuid, Vec<(DateTime<Utc>, Resolution, Rollup)>> {
    let mut grouped: HashMap<Uuid, Vec<_>> = HashMap::new();
    for row in rows {
        grouped
            .entry(row.monitor_id)
            .or_default()
            .push((row.start, row.resolution, row.rollup));
    }
    grouped
}

/// Uptime counts of each of `ids` over the `window` ending at `now`, memoized per monitor and
/// window for [`MEMO_TTL`] in this process, so that the status listing and badges never read
/// more than once a minute per monitor. Misses are read with one batched rollup read.
#[derive(Debug, Default)]
pub struct UptimeMemo {
    entries: Mutex<HashMap<(Uuid, i64), (Instant, Counts)>>,
}

impl UptimeMemo {
    pub async fn counts(
        &self,
        state: &ApiState,
        ids: &[Uuid],
        window: TimeDelta,
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<Uuid, Counts>> {
        let key = |id: Uuid| (id, window.num_seconds());
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            for &id in ids {
                match entries.get(&key(id)) {
                    Some((at, counts)) if at.elapsed() < MEMO_TTL => {
                        found.insert(id, *counts);
                    }
                    _ => missing.push(id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let (from, to, rows) = read_rollups(
            state.store.as_ref(),
            &missing,
            now - window,
            now,
            now,
            &state.retention,
        )
        .await?;
        let mut grouped = by_monitor(rows);
        let read_at = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Forget what has expired (deleted monitors, windows no longer asked for).
        entries.retain(|_, (at, _)| at.elapsed() < MEMO_TTL);
        for id in missing {
            let counts = grouped
                .remove(&id)
                .map(|rows| Counts::of(&combine_over(&rows, from, to)))
                .unwrap_or_default();
            entries.insert(key(id), (read_at, counts));
            found.insert(id, counts);
        }
        Ok(found)
    }

    /// The uptime in percent of each of `ids` over the last 24 hours, for the status
    /// endpoints: `None` for a monitor without checks, and for all when the database fails
    /// (logged; live status is still served).
    pub async fn last_24h(&self, state: &ApiState, ids: &[Uuid]) -> HashMap<Uuid, f64> {
        match self
            .counts(state, ids, TimeDelta::hours(24), Utc::now())
            .await
        {
            Ok(counts) => counts
                .into_iter()
                .filter_map(|(id, c)| Some((id, c.percent()?)))
                .collect(),
            Err(error) => {
                tracing::warn!(error = %crate::error::chain(&error), monitors = ids.len(), "could not read rollups for the 24-hour uptime; serving status without it");
                HashMap::new()
            }
        }
    }
}

/// The query of `GET /api/v1/sites/{id}/uptime`.
#[derive(Debug, Default, Deserialize)]
pub struct UptimeParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A monitor's uptime over one or more windows.
#[derive(Debug, Serialize)]
pub struct UptimeView {
    pub monitor_id: Uuid,
    pub windows: Vec<UptimeWindow>,
}

/// The uptime over one window.
#[derive(Debug, Serialize)]
pub struct UptimeWindow {
    /// `24h`, `7d`, `30d` or `90d`; `None` for a range given with `from` and `to`.
    pub window: Option<&'static str>,
    /// The range the rollups read cover (widened to whole hours or days where finer rollups
    /// were already pruned).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub uptime_percent: Option<f64>,
    pub checks: u64,
    pub up: u64,
    pub down: u64,
}

/// `GET /api/v1/sites/{id}/uptime[?from=&to=]`.
pub async fn get(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
    Query(params): Query<UptimeParams>,
) -> Result<axum::Json<UptimeView>, ApiError> {
    let from = parse_time("from", params.from.as_deref())?;
    let to = parse_time("to", params.to.as_deref())?;
    let now = Utc::now();
    let ranges: Vec<(Option<&'static str>, DateTime<Utc>, DateTime<Utc>)> = match (from, to) {
        (None, None) => WINDOWS
            .iter()
            .map(|&(name, span)| (Some(name), now - span, now))
            .collect(),
        (Some(from), Some(to)) => {
            if from >= to {
                return Err(ApiError::BadRequest(
                    "`from` must be earlier than `to`.".to_string(),
                ));
            }
            if to - from > TimeDelta::days(MAX_RANGE_DAYS) {
                return Err(ApiError::BadRequest(format!(
                    "The range from `from` to `to` must be at most {MAX_RANGE_DAYS} days long."
                )));
            }
            vec![(None, from, to)]
        }
        (Some(_), None) => return Err(one_missing("to", "from")),
        (None, Some(_)) => return Err(one_missing("from", "to")),
    };
    if state.store.get_monitor(id).await?.is_none() {
        return Err(no_site(id));
    }
    let mut windows = Vec::with_capacity(ranges.len());
    for (window, from, to) in ranges {
        let (from, to, rows) =
            read_rollups(state.store.as_ref(), &[id], from, to, now, &state.retention).await?;
        let rows: Vec<_> = rows
            .into_iter()
            .map(|r| (r.start, r.resolution, r.rollup))
            .collect();
        let counts = Counts::of(&combine_over(&rows, from, to));
        windows.push(UptimeWindow {
            window,
            from,
            to,
            uptime_percent: counts.percent(),
            checks: counts.checks(),
            up: counts.up,
            down: counts.down,
        });
    }
    Ok(axum::Json(UptimeView {
        monitor_id: id,
        windows,
    }))
}

fn one_missing(missing: &str, given: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "`{missing}` is missing: give both `from` and `to` for a range of your own, or neither for the 24h, 7d, 30d and 90d windows (`{given}` was given alone)."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_rounded_down_and_none_without_checks() {
        assert_eq!(Counts { up: 0, down: 0 }.percent(), None);
        assert_eq!(Counts { up: 1439, down: 1 }.percent(), Some(99.93));
        assert_eq!(
            Counts {
                up: 99_999,
                down: 1
            }
            .percent(),
            Some(99.99)
        );
        assert_eq!(Counts { up: 5, down: 0 }.percent(), Some(100.0));
        assert_eq!(Counts { up: 0, down: 3 }.percent(), Some(0.0));
        assert_eq!(Counts { up: 2, down: 1 }.percent(), Some(66.66));
    }
}
