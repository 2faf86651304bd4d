//! `spawn_app()`: the API router over a fresh SQLite store in its own directory and an
//! in-memory cache, driven request by request with `oneshot`.

use std::sync::Arc;
use std::time::Duration;
use upwatch_store::prelude::*;

use axum::body::Body;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;
use upwatch_api::{router, ApiState};
use upwatch_cache::{MemoryCache, StatusCache};
use upwatch_core::check::SCHEMA_VERSION;
use upwatch_core::{CheckError, CheckResult, CheckStatus, ErrorKind, StateRules};
use upwatch_store::Store;
use upwatch_store_sql::SqliteStore;
use upwatch_telemetry::Metrics;
use uuid::Uuid;

/// A running API with direct access to its store and cache.
pub struct TestApp {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    pub cache: Arc<dyn StatusCache>,
    pub monitors_changed: Arc<tokio::sync::Notify>,
    /// The results stream the API publishes pushes onto.
    pub bus: Arc<upwatch_bus::InProcessBus>,
    /// The token requests send when set.
    pub token: Option<String>,
    _dir: TempDir,
}

/// How an app differs from the default one.
#[derive(Default)]
pub struct Options {
    pub api_token: Option<&'static str>,
    pub max_body_bytes: Option<usize>,
    pub cache: Option<Arc<dyn StatusCache>>,
    /// Wraps the SQLite store the API uses (the app's `store` stays the SQLite one).
    pub wrap_store: Option<WrapStore>,
    /// Pushes per minute and monitor (default 60).
    pub push_max_per_minute: Option<u32>,
    /// The regions there are (`UPWATCH_REGIONS`; default: `default` alone).
    pub regions: Option<Vec<String>>,
    /// How long a live-status answer is served again (`UPWATCH_API_STATUS_MAX_AGE_MS`).
    /// Default: never, since most tests change the cache and read it back at once.
    pub status_max_age: Option<Duration>,
    /// Whether the router sits behind the fast path of live reads, as in the binary.
    pub fast_reads: bool,
}

/// Builds the store the API uses around the test's SQLite store.
pub type WrapStore = Box<dyn FnOnce(Arc<SqliteStore>) -> Arc<dyn Store>>;

/// An app with no token, a 1 MiB body limit and a working cache.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// An app as `options` describe.
pub async fn spawn_app_with(options: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("the store opens"));
    let cache = options
        .cache
        .unwrap_or_else(|| Arc::new(MemoryCache::new()) as Arc<dyn StatusCache>);
    let monitors_changed = Arc::new(tokio::sync::Notify::new());
    let api_store = match options.wrap_store {
        Some(wrap) => wrap(store.clone()),
        None => store.clone(),
    };
    let bus = Arc::new(upwatch_bus::InProcessBus::new(10_000));
    let answers = Arc::new(upwatch_api::answers::LiveAnswers::new(
        options.status_max_age.unwrap_or(Duration::ZERO),
    ));
    let state = ApiState {
        pushes: Some(Arc::new(upwatch_service::PushService::new(
            api_store.clone(),
            api_store.clone(),
            bus.clone(),
            options.push_max_per_minute.unwrap_or(60),
        ))),
        maintenances: upwatch_service::MaintenanceService::new(
            api_store.clone(),
            monitors_changed.clone(),
        ),
        monitors: upwatch_service::MonitorService::new(
            api_store.clone(),
            cache.clone(),
            monitors_changed.clone(),
        )
        .with_regions(options.regions.unwrap_or_default()),
        stats: Arc::new(upwatch_service::Stats::new(
            api_store.clone(),
            Default::default(),
        )),
        store: api_store,
        cache: cache.clone(),
        metrics: Metrics::new(),
        api_token: options.api_token.map(|t| t.to_string().into()),
        max_body_bytes: options
            .max_body_bytes
            .unwrap_or(upwatch_api::DEFAULT_MAX_BODY_BYTES),
        notifier: Arc::new(upwatch_notifiers::Channels::default()),
        answers: answers.clone(),
    };
    let token = options.api_token.map(|t| t.to_string().into());
    let app = router(state);
    let app = if options.fast_reads {
        Router::new().fallback_service(upwatch_api::fast::FastReads::new(app, Some(answers), token))
    } else {
        app
    };
    TestApp {
        router: app,
        store,
        cache,
        monitors_changed,
        bus,
        token: None,
        _dir: dir,
    }
}

/// What came back.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem document with this status and a non-empty detail; returns it.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header(header::CONTENT_TYPE),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let problem = self.json();
        assert_eq!(problem["status"], status.as_u16(), "{problem}");
        assert_eq!(problem["type"], "about:blank", "{problem}");
        assert_eq!(
            problem["title"],
            status.canonical_reason().unwrap(),
            "{problem}"
        );
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(!detail.trim().is_empty(), "no detail: {problem}");
        problem
    }
}

impl TestApp {
    /// Sends a request built by hand.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body is readable")
            .to_bytes();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// A request builder with the app's token, if any.
    pub fn builder(&self, method: Method, uri: &str) -> axum::http::request::Builder {
        let builder = Request::builder().method(method).uri(uri);
        match &self.token {
            Some(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
            None => builder,
        }
    }

    /// A request without a body.
    pub async fn call(&self, method: Method, uri: &str) -> TestResponse {
        self.send(self.builder(method, uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.call(Method::GET, uri).await
    }

    pub async fn delete(&self, uri: &str) -> TestResponse {
        self.call(Method::DELETE, uri).await
    }

    /// A request with a raw body of the given content type.
    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> TestResponse {
        let request = self
            .builder(method, uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(body.into())
            .unwrap();
        self.send(request).await
    }

    pub async fn post_json(&self, uri: &str, body: &Value) -> TestResponse {
        self.raw(Method::POST, uri, "application/json", body.to_string())
            .await
    }

    pub async fn patch_json(&self, uri: &str, body: &Value) -> TestResponse {
        self.raw(
            Method::PATCH,
            uri,
            "application/merge-patch+json",
            body.to_string(),
        )
        .await
    }

    /// Creates a monitor and returns its JSON.
    pub async fn create_site(&self, body: Value) -> Value {
        let response = self.post_json("/api/v1/sites", &body).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        response.json()
    }

    /// The monitor as the store has it, as JSON; panics when there is none.
    /// What the cache updater does with a result: applies it to the monitor's cached entry.
    pub async fn cache_result(&self, result: &CheckResult) {
        let mut entry = self
            .cache
            .get(result.monitor_id)
            .await
            .unwrap()
            .expect("created monitors are cached");
        entry.state.apply(result);
        assert!(self.cache.put(&entry).await.unwrap());
    }

    pub async fn store_monitor(&self, id: Uuid) -> Value {
        let monitor = self
            .store
            .get_monitor(id)
            .await
            .expect("the store answers")
            .expect("the monitor is stored");
        serde_json::to_value(monitor).expect("a monitor serializes")
    }

    /// Whether the scheduler was notified since the last call; waits a little for it.
    pub async fn was_notified(&self) -> bool {
        tokio::time::timeout(Duration::from_secs(1), self.monitors_changed.notified())
            .await
            .is_ok()
    }
}

/// A fixed time, `s` seconds after 2023-11-14T22:13:20Z.
pub fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid time")
}

/// A result of monitor `id` checked at `t(at)`: up with HTTP 200, or down with HTTP 503.
pub fn result(id: Uuid, at: i64, up: bool) -> CheckResult {
    CheckResult {
        region: "default".to_string(),
        v: SCHEMA_VERSION,
        id: Uuid::now_v7(),
        job_id: Uuid::now_v7(),
        monitor_id: id,
        monitor_name: "site".into(),
        url: "http://127.0.0.1:9/".into(),
        due_at: t(at),
        checked_at: t(at),
        response_time_ms: 100 + at as u32,
        status_code: Some(if up { 200 } else { 503 }),
        status: if up {
            CheckStatus::Up
        } else {
            CheckStatus::Down
        },
        error: (!up)
            .then(|| CheckError::new(ErrorKind::StatusMismatch, "got HTTP 503, expected 2xx")),
        rules: StateRules::default(),
        details: Default::default(),
        cert_expiry_alert_days: Vec::new(),
        maintenance: false,
    }
}

/// A result of monitor `id` checked at `at` that took `ms`: up with HTTP 200, or down with
/// HTTP 503.
pub fn result_at(id: Uuid, at: DateTime<Utc>, up: bool, ms: u32) -> CheckResult {
    CheckResult {
        region: "default".to_string(),
        due_at: at,
        checked_at: at,
        response_time_ms: ms,
        ..result(id, 0, up)
    }
}

/// The id of a created monitor or webhook.
pub fn id_of(value: &Value) -> Uuid {
    value["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a UUID")
}

/// Stores results through the store, as the results logger would.
pub async fn insert_results(app: &TestApp, results: &[CheckResult]) {
    let stored = app
        .store
        .insert_results(results)
        .await
        .expect("results are stored");
    assert_eq!(stored, results.len() as u64);
}
