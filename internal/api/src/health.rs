//! Liveness, readiness and metrics: unauthenticated, for orchestrators and scrapers.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{chain, ApiError};
use crate::Shared;

/// The content type of the metrics exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz", security(()), responses((status = 200, description = "The process is alive.", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database and the status cache both answer, and no role of this process
/// reports a problem (such as monitors the watchdog found unchecked).
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz", security(()), responses((status = 200, description = "The process can serve: its database answers and nothing is unhealthy.", body = Object, example = json!({"status": "ready"}))))]
pub async fn readyz(
    State(state): State<Shared>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (store, cache) = tokio::join!(state.store.ping(), state.cache.ping());
    if let Err(error) = &store {
        tracing::warn!(error = %chain(error), "readiness: the database is unreachable");
    }
    if let Err(error) = &cache {
        tracing::warn!(error = %chain(error), "readiness: the status cache is unreachable");
    }
    let detail = match (store.is_ok(), cache.is_ok()) {
        (true, true) => {
            let problems = state.metrics.health.problems();
            if problems.is_empty() {
                return Ok(axum::Json(json!({"status": "ready"})));
            }
            return Err(ApiError::Unavailable(problems.join(" ")));
        }
        (false, true) => "The database is unreachable.",
        (true, false) => "The status cache is unreachable.",
        (false, false) => "The database and the status cache are unreachable.",
    };
    Err(ApiError::Unavailable(detail.to_string()))
}

/// `GET /metrics`: every metric in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics", security(()), responses((status = 200, description = "Prometheus metrics in the text exposition format.", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
pub async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        state.metrics.render(),
    )
        .into_response()
}
