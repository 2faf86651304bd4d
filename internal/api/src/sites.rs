//! Monitors ("sites"): create, list, read, patch and delete.
//!
//! A monitor's `proxy` may hold a password (`http://user:password@host:3128`): the store
//! keeps it whole, and every answer shows it with the password replaced ([`shown`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use upwatch_core::{Monitor, MonitorInput};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{from_object, parse_id_cursor, parse_limit, IdPath, Json, Query};
use crate::Shared;

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
    State(state): State<Shared>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let input: MonitorInput = from_object(&body, "the monitor's settings")?;
    let monitor = Monitor::create(input, Utc::now())?;
    state.monitors.check_regions(&monitor)?;
    state
        .monitors
        .create(std::slice::from_ref(&monitor))
        .await?;
    let location = format!("/api/v1/sites/{}", monitor.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(shown(monitor)),
    )
        .into_response())
}

/// `GET /api/v1/sites`.
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites", operation_id = "list_sites", params(PageQuery), responses((status = 200, description = "A page of monitors in creation order.", body = Page<upwatch_core::Monitor>)))]
pub async fn list(
    State(state): State<Shared>,
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
    let items = items.into_iter().map(shown).collect();
    Ok(axum::Json(Page { items, next_cursor }))
}

/// `GET /api/v1/sites/{id}`.
#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "sites", operation_id = "get_site", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "The monitor.", body = upwatch_core::Monitor)))]
pub async fn get(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<axum::Json<Monitor>, ApiError> {
    let monitor = state
        .store
        .get_monitor(id)
        .await?
        .ok_or_else(|| no_site(id))?;
    Ok(axum::Json(shown(monitor)))
}

/// `PATCH /api/v1/sites/{id}` with a JSON merge patch.
#[utoipa::path(patch, path = "/api/v1/sites/{id}", tag = "sites", operation_id = "update_site", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), request_body(content((upwatch_core::MonitorInput = "application/merge-patch+json"), (upwatch_core::MonitorInput = "application/json")), description = "A JSON merge patch of the settings to change; `null` resets a field to its default."), responses((status = 200, description = "The monitor as changed.", body = upwatch_core::Monitor)))]
pub async fn patch(
    State(state): State<Shared>,
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
    let mut updated = existing.apply_patch(&patch, Utc::now())?;
    // A proxy sent back as the API showed it (its password hidden) keeps the stored one.
    if let (Some(sent), Some(stored)) = (&updated.proxy, &existing.proxy) {
        if sent != stored && *sent == redact_proxy(stored) {
            updated.proxy = existing.proxy.clone();
        }
    }
    state.monitors.check_regions(&updated)?;
    let changed = state.monitors.update(&existing, &updated).await?;
    state.answers.forget(id);
    if !changed {
        return Err(no_site(id));
    }
    Ok(axum::Json(shown(updated)))
}

/// `DELETE /api/v1/sites/{id}`.
#[utoipa::path(delete, path = "/api/v1/sites/{id}", tag = "sites", operation_id = "delete_site", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 204, description = "The monitor and its history were deleted.")))]
pub async fn delete(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    let deleted = state.monitors.delete(id).await?;
    state.answers.forget(id);
    if !deleted {
        return Err(no_site(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A monitor as the API shows it: the password of its proxy replaced ([`redact_proxy`]).
pub fn shown(mut monitor: Monitor) -> Monitor {
    monitor.proxy = monitor.proxy.as_deref().map(redact_proxy);
    monitor
}

/// What replaces a proxy's password.
pub const HIDDEN_PASSWORD: &str = "********";

/// A proxy URL with its password replaced by [`HIDDEN_PASSWORD`]
/// (`http://user:********@host:3128`); the rest, the user included, is kept as it was
/// written. A URL without a password is returned unchanged.
pub fn redact_proxy(proxy: &str) -> String {
    let Some((scheme, rest)) = proxy.split_once("://") else {
        return proxy.to_string();
    };
    // The authority ends at the path, query or fragment; its user information at its last
    // `@`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return proxy.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{HIDDEN_PASSWORD}@{host}{tail}"),
        None => proxy.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_passwords_are_hidden() {
        for (proxy, shown) in [
            (
                "http://user:secret@proxy.internal:3128",
                "http://user:********@proxy.internal:3128",
            ),
            (
                "socks5://u:p%40ss@127.0.0.1:1080/",
                "socks5://u:********@127.0.0.1:1080/",
            ),
            ("http://u:a@b@host:3128", "http://u:********@host:3128"),
            ("http://user@host:3128", "http://user@host:3128"),
            ("http://host:3128", "http://host:3128"),
            ("http://host:3128/p@th", "http://host:3128/p@th"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_proxy(proxy), shown, "{proxy}");
        }
    }
}
