//! Uptime over windows of time, read from rollups (never from raw results), with one
//! definition and one per-process memo for every reader.
//!
//! The definition: the uptime of a monitor over a window ending now is the share of up checks
//! among the checks counted in the rollups that overlap `[now - window, now)`, as
//! [`read_rollups`] covers that range with what retention still keeps (minutes at the edges,
//! hours and days in the middle). "Uptime over 24 hours" is that with a 24-hour window, on the
//! API's status endpoints, the badges, the dashboard and the monitor pages alike.
//!
//! Response times in buckets ([`Stats::series`]) are read here too, for the API's
//! `response-times` and the monitor page's chart. Rollups count every region of a monitor
//! together; the series of one region ([`Stats::series_in_region`]) is folded from raw
//! results instead, which exist only within the raw retention.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use upwatch_core::check::{CheckResult, SCHEMA_VERSION};
use upwatch_core::rollup::{combine_over, series, Resolution, Retention, Rollup, RollupRun};
use upwatch_store::{
    read_rollups, HistoryCursor, HistoryEntry, HistoryQuery, HistoryReader, StoreResult,
    StoredRollup,
};
use uuid::Uuid;

/// The most raw results [`Stats::series_in_region`] reads for one series; older ones in the
/// range are left out.
pub const MAX_REGION_RESULTS: usize = 100_000;
/// Raw results read per page by [`Stats::series_in_region`].
const REGION_PAGE: u32 = 5_000;

/// The named windows: what `GET /api/v1/sites/{id}/uptime` answers without a range, and
/// what a badge may show.
pub const WINDOWS: [(&str, TimeDelta); 4] = [
    ("24h", TimeDelta::hours(24)),
    ("7d", TimeDelta::days(7)),
    ("30d", TimeDelta::days(30)),
    ("90d", TimeDelta::days(90)),
];

/// The window of "uptime over 24 hours".
pub const DAY: TimeDelta = TimeDelta::hours(24);
/// The window of "uptime over 30 days".
pub const MONTH: TimeDelta = TimeDelta::days(30);

/// How long a memoized uptime is served before it is read again.
pub const MEMO_TTL: Duration = Duration::from_secs(60);

/// What the checks of one monitor over one window add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub up: u64,
    pub down: u64,
}

impl Counts {
    pub fn of(rollup: &Rollup) -> Self {
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

/// Rollup rows grouped by monitor, as the functions of `upwatch_core::rollup` take them.
pub fn by_monitor(
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

/// Uptime figures, memoized per monitor and window for [`MEMO_TTL`] in this process, so that
/// listings, badges and pages never read more than once a minute per monitor, and show the
/// same figure at the same moment. Misses are read with one batched rollup read.
pub struct Stats {
    store: Arc<dyn HistoryReader>,
    retention: Retention,
    memo: Mutex<HashMap<(Uuid, i64), (Instant, Counts)>>,
}

impl Stats {
    pub fn new(store: Arc<dyn HistoryReader>, retention: Retention) -> Stats {
        Stats {
            store,
            retention,
            memo: Mutex::new(HashMap::new()),
        }
    }

    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// The counts of each of `ids` over the `window` ending at `now`, from the memo where it
    /// is fresh. Every id is in the answer (with zero counts when it had no checks).
    pub async fn counts(
        &self,
        ids: &[Uuid],
        window: TimeDelta,
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<Uuid, Counts>> {
        let key = |id: Uuid| (id, window.num_seconds());
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            for &id in ids {
                match memo.get(&key(id)) {
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
        let read = self.read(&missing, now - window, now, now).await?;
        let read_at = Instant::now();
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        // Forget what has expired (deleted monitors, windows no longer asked for).
        memo.retain(|_, (at, _)| at.elapsed() < MEMO_TTL);
        for (id, counts) in read.1 {
            memo.insert(key(id), (read_at, counts));
            found.insert(id, counts);
        }
        Ok(found)
    }

    /// The uptime over 24 hours of each of `ids`: [`Stats::counts`] over [`DAY`] ending now.
    pub async fn last_24h(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Counts>> {
        self.counts(ids, DAY, Utc::now()).await
    }

    /// The counts of one monitor over `[from, to)` read now, without the memo, with the range
    /// the rollups read actually cover (widened to whole hours or days where finer rollups
    /// were already pruned).
    pub async fn over(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(DateTime<Utc>, DateTime<Utc>, Counts)> {
        let ((from, to), mut counts) = self.read(&[id], from, to, now).await?;
        Ok((from, to, counts.remove(&id).unwrap_or_default()))
    }

    /// Response times (and counts) of one monitor in buckets of `bucket` over `[from, to)`,
    /// from its rollups of `resolution` (which must tile `bucket`): what the API's
    /// `response-times` and the monitor page's chart both show.
    pub async fn series(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: TimeDelta,
        resolution: Resolution,
    ) -> StoreResult<Vec<(DateTime<Utc>, Rollup)>> {
        let rows: Vec<_> = self
            .store
            .rollups(
                &[id],
                &[RollupRun {
                    resolution,
                    from,
                    to,
                }],
            )
            .await?
            .into_iter()
            .map(|r| (r.start, r.resolution, r.rollup))
            .collect();
        Ok(series(&rows, from, to, bucket))
    }

    /// Response times (and counts) of what the workers of `region` saw of one monitor, in
    /// buckets of `bucket` (a whole number of minutes) over `[from, to)`: the same buckets as
    /// [`Stats::series`], but folded ([`Rollup::add`]) from the raw results of that region,
    /// since rollups count every region together.
    ///
    /// Raw results exist only within the raw retention (`UPWATCH_RETENTION_RAW`): buckets
    /// older than it are empty. At most [`MAX_REGION_RESULTS`] results are read, newest
    /// first, so a longer range with more results than that leaves its oldest buckets empty.
    pub async fn series_in_region(
        &self,
        id: Uuid,
        region: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: TimeDelta,
    ) -> StoreResult<Vec<(DateTime<Utc>, Rollup)>> {
        let mut minutes: HashMap<i64, Rollup> = HashMap::new();
        let mut after: Option<HistoryCursor> = None;
        let mut read = 0usize;
        while read < MAX_REGION_RESULTS {
            let limit = REGION_PAGE.min((MAX_REGION_RESULTS - read) as u32);
            let page = self
                .store
                .history(
                    id,
                    &HistoryQuery {
                        since: Some(from),
                        until: Some(to),
                        after,
                        limit,
                        region: Some(region.to_string()),
                    },
                )
                .await?;
            read += page.len();
            for entry in &page {
                // The store filters by region; a store that does not yet is not trusted.
                if entry.region != region {
                    continue;
                }
                let minute = entry.checked_at.timestamp().div_euclid(60) * 60;
                minutes
                    .entry(minute)
                    .or_default()
                    .add(&as_result(id, entry));
            }
            match page.last() {
                Some(last) if page.len() == limit as usize => {
                    after = Some(HistoryCursor {
                        checked_at: last.checked_at,
                        id: last.id,
                    });
                }
                _ => break,
            }
        }
        let rows: Vec<_> = minutes
            .into_iter()
            .filter_map(|(start, rollup)| {
                Some((
                    DateTime::from_timestamp(start, 0)?,
                    Resolution::Minute,
                    rollup,
                ))
            })
            .collect();
        Ok(series(&rows, from, to, bucket))
    }

    /// One batched read of the rollups of `ids` over `[from, to)`.
    async fn read(
        &self,
        ids: &[Uuid],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<((DateTime<Utc>, DateTime<Utc>), HashMap<Uuid, Counts>)> {
        let (from, to, rows) =
            read_rollups(self.store.as_ref(), ids, from, to, now, &self.retention).await?;
        let mut grouped = by_monitor(rows);
        let counts = ids
            .iter()
            .map(|id| {
                let counts = grouped
                    .remove(id)
                    .map(|rows| Counts::of(&combine_over(&rows, from, to)))
                    .unwrap_or_default();
                (*id, counts)
            })
            .collect();
        Ok(((from, to), counts))
    }
}

/// A stored result as the rollups count it.
fn as_result(monitor_id: Uuid, entry: &HistoryEntry) -> CheckResult {
    CheckResult {
        v: SCHEMA_VERSION,
        id: entry.id,
        job_id: Uuid::nil(),
        monitor_id,
        monitor_name: String::new(),
        url: String::new(),
        due_at: entry.checked_at,
        checked_at: entry.checked_at,
        response_time_ms: entry.response_time_ms,
        status_code: entry.status_code,
        status: entry.status,
        error: entry.error.clone(),
        rules: Default::default(),
        details: Default::default(),
        cert_expiry_alert_days: Vec::new(),
        maintenance: entry.maintenance,
        region: entry.region.clone(),
    }
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
