//! The REST API of upwatch: JSON under `/api/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Endpoints:
//! - `POST/GET /api/v1/sites`, `GET/PATCH/DELETE /api/v1/sites/{id}`: monitors;
//! - `POST /api/v1/sites/bulk`: many monitors at once, all or none;
//! - `GET /api/v1/sites/{id}/status`, `GET /api/v1/status`: live status, from the cache (one
//!   monitor's with what each region that checks it sees, its answer served again for up to
//!   `UPWATCH_API_STATUS_MAX_AGE_MS`, see [`answers`]);
//! - `GET /api/v1/sites/{id}/history`: stored results, newest first;
//! - `GET /api/v1/sites/{id}/uptime`, `GET /api/v1/sites/{id}/response-times`: statistics
//!   read from rollups, never from raw results, except the response times of one region
//!   (`?region=`), folded from its raw results since rollups count every region together;
//! - `GET /api/v1/sites/{id}/incidents`, `GET /api/v1/incidents`: DOWN periods, newest first;
//! - `GET /api/v1/sites/{id}/badge/uptime.svg` and `.../badge/status.svg`: SVG badges, the
//!   only routes under `/api/v1` that need no token (README images cannot send one);
//! - `POST/GET /api/v1/webhooks`, `GET/PATCH/DELETE /api/v1/webhooks/{id}`: alert
//!   destinations; PATCH renames, moves, enables or disables one; `POST .../{id}/test` sends
//!   it a test message;
//! - `POST/GET /api/v1/maintenances`, `GET/PATCH/DELETE /api/v1/maintenances/{id}`:
//!   maintenance windows, each shown with whether it is active now and its next occurrence.
//!
//! Every error, whatever produced it (a handler, an extractor, routing, authentication or a
//! panic), is an `application/problem+json` document (RFC 9457) built by [`error::ApiError`].
//!
//! Layout: [`error`] (the error type), [`extract`] (extractors whose rejections are problems),
//! `auth` (the bearer token), and one module per resource.

pub mod answers;
pub mod error;
pub mod extract;
pub mod fast;

mod auth;
mod badge;
mod bulk;
mod health;
mod history;
mod incidents;
mod maintenances;
mod notifiers;
pub mod openapi;
mod push;
mod response_times;
mod sites;
mod status;
mod uptime;
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
    /// Creating, changing and deleting monitors (store, cache and the scheduler's notice).
    pub monitors: upwatch_service::MonitorService,
    /// Creating, changing and deleting maintenance windows (store and the scheduler's notice).
    pub maintenances: upwatch_service::MaintenanceService,
    /// Uptime figures, with the one definition and memo the pages share.
    pub stats: Arc<upwatch_service::Stats>,
    /// Largest accepted request body in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Checks and redacts notifier settings, and sends the test messages of
    /// `POST /api/v1/notifiers/{id}/test`.
    pub notifier: Arc<dyn upwatch_notify::Notifier>,
    /// Records the pushes of push monitors (`/api/v1/push/{token}`); `None` in an API process
    /// without a results stream (no broker configured), which answers pushes with a 503.
    pub pushes: Option<Arc<upwatch_service::PushService>>,
    /// Recent answers of `GET /api/v1/sites/{id}/status`, served again for a fraction of a
    /// second ([`answers::LiveAnswers`]).
    pub answers: Arc<answers::LiveAnswers>,
}

/// What handlers get: one [`ApiState`] behind an `Arc`, so that each request clones one
/// pointer instead of every field's (which, over a dozen reference counts shared by every
/// thread, was a quarter of a live read's CPU).
pub type Shared = Arc<ApiState>;

/// The complete application: `/api/v1/*`, `/healthz`, `/readyz`, `/metrics`, and fallbacks
/// that answer unknown routes (404) and wrong methods (405) with problem documents.
pub fn router(state: ApiState) -> Router {
    let state: Shared = Arc::new(state);
    // Badges are images for READMEs, which cannot send a token: these two routes are merged
    // in after the token layer, so that it does not apply to them.
    let badges = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/sites/{id}/badge/uptime.svg", get(badge::uptime))
        .route("/sites/{id}/badge/status.svg", get(badge::status))
        .route("/push/{token}", get(push::get).post(push::post))
        .method_not_allowed_fallback(method_not_allowed);
    let api = Router::new()
        .route("/sites", post(sites::create).get(sites::list))
        .route(
            "/sites/bulk",
            // Up to 10,000 monitors: a larger body than other requests need.
            post(bulk::create).layer(DefaultBodyLimit::max(
                state.max_body_bytes.max(bulk::MAX_BULK_BODY_BYTES),
            )),
        )
        .route(
            "/sites/{id}",
            get(sites::get).patch(sites::patch).delete(sites::delete),
        )
        .route("/sites/{id}/status", get(status::one))
        .route("/sites/{id}/history", get(history::list))
        .route("/sites/{id}/uptime", get(uptime::get))
        .route("/sites/{id}/response-times", get(response_times::get))
        .route("/sites/{id}/incidents", get(incidents::of_site))
        .route("/incidents", get(incidents::all))
        .route("/status", get(status::all))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route("/notifiers", post(notifiers::create).get(notifiers::list))
        .route(
            "/notifiers/{id}",
            get(notifiers::get)
                .patch(notifiers::update)
                .delete(notifiers::delete),
        )
        .route("/notifiers/{id}/test", post(notifiers::test))
        .route(
            "/maintenances",
            post(maintenances::create).get(maintenances::list),
        )
        .route(
            "/maintenances/{id}",
            get(maintenances::get)
                .patch(maintenances::patch)
                .delete(maintenances::delete),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .merge(badges);

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
