//! Bulk creation of monitors: `POST /api/v1/sites/bulk` with a JSON array of settings.
//!
//! Every item is validated before anything is written, so that one bad item refuses the
//! whole request with a problem naming its index and field, and creates nothing.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;
use upwatch_core::{Monitor, MonitorInput};

use crate::error::{sentence, ApiError};
use crate::extract::{from_object, Json};
use crate::Shared;

/// The most monitors one bulk request may create.
pub const MAX_BULK_ITEMS: usize = 10_000;

/// The body limit of a bulk request (or `UPWATCH_API_MAX_BODY_BYTES` when that is larger):
/// room for 10,000 monitors with headers and keywords.
pub const MAX_BULK_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The answer to a bulk creation: the created monitors, in the order they were sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The created monitors.
    pub items: Vec<Monitor>,
}

/// `POST /api/v1/sites/bulk`.
#[utoipa::path(post, path = "/api/v1/sites/bulk", tag = "sites", operation_id = "create_sites", request_body(content = Vec<upwatch_core::MonitorInput>, description = "Up to 10,000 monitors' settings; all are created or none."), responses((status = 201, description = "Every monitor was created, in the order sent.", body = Created)))]
pub async fn create(
    State(state): State<Shared>,
    Json(body): Json<serde_json::Value>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    let serde_json::Value::Array(items) = body else {
        return Err(ApiError::validation(
            "",
            "The body must be a JSON array of monitor settings.",
        ));
    };
    if items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::Other {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            detail: format!(
                "A bulk request may create at most {MAX_BULK_ITEMS} sites, and this one has {}; \
                 split it into smaller requests.",
                items.len()
            ),
        });
    }
    let now = Utc::now();
    let monitors = items
        .iter()
        .enumerate()
        .map(|(index, item)| validate(&state.monitors, index, item, now))
        .collect::<Result<Vec<_>, _>>()?;

    // One transaction: all are stored, or none.
    state.monitors.create(&monitors).await?;
    tracing::info!(count = monitors.len(), "monitors created in bulk");
    let items = monitors.into_iter().map(crate::sites::shown).collect();
    Ok((StatusCode::CREATED, axum::Json(Created { items })))
}

/// Reads and validates item `index` into a new monitor, naming the item in any error.
fn validate(
    monitors: &upwatch_service::MonitorService,
    index: usize,
    item: &serde_json::Value,
    now: chrono::DateTime<Utc>,
) -> Result<Monitor, ApiError> {
    if !item.is_object() {
        return Err(ApiError::Validation {
            field: Some(format!("[{index}]")),
            message: format!("Item {index} must be a JSON object of a monitor's settings."),
        });
    }
    let input: MonitorInput =
        from_object(item, "the monitor's settings").map_err(|e| at_item(index, e))?;
    let monitor = Monitor::create(input, now).map_err(|e| at_item(index, e.into()))?;
    monitors
        .check_regions(&monitor)
        .map_err(|e| at_item(index, e.into()))?;
    Ok(monitor)
}

/// Prefixes a validation error with the index of the item it is about.
fn at_item(index: usize, error: ApiError) -> ApiError {
    match error {
        ApiError::Validation { field, message } => {
            let mut chars = message.chars();
            let message: String = match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "it is not valid".to_string(),
            };
            ApiError::Validation {
                field: Some(match field {
                    Some(field) => format!("[{index}].{field}"),
                    None => format!("[{index}]"),
                }),
                message: sentence(&format!("item {index}: {message}")),
            }
        }
        other => other,
    }
}
