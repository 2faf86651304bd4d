//! Response-time percentiles per bucket of time, merged from rollups; for one region
//! (`?region=`), folded from that region's raw results instead, since rollups count every
//! region together (so only within the raw retention).

use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use upwatch_core::parse_span;
use upwatch_core::rollup::{Resolution, Rollup};

use crate::error::{quote, ApiError};
use crate::extract::{IdPath, Query};
use crate::history::parse_region;
use crate::sites::no_site;
use crate::Shared;

/// The window when none is given.
const DEFAULT_WINDOW: &str = "24h";
/// The bucket when none is given.
const DEFAULT_BUCKET: &str = "1h";
/// The most buckets a window may span.
pub const MAX_BUCKETS: i64 = 1_500;
/// The longest window, in days.
pub const MAX_WINDOW_DAYS: i64 = 400;

/// The query of `GET /api/v1/sites/{id}/response-times`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResponseTimeParams {
    /// The window ending now: a whole number and a unit, `m`, `h` or `d` (default `24h`, at
    /// most 400 days).
    #[param(value_type = Option<String>, pattern = "^[1-9][0-9]{0,5}[mhd]$", example = "24h")]
    pub window: Option<String>,
    /// The bucket length, in the same form (default `1h`; at most 1500 buckets a window).
    #[param(value_type = Option<String>, pattern = "^[1-9][0-9]{0,5}[mhd]$", example = "1h")]
    pub bucket: Option<String>,
    /// Only the checks of this region's workers, read from raw results rather than rollups
    /// (which count every region together): buckets older than the raw retention are empty.
    #[param(value_type = Option<String>, pattern = "^[a-z0-9._-]{1,63}$", example = "eu-west")]
    pub region: Option<String>,
}

/// Response-time statistics per bucket over a window ending now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResponseTimes {
    pub window: String,
    pub bucket: String,
    /// The region asked for; absent for every region together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The start of the first bucket: `now - window` rounded down to a whole bucket.
    pub from: DateTime<Utc>,
    /// Now; the last bucket is the one in progress.
    pub to: DateTime<Utc>,
    pub buckets: Vec<Bucket>,
}

/// One bucket; every statistic is `None` when no check ran in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub checks: u32,
    pub p50_ms: Option<u32>,
    pub p95_ms: Option<u32>,
    pub p99_ms: Option<u32>,
    pub min_ms: Option<u32>,
    pub max_ms: Option<u32>,
    pub mean_ms: Option<f64>,
}

impl Bucket {
    fn new(start: DateTime<Utc>, rollup: &Rollup) -> Self {
        Bucket {
            start,
            checks: rollup.checks,
            p50_ms: rollup.sketch.quantile(0.50),
            p95_ms: rollup.sketch.quantile(0.95),
            p99_ms: rollup.sketch.quantile(0.99),
            min_ms: rollup.response_time_min_ms,
            max_ms: rollup.response_time_max_ms,
            mean_ms: rollup
                .mean_response_ms()
                .map(|m| (m * 100.0).round() / 100.0),
        }
    }
}

/// `GET /api/v1/sites/{id}/response-times?window=24h&bucket=1h`.
#[utoipa::path(get, path = "/api/v1/sites/{id}/response-times", tag = "history", operation_id = "get_site_response_times", params(("id" = uuid::Uuid, Path, description = "The id of the resource."), ResponseTimeParams), responses((status = 200, description = "Response-time statistics per bucket.", body = ResponseTimes)))]
pub async fn get(
    State(state): State<Shared>,
    IdPath(id): IdPath,
    Query(params): Query<ResponseTimeParams>,
) -> Result<axum::Json<ResponseTimes>, ApiError> {
    let window_text = params.window.as_deref().unwrap_or(DEFAULT_WINDOW).trim();
    let bucket_text = params.bucket.as_deref().unwrap_or(DEFAULT_BUCKET).trim();
    let (window, bucket, resolution) = validate(window_text, bucket_text)?;
    let region = parse_region(params.region.as_deref())?;
    if state.store.get_monitor(id).await?.is_none() {
        return Err(no_site(id));
    }
    let now = Utc::now();
    let from = floor(now - window, bucket);
    let series = match &region {
        Some(region) => {
            state
                .stats
                .series_in_region(id, region, from, now, bucket)
                .await?
        }
        None => {
            state
                .stats
                .series(id, from, now, bucket, resolution)
                .await?
        }
    };
    let buckets = series
        .iter()
        .map(|(start, rollup)| Bucket::new(*start, rollup))
        .collect();
    Ok(axum::Json(ResponseTimes {
        window: window_text.to_string(),
        bucket: bucket_text.to_string(),
        region,
        from,
        to: now,
        buckets,
    }))
}

/// Checks the window and bucket; returns them with the resolution of the rollups to read.
fn validate(window: &str, bucket: &str) -> Result<(TimeDelta, TimeDelta, Resolution), ApiError> {
    let window_span = parse_span(window).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`window` must be a length of time such as 24h, 7d or 90m, not `{}`.",
            quote(window)
        ))
    })?;
    let bucket_span = parse_span(bucket).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`bucket` must be a length of time such as 5m, 1h or 1d, not `{}`.",
            quote(bucket)
        ))
    })?;
    let resolution = Resolution::tiling(bucket_span).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`bucket` must be a whole number of minutes, such as 5m, 1h or 1d, not `{}`.",
            quote(bucket)
        ))
    })?;
    if window_span > TimeDelta::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "`window` must be at most {MAX_WINDOW_DAYS}d, not `{}`.",
            quote(window)
        )));
    }
    if window_span < bucket_span {
        return Err(ApiError::BadRequest(format!(
            "`window` ({}) must not be shorter than `bucket` ({}).",
            quote(window),
            quote(bucket)
        )));
    }
    let size = bucket_span.num_seconds();
    let count = (window_span.num_seconds() + size - 1) / size;
    if count > MAX_BUCKETS {
        return Err(ApiError::BadRequest(format!(
            "A `window` of {} in buckets of {} makes {count} buckets, more than the {MAX_BUCKETS} one request may have; choose a larger `bucket` or a shorter `window`.",
            quote(window),
            quote(bucket)
        )));
    }
    Ok((window_span, bucket_span, resolution))
}

/// `at` rounded down to a whole `bucket`, counted from the Unix epoch.
fn floor(at: DateTime<Utc>, bucket: TimeDelta) -> DateTime<Utc> {
    let size = bucket.num_seconds().max(1);
    let seconds = at.timestamp();
    DateTime::from_timestamp(seconds - seconds.rem_euclid(size), 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_buckets_are_validated() {
        let (w, b, r) = validate("24h", "1h").unwrap();
        assert_eq!(
            (w, b, r),
            (TimeDelta::hours(24), TimeDelta::hours(1), Resolution::Hour)
        );
        assert_eq!(validate("1d", "5m").unwrap().2, Resolution::Minute);
        assert_eq!(validate("30d", "1d").unwrap().2, Resolution::Day);
        assert_eq!(validate("1500m", "1m").unwrap().0, TimeDelta::minutes(1500));
        for (window, bucket) in [
            ("24h", "90s"),
            ("24h", "1x"),
            ("yesterday", "1h"),
            ("1h", "2h"),
            ("401d", "1d"),
            ("1501m", "1m"),
            ("7d", "5m"),
        ] {
            assert!(validate(window, bucket).is_err(), "{window} {bucket}");
        }
    }

    #[test]
    fn floors_to_whole_buckets() {
        let at = DateTime::from_timestamp(3_600 * 5 + 1_234, 0).unwrap();
        assert_eq!(
            floor(at, TimeDelta::hours(1)),
            DateTime::from_timestamp(3_600 * 5, 0).unwrap()
        );
        assert_eq!(
            floor(at, TimeDelta::minutes(15)),
            DateTime::from_timestamp(3_600 * 5 + 900, 0).unwrap()
        );
    }
}
