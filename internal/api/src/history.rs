//! A monitor's check history, newest first, with opaque cursors.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use upwatch_core::{CheckError, CheckStatus};
use upwatch_store::{HistoryCursor, HistoryEntry, HistoryQuery};
use uuid::Uuid;

use crate::error::{quote, ApiError};
use crate::extract::{parse_limit, IdPath, Query};
use crate::sites::{no_site, Page};
use crate::Shared;

/// Default page size of a history listing.
const DEFAULT_LIMIT: u32 = 100;
/// Largest page size of a history listing.
const MAX_LIMIT: u32 = 1000;

/// The query of `GET /api/v1/sites/{id}/history`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only results checked at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// Only results checked before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page, unchanged.
    #[param(
        value_type = Option<String>,
        pattern = "^[0-9]{1,13}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
    /// Only the results of this region's workers (a region's name, such as `eu-west`).
    #[param(value_type = Option<String>, pattern = "^[a-z0-9._-]{1,63}$", example = "eu-west")]
    pub region: Option<String>,
}

/// One check result as history shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    pub checked_at: DateTime<Utc>,
    pub status: CheckStatus,
    pub response_time_ms: u32,
    pub status_code: Option<u16>,
    pub error: Option<CheckError>,
    /// True when the check came during a maintenance window: it counts neither up nor down
    /// in uptime. Absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub maintenance: bool,
    /// The region of the worker that made the check (`default` with one region).
    pub region: String,
}

impl From<HistoryEntry> for HistoryItem {
    fn from(e: HistoryEntry) -> Self {
        HistoryItem {
            checked_at: e.checked_at,
            status: e.status,
            response_time_ms: e.response_time_ms,
            status_code: e.status_code,
            error: e.error,
            maintenance: e.maintenance,
            region: e.region,
        }
    }
}

/// `GET /api/v1/sites/{id}/history`.
#[utoipa::path(get, path = "/api/v1/sites/{id}/history", tag = "history", operation_id = "get_site_history", params(("id" = uuid::Uuid, Path, description = "The id of the resource."), HistoryParams), responses((status = 200, description = "A page of results, newest first.", body = Page<HistoryItem>)))]
pub async fn list(
    State(state): State<Shared>,
    IdPath(id): IdPath,
    Query(params): Query<HistoryParams>,
) -> Result<axum::Json<Page<HistoryItem>>, ApiError> {
    let since = parse_time("since", params.since.as_deref())?;
    let until = parse_time("until", params.until.as_deref())?;
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err(ApiError::BadRequest(
                "`since` must not be later than `until`.".to_string(),
            ));
        }
    }
    let limit = parse_limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let region = parse_region(params.region.as_deref())?;
    if state.store.get_monitor(id).await?.is_none() {
        return Err(no_site(id));
    }
    let query = HistoryQuery {
        region,
        since,
        until,
        after,
        limit: limit + 1,
    };
    let mut entries = state.store.history(id, &query).await?;
    let next_cursor = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| encode_cursor(e.checked_at, e.id))
    } else {
        None
    };
    Ok(axum::Json(Page {
        items: entries.into_iter().map(HistoryItem::from).collect(),
        next_cursor,
    }))
}

/// An optional RFC 3339 time parameter; a 400 naming `name` when it is not one.
pub(crate) fn parse_time(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "`{name}` must be an RFC 3339 time such as 2024-05-01T12:00:00Z, not `{}`.",
                    quote(raw)
                ))
            })
    })
    .transpose()
}

/// An optional `region` parameter: a region's name, or a 400 naming `region`.
pub(crate) fn parse_region(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    raw.map(|raw| {
        let name = raw.trim();
        upwatch_core::monitor::validate_region_name(name)
            .map(|()| name.to_string())
            .map_err(|_| ApiError::InvalidParameter {
                field: "region",
                message: format!(
                    "`region` must be a region's name: 1 to {} of a-z, 0-9, `-`, `_` and `.`, \
                     such as `eu-west`, not `{}`.",
                    upwatch_core::monitor::MAX_REGION_CHARS,
                    quote(raw)
                ),
            })
    })
    .transpose()
}

/// The cursor after an entry: its check time in Unix milliseconds and its id.
fn encode_cursor(checked_at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", checked_at.timestamp_millis(), id.simple())
}

fn decode_cursor(raw: &str) -> Result<HistoryCursor, ApiError> {
    let parsed = raw.split_once('_').and_then(|(ms, id)| {
        let checked_at = DateTime::from_timestamp_millis(ms.parse::<i64>().ok()?)?;
        let id = Uuid::try_parse(id).ok()?;
        Some(HistoryCursor { checked_at, id })
    });
    parsed.ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`cursor` must be the `next_cursor` of a previous page, passed unchanged, not `{}`.",
            quote(raw)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let id = Uuid::now_v7();
        let cursor = decode_cursor(&encode_cursor(at, id)).unwrap();
        assert_eq!((cursor.checked_at, cursor.id), (at, id));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in [
            "",
            "abc",
            "12_",
            "_0190f5a4-6a47-7c1e-9a8b-3c2d1e0f9a7b",
            "x_0190f5a46a477c1e9a8b3c2d1e0f9a7b",
            "99999999999999999999_0190f5a46a477c1e9a8b3c2d1e0f9a7b",
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_must_be_rfc_3339() {
        assert!(parse_time("since", Some("2024-05-01T12:00:00Z"))
            .unwrap()
            .is_some());
        assert!(parse_time("since", Some("yesterday")).is_err());
        assert!(parse_time("since", None).unwrap().is_none());
    }
}
