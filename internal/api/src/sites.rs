//! Monitors ("sites"): create, list, read, patch and delete.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use upwatch_core::{Monitor, MonitorInput};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{from_object, parse_id_cursor, parse_limit, IdPath, Json, Query};
use crate::ApiState;

/// Default page size of the monitor listing.
const DEFAULT_LIMIT: u32 = 100;
/// Largest page size of the monitor listing.
const MAX_LIMIT: u32 = 1000;

/// The query of a paged listing; values are parsed by hand for precise messages.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page (an id).
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
}

/// A page of items and where the next one starts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The 404 of an unknown monitor id.
pub fn no_site(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("There is no site with id {id}."))
}

/// `POST /api/v1/sites`.
#[utoipa::path(post, path = "/api/v1/sites", tag = "sites", operation_id = "create_site", request_body(content = upwatch_core::MonitorInput, description = "The monitor's settings; only `url` is required."), responses((status = 201, description = "The monitor was created; `Location` names it.", body = upwatch_core::Monitor, headers(("Location" = String, description = "The path of the new monitor.")))))]
pub async fn create(
    State(state): State<ApiState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let input: MonitorInput = from_object(&body, "the monitor's settings")?;
    let monitor = Monitor::create(input, Utc::now())?;
    state
        .monitors
        .create(std::slice::from_ref(&monitor))
        .await?;
    let location = format!("/api/v1/sites/{}", monitor.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(monitor),
    )
        .into_response())
}

/// `GET /api/v1/sites`.
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites", operation_id = "list_sites", params(PageQuery), responses((status = 200, description = "A page of monitors in creation order.", body = Page<upwatch_core::Monitor>)))]
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page<Monitor>>, ApiError> {
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = parse_id_cursor(query.cursor.as_deref())?;
    let mut items = state.store.list_monitors(after, limit + 1).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|m| m.id.to_string())
    } else {
        None
    };
    Ok(axum::Json(Page { items, next_cursor }))
}

/// `GET /api/v1/sites/{id}`.
#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "sites", operation_id = "get_site", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "The monitor.", body = upwatch_core::Monitor)))]
pub async fn get(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
) -> Result<axum::Json<Monitor>, ApiError> {
    let monitor = state
        .store
        .get_monitor(id)
        .await?
        .ok_or_else(|| no_site(id))?;
    Ok(axum::Json(monitor))
}

/// `PATCH /api/v1/sites/{id}` with a JSON merge patch.
#[utoipa::path(patch, path = "/api/v1/sites/{id}", tag = "sites", operation_id = "update_site", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), request_body(content((upwatch_core::MonitorInput = "application/merge-patch+json"), (upwatch_core::MonitorInput = "application/json")), description = "A JSON merge patch of the settings to change; `null` resets a field to its default."), responses((status = 200, description = "The monitor as changed.", body = upwatch_core::Monitor)))]
pub async fn patch(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
    Json(patch): Json<serde_json::Value>,
) -> Result<axum::Json<Monitor>, ApiError> {
    // Checking the patch's own shape first names the field of a type error or an unknown
    // field; the merged result is validated as a whole below.
    from_object::<MonitorInput>(&patch, "the fields to change")?;
    let existing = state
        .store
        .get_monitor(id)
        .await?
        .ok_or_else(|| no_site(id))?;
    let updated = existing.apply_patch(&patch, Utc::now())?;
    if !state.monitors.update(&existing, &updated).await? {
        return Err(no_site(id));
    }
    Ok(axum::Json(updated))
}

/// `DELETE /api/v1/sites/{id}`.
#[utoipa::path(delete, path = "/api/v1/sites/{id}", tag = "sites", operation_id = "delete_site", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 204, description = "The monitor and its history were deleted.")))]
pub async fn delete(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if !state.monitors.delete(id).await? {
        return Err(no_site(id));
    }
    Ok(StatusCode::NO_CONTENT)
}
