//! Per-monitor rollups of check results per minute, hour and day, and the latency sketch they
//! carry.
//!
//! The stores keep one [`Rollup`] per monitor and bucket of each [`Resolution`], updated as
//! results are written, so that uptime and response-time percentiles over long ranges are read
//! from a few rows instead of every raw result. Rollups merge exactly: the rollup of an hour is
//! the merge of the rollups of its minutes, and the same holds for a day and its hours.
//!
//! Buckets are aligned on UTC and leap-free: a minute is 60 seconds, an hour 3,600 and a day
//! 86,400, counted from the Unix epoch, so every store and every role agrees on the keys.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::check::{CheckResult, CheckStatus};

/// Values below this are kept in buckets of their own, one per millisecond.
const EXACT_BUCKETS: u32 = 16;
/// Each power of two from 16 ms up is split into `1 << SUB_BITS` equal buckets.
const SUB_BITS: u32 = 4;
/// The highest power of two with buckets of its own; larger values share its last bucket.
const MAX_EXPONENT: u32 = 19;
/// The number of buckets: 16 exact ones and 16 per power of two from 2^4 to 2^19.
const BUCKETS: usize = (EXACT_BUCKETS + (MAX_EXPONENT - SUB_BITS + 1) * (1 << SUB_BITS)) as usize;
/// The version byte that starts every encoding written by [`LatencySketch::to_bytes`].
const ENCODING_VERSION: u8 = 1;

/// A mergeable histogram of response times, precise enough for p50, p95 and p99.
///
/// Values are counted in log-linear buckets: one bucket per millisecond below 16 ms, then 16
/// equal buckets per power of two up to [`LatencySketch::MAX_TRACKED_MS`] (about 17.5 minutes,
/// far above the longest timeout). A quantile is read as the middle of its bucket, so it is
/// within [`LatencySketch::RELATIVE_ERROR`] (1/32, about 3.1%) of the exact value; values above
/// the tracked range are counted in the last bucket.
///
/// Only non-empty buckets are kept, sorted by index, so that a minute with a single result is
/// a single pair. Merging two sketches gives exactly the sketch of all their values, in any
/// order and grouping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencySketch {
    /// (bucket index, count) pairs, sorted by index, with no zero count.
    buckets: Vec<(u16, u32)>,
}

/// Why bytes could not be read as a [`LatencySketch`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    /// There is not even a version byte.
    #[error("the sketch encoding is empty")]
    Empty,
    /// The version byte is not one this code writes.
    #[error("unsupported sketch encoding version {0}")]
    UnsupportedVersion(u8),
    /// The bytes end inside a number or between a bucket and its count.
    #[error("the sketch encoding ends in the middle of a bucket")]
    Truncated,
    /// A number does not fit in 32 bits or is not written in its shortest form.
    #[error("a number in the sketch encoding is too large or not minimally encoded")]
    BadVarint,
    /// A bucket index beyond the last bucket.
    #[error("bucket index {0} is out of range")]
    BucketOutOfRange(u64),
    /// A bucket listed twice or out of order (an index delta of zero).
    #[error("sketch buckets must be listed once each, in increasing order")]
    Unordered,
    /// A bucket listed with a count of zero, which the canonical form never holds.
    #[error("a sketch bucket is listed with a count of zero")]
    ZeroCount,
}

impl LatencySketch {
    /// The largest value with a precise bucket; larger values are counted in the last bucket.
    pub const MAX_TRACKED_MS: u32 = (1 << (MAX_EXPONENT + 1)) - 1;
    /// The largest relative distance between a quantile read from the sketch and the exact
    /// quantile of the values recorded (within the tracked range).
    pub const RELATIVE_ERROR: f64 = 1.0 / 32.0;

    /// An empty sketch.
    pub fn new() -> Self {
        LatencySketch::default()
    }

    /// Counts one response time.
    pub fn record(&mut self, ms: u32) {
        self.add_count(bucket_of(ms), 1);
    }

    /// Adds every value counted in `other`, as if they had been recorded here.
    pub fn merge(&mut self, other: &LatencySketch) {
        if other.buckets.is_empty() {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets.clone_from(&other.buckets);
            return;
        }
        let mut merged = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&(ia, ca)), Some(&&(ib, cb))) => {
                    if ia < ib {
                        a.next();
                        (ia, ca)
                    } else if ib < ia {
                        b.next();
                        (ib, cb)
                    } else {
                        a.next();
                        b.next();
                        (ia, ca.saturating_add(cb))
                    }
                }
                (Some(&&pair), None) => {
                    a.next();
                    pair
                }
                (None, Some(&&pair)) => {
                    b.next();
                    pair
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        self.buckets = merged;
    }

    /// How many values were recorded (each bucket's count saturates at `u32::MAX`).
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|&(_, c)| u64::from(c)).sum()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The `q`-quantile of the recorded values, by the nearest-rank method: the value of rank
    /// `ceil(q * count)` (at least 1) in increasing order, read as the middle of its bucket.
    ///
    /// `q` is clamped to `[0, 1]`, so `0` reads the smallest bucket and `1` the largest. `None`
    /// when the sketch is empty or `q` is NaN.
    pub fn quantile(&self, q: f64) -> Option<u32> {
        if self.buckets.is_empty() || q.is_nan() {
            return None;
        }
        let count = self.count();
        let q = q.clamp(0.0, 1.0);
        // The product is exact enough: counts stay far below 2^53.
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0u64;
        for &(index, c) in &self.buckets {
            seen += u64::from(c);
            if seen >= rank {
                return Some(representative(usize::from(index)));
            }
        }
        // Unreachable: the ranks run up to `count`, which the last bucket reaches.
        self.buckets
            .last()
            .map(|&(index, _)| representative(usize::from(index)))
    }

    /// The compact encoding the stores keep.
    ///
    /// Format (version 1): one version byte `0x01`, then for each non-empty bucket in
    /// increasing order two unsigned LEB128 varints: the bucket index minus the previous
    /// bucket's index (the first bucket's index itself), then the bucket's count. Varints are
    /// minimal and fit in 32 bits; deltas after the first pair and counts are never zero. The
    /// empty sketch is the single byte `0x01`; one value takes 3 bytes; typical web latencies
    /// take about 2 bytes per distinct bucket (60 values of 20-200 ms: 67 bytes; 1,440 such
    /// values, a day of minutely checks: 109 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 3 * self.buckets.len());
        out.push(ENCODING_VERSION);
        let mut previous = 0u16;
        for &(index, count) in &self.buckets {
            put_varint(&mut out, u32::from(index - previous));
            put_varint(&mut out, count);
            previous = index;
        }
        out
    }

    /// Reads what [`LatencySketch::to_bytes`] wrote, rejecting anything else with an error.
    ///
    /// Only the canonical form is accepted, so bytes that decode re-encode to themselves.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let (&version, mut rest) = bytes.split_first().ok_or(SketchError::Empty)?;
        if version != ENCODING_VERSION {
            return Err(SketchError::UnsupportedVersion(version));
        }
        let mut buckets = Vec::new();
        let mut previous: Option<u64> = None;
        while !rest.is_empty() {
            let delta = u64::from(take_varint(&mut rest)?);
            if rest.is_empty() {
                return Err(SketchError::Truncated);
            }
            let count = take_varint(&mut rest)?;
            let index = match previous {
                None => delta,
                Some(_) if delta == 0 => return Err(SketchError::Unordered),
                Some(p) => p + delta,
            };
            if index >= BUCKETS as u64 {
                return Err(SketchError::BucketOutOfRange(index));
            }
            if count == 0 {
                return Err(SketchError::ZeroCount);
            }
            // In range, so it fits: there are fewer than 2^16 buckets.
            buckets.push((index as u16, count));
            previous = Some(index);
        }
        Ok(LatencySketch { buckets })
    }

    fn add_count(&mut self, index: usize, count: u32) {
        // Bucket indexes are below `BUCKETS`, which fits in a u16.
        let index = index as u16;
        match self.buckets.binary_search_by_key(&index, |&(i, _)| i) {
            Ok(pos) => self.buckets[pos].1 = self.buckets[pos].1.saturating_add(count),
            Err(pos) => self.buckets.insert(pos, (index, count)),
        }
    }
}

/// The bucket that counts `ms`: the value itself below 16 ms, then 16 buckets per power of two.
fn bucket_of(ms: u32) -> usize {
    let ms = ms.min(LatencySketch::MAX_TRACKED_MS);
    if ms < EXACT_BUCKETS {
        return ms as usize;
    }
    let exponent = 31 - ms.leading_zeros();
    let sub = (ms >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (EXACT_BUCKETS + ((exponent - SUB_BITS) << SUB_BITS) + sub) as usize
}

/// The smallest and largest value (inclusive) a bucket counts.
fn bucket_bounds(index: usize) -> (u32, u32) {
    let index = index as u32;
    if index < EXACT_BUCKETS {
        return (index, index);
    }
    let exponent = ((index - EXACT_BUCKETS) >> SUB_BITS) + SUB_BITS;
    let sub = (index - EXACT_BUCKETS) & ((1 << SUB_BITS) - 1);
    let width = 1u32 << (exponent - SUB_BITS);
    let low = (1u32 << exponent) + sub * width;
    (low, low + (width - 1))
}

/// The value a quantile falling in a bucket reads as: its middle, rounded down.
fn representative(index: usize) -> u32 {
    let (low, high) = bucket_bounds(index);
    low + (high - low) / 2
}

fn put_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one minimal unsigned LEB128 varint of at most 32 bits from the front of `bytes`.
fn take_varint(bytes: &mut &[u8]) -> Result<u32, SketchError> {
    let mut value = 0u32;
    for i in 0..5 {
        let (&byte, rest) = bytes.split_first().ok_or(SketchError::Truncated)?;
        *bytes = rest;
        let payload = u32::from(byte & 0x7f);
        // The fifth byte holds only the top 4 bits of a u32.
        if i == 4 && payload > 0x0f {
            return Err(SketchError::BadVarint);
        }
        value |= payload << (7 * i);
        if byte & 0x80 == 0 {
            // A last byte of zero after others means the number was padded.
            if i > 0 && byte == 0 {
                return Err(SketchError::BadVarint);
            }
            return Ok(value);
        }
    }
    Err(SketchError::BadVarint)
}

/// Serialized as its [`LatencySketch::to_bytes`] form (a list of numbers in JSON).
impl Serialize for LatencySketch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for LatencySketch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(SketchVisitor)
    }
}

struct SketchVisitor;

/// The longest canonical encoding: a version byte, then every bucket with a 2-byte delta (the
/// first index may need 2) and a 5-byte count.
const MAX_ENCODED_LEN: usize = 1 + BUCKETS * 7;

impl<'de> de::Visitor<'de> for SketchVisitor {
    type Value = LatencySketch;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the bytes of a latency sketch")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        LatencySketch::from_bytes(bytes).map_err(E::custom)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut bytes = Vec::new();
        while let Some(byte) = seq.next_element::<u8>()? {
            if bytes.len() == MAX_ENCODED_LEN {
                return Err(de::Error::custom("a latency sketch encoding is too long"));
            }
            bytes.push(byte);
        }
        LatencySketch::from_bytes(&bytes).map_err(de::Error::custom)
    }
}

/// What the results of one monitor in one bucket of time add up to.
///
/// Every result is counted, up or down, and its response time enters the response-time
/// statistics either way: a down result's time (a timeout, a refused connection) is part of
/// what users of the site experienced. Counters saturate instead of wrapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollup {
    /// Results counted.
    pub checks: u32,
    /// Results that were up.
    pub up: u32,
    /// Results that were down.
    pub down: u32,
    /// The sum of all response times, for the mean.
    pub response_time_sum_ms: u64,
    /// The smallest response time, exact; `None` when no result was counted.
    pub response_time_min_ms: Option<u32>,
    /// The largest response time, exact; `None` when no result was counted.
    pub response_time_max_ms: Option<u32>,
    /// The distribution of response times, for percentiles.
    pub sketch: LatencySketch,
}

impl Rollup {
    /// Counts one result; one taken during a maintenance window, or inconclusive (the
    /// worker's own network was down), counts nothing (neither up nor down, like paused time).
    pub fn add(&mut self, result: &CheckResult) {
        if result.maintenance || result.status == CheckStatus::Inconclusive {
            return;
        }
        let ms = result.response_time_ms;
        self.checks = self.checks.saturating_add(1);
        match result.status {
            CheckStatus::Up => self.up = self.up.saturating_add(1),
            CheckStatus::Down | CheckStatus::Inconclusive => {
                self.down = self.down.saturating_add(1)
            }
        }
        self.response_time_sum_ms = self.response_time_sum_ms.saturating_add(u64::from(ms));
        self.response_time_min_ms = Some(self.response_time_min_ms.map_or(ms, |m| m.min(ms)));
        self.response_time_max_ms = Some(self.response_time_max_ms.map_or(ms, |m| m.max(ms)));
        self.sketch.record(ms);
    }

    /// Adds everything `other` counted, as if its results had been added here.
    pub fn merge(&mut self, other: &Rollup) {
        self.checks = self.checks.saturating_add(other.checks);
        self.up = self.up.saturating_add(other.up);
        self.down = self.down.saturating_add(other.down);
        self.response_time_sum_ms = self
            .response_time_sum_ms
            .saturating_add(other.response_time_sum_ms);
        self.response_time_min_ms = combine(
            self.response_time_min_ms,
            other.response_time_min_ms,
            u32::min,
        );
        self.response_time_max_ms = combine(
            self.response_time_max_ms,
            other.response_time_max_ms,
            u32::max,
        );
        self.sketch.merge(&other.sketch);
    }

    /// The share of results that were up, from 0 to 1; `None` when there were none.
    pub fn uptime_ratio(&self) -> Option<f64> {
        ratio(u64::from(self.up), u64::from(self.down))
    }

    /// The mean response time over all results; `None` when there were none.
    pub fn mean_response_ms(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.response_time_sum_ms as f64 / f64::from(self.checks))
    }
}

fn combine(a: Option<u32>, b: Option<u32>, pick: fn(u32, u32) -> u32) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

fn ratio(up: u64, down: u64) -> Option<f64> {
    let total = up + down;
    (total > 0).then(|| up as f64 / total as f64)
}

/// The length of time a rollup covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    /// Every resolution, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    /// The name stores and the API use for the resolution.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }

    /// The resolution named by [`Resolution::as_str`], for stores that keep it as text.
    pub fn parse(text: &str) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// How long one bucket lasts (leap-free: a day is always 86,400 seconds).
    pub fn duration(self) -> TimeDelta {
        TimeDelta::seconds(self.seconds())
    }

    /// The start of the bucket holding `at`: `at` rounded down to a whole minute, hour or day
    /// of UTC. Leap seconds do not exist here: `23:59:60` belongs to the minute of `23:59`.
    pub fn bucket_start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let seconds = at.timestamp();
        let start = seconds - seconds.rem_euclid(self.seconds());
        // Every valid time's floor is valid: the earliest valid time is a UTC midnight.
        DateTime::from_timestamp(start, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn seconds(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 3_600,
            Resolution::Day => 86_400,
        }
    }
}

/// The three rollups a result taken at `at` is added to, finest first.
pub fn rollup_keys(at: DateTime<Utc>) -> [(Resolution, DateTime<Utc>); 3] {
    Resolution::ALL.map(|r| (r, r.bucket_start(at)))
}

/// The fewest whole buckets that exactly cover `[from, to)` widened to whole minutes: days in
/// the middle, hours and minutes at the edges. Empty when `to` is not after `from`.
///
/// This is the coarsest choice of rollups for a range, so a store can read at most
/// 59 + 23 minute and hour rollups on each side plus one per whole day.
pub fn cover(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(Resolution, DateTime<Utc>)> {
    let mut pieces = Vec::new();
    if to <= from {
        return pieces;
    }
    let mut at = Resolution::Minute.bucket_start(from);
    let end = match Resolution::Minute.bucket_start(to) {
        start if start == to => to,
        start => start
            .checked_add_signed(Resolution::Minute.duration())
            .unwrap_or(start),
    };
    while at < end {
        let piece = [Resolution::Day, Resolution::Hour, Resolution::Minute]
            .into_iter()
            .filter(|r| r.bucket_start(at) == at)
            .find_map(|r| {
                let next = at.checked_add_signed(r.duration())?;
                (next <= end).then_some((r, next))
            });
        let Some((resolution, next)) = piece else {
            break;
        };
        pieces.push((resolution, at));
        at = next;
    }
    pieces
}

/// Whether a bucket of `resolution` starting at `start` overlaps `[from, to)`.
fn overlaps(
    start: DateTime<Utc>,
    resolution: Resolution,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> bool {
    let end = start
        .checked_add_signed(resolution.duration())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    start < to && end > from
}

/// Merges the rollups whose bucket overlaps `[from, to)` into one.
///
/// A rollup cannot be split, so a bucket that only partly overlaps the range counts whole; with
/// the buckets of [`cover`] the range is widened by less than a minute on each side. The
/// rollups must not overlap one another (no minute together with its hour), or results are
/// counted twice. Counters saturate at `u32::MAX`; [`uptime_over`] does not.
pub fn combine_over(
    rollups: &[(DateTime<Utc>, Resolution, Rollup)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Rollup {
    let mut total = Rollup::default();
    for (start, resolution, rollup) in rollups {
        if overlaps(*start, *resolution, from, to) {
            total.merge(rollup);
        }
    }
    total
}

/// The share of up results among the rollups whose bucket overlaps `[from, to)`, as
/// [`combine_over`] selects them; `None` when they hold no result.
///
/// Uptime is measured over the checks that ran, not over wall-clock time. A monitor that is
/// pending (no result yet) or paused produces no results, so that time counts neither as up
/// nor as down: it is simply absent, and a range with nothing but such time has no uptime.
/// With a fixed interval every check weighs the same length of time, so the ratio of results
/// is the ratio of time.
pub fn uptime_over(
    rollups: &[(DateTime<Utc>, Resolution, Rollup)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<f64> {
    let (mut up, mut down) = (0u64, 0u64);
    for (start, resolution, rollup) in rollups {
        if overlaps(*start, *resolution, from, to) {
            up += u64::from(rollup.up);
            down += u64::from(rollup.down);
        }
    }
    ratio(up, down)
}

/// How long each kind of history is kept; `None` keeps it forever.
///
/// The defaults keep raw results 7 days, minute rollups 48 hours, hour rollups 90 days and day
/// rollups forever: at a 60 s interval that is about 10,000 raw rows, 2,900 minute rows and
/// 2,200 hour rows per monitor at steady state, plus one day row per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw: Option<TimeDelta>,
    pub minute: Option<TimeDelta>,
    pub hour: Option<TimeDelta>,
    pub day: Option<TimeDelta>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: Some(TimeDelta::days(7)),
            minute: Some(TimeDelta::hours(48)),
            hour: Some(TimeDelta::days(90)),
            day: None,
        }
    }
}

/// The times before which history may be deleted, from a [`Retention`] at one instant; `None`
/// where everything is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Raw results checked before this.
    pub raw: Option<DateTime<Utc>>,
    /// Rollups of each resolution whose bucket starts before this, finest first.
    pub rollups: [(Resolution, Option<DateTime<Utc>>); 3],
}

impl Retention {
    /// How long rollups of `resolution` are kept.
    pub fn of(&self, resolution: Resolution) -> Option<TimeDelta> {
        match resolution {
            Resolution::Minute => self.minute,
            Resolution::Hour => self.hour,
            Resolution::Day => self.day,
        }
    }

    /// What may be deleted at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        let before = |keep: Option<TimeDelta>| keep.and_then(|k| now.checked_sub_signed(k));
        Cutoffs {
            raw: before(self.raw),
            rollups: Resolution::ALL.map(|r| (r, before(self.of(r)))),
        }
    }
}

/// `[from, to)` widened at either end to whole hours where minute rollups are no longer kept
/// at `now`, and to whole days where hour rollups are not, so that every bucket [`cover`]
/// picks for the result still exists. Recent edges are left as they are.
pub fn readable_range(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    retention: &Retention,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let (mut from, mut to) = (from, to);
    for (finer, coarser) in [
        (Resolution::Minute, Resolution::Hour),
        (Resolution::Hour, Resolution::Day),
    ] {
        let Some(kept_since) = retention
            .of(finer)
            .and_then(|keep| now.checked_sub_signed(keep))
        else {
            continue;
        };
        if from < kept_since {
            from = coarser.bucket_start(from);
        }
        // The last bucket of the range starts just before `to`.
        let last = to
            .checked_sub_signed(TimeDelta::milliseconds(1))
            .unwrap_or(to);
        if last < kept_since {
            to = ceil(coarser, to);
        }
    }
    (from, to)
}

/// `at` rounded up to a whole bucket of `resolution`.
fn ceil(resolution: Resolution, at: DateTime<Utc>) -> DateTime<Utc> {
    let start = resolution.bucket_start(at);
    if start == at {
        at
    } else {
        start
            .checked_add_signed(resolution.duration())
            .unwrap_or(start)
    }
}

/// A contiguous range of buckets of one resolution, which a store reads with one range scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupRun {
    pub resolution: Resolution,
    /// The first bucket's start.
    pub from: DateTime<Utc>,
    /// The end of the last bucket (exclusive).
    pub to: DateTime<Utc>,
}

/// The buckets of [`cover`] grouped into contiguous runs of one resolution, in time order.
/// A cover has at most five runs (minutes, hours, days, hours, minutes), so reading a range
/// costs the same however long ago it starts.
pub fn runs(pieces: &[(Resolution, DateTime<Utc>)]) -> Vec<RollupRun> {
    let mut runs: Vec<RollupRun> = Vec::new();
    for &(resolution, start) in pieces {
        let end = start
            .checked_add_signed(resolution.duration())
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        match runs.last_mut() {
            Some(run) if run.resolution == resolution && run.to == start => run.to = end,
            _ => runs.push(RollupRun {
                resolution,
                from: start,
                to: end,
            }),
        }
    }
    runs
}

impl Resolution {
    /// The coarsest resolution whose buckets tile buckets of length `bucket` exactly; `None`
    /// when `bucket` is not a whole number of minutes.
    pub fn tiling(bucket: TimeDelta) -> Option<Resolution> {
        let seconds = bucket.num_seconds();
        if seconds <= 0 || bucket.subsec_nanos() != 0 {
            return None;
        }
        [Resolution::Day, Resolution::Hour, Resolution::Minute]
            .into_iter()
            .find(|r| seconds % r.seconds() == 0)
    }
}

/// Merges rollups into consecutive buckets of length `bucket`, aligned on the Unix epoch,
/// from the one holding `from` to the one holding the instant before `to`; buckets without
/// rollups are present and empty, so a chart shows gaps where nothing was checked. The
/// rollups should be of a resolution that tiles `bucket` (see [`Resolution::tiling`]); one
/// that straddles two buckets counts in the one where it starts.
pub fn series(
    rollups: &[(DateTime<Utc>, Resolution, Rollup)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: TimeDelta,
) -> Vec<(DateTime<Utc>, Rollup)> {
    let size = bucket.num_seconds().max(1);
    let floor = |at: DateTime<Utc>| {
        let s = at.timestamp();
        s - s.rem_euclid(size)
    };
    if to <= from {
        return Vec::new();
    }
    let first = floor(from);
    let last = floor(to - TimeDelta::milliseconds(1));
    let count = ((last - first) / size + 1) as usize;
    let mut out: Vec<(DateTime<Utc>, Rollup)> = (0..count)
        .map(|i| {
            let start = DateTime::from_timestamp(first + i as i64 * size, 0)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            (start, Rollup::default())
        })
        .collect();
    for (start, _, rollup) in rollups {
        let index = (floor(*start) - first) / size;
        if let Some((_, total)) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) {
            total.merge(rollup);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, Timelike};
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::check::{StateRules, SCHEMA_VERSION};

    fn at_ms(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, milli: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_milli_opt(h, mi, s, milli)
            .unwrap()
            .and_utc()
    }

    fn result(checked_at: DateTime<Utc>, up: bool, ms: u32) -> CheckResult {
        CheckResult {
            region: "default".to_string(),
            v: SCHEMA_VERSION,
            id: Uuid::nil(),
            job_id: Uuid::nil(),
            monitor_id: Uuid::nil(),
            monitor_name: "m".into(),
            url: "http://127.0.0.1/".into(),
            due_at: checked_at,
            checked_at,
            response_time_ms: ms,
            status_code: None,
            status: if up {
                CheckStatus::Up
            } else {
                CheckStatus::Down
            },
            error: None,
            rules: StateRules::default(),
            details: Default::default(),
            cert_expiry_alert_days: Vec::new(),
            maintenance: false,
        }
    }

    #[test]
    fn maintenance_results_count_nothing() {
        let mut r = Rollup::default();
        let mut during = result(utc(2024, 1, 1, 0, 0, 0, 0), false, 100);
        during.maintenance = true;
        r.add(&during);
        assert_eq!(r, Rollup::default());
        r.add(&result(utc(2024, 1, 1, 0, 0, 1, 0), true, 50));
        assert_eq!((r.checks, r.up, r.down), (1, 1, 0));
    }

    fn sketch_of(values: &[u32]) -> LatencySketch {
        let mut s = LatencySketch::new();
        for &v in values {
            s.record(v);
        }
        s
    }

    /// The exact nearest-rank quantile, the definition the sketch approximates.
    fn exact_quantile(values: &[u32], q: f64) -> u32 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let n = sorted.len() as u64;
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        sorted[rank as usize - 1]
    }

    /// A deterministic spread of typical web latencies, 20 to 200 ms.
    fn typical(n: usize) -> Vec<u32> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                20 + ((x >> 33) % 181) as u32
            })
            .collect()
    }

    // --- Buckets ---

    #[test]
    fn buckets_tile_the_tracked_range_without_gaps() {
        assert_eq!(BUCKETS, 272);
        assert_eq!(bucket_bounds(0), (0, 0));
        assert_eq!(bucket_bounds(BUCKETS - 1).1, LatencySketch::MAX_TRACKED_MS);
        let mut next_low = 0u32;
        for index in 0..BUCKETS {
            let (low, high) = bucket_bounds(index);
            assert_eq!(
                low, next_low,
                "bucket {index} does not start where the last ended"
            );
            assert!(high >= low);
            assert_eq!(bucket_of(low), index);
            assert_eq!(bucket_of(high), index);
            // The middle is within 1/32 of every value of the bucket.
            let mid = representative(index);
            assert!((low..=high).contains(&mid));
            let worst = (mid - low).max(high - mid);
            assert!(
                f64::from(worst) <= f64::from(low) * LatencySketch::RELATIVE_ERROR,
                "bucket {index} [{low}, {high}] is too wide"
            );
            next_low = high + 1;
        }
    }

    #[test]
    fn values_map_to_their_buckets() {
        let cases: &[(u32, usize, (u32, u32))] = &[
            (0, 0, (0, 0)),
            (15, 15, (15, 15)),
            (16, 16, (16, 16)),
            (31, 31, (31, 31)),
            (32, 32, (32, 33)),
            (33, 32, (32, 33)),
            (100, 57, (100, 103)),
            (1_000, 111, (992, 1_023)),
            (600_000, 258, (589_824, 622_591)),
            (1_048_575, 271, (1_015_808, 1_048_575)),
            (1_048_576, 271, (1_015_808, 1_048_575)),
            (u32::MAX, 271, (1_015_808, 1_048_575)),
        ];
        for &(ms, index, bounds) in cases {
            assert_eq!(bucket_of(ms), index, "{ms} ms");
            assert_eq!(bucket_bounds(index), bounds, "{ms} ms");
        }
    }

    // --- Sketch ---

    #[test]
    fn empty_sketch_has_no_quantiles() {
        let s = LatencySketch::new();
        assert!(s.is_empty());
        assert_eq!(s.count(), 0);
        for q in [0.0, 0.5, 1.0] {
            assert_eq!(s.quantile(q), None);
        }
        assert_eq!(s.to_bytes(), vec![1]);
        assert_eq!(LatencySketch::from_bytes(&[1]), Ok(s));
    }

    #[test]
    fn one_value_is_every_quantile() {
        // (value, what every quantile reads)
        let cases = [
            (0, 0),
            (7, 7),
            (15, 15),
            (16, 16),
            (100, 101),
            (137, 139),
            (600_000, 606_207),
            (u32::MAX, 1_032_191),
        ];
        for (ms, want) in cases {
            let s = sketch_of(&[ms]);
            assert_eq!(s.count(), 1);
            for q in [-1.0, 0.0, 0.01, 0.5, 0.99, 1.0, 2.0, f64::INFINITY] {
                assert_eq!(s.quantile(q), Some(want), "{ms} ms at q={q}");
            }
            assert_eq!(s.quantile(f64::NAN), None);
        }
    }

    #[test]
    fn all_equal_values_read_as_that_value() {
        for ms in [0u32, 1, 15, 42, 250, 9_999] {
            let s = sketch_of(&vec![ms; 1_000]);
            assert_eq!(s.count(), 1_000);
            for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
                let got = s.quantile(q).unwrap();
                assert!(
                    f64::from(got.abs_diff(ms)) <= f64::from(ms) * LatencySketch::RELATIVE_ERROR,
                    "{ms} ms read as {got}"
                );
            }
        }
    }

    #[test]
    fn huge_values_are_clamped_to_the_last_bucket() {
        let s = sketch_of(&[u32::MAX, LatencySketch::MAX_TRACKED_MS + 1, 20]);
        assert_eq!(s.count(), 3);
        assert_eq!(s.quantile(0.0), Some(20));
        let top = s.quantile(1.0).unwrap();
        assert_eq!(top, representative(BUCKETS - 1));
        assert!(top <= LatencySketch::MAX_TRACKED_MS);
        assert_eq!(s.to_bytes(), vec![1, 20, 1, 251, 1, 2]);
    }

    #[test]
    fn quantiles_pick_by_nearest_rank() {
        // 1..=10 ms are exact buckets, so the sketch gives the exact nearest-rank values.
        let s = sketch_of(&(1..=10).collect::<Vec<_>>());
        let cases = [
            (0.0, 1),
            (0.05, 1),
            (0.1, 1),
            (0.11, 2),
            (0.5, 5),
            (0.51, 6),
            (0.9, 9),
            (0.95, 10),
            (1.0, 10),
        ];
        for (q, want) in cases {
            assert_eq!(s.quantile(q), Some(want), "q={q}");
        }
    }

    #[test]
    fn bucket_counts_saturate() {
        let mut s = LatencySketch {
            buckets: vec![(5, u32::MAX - 1)],
        };
        s.record(5);
        s.record(5);
        assert_eq!(s.count(), u64::from(u32::MAX));
        s.merge(&sketch_of(&[5, 6]));
        assert_eq!(s.buckets, vec![(5, u32::MAX), (6, 1)]);
        assert_eq!(LatencySketch::from_bytes(&s.to_bytes()), Ok(s));
    }

    #[test]
    fn encodings_stay_small() {
        let sizes: Vec<usize> = [1, 60, 1_440]
            .into_iter()
            .map(|n| sketch_of(&typical(n)).to_bytes().len())
            .collect();
        // One value: a version byte and one (index, count) pair.
        assert_eq!(sizes[0], 3);
        // 20-200 ms spans 54 buckets: at most 2 bytes each, plus 1 for counts of 128 or more.
        assert!(sizes[1] <= 1 + 54 * 2, "60 values took {} bytes", sizes[1]);
        assert!(
            sizes[2] <= 1 + 54 * 3,
            "1440 values took {} bytes",
            sizes[2]
        );
        assert_eq!(sizes, vec![3, 67, 109], "update the documented sizes");
    }

    #[test]
    fn encoding_is_documented_format() {
        // 3 ms twice (bucket 3), 100 ms once (bucket 57), 300 counts of 1000 ms (bucket 111).
        let mut values = vec![3, 3, 100];
        values.extend([1_000; 300]);
        let s = sketch_of(&values);
        assert_eq!(s.to_bytes(), vec![1, 3, 2, 54, 1, 54, 0xac, 0x02]);
    }

    #[test]
    fn garbage_is_rejected_with_the_reason() {
        let cases: &[(&[u8], SketchError)] = &[
            (&[], SketchError::Empty),
            (&[0], SketchError::UnsupportedVersion(0)),
            (&[2, 1, 1], SketchError::UnsupportedVersion(2)),
            (&[1, 3], SketchError::Truncated),
            (&[1, 3, 0x80], SketchError::Truncated),
            (&[1, 0x80], SketchError::Truncated),
            (&[1, 3, 1, 0, 1], SketchError::Unordered),
            (&[1, 3, 0], SketchError::ZeroCount),
            (&[1, 0x90, 0x02, 1], SketchError::BucketOutOfRange(272)),
            (&[1, 250, 1, 1, 22, 1], SketchError::BucketOutOfRange(272)),
            (&[1, 0x83, 0x00, 1], SketchError::BadVarint),
            (
                &[1, 3, 0x81, 0x80, 0x80, 0x80, 0x10],
                SketchError::BadVarint,
            ),
            (
                &[1, 3, 0x81, 0x80, 0x80, 0x80, 0x80, 0x01],
                SketchError::BadVarint,
            ),
            (
                &[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1],
                SketchError::BucketOutOfRange(u64::from(u32::MAX)),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                LatencySketch::from_bytes(bytes),
                Err(want.clone()),
                "{bytes:?}"
            );
        }
        // The largest count a varint holds is accepted.
        let s = LatencySketch::from_bytes(&[1, 3, 0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap();
        assert_eq!(s.count(), u64::from(u32::MAX));
    }

    #[test]
    fn sketches_serialize_as_their_bytes() {
        let s = sketch_of(&[3, 3, 100]);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "[1,3,2,54,1]");
        assert_eq!(serde_json::from_str::<LatencySketch>(&json).unwrap(), s);
        assert!(serde_json::from_str::<LatencySketch>("[1,3,0]").is_err());
        assert!(serde_json::from_str::<LatencySketch>("[]").is_err());
        assert!(serde_json::from_str::<LatencySketch>("[1,300]").is_err());
        let long = format!("[1{}]", ",1".repeat(MAX_ENCODED_LEN));
        assert!(serde_json::from_str::<LatencySketch>(&long).is_err());
    }

    // --- Rollup ---

    #[test]
    fn rollup_counts_every_result() {
        let t = at_ms(0);
        let mut r = Rollup::default();
        assert_eq!(r.uptime_ratio(), None);
        assert_eq!(r.mean_response_ms(), None);
        r.add(&result(t, true, 100));
        r.add(&result(t, true, 50));
        r.add(&result(t, false, 10_000));
        r.add(&result(t, true, 0));
        assert_eq!(r.checks, 4);
        assert_eq!((r.up, r.down), (3, 1));
        assert_eq!(r.response_time_sum_ms, 10_150);
        assert_eq!(r.response_time_min_ms, Some(0));
        assert_eq!(r.response_time_max_ms, Some(10_000));
        assert_eq!(r.sketch.count(), 4);
        assert_eq!(r.uptime_ratio(), Some(0.75));
        assert_eq!(r.mean_response_ms(), Some(2_537.5));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Rollup>(&json).unwrap(), r);
    }

    #[test]
    fn rollup_merge_keeps_exact_extremes() {
        let t = at_ms(0);
        let mut a = Rollup::default();
        a.add(&result(t, true, 30));
        let mut b = Rollup::default();
        b.add(&result(t, false, 7));
        b.add(&result(t, true, 90));
        let empty = Rollup::default();
        let mut merged = a.clone();
        merged.merge(&empty);
        assert_eq!(merged, a);
        merged.merge(&b);
        assert_eq!(merged.checks, 3);
        assert_eq!((merged.up, merged.down), (2, 1));
        assert_eq!(merged.response_time_min_ms, Some(7));
        assert_eq!(merged.response_time_max_ms, Some(90));
        let mut from_empty = Rollup::default();
        from_empty.merge(&merged);
        assert_eq!(from_empty, merged);
    }

    #[test]
    fn all_down_is_zero_uptime() {
        let mut r = Rollup::default();
        r.add(&result(at_ms(0), false, u32::MAX));
        assert_eq!(r.uptime_ratio(), Some(0.0));
        assert_eq!(r.mean_response_ms(), Some(f64::from(u32::MAX)));
        assert_eq!(r.response_time_max_ms, Some(u32::MAX));
    }

    // --- Resolution ---

    #[test]
    fn buckets_start_on_utc_boundaries() {
        // (time, minute start, hour start, day start)
        let cases = [
            (
                utc(2024, 3, 10, 0, 0, 0, 0),
                utc(2024, 3, 10, 0, 0, 0, 0),
                utc(2024, 3, 10, 0, 0, 0, 0),
                utc(2024, 3, 10, 0, 0, 0, 0),
            ),
            (
                utc(2024, 3, 9, 23, 59, 59, 999),
                utc(2024, 3, 9, 23, 59, 0, 0),
                utc(2024, 3, 9, 23, 0, 0, 0),
                utc(2024, 3, 9, 0, 0, 0, 0),
            ),
            (
                utc(2024, 3, 10, 13, 0, 0, 1),
                utc(2024, 3, 10, 13, 0, 0, 0),
                utc(2024, 3, 10, 13, 0, 0, 0),
                utc(2024, 3, 10, 0, 0, 0, 0),
            ),
            (
                utc(2024, 3, 10, 12, 59, 59, 999),
                utc(2024, 3, 10, 12, 59, 0, 0),
                utc(2024, 3, 10, 12, 0, 0, 0),
                utc(2024, 3, 10, 0, 0, 0, 0),
            ),
            // A leap day, and the end of a year.
            (
                utc(2024, 2, 29, 6, 30, 30, 0),
                utc(2024, 2, 29, 6, 30, 0, 0),
                utc(2024, 2, 29, 6, 0, 0, 0),
                utc(2024, 2, 29, 0, 0, 0, 0),
            ),
            (
                utc(2023, 12, 31, 23, 59, 30, 0),
                utc(2023, 12, 31, 23, 59, 0, 0),
                utc(2023, 12, 31, 23, 0, 0, 0),
                utc(2023, 12, 31, 0, 0, 0, 0),
            ),
            // A leap second (chrono's 23:59:60) stays in the last minute of its day.
            (
                utc(2016, 12, 31, 23, 59, 59, 1_500),
                utc(2016, 12, 31, 23, 59, 0, 0),
                utc(2016, 12, 31, 23, 0, 0, 0),
                utc(2016, 12, 31, 0, 0, 0, 0),
            ),
            // Before the epoch, times still round down.
            (
                utc(1969, 12, 31, 23, 59, 59, 500),
                utc(1969, 12, 31, 23, 59, 0, 0),
                utc(1969, 12, 31, 23, 0, 0, 0),
                utc(1969, 12, 31, 0, 0, 0, 0),
            ),
        ];
        for (at, minute, hour, day) in cases {
            assert_eq!(
                rollup_keys(at),
                [
                    (Resolution::Minute, minute),
                    (Resolution::Hour, hour),
                    (Resolution::Day, day)
                ],
                "{at}"
            );
        }
        for r in Resolution::ALL {
            assert_eq!(
                r.bucket_start(DateTime::<Utc>::MIN_UTC),
                DateTime::<Utc>::MIN_UTC
            );
            let last = r.bucket_start(DateTime::<Utc>::MAX_UTC);
            assert!(last <= DateTime::<Utc>::MAX_UTC && last.second() == 0);
        }
    }

    #[test]
    fn resolutions_have_names_and_lengths() {
        let cases = [
            (Resolution::Minute, "minute", 60),
            (Resolution::Hour, "hour", 3_600),
            (Resolution::Day, "day", 86_400),
        ];
        for (r, name, seconds) in cases {
            assert_eq!(r.as_str(), name);
            assert_eq!(Resolution::parse(name), Some(r));
            assert_eq!(r.duration(), TimeDelta::seconds(seconds));
            assert_eq!(serde_json::to_value(r).unwrap(), name);
        }
        assert_eq!(Resolution::parse("week"), None);
    }

    // --- Ranges ---

    #[test]
    fn cover_uses_the_coarsest_buckets() {
        use Resolution::{Day, Hour, Minute};
        let from = utc(2024, 3, 9, 22, 58, 30, 0);
        let to = utc(2024, 3, 11, 1, 2, 0, 1);
        let want = vec![
            (Minute, utc(2024, 3, 9, 22, 58, 0, 0)),
            (Minute, utc(2024, 3, 9, 22, 59, 0, 0)),
            (Hour, utc(2024, 3, 9, 23, 0, 0, 0)),
            (Day, utc(2024, 3, 10, 0, 0, 0, 0)),
            (Hour, utc(2024, 3, 11, 0, 0, 0, 0)),
            (Minute, utc(2024, 3, 11, 1, 0, 0, 0)),
            (Minute, utc(2024, 3, 11, 1, 1, 0, 0)),
            (Minute, utc(2024, 3, 11, 1, 2, 0, 0)),
        ];
        assert_eq!(cover(from, to), want);
        let day = utc(2024, 3, 10, 0, 0, 0, 0);
        assert_eq!(cover(day, day + TimeDelta::days(1)), vec![(Day, day)]);
        assert_eq!(cover(day, day), vec![]);
        assert_eq!(cover(day, day - TimeDelta::seconds(1)), vec![]);
        let tiny = day + TimeDelta::milliseconds(5);
        assert_eq!(
            cover(tiny, tiny + TimeDelta::milliseconds(1)),
            vec![(Minute, day)]
        );
        assert_eq!(
            cover(
                DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1),
                DateTime::<Utc>::MAX_UTC
            )
            .len(),
            0
        );
    }

    #[test]
    fn uptime_counts_only_overlapping_buckets() {
        let base = utc(2024, 3, 10, 0, 0, 0, 0);
        let rollup = |up: u32, down: u32| Rollup {
            checks: up + down,
            up,
            down,
            ..Rollup::default()
        };
        let rollups = vec![
            (base, Resolution::Hour, rollup(60, 0)),
            (base + TimeDelta::hours(1), Resolution::Minute, rollup(0, 1)),
            (base + TimeDelta::hours(2), Resolution::Hour, rollup(30, 30)),
            (base + TimeDelta::days(1), Resolution::Day, rollup(1_440, 0)),
        ];
        let h = |n: i64| base + TimeDelta::hours(n);
        let cases = [
            (h(0), h(1), Some(1.0)),
            // The range ends where the minute bucket starts: that bucket is outside.
            (h(0), h(1) + TimeDelta::milliseconds(1), Some(60.0 / 61.0)),
            (h(1), h(2), Some(0.0)),
            (h(0), h(3), Some(90.0 / 121.0)),
            // A partly covered bucket counts whole.
            (h(2) + TimeDelta::minutes(59), h(3), Some(0.5)),
            // Pending and paused time leave no rollups: no uptime at all.
            (h(3), h(24), None),
            (h(0), h(48), Some(1_530.0 / 1_561.0)),
            (h(3), h(0), None),
        ];
        for (from, to, want) in cases {
            assert_eq!(uptime_over(&rollups, from, to), want, "{from} .. {to}");
            let combined = combine_over(&rollups, from, to);
            assert_eq!(combined.uptime_ratio(), want, "{from} .. {to}");
        }
        assert_eq!(uptime_over(&[], h(0), h(1)), None);
    }

    // --- Retention and reading ---

    #[test]
    fn default_retention_is_the_documented_one() {
        let r = Retention::default();
        assert_eq!(r.raw, Some(TimeDelta::days(7)));
        assert_eq!(r.of(Resolution::Minute), Some(TimeDelta::hours(48)));
        assert_eq!(r.of(Resolution::Hour), Some(TimeDelta::days(90)));
        assert_eq!(r.of(Resolution::Day), None);
        let now = utc(2026, 3, 10, 12, 0, 0, 0);
        let c = r.cutoffs(now);
        assert_eq!(c.raw, Some(utc(2026, 3, 3, 12, 0, 0, 0)));
        assert_eq!(
            c.rollups,
            [
                (Resolution::Minute, Some(utc(2026, 3, 8, 12, 0, 0, 0))),
                (Resolution::Hour, Some(utc(2025, 12, 10, 12, 0, 0, 0))),
                (Resolution::Day, None),
            ]
        );
    }

    #[test]
    fn recent_ranges_are_read_as_asked() {
        let now = utc(2026, 3, 10, 12, 34, 56, 0);
        let from = now - TimeDelta::hours(24);
        assert_eq!(
            readable_range(from, now, now, &Retention::default()),
            (from, now)
        );
    }

    #[test]
    fn edges_beyond_minute_retention_widen_to_hours_and_beyond_hour_retention_to_days() {
        let now = utc(2026, 3, 10, 12, 34, 56, 0);
        let r = Retention::default();
        // 7 days back: minutes are gone there, hours are not.
        let (from, to) = readable_range(now - TimeDelta::days(7), now, now, &r);
        assert_eq!(from, utc(2026, 3, 3, 12, 0, 0, 0));
        assert_eq!(to, now);
        // 120 days back: hours are gone too.
        let (from, _) = readable_range(now - TimeDelta::days(120), now, now, &r);
        assert_eq!(from, utc(2025, 11, 10, 0, 0, 0, 0));
        // An old end widens up to the next whole hour (or day).
        let (_, to) = readable_range(
            utc(2026, 3, 1, 0, 0, 0, 0),
            utc(2026, 3, 2, 5, 30, 0, 0),
            now,
            &r,
        );
        assert_eq!(to, utc(2026, 3, 2, 6, 0, 0, 0));
        // Keeping everything changes nothing.
        let all = Retention {
            raw: None,
            minute: None,
            hour: None,
            day: None,
        };
        let from = now - TimeDelta::days(400);
        assert_eq!(readable_range(from, now, now, &all), (from, now));
    }

    #[test]
    fn a_thirty_day_cover_reads_in_at_most_five_runs() {
        let now = utc(2026, 3, 10, 12, 34, 56, 0);
        let (from, to) = readable_range(now - TimeDelta::days(30), now, now, &Retention::default());
        let pieces = cover(from, to);
        let runs = runs(&pieces);
        assert!(runs.len() <= 5, "{runs:?}");
        // The runs tile the range with no gap or overlap.
        assert_eq!(runs.first().unwrap().from, from);
        for pair in runs.windows(2) {
            assert_eq!(pair[0].to, pair[1].from);
            assert_ne!(pair[0].resolution, pair[1].resolution);
        }
        assert_eq!(
            runs.last().unwrap().to,
            Resolution::Minute.bucket_start(now) + TimeDelta::minutes(1)
        );
        // Days do the bulk of the work: the row count does not grow with the range.
        assert!(pieces.len() < 30 + 2 * (24 + 60), "{} pieces", pieces.len());
    }

    #[test]
    fn tiling_picks_the_coarsest_resolution_that_divides_the_bucket() {
        assert_eq!(
            Resolution::tiling(TimeDelta::days(2)),
            Some(Resolution::Day)
        );
        assert_eq!(
            Resolution::tiling(TimeDelta::hours(6)),
            Some(Resolution::Hour)
        );
        assert_eq!(
            Resolution::tiling(TimeDelta::minutes(90)),
            Some(Resolution::Minute)
        );
        assert_eq!(Resolution::tiling(TimeDelta::seconds(90)), None);
        assert_eq!(Resolution::tiling(TimeDelta::zero()), None);
    }

    #[test]
    fn series_has_every_bucket_and_merges_what_falls_in_each() {
        let from = utc(2026, 3, 10, 10, 30, 0, 0);
        let to = utc(2026, 3, 10, 13, 0, 0, 0);
        let mut a = Rollup::default();
        a.add(&result(utc(2026, 3, 10, 10, 40, 0, 0), true, 100));
        let mut b = Rollup::default();
        b.add(&result(utc(2026, 3, 10, 12, 10, 0, 0), false, 300));
        let mut c = Rollup::default();
        c.add(&result(utc(2026, 3, 10, 12, 50, 0, 0), true, 200));
        let rows = vec![
            (
                utc(2026, 3, 10, 10, 40, 0, 0),
                Resolution::Minute,
                a.clone(),
            ),
            (
                utc(2026, 3, 10, 12, 10, 0, 0),
                Resolution::Minute,
                b.clone(),
            ),
            (
                utc(2026, 3, 10, 12, 50, 0, 0),
                Resolution::Minute,
                c.clone(),
            ),
        ];
        let s = series(&rows, from, to, TimeDelta::hours(1));
        let starts: Vec<_> = s.iter().map(|(start, _)| *start).collect();
        assert_eq!(
            starts,
            vec![
                utc(2026, 3, 10, 10, 0, 0, 0),
                utc(2026, 3, 10, 11, 0, 0, 0),
                utc(2026, 3, 10, 12, 0, 0, 0),
            ]
        );
        assert_eq!(s[0].1, a);
        assert_eq!(s[1].1, Rollup::default());
        let mut bc = b;
        bc.merge(&c);
        assert_eq!(s[2].1, bc);
        assert!(series(&rows, to, from, TimeDelta::hours(1)).is_empty());
    }

    // --- Properties ---

    fn values() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(
            prop_oneof![0u32..16, 0u32..2_000, 0u32..600_000, Just(u32::MAX)],
            0..200,
        )
    }

    /// Results over about three days from a start that may or may not be aligned (and may be
    /// before the epoch), with times often exactly on or just before bucket boundaries.
    fn rows() -> impl Strategy<Value = (i64, Vec<(i64, bool, u32)>)> {
        let base = (
            -20_000i64..30_000,
            prop_oneof![Just(0i64), 0i64..86_400_000],
        )
            .prop_map(|(day, offset)| day * 86_400_000 + offset);
        let offset = prop_oneof![
            0i64..3 * 86_400_000,
            (0i64..72).prop_map(|h| h * 3_600_000),
            (1i64..72).prop_map(|h| h * 3_600_000 - 1),
            (0i64..4_320).prop_map(|m| m * 60_000),
        ];
        let row = (
            offset,
            any::<bool>(),
            prop_oneof![0u32..600_000, 20u32..200],
        );
        (base, prop::collection::vec(row, 0..300))
    }

    /// The rollup of raw rows computed field by field, without [`Rollup::add`].
    fn direct(rows: &[(DateTime<Utc>, bool, u32)]) -> Rollup {
        let times: Vec<u32> = rows.iter().map(|r| r.2).collect();
        Rollup {
            checks: rows.len() as u32,
            up: rows.iter().filter(|r| r.1).count() as u32,
            down: rows.iter().filter(|r| !r.1).count() as u32,
            response_time_sum_ms: times.iter().map(|&t| u64::from(t)).sum(),
            response_time_min_ms: times.iter().copied().min(),
            response_time_max_ms: times.iter().copied().max(),
            sketch: sketch_of(&times),
        }
    }

    proptest! {
        #[test]
        fn rollups_equal_the_aggregate_of_their_rows((base, raw) in rows()) {
            let rows: Vec<_> = raw.iter().map(|&(o, up, ms)| (at_ms(base + o), up, ms)).collect();
            let mut rollups: BTreeMap<(Resolution, DateTime<Utc>), Rollup> = BTreeMap::new();
            for &(at, up, ms) in &rows {
                for (r, start) in rollup_keys(at) {
                    // The key is the UTC-aligned floor of the time.
                    prop_assert_eq!(start.timestamp().rem_euclid(r.duration().num_seconds()), 0);
                    prop_assert_eq!(start.timestamp_subsec_nanos(), 0);
                    prop_assert!(start <= at && at < start + r.duration());
                    rollups.entry((r, start)).or_default().add(&result(at, up, ms));
                }
            }
            for r in Resolution::ALL {
                let total: u64 = rollups.iter().filter(|(k, _)| k.0 == r).map(|(_, v)| u64::from(v.checks)).sum();
                prop_assert_eq!(total, rows.len() as u64);
            }
            for (&(r, start), rollup) in &rollups {
                let covered: Vec<_> = rows.iter().copied().filter(|row| start <= row.0 && row.0 < start + r.duration()).collect();
                let want = direct(&covered);
                prop_assert_eq!(rollup.sketch.count(), covered.len() as u64);
                prop_assert_eq!(rollup, &want);
            }
            // Finer rollups merge into exactly the coarser one.
            for (finer, coarser) in [(Resolution::Minute, Resolution::Hour), (Resolution::Hour, Resolution::Day), (Resolution::Minute, Resolution::Day)] {
                let mut merged: BTreeMap<DateTime<Utc>, Rollup> = BTreeMap::new();
                for ((_, start), rollup) in rollups.range((finer, DateTime::<Utc>::MIN_UTC)..=(finer, DateTime::<Utc>::MAX_UTC)) {
                    merged.entry(coarser.bucket_start(*start)).or_default().merge(rollup);
                }
                let want: BTreeMap<DateTime<Utc>, Rollup> = rollups
                    .iter()
                    .filter(|(k, _)| k.0 == coarser)
                    .map(|(k, v)| (k.1, v.clone()))
                    .collect();
                prop_assert_eq!(merged, want);
            }
        }

        #[test]
        fn uptime_over_a_cover_is_the_uptime_of_its_rows(
            (base, raw) in rows(),
            from_offset in -3_600_000i64..3 * 86_400_000,
            length in 0i64..3 * 86_400_000,
        ) {
            let rows: Vec<_> = raw.iter().map(|&(o, up, ms)| (at_ms(base + o), up, ms)).collect();
            let mut rollups: BTreeMap<(Resolution, DateTime<Utc>), Rollup> = BTreeMap::new();
            for &(at, up, ms) in &rows {
                for key in rollup_keys(at) {
                    rollups.entry(key).or_default().add(&result(at, up, ms));
                }
            }
            let (from, to) = (at_ms(base + from_offset), at_ms(base + from_offset + length));
            let pieces = cover(from, to);
            // The pieces are aligned, contiguous and span [from, to) widened to whole minutes.
            let mut at = Resolution::Minute.bucket_start(from);
            for &(r, start) in &pieces {
                prop_assert_eq!(start, at);
                prop_assert_eq!(r.bucket_start(start), start);
                at = start + r.duration();
            }
            if from < to {
                prop_assert!(at >= to && at - to < TimeDelta::minutes(1));
                let days = (to - from).num_days() + 1;
                prop_assert!(pieces.len() as i64 <= 2 * (59 + 23) + days);
            } else {
                prop_assert!(pieces.is_empty());
            }
            let picked: Vec<_> = pieces
                .iter()
                .filter_map(|&(r, start)| rollups.get(&(r, start)).map(|v| (start, r, v.clone())))
                .collect();
            let (lo, hi) = (Resolution::Minute.bucket_start(from), at);
            let covered: Vec<_> = rows.iter().copied().filter(|row| from < to && lo <= row.0 && row.0 < hi).collect();
            prop_assert_eq!(uptime_over(&picked, from, to), direct(&covered).uptime_ratio());
            prop_assert_eq!(combine_over(&picked, from, to), direct(&covered));
        }

        #[test]
        fn quantiles_are_within_the_relative_error(
            values in prop::collection::vec(prop_oneof![0u32..16, 0u32..1_000, 0u32..600_000], 20..400),
            q in 0.0f64..=1.0,
        ) {
            let s = sketch_of(&values);
            let max = *values.iter().max().unwrap();
            for q in [q, 0.0, 0.5, 0.95, 0.99, 1.0] {
                let exact = exact_quantile(&values, q);
                let got = s.quantile(q).unwrap();
                prop_assert!(
                    f64::from(got.abs_diff(exact)) <= f64::from(exact) * LatencySketch::RELATIVE_ERROR,
                    "q={} exact {} read {}", q, exact, got
                );
                prop_assert!(got <= bucket_bounds(bucket_of(max)).1);
            }
        }

        #[test]
        fn bytes_round_trip(values in values()) {
            let s = sketch_of(&values);
            prop_assert_eq!(s.count(), values.len() as u64);
            let bytes = s.to_bytes();
            prop_assert_eq!(LatencySketch::from_bytes(&bytes), Ok(s.clone()));
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<LatencySketch>(&json).unwrap(), s);
        }

        #[test]
        fn random_bytes_never_panic_and_only_canonical_ones_decode(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut v| { v.insert(0, 1); v }),
                prop::collection::vec(0u8..4, 0..64).prop_map(|mut v| { v.insert(0, 1); v }),
            ],
        ) {
            if let Ok(s) = LatencySketch::from_bytes(&bytes) {
                prop_assert_eq!(s.to_bytes(), bytes);
            }
        }

        #[test]
        fn damaged_encodings_never_panic(values in values(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
            let mut bytes = sketch_of(&values).to_bytes();
            let i = at.index(bytes.len());
            if cut {
                bytes.truncate(i);
            } else {
                bytes[i] = byte;
            }
            if let Ok(s) = LatencySketch::from_bytes(&bytes) {
                prop_assert_eq!(s.to_bytes(), bytes);
            }
        }

        #[test]
        fn sketch_merge_is_associative_and_commutative(a in values(), b in values(), c in values()) {
            let (sa, sb, sc) = (sketch_of(&a), sketch_of(&b), sketch_of(&c));
            let mut ab = sa.clone();
            ab.merge(&sb);
            let mut ba = sb.clone();
            ba.merge(&sa);
            prop_assert_eq!(&ab, &ba);
            let mut ab_c = ab.clone();
            ab_c.merge(&sc);
            let mut bc = sb.clone();
            bc.merge(&sc);
            let mut a_bc = sa.clone();
            a_bc.merge(&bc);
            prop_assert_eq!(&ab_c, &a_bc);
            // And merging is recording every value in one sketch.
            let all: Vec<u32> = a.iter().chain(&b).chain(&c).copied().collect();
            prop_assert_eq!(ab_c, sketch_of(&all));
        }

        #[test]
        fn rollup_merge_is_associative_and_commutative(
            a in prop::collection::vec((any::<bool>(), 0u32..600_000), 0..50),
            b in prop::collection::vec((any::<bool>(), 0u32..600_000), 0..50),
            c in prop::collection::vec((any::<bool>(), 0u32..600_000), 0..50),
        ) {
            let build = |rows: &[(bool, u32)]| {
                let mut r = Rollup::default();
                for &(up, ms) in rows {
                    r.add(&result(at_ms(0), up, ms));
                }
                r
            };
            let (ra, rb, rc) = (build(&a), build(&b), build(&c));
            let mut ab = ra.clone();
            ab.merge(&rb);
            let mut ba = rb.clone();
            ba.merge(&ra);
            prop_assert_eq!(&ab, &ba);
            let mut ab_c = ab;
            ab_c.merge(&rc);
            let mut bc = rb;
            bc.merge(&rc);
            let mut a_bc = ra;
            a_bc.merge(&bc);
            prop_assert_eq!(&ab_c, &a_bc);
            let all: Vec<(bool, u32)> = a.iter().chain(&b).chain(&c).copied().collect();
            prop_assert_eq!(ab_c, build(&all));
        }
    }
}
