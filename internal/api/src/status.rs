//! Live status: one monitor's or every monitor's, from the cache with the store as fallback.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use upwatch_cache::LiveStatus;
use upwatch_core::{CheckError, Monitor, MonitorState, MonitorStatus};
use uuid::Uuid;

use crate::error::{chain, ApiError};
use crate::extract::{parse_id_cursor, parse_limit, IdPath, Query};
use crate::sites::{no_site, Page, PageQuery};
use crate::ApiState;

/// Largest page size of the status listing (which lists everything when no limit is given).
const MAX_LIMIT: u32 = 1000;

/// What the API shows of a monitor's live status.
#[derive(Debug, Serialize)]
pub struct StatusView {
    pub id: Uuid,
    pub name: String,
    pub url: String,
    pub status: MonitorStatus,
    pub response_time_ms: Option<u32>,
    pub last_checked: Option<DateTime<Utc>>,
    pub last_status_change: Option<DateTime<Utc>>,
    pub status_code: Option<u16>,
    pub error: Option<CheckError>,
}

impl From<LiveStatus> for StatusView {
    fn from(live: LiveStatus) -> Self {
        let state = live.state;
        StatusView {
            id: state.monitor_id,
            name: live.name,
            url: live.url,
            status: state.status,
            response_time_ms: state.response_time_ms,
            last_checked: state.last_checked,
            last_status_change: state.last_status_change,
            status_code: state.status_code,
            error: state.error,
        }
    }
}

/// The state of a monitor the store has no state for: pending, or paused when disabled.
fn fresh_state(monitor: &Monitor) -> MonitorState {
    MonitorState::initial(monitor.id, monitor.enabled, monitor.updated_at)
}

/// `GET /api/v1/sites/{id}/status`.
pub async fn one(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
) -> Result<axum::Json<StatusView>, ApiError> {
    match state.cache.get(id).await {
        Ok(Some(live)) => return Ok(axum::Json(live.into())),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(monitor_id = %id, error = %chain(&error), "status cache read failed; using the store");
        }
    }
    let monitor = state
        .store
        .get_monitor(id)
        .await?
        .ok_or_else(|| no_site(id))?;
    let live = match state.store.get_state(id).await? {
        Some(live) => live,
        None => fresh_state(&monitor),
    };
    Ok(axum::Json(LiveStatus::new(&monitor, live).into()))
}

/// `GET /api/v1/status`.
pub async fn all(
    State(state): State<ApiState>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page<StatusView>>, ApiError> {
    let limit = match query.limit.as_deref() {
        Some(raw) => Some(parse_limit(Some(raw), MAX_LIMIT, MAX_LIMIT)? as usize),
        None => None,
    };
    let after = parse_id_cursor(query.cursor.as_deref())?;
    let mut entries = match state.cache.list().await {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(error = %chain(&error), "status cache listing failed; using the store");
            from_store(&state).await?
        }
    };
    entries.sort_by_key(LiveStatus::id);
    let start = after.map_or(0, |after| entries.partition_point(|e| e.id() <= after));
    let mut page: Vec<LiveStatus> = entries.drain(start..).collect();
    let next_cursor = match limit {
        Some(limit) if page.len() > limit => {
            page.truncate(limit);
            page.last().map(|e| e.id().to_string())
        }
        _ => None,
    };
    Ok(axum::Json(Page {
        items: page.into_iter().map(StatusView::from).collect(),
        next_cursor,
    }))
}

/// Every monitor's status as the store has it.
async fn from_store(state: &ApiState) -> Result<Vec<LiveStatus>, ApiError> {
    let monitors = state.store.all_monitors().await?;
    let mut states: HashMap<Uuid, MonitorState> = state
        .store
        .list_states()
        .await?
        .into_iter()
        .map(|s| (s.monitor_id, s))
        .collect();
    Ok(monitors
        .iter()
        .map(|m| {
            let live = states.remove(&m.id).unwrap_or_else(|| fresh_state(m));
            LiveStatus::new(m, live)
        })
        .collect())
}
