//! The web pages of upwatch, served by the same process and listener as the API:
//!
//! - `/`: the dashboard, every monitor with its live status, latency, uptime and recent checks;
//! - `/sites/{id}`: one monitor, with daily uptime, a response-time chart, incidents and
//!   settings;
//! - `/status`: the public status page, monitors marked `public` only, without URLs or
//!   settings; it reads completely without JavaScript.
//!
//! Each page lists the maintenance windows under way and those starting within 7 days (the
//! status page only those covering a public monitor, naming public monitors only; a monitor's
//! page those covering it), and the daily bars mark the days a covering window occurred on.
//!
//! A push monitor's `push://` URL holds the token that lets anyone report for it: no page and
//! no live update shows it, and only the monitor's own page shows its push path.
//!
//! Live updates: `/events` (dashboard) and `/status/events` (public) are server-sent event
//! streams of numbered batches from [`live::Live`]; `/updates` and `/status/updates` answer the
//! same batches as JSON for browsers that poll instead. `/assets/{name}` serves the embedded
//! CSS and JavaScript.
//!
//! The dashboard (`/`, `/sites/{id}`, `/events`, `/updates`) is read-only and is served when
//! no API token is configured, or when the operator opts in with `UPWATCH_DASHBOARD_PUBLIC`:
//! otherwise it answers 403 with a page that says so, and only `/status` is served.
//!
//! Layout: [`live`] (what changed, for live updates), [`data`] (what each page shows, from the
//! store and the cache), [`html`] (the templates), [`assets`] (embedded files).

pub mod apidocs;
pub mod assets;
pub mod data;
pub mod html;
pub mod live;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use maud::Markup;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use upwatch_cache::StatusCache;
use upwatch_store::{MaintenanceStore, Reads};
use uuid::Uuid;

use crate::data::{Data, Window};
use crate::live::{Batch, Live, PublicChange};

/// What the pages share.
#[derive(Clone)]
pub struct WebState {
    data: Arc<Data>,
    /// Whether the dashboard is served (see the crate documentation).
    dashboard: bool,
    /// The API's OpenAPI document, for `/api/docs`.
    api_document: Arc<serde_json::Value>,
    /// Cancelled at shutdown: ends the live view and every open event stream, so that the
    /// server's graceful shutdown does not wait for pages to close.
    stop: CancellationToken,
    /// Every region there is (`UPWATCH_REGIONS`), for the rows of a monitor's regions.
    regions: Arc<Vec<String>>,
}

/// How a [`WebState`] is made.
pub struct WebConfig {
    pub store: Arc<dyn Reads>,
    /// Maintenance windows, listed on the pages and marked on the daily bars. The pages only
    /// read them (`list_maintenances`); usually the same store as `store`.
    pub maintenances: Arc<dyn MaintenanceStore>,
    pub cache: Arc<dyn StatusCache>,
    /// Uptime figures: the API's, so that the pages show the same ones.
    pub stats: Arc<upwatch_service::Stats>,
    /// The API's OpenAPI document, rendered at `/api/docs`.
    pub api_document: Arc<serde_json::Value>,
    /// Serve the dashboard (false: only the public status page).
    pub dashboard: bool,
    /// Cancelled at shutdown.
    pub stop: CancellationToken,
}

impl WebState {
    /// The pages' state, with the live view polling in a task until `config.stop`.
    pub fn start(config: WebConfig) -> WebState {
        let live = Live::new(config.store.clone(), config.cache.clone());
        tokio::spawn(live.clone().run(config.stop.clone()));
        WebState {
            data: Arc::new(
                Data::new(config.store, config.cache, config.stats, live)
                    .with_maintenances(config.maintenances),
            ),
            dashboard: config.dashboard,
            api_document: config.api_document,
            stop: config.stop,
            regions: Arc::new(vec![upwatch_core::check::DEFAULT_REGION.to_string()]),
        }
    }

    /// The same pages, knowing that the regions are `regions` (`UPWATCH_REGIONS`; the default
    /// is the one region `default`). An empty list keeps the default.
    pub fn with_regions(mut self, regions: Vec<String>) -> WebState {
        if !regions.is_empty() {
            self.regions = Arc::new(regions);
        }
        self
    }

    pub fn live(&self) -> &Arc<Live> {
        &self.data.live
    }
}

/// The pages, assets and event streams, to be merged with the API's router. It has no
/// fallback of its own, so the API's problem+json 404 still answers unknown paths.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/sites/{id}", get(site))
        .route("/status", get(status_page))
        .route("/api/docs", get(api_docs))
        .route("/events", get(events))
        .route("/updates", get(updates))
        .route("/status/events", get(public_events))
        .route("/status/updates", get(public_updates))
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            watching,
        ))
        .layer(CompressionLayer::new())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .with_state(state)
}

/// `/api/docs`: the API reference, rendered from the OpenAPI document; public, like the
/// document itself.
async fn api_docs(State(state): State<WebState>) -> Response {
    page(StatusCode::OK, apidocs::render(&state.api_document))
}

/// Every request of the pages tells the live view that someone is looking.
async fn watching(
    State(state): State<WebState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state.live().watch();
    next.run(request).await
}

/// A page: HTML that is never stored by caches, under a policy that lets it load only this
/// origin's files.
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn dashboard_off() -> Response {
    page(
        StatusCode::FORBIDDEN,
        html::message(
            "The dashboard is off",
            "This server has an API token, so its dashboard is not served. The operator can serve it \
             read-only to anyone who reaches this address with UPWATCH_DASHBOARD_PUBLIC=true.",
            false,
        ),
    )
}

fn unavailable(error: &dyn std::error::Error, dashboard: bool) -> Response {
    tracing::error!(%error, "a page could not be read from the store");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        html::message(
            "Temporarily unavailable",
            "The database did not answer; try again shortly.",
            dashboard,
        ),
    )
}

/// `GET /`.
async fn dashboard(State(state): State<WebState>) -> Response {
    if !state.dashboard {
        return dashboard_off();
    }
    let since = state.live().last_id();
    match state.data.dashboard().await {
        Ok(view) => page(StatusCode::OK, html::dashboard(&view, since)),
        Err(error) => unavailable(&error, true),
    }
}

#[derive(Deserialize)]
struct SiteQuery {
    window: Option<String>,
}

/// `GET /sites/{id}`.
async fn site(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(query): Query<SiteQuery>,
) -> Response {
    if !state.dashboard {
        return dashboard_off();
    }
    let not_found = || {
        page(
            StatusCode::NOT_FOUND,
            html::message(
                "No such monitor",
                "There is no monitor at this address; it may have been deleted.",
                true,
            ),
        )
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let window = query
        .window
        .as_deref()
        .and_then(Window::parse)
        .unwrap_or(Window::Day);
    let since = state.live().last_id();
    match state.data.site(id, window, &state.regions).await {
        Ok(Some(view)) => page(StatusCode::OK, html::site(&view, since, true)),
        Ok(None) => not_found(),
        Err(error) => unavailable(&error, true),
    }
}

/// `GET /status`.
async fn status_page(State(state): State<WebState>) -> Response {
    let since = state.live().last_id();
    match state.data.status_page().await {
        Ok(view) => page(
            StatusCode::OK,
            html::status_page(&view, since, state.dashboard),
        ),
        Err(error) => unavailable(&error, state.dashboard),
    }
}

#[derive(Deserialize)]
struct Since {
    since: Option<u64>,
}

/// Where a stream starts: the `Last-Event-ID` of a reconnecting `EventSource`, else the
/// `since` the page was rendered at.
fn start_after(headers: &HeaderMap, query: &Since) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(query.since)
}

/// `GET /events`: the dashboard's stream.
async fn events(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> Response {
    if !state.dashboard {
        return dashboard_off();
    }
    sse(&state, start_after(&headers, &q), Audience::Dashboard)
}

/// `GET /status/events`: the public page's stream (public monitors, status only).
async fn public_events(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> Response {
    sse(&state, start_after(&headers, &q), Audience::Public)
}

/// Who a stream or poll answer is for.
#[derive(Clone, Copy)]
enum Audience {
    Dashboard,
    Public,
}

/// A batch as JSON for its audience; `None` when nothing in it is for them.
fn batch_json(batch: &Batch, audience: Audience) -> Option<serde_json::Value> {
    #[derive(Serialize)]
    struct Out<T> {
        id: u64,
        reset: bool,
        changes: Vec<T>,
        /// The monitors this audience sees changed: the page reads its list again.
        monitors_changed: bool,
    }
    let value = match audience {
        Audience::Dashboard => serde_json::to_value(Out {
            id: batch.id,
            reset: batch.reset,
            changes: batch.changes.iter().collect(),
            monitors_changed: batch.monitors_changed,
        }),
        Audience::Public => {
            let changes: Vec<PublicChange> = batch
                .changes
                .iter()
                .filter(|c| c.public)
                .map(PublicChange::from)
                .collect();
            if changes.is_empty() && !batch.reset && !batch.public_changed {
                return None;
            }
            serde_json::to_value(Out {
                id: batch.id,
                reset: batch.reset,
                changes,
                monitors_changed: batch.public_changed,
            })
        }
    };
    value.ok()
}

fn sse(state: &WebState, after: Option<u64>, audience: Audience) -> Response {
    struct Feed {
        live: Arc<Live>,
        rx: tokio::sync::broadcast::Receiver<Batch>,
        pending: VecDeque<Batch>,
        last: u64,
        stop: CancellationToken,
    }
    let live = state.live().clone();
    // Subscribe before reading the backlog, so that nothing falls between the two.
    let rx = live.subscribe();
    let pending: VecDeque<Batch> = after.map(|a| live.since(a)).unwrap_or_default().into();
    let feed = Feed {
        last: after.unwrap_or_else(|| live.last_id()),
        live,
        rx,
        pending,
        stop: state.stop.clone(),
    };
    let stream = futures::stream::unfold(feed, move |mut feed| async move {
        loop {
            let batch = match feed.pending.pop_front() {
                Some(batch) => batch,
                None => tokio::select! {
                    _ = feed.stop.cancelled() => return None,
                    received = feed.rx.recv() => match received {
                        Ok(batch) => batch,
                        Err(RecvError::Lagged(_)) => {
                            feed.pending = feed.live.since(feed.last).into();
                            continue;
                        }
                        Err(RecvError::Closed) => return None,
                    },
                },
            };
            if batch.id <= feed.last && !batch.reset {
                continue;
            }
            feed.last = feed.last.max(batch.id);
            let Some(json) = batch_json(&batch, audience) else {
                continue;
            };
            let event = Event::default()
                .id(batch.id.to_string())
                .event("changes")
                .retry(Duration::from_secs(1))
                .data(json.to_string());
            return Some((Ok::<Event, Infallible>(event), feed));
        }
    });
    with_no_store(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn with_no_store(
    sse: Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static>,
) -> Response {
    let mut response = sse.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The polling fallback's answer: the batches after `since` and the id to ask from next.
#[derive(Serialize)]
struct Updates {
    last: u64,
    batches: Vec<serde_json::Value>,
}

fn poll(state: &WebState, since: Option<u64>, audience: Audience) -> Response {
    let live = state.live();
    let last = live.last_id();
    let batches = since
        .map(|s| live.since(s))
        .unwrap_or_default()
        .iter()
        .filter_map(|b| batch_json(b, audience))
        .collect();
    let mut response = axum::Json(Updates { last, batches }).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /updates?since=ID`.
async fn updates(State(state): State<WebState>, Query(q): Query<Since>) -> Response {
    if !state.dashboard {
        return dashboard_off();
    }
    poll(&state, q.since, Audience::Dashboard)
}

/// `GET /status/updates?since=ID`.
async fn public_updates(State(state): State<WebState>, Query(q): Query<Since>) -> Response {
    poll(&state, q.since, Audience::Public)
}
