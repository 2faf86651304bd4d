//! Incidents: the DOWN periods of monitors, newest first, paged by incident id.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use upwatch_core::CheckError;
use upwatch_store::{Incident, IncidentQuery};
use uuid::Uuid;

use crate::error::{quote, ApiError};
use crate::extract::{parse_id_cursor, parse_limit, IdPath, Query};
use crate::sites::{no_site, Page};
use crate::{ApiState, Shared};

/// Default page size of an incident listing.
const DEFAULT_LIMIT: u32 = 100;
/// Largest page size of an incident listing.
const MAX_LIMIT: u32 = 1000;
/// Up to this many distinct monitors on a page, names are read one monitor at a time; beyond,
/// all monitors are read at once.
const NAME_LOOKUPS: usize = 20;

/// The query of the incident listings.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentParams {
    /// Items per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page (an incident id).
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
    /// `true` lists only incidents that have not ended.
    #[param(value_type = Option<bool>)]
    pub open: Option<String>,
}

/// One incident as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    pub id: Uuid,
    pub monitor_id: Uuid,
    pub started_at: DateTime<Utc>,
    /// `None` while the incident is open.
    pub ended_at: Option<DateTime<Utc>>,
    pub open: bool,
    /// How long the monitor was down, or has been so far while the incident is open.
    pub duration_seconds: i64,
    /// The error of the check that took the monitor down.
    pub first_error: Option<CheckError>,
    pub status_code: Option<u16>,
    /// Notifications delivered for the incident (down and recovery, every webhook).
    pub alerts_sent: u32,
}

impl IncidentView {
    fn new(incident: Incident, now: DateTime<Utc>) -> Self {
        IncidentView {
            duration_seconds: incident.duration(now).num_seconds(),
            open: incident.ended_at.is_none(),
            id: incident.id,
            monitor_id: incident.monitor_id,
            started_at: incident.started_at,
            ended_at: incident.ended_at,
            first_error: incident.first_error,
            status_code: incident.status_code,
            alerts_sent: incident.alerts_sent,
        }
    }
}

/// An incident of the cross-monitor listing, with the monitor's current name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NamedIncidentView {
    #[serde(flatten)]
    pub incident: IncidentView,
    /// `None` when the monitor was deleted while the page was read.
    pub monitor_name: Option<String>,
}

/// `GET /api/v1/sites/{id}/incidents?limit=&cursor=`.
#[utoipa::path(get, path = "/api/v1/sites/{id}/incidents", tag = "incidents", operation_id = "list_site_incidents", params(("id" = uuid::Uuid, Path, description = "The id of the resource."), IncidentParams), responses((status = 200, description = "A page of the monitor's incidents, newest first.", body = Page<IncidentView>)))]
pub async fn of_site(
    State(state): State<Shared>,
    IdPath(id): IdPath,
    Query(params): Query<IncidentParams>,
) -> Result<axum::Json<Page<IncidentView>>, ApiError> {
    let (limit, before) = page_params(&params)?;
    // `open` is accepted here too, as in the cross-monitor listing.
    let open_only = parse_open(params.open.as_deref())?;
    if state.store.get_monitor(id).await?.is_none() {
        return Err(no_site(id));
    }
    let query = IncidentQuery {
        monitor_id: Some(id),
        open_only,
        before,
        limit: limit + 1,
    };
    let (incidents, next_cursor) = read_page(&state, &query, limit).await?;
    let now = Utc::now();
    Ok(axum::Json(Page {
        items: incidents
            .into_iter()
            .map(|i| IncidentView::new(i, now))
            .collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/incidents?open=&limit=&cursor=`.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", operation_id = "list_incidents", params(IncidentParams), responses((status = 200, description = "A page of incidents, newest first.", body = Page<NamedIncidentView>)))]
pub async fn all(
    State(state): State<Shared>,
    Query(params): Query<IncidentParams>,
) -> Result<axum::Json<Page<NamedIncidentView>>, ApiError> {
    let (limit, before) = page_params(&params)?;
    let query = IncidentQuery {
        monitor_id: None,
        open_only: parse_open(params.open.as_deref())?,
        before,
        limit: limit + 1,
    };
    let (incidents, next_cursor) = read_page(&state, &query, limit).await?;
    let names = monitor_names(&state, &incidents).await?;
    let now = Utc::now();
    Ok(axum::Json(Page {
        items: incidents
            .into_iter()
            .map(|i| NamedIncidentView {
                monitor_name: names.get(&i.monitor_id).cloned(),
                incident: IncidentView::new(i, now),
            })
            .collect(),
        next_cursor,
    }))
}

fn page_params(params: &IncidentParams) -> Result<(u32, Option<Uuid>), ApiError> {
    let limit = parse_limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = parse_id_cursor(params.cursor.as_deref())?;
    Ok((limit, before))
}

/// `open=true` lists only open incidents; `open=false` or no `open` lists all.
fn parse_open(raw: Option<&str>) -> Result<bool, ApiError> {
    match raw.map(str::trim) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest(format!(
            "`open` must be true or false, not `{}`.",
            quote(raw.unwrap_or_default())
        ))),
    }
}

/// Reads one more incident than the page holds, to know whether another page follows.
async fn read_page(
    state: &ApiState,
    query: &IncidentQuery,
    limit: u32,
) -> Result<(Vec<Incident>, Option<String>), ApiError> {
    let mut incidents = state.store.incidents(query).await?;
    let next_cursor = if incidents.len() > limit as usize {
        incidents.truncate(limit as usize);
        incidents.last().map(|i| i.id.to_string())
    } else {
        None
    };
    Ok((incidents, next_cursor))
}

/// The names of the monitors of a page of incidents.
async fn monitor_names(
    state: &ApiState,
    incidents: &[Incident],
) -> Result<HashMap<Uuid, String>, ApiError> {
    let ids: HashSet<Uuid> = incidents.iter().map(|i| i.monitor_id).collect();
    let mut names = HashMap::with_capacity(ids.len());
    if ids.len() <= NAME_LOOKUPS {
        for id in ids {
            if let Some(monitor) = state.store.get_monitor(id).await? {
                names.insert(id, monitor.name);
            }
        }
    } else {
        for monitor in state.store.all_monitors().await? {
            if ids.contains(&monitor.id) {
                names.insert(monitor.id, monitor.name);
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_is_a_boolean() {
        assert!(!parse_open(None).unwrap());
        assert!(!parse_open(Some("false")).unwrap());
        assert!(parse_open(Some("true")).unwrap());
        for bad in ["", "yes", "1", "TRUE!"] {
            assert!(parse_open(Some(bad)).is_err(), "{bad}");
        }
    }
}
