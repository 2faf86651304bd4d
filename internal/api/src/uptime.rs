//! Uptime over windows of time: `GET /api/v1/sites/{id}/uptime`, and the 24-hour figure of
//! the status endpoints. The figures come from the service layer ([`upwatch_service::Stats`]),
//! which reads rollups (never raw results) with the one definition the pages share.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{IdPath, Query};
use crate::history::parse_time;
use crate::sites::no_site;
use crate::{ApiState, Shared};

pub use upwatch_service::stats::WINDOWS;

/// The longest range `from`..`to` accepted, in days: ten years.
const MAX_RANGE_DAYS: i64 = 3_660;

/// The uptime in percent of each of `ids` over the last 24 hours, for the status endpoints
/// ([`upwatch_service::Stats::last_24h`], the figure the pages show too): `None` for a
/// monitor without checks, and for all when the database fails (logged; live status is still
/// served).
pub async fn last_24h(state: &ApiState, ids: &[Uuid]) -> HashMap<Uuid, f64> {
    // While the store rests after a failure, without it at once, rather than waiting for its
    // timeout on every listing ([`crate::answers::LiveAnswers::read_store`]).
    let Some(read) = state.answers.read_store(state.stats.last_24h(ids)).await else {
        return HashMap::new();
    };
    match read {
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

/// The query of `GET /api/v1/sites/{id}/uptime`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UptimeParams {
    /// The start of a range of one's own (RFC 3339); give `to` too.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// The end of a range of one's own (RFC 3339); give `from` too.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
}

/// A monitor's uptime over one or more windows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UptimeView {
    pub monitor_id: Uuid,
    pub windows: Vec<UptimeWindow>,
}

/// The uptime over one window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[utoipa::path(get, path = "/api/v1/sites/{id}/uptime", tag = "history", operation_id = "get_site_uptime", params(("id" = uuid::Uuid, Path, description = "The id of the resource."), UptimeParams), responses((status = 200, description = "Uptime over the 24h, 7d, 30d and 90d windows, or over the range given.", body = UptimeView)))]
pub async fn get(
    State(state): State<Shared>,
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
        let (from, to, counts) = state.stats.over(id, from, to, now).await?;
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
