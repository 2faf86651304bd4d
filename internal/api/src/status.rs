//! Live status: one monitor's or every monitor's, from the cache with the store as fallback.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use upwatch_cache::LiveStatus;
use upwatch_core::state::RegionSeen;
use upwatch_core::{CheckError, MonitorStatus};
use uuid::Uuid;

use crate::error::{chain, ApiError};
use crate::extract::{parse_id_cursor, parse_limit, IdPath, Query};
use crate::sites::{no_site, Page, PageQuery};
use crate::uptime::last_24h;
use crate::{ApiState, Shared};

/// Largest page size of the status listing (which lists everything when no limit is given).
const MAX_LIMIT: u32 = 1000;

/// What the API shows of a monitor's live status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    /// When the watchdog found the monitor without a result for too long (its status is then
    /// `stale`, and `last_checked` is the time of its last result); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<DateTime<Utc>>,
    /// When the certificate of the newest check expires, for https:// and tls:// monitors
    /// whose handshake completed; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_expires_at: Option<DateTime<Utc>>,
    /// The share of up checks over the last 24 hours in percent (from rollups, at most a
    /// minute old); `None` when no check ran in that time.
    pub uptime_24h: Option<f64>,
    /// What each region that checks the monitor sees of it, in the monitor's order of its
    /// regions: only in the answer of `GET /api/v1/sites/{id}/status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<RegionView>>,
}

/// One region's view of a monitor (the core's [`RegionSeen`]).
pub type RegionView = RegionSeen;

impl From<LiveStatus> for StatusView {
    fn from(live: LiveStatus) -> Self {
        let state = live.shown_state();
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
            stale_since: live.stale_since,
            certificate_expires_at: state.certificate.as_ref().map(|c| c.expires_at),
            uptime_24h: None,
            regions: None,
        }
    }
}

/// `GET /api/v1/sites/{id}/status`.
#[utoipa::path(get, path = "/api/v1/sites/{id}/status", tag = "status", operation_id = "get_site_status", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "The monitor's live status.", body = StatusView)))]
pub async fn one(State(state): State<Shared>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    let now = Instant::now();
    if let Some(body) = state.answers.get(id, now) {
        return Ok(json_response(body));
    }
    let view = one_view(&state, id).await?;
    let body = Bytes::from(serde_json::to_vec(&view).map_err(|e| ApiError::Other {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        detail: format!("The status of monitor {id} could not be serialized: {e}."),
    })?);
    state.answers.put(id, body.clone(), now);
    Ok(json_response(body))
}

/// A JSON answer of bytes already serialized (also the fast path's, [`crate::fast`]).
pub(crate) fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// One monitor's live status as `GET /api/v1/sites/{id}/status` shows it.
async fn one_view(state: &ApiState, id: Uuid) -> Result<StatusView, ApiError> {
    let live = live_status(state, id).await?;
    // The regions that check it and its interval, remembered a few seconds by the service, so
    // that this stays a cache read; a monitor deleted meanwhile shows the regions it has. With
    // the store away, the regions the cache has results of (unless they were read before the
    // uptime failed) and no uptime, without waiting for the store's timeout on every read
    // ([`crate::answers::LiveAnswers::read_store`]).
    let mut checked = None;
    let mut uptime = None;
    let read = state.answers.read_store(async {
        checked = state.monitors.checked_by(id).await?;
        uptime = state
            .stats
            .last_24h(&[id])
            .await?
            .get(&id)
            .and_then(|c| c.percent());
        Ok::<_, upwatch_store::StoreError>(())
    });
    if let Some(Err(error)) = read.await {
        tracing::warn!(monitor_id = %id, error = %chain(&error), "could not read the monitor's regions and uptime; serving its live status without them");
    }
    let (regions, interval_ms) = match checked {
        Some(checked) => (checked.regions, checked.interval_ms),
        None => (live.state.regions.keys().cloned().collect(), 0),
    };
    let regions = live.state.regions_seen(&regions, interval_ms, Utc::now());
    let mut view = StatusView::from(live);
    view.uptime_24h = uptime;
    view.regions = Some(regions);
    Ok(view)
}

/// A monitor's live status: from the cache, else from the store; 404 when it does not exist.
pub(crate) async fn live_status(state: &ApiState, id: Uuid) -> Result<LiveStatus, ApiError> {
    match state.cache.get(id).await {
        Ok(Some(live)) => return Ok(live),
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
        None => monitor.initial_state(),
    };
    Ok(LiveStatus::new(&monitor, live))
}

/// `GET /api/v1/status`.
#[utoipa::path(get, path = "/api/v1/status", tag = "status", operation_id = "list_status", params(PageQuery), responses((status = 200, description = "Every monitor's live status (a page of it with `limit`).", body = Page<StatusView>)))]
pub async fn all(
    State(state): State<Shared>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page<StatusView>>, ApiError> {
    let limit = match query.limit.as_deref() {
        Some(raw) => Some(parse_limit(Some(raw), MAX_LIMIT, MAX_LIMIT)? as usize),
        None => None,
    };
    let after = parse_id_cursor(query.cursor.as_deref())?;
    // One more than the page, to know whether another follows.
    let wanted = limit.map_or(usize::MAX, |limit| limit + 1);
    let mut page = match state.cache.page(after, wanted).await {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(error = %chain(&error), "status cache listing failed; using the store");
            let mut entries = from_store(&state).await?;
            entries.sort_by_key(LiveStatus::id);
            let start = after.map_or(0, |after| entries.partition_point(|e| e.id() <= after));
            entries.drain(start..).take(wanted).collect()
        }
    };
    let next_cursor = match limit {
        Some(limit) if page.len() > limit => {
            page.truncate(limit);
            page.last().map(|e| e.id().to_string())
        }
        _ => None,
    };
    let ids: Vec<Uuid> = page.iter().map(LiveStatus::id).collect();
    let uptimes = last_24h(&state, &ids).await;
    let items = page
        .into_iter()
        .map(|live| {
            let mut view = StatusView::from(live);
            view.uptime_24h = uptimes.get(&view.id).copied();
            view
        })
        .collect();
    Ok(axum::Json(Page { items, next_cursor }))
}

/// Every monitor's status as the store has it.
async fn from_store(state: &ApiState) -> Result<Vec<LiveStatus>, ApiError> {
    let monitors = state.store.all_monitors().await?;
    let states = state.store.list_states().await?;
    Ok(LiveStatus::join(&monitors, states))
}
