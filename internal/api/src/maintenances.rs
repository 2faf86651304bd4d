//! Maintenance windows: create, list, read, patch and delete. Every window is answered with
//! what it means now: whether it is `active`, its `current` occurrence and its `next` one.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use upwatch_core::maintenance::{Maintenance, MaintenanceInput, Occurrence};
use upwatch_service::MaintenanceError;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{from_object, IdPath, Json};
use crate::Shared;

/// A window, and what it means at the time of the request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceView {
    #[serde(flatten)]
    pub window: Maintenance,
    /// Whether an occurrence of the window covers now.
    pub active: bool,
    /// The occurrence covering now, if any.
    #[schema(required = true)]
    pub current: Option<Occurrence>,
    /// The first occurrence starting after now, if any.
    #[schema(required = true)]
    pub next: Option<Occurrence>,
}

impl MaintenanceView {
    /// The window as it stands at `now`.
    pub fn at(window: Maintenance, now: DateTime<Utc>) -> MaintenanceView {
        let current = window.active_at(now);
        let next = window.next_after(now);
        MaintenanceView {
            window,
            active: current.is_some(),
            current,
            next,
        }
    }
}

/// The window listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceList {
    pub items: Vec<MaintenanceView>,
}

/// The 404 of an unknown window id.
fn no_maintenance(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("There is no maintenance window with id {id}."))
}

impl From<MaintenanceError> for ApiError {
    fn from(e: MaintenanceError) -> Self {
        match e {
            MaintenanceError::Invalid(e) => e.into(),
            MaintenanceError::Store(e) => e.into(),
        }
    }
}

/// `POST /api/v1/maintenances`.
#[utoipa::path(post, path = "/api/v1/maintenances", tag = "maintenances", operation_id = "create_maintenance", request_body(content = upwatch_core::maintenance::MaintenanceInput, description = "The window: a `title`, what it covers (`monitor_ids`, `groups` or `\"all\": true`), and either `start` and `end` (one-off) or `rrule`, `duration` and `timezone` (recurring)."), responses((status = 201, description = "The window was created; `Location` names it.", body = MaintenanceView, headers(("Location" = String, description = "The path of the new window.")))))]
pub async fn create(
    State(state): State<Shared>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let input: MaintenanceInput = from_object(&body, "the window's settings")?;
    let now = Utc::now();
    let window = state.maintenances.create(input, now).await?;
    let location = format!("/api/v1/maintenances/{}", window.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(MaintenanceView::at(window, now)),
    )
        .into_response())
}

/// `GET /api/v1/maintenances`.
#[utoipa::path(get, path = "/api/v1/maintenances", tag = "maintenances", operation_id = "list_maintenances", responses((status = 200, description = "Every window, oldest first.", body = MaintenanceList)))]
pub async fn list(State(state): State<Shared>) -> Result<axum::Json<MaintenanceList>, ApiError> {
    let now = Utc::now();
    let items = state
        .maintenances
        .list()
        .await?
        .into_iter()
        .map(|window| MaintenanceView::at(window, now))
        .collect();
    Ok(axum::Json(MaintenanceList { items }))
}

/// `GET /api/v1/maintenances/{id}`.
#[utoipa::path(get, path = "/api/v1/maintenances/{id}", tag = "maintenances", operation_id = "get_maintenance", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "The window.", body = MaintenanceView)))]
pub async fn get(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<axum::Json<MaintenanceView>, ApiError> {
    let window = state
        .maintenances
        .get(id)
        .await?
        .ok_or_else(|| no_maintenance(id))?;
    Ok(axum::Json(MaintenanceView::at(window, Utc::now())))
}

/// `PATCH /api/v1/maintenances/{id}` with a JSON merge patch.
#[utoipa::path(patch, path = "/api/v1/maintenances/{id}", tag = "maintenances", operation_id = "update_maintenance", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), request_body(content((upwatch_core::maintenance::MaintenanceInput = "application/merge-patch+json"), (upwatch_core::maintenance::MaintenanceInput = "application/json")), description = "A JSON merge patch of the fields to change; `null` clears a field (`{\"start\": null, \"end\": null, \"rrule\": …, \"duration\": …, \"timezone\": …}` makes a one-off window recurring)."), responses((status = 200, description = "The window as changed.", body = MaintenanceView)))]
pub async fn patch(
    State(state): State<Shared>,
    IdPath(id): IdPath,
    Json(patch): Json<serde_json::Value>,
) -> Result<axum::Json<MaintenanceView>, ApiError> {
    // Checking the patch's own shape first names the field of a type error or an unknown
    // field; the merged result is validated as a whole by the service.
    from_object::<MaintenanceInput>(&patch, "the fields to change")?;
    let now = Utc::now();
    let updated = state
        .maintenances
        .update(id, &patch, now)
        .await?
        .ok_or_else(|| no_maintenance(id))?;
    Ok(axum::Json(MaintenanceView::at(updated, now)))
}

/// `DELETE /api/v1/maintenances/{id}`.
#[utoipa::path(delete, path = "/api/v1/maintenances/{id}", tag = "maintenances", operation_id = "delete_maintenance", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 204, description = "The window was deleted.")))]
pub async fn delete(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if !state.maintenances.delete(id).await? {
        return Err(no_maintenance(id));
    }
    Ok(StatusCode::NO_CONTENT)
}
