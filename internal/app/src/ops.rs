//! The small HTTP surface of processes that do not serve the API: liveness, readiness of their
//! backends, and metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use upwatch_bus::Bus;
use upwatch_cache::StatusCache;
use upwatch_store::Store;
use upwatch_telemetry::Metrics;

#[derive(Clone)]
struct Ops {
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn Store>>,
    cache: Option<Arc<dyn StatusCache>>,
    bus: Option<Arc<dyn Bus>>,
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router(
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn Store>>,
    cache: Option<Arc<dyn StatusCache>>,
    bus: Option<Arc<dyn Bus>>,
) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(Ops {
            metrics,
            store,
            cache,
            bus,
        })
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    if let Some(store) = &ops.store {
        if let Err(error) = store.ping().await {
            tracing::warn!(%error, "readiness: the database is unreachable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "the database is unreachable"})),
            );
        }
    }
    if let Some(cache) = &ops.cache {
        if let Err(error) = cache.ping().await {
            tracing::warn!(%error, "readiness: the cache is unreachable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "the cache is unreachable"})),
            );
        }
    }
    if let Some(bus) = &ops.bus {
        if let Err(error) = bus.ping().await {
            tracing::warn!(%error, "readiness: the broker is unreachable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "the kafka broker is unreachable"})),
            );
        }
    }
    let problems = ops.metrics.health.problems();
    if !problems.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": problems.join(" ")})),
        );
    }
    (StatusCode::OK, Json(serde_json::json!({"status": "ready"})))
}

async fn metrics_text(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ops.metrics.render(),
    )
}
