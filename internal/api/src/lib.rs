//! The REST API of upwatch: JSON under `/api/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Endpoints:
//! - `POST/GET /api/v1/sites`, `GET/PATCH/DELETE /api/v1/sites/{id}`: monitors;
//! - `POST /api/v1/sites/bulk`: many monitors at once, all or none;
//! - `GET /api/v1/sites/{id}/status`, `GET /api/v1/status`: live status, from the cache;
//! - `GET /api/v1/sites/{id}/history`: stored results, newest first;
//! - `POST/GET /api/v1/webhooks`, `DELETE /api/v1/webhooks/{id}`: alert destinations.
//!
//! Every error, whatever produced it (a handler, an extractor, routing, authentication or a
//! panic), is an `application/problem+json` document (RFC 9457) built by [`error::ApiError`].
//!
//! Layout: [`error`] (the error type), [`extract`] (extractors whose rejections are problems),
//! `auth` (the bearer token), and one module per resource.

pub mod error;
pub mod extract;

mod auth;
mod bulk;
mod health;
mod history;
mod sites;
mod status;
mod webhooks;

use std::any::Any;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;
use upwatch_cache::StatusCache;
use upwatch_store::Store;
use upwatch_telemetry::Metrics;

use crate::error::ApiError;

/// The default of [`ApiState::max_body_bytes`]: one MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// Durable storage: the source of truth.
    pub store: Arc<dyn Store>,
    /// Live status of every monitor, for the fast path of the status endpoints.
    pub cache: Arc<dyn StatusCache>,
    /// The process's metrics, rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// When set, every /api/v1 request needs `Authorization: Bearer <token>`.
    pub api_token: Option<secrecy::SecretString>,
    /// Poked after every monitor create/update/delete so the scheduler reloads at once.
    pub monitors_changed: Arc<tokio::sync::Notify>,
    /// Largest accepted request body in bytes (default 1 MiB).
    pub max_body_bytes: usize,
}

/// The complete application: `/api/v1/*`, `/healthz`, `/readyz`, `/metrics`, and fallbacks
/// that answer unknown routes (404) and wrong methods (405) with problem documents.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/sites", post(sites::create).get(sites::list))
        .route("/sites/bulk", post(bulk::create))
        .route(
            "/sites/{id}",
            get(sites::get).patch(sites::patch).delete(sites::delete),
        )
        .route("/sites/{id}/status", get(status::one))
        .route("/sites/{id}/history", get(history::list))
        .route("/status", get(status::all))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", api)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// The answer to a path no route matches.
async fn not_found() -> ApiError {
    ApiError::NotFound("There is nothing at this path; the API lives under /api/v1.".to_string())
}

/// The answer to a known path with a method it does not support.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Turns a handler's panic into a 500 problem instead of a dropped connection.
fn panicked(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "request handler panicked");
    ApiError::Other {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: "The server failed to answer this request.".to_string(),
    }
    .into_response()
}
