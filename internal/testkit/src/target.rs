//! A real HTTP site on loopback for checks to be run against.
//!
//! [`TargetServer::start`] binds `127.0.0.1:0` and serves these routes:
//!
//! | route | answer |
//! | --- | --- |
//! | `/ok` | 200, `ok: upwatch test target` |
//! | `/status/{code}` | that code (100 to 599) |
//! | `/slow/{ms}` | 200 after sleeping `ms` milliseconds |
//! | `/redirect-loop` | 302 to itself, forever |
//! | `/redirect/{n}` | a chain of `n` 302 hops that ends at `/ok` |
//! | `/huge` | 200 with about 50 MiB of `a`, streamed as it is sent |
//! | `/keyword` | 200 with `welcome to upwatch` after 1 KiB of filler |
//! | `/echo` | any method: 200 with JSON of the method, headers and body received |
//! | `/switch` | the status set by [`TargetServer::set_status`], after [`TargetServer::set_delay`] |
//!
//! Every request is counted per path, see [`TargetServer::hits`]. A request whose
//! `User-Agent` contains a text given to [`TargetServer::fail_for_user_agent`] gets a 500 on
//! any route instead (counted all the same). The server stops when the [`TargetServer`] is
//! dropped.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The body of `/ok`.
pub const OK_BODY: &str = "ok: upwatch test target";
/// The default body of `/switch`.
pub const SWITCH_BODY: &str = "switch ok";
/// The phrase `/keyword` contains after its filler.
pub const KEYWORD: &str = "welcome to upwatch";
/// How many bytes `/huge` sends: 50 MiB.
pub const HUGE_BYTES: usize = 50 * 1024 * 1024;
/// The size of each chunk `/huge` sends.
const HUGE_CHUNK: usize = 64 * 1024;
/// Bytes of filler `/keyword` sends before [`KEYWORD`].
const KEYWORD_FILLER: usize = 1024;

/// State shared by the handlers and the [`TargetServer`] handle.
#[derive(Default)]
struct Shared {
    hits: Mutex<HashMap<String, u64>>,
    switch_status: AtomicU16,
    switch_delay_ms: AtomicU64,
    huge_bytes_sent: AtomicU64,
    /// Texts of `User-Agent`s answered with 500.
    failing_agents: Mutex<Vec<String>>,
}

/// A running loopback HTTP server whose routes behave as the module documentation says.
pub struct TargetServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: DropGuard,
}

impl TargetServer {
    /// Binds `127.0.0.1` on a free port and serves in a background task until dropped.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound, which no test can work around.
    pub async fn start() -> TargetServer {
        let shared = Arc::new(Shared {
            switch_status: AtomicU16::new(200),
            ..Shared::default()
        });
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port for the target server");
        let addr = listener.local_addr().expect("read the bound address");
        let app = router(shared.clone());
        let token = CancellationToken::new();
        let stop = token.clone();
        tokio::spawn(async move {
            // Serving only fails when accepting fails for good; a test then sees its requests fail.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        TargetServer {
            addr,
            shared,
            _shutdown: token.drop_guard(),
        }
    }

    /// The full URL of `path` on this server, such as `http://127.0.0.1:PORT/ok`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("http://{}{}", self.addr, path)
        } else {
            format!("http://{}/{}", self.addr, path)
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests have reached `path` (without its query string) so far.
    pub fn hits(&self, path: &str) -> u64 {
        let hits = self.shared.hits.lock().unwrap_or_else(|e| e.into_inner());
        hits.get(path).copied().unwrap_or(0)
    }

    /// How many body bytes `/huge` has handed to the connection so far, over all requests.
    ///
    /// Bytes are counted as the server produces them for sending, so a client that stops
    /// reading early leaves this far below [`HUGE_BYTES`] (kernel socket buffers still take
    /// a few MiB before the server has to wait).
    pub fn huge_bytes_sent(&self) -> u64 {
        self.shared.huge_bytes_sent.load(Ordering::SeqCst)
    }

    /// Sets the status `/switch` answers with from now on (200 until set).
    ///
    /// # Panics
    ///
    /// Panics when `code` is not an HTTP status code (100 to 599).
    pub fn set_status(&self, code: u16) {
        assert!(
            (100..=599).contains(&code),
            "{code} is not an HTTP status code"
        );
        self.shared.switch_status.store(code, Ordering::SeqCst);
    }

    /// Sets how long `/switch` waits before answering (no wait until set).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.switch_delay_ms.store(ms, Ordering::SeqCst);
    }
}

impl TargetServer {
    /// From now on, answers 500 (body [`FAILING_AGENT_BODY`]) on every route to requests
    /// whose `User-Agent` contains `text` (case-sensitive), such as `"region c"` for the
    /// checks of region `c`. Several texts may be set; any of them fails a request.
    pub fn fail_for_user_agent(&self, text: &str) {
        let mut agents = self
            .shared
            .failing_agents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        agents.push(text.to_string());
    }

    /// Answers every `User-Agent` normally again.
    pub fn clear_user_agent_failures(&self) {
        let mut agents = self
            .shared
            .failing_agents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        agents.clear();
    }
}

/// The body of the 500 that [`TargetServer::fail_for_user_agent`] makes.
pub const FAILING_AGENT_BODY: &str = "failing for this user agent";

/// A URL on loopback where nothing listens, so that connecting to it is refused.
///
/// The port was free a moment ago; another process could take it in between, which on a
/// test machine is rare enough to accept.
///
/// # Panics
///
/// Panics when no loopback port can be bound.
pub async fn refused_url() -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("read the bound address");
    drop(listener);
    format!("http://{addr}/")
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ok", get(ok))
        .route("/status/{code}", any(status))
        .route("/slow/{ms}", any(slow))
        .route("/redirect-loop", any(redirect_loop))
        .route("/redirect/{n}", any(redirect))
        .route("/huge", get(huge))
        .route("/keyword", get(keyword))
        .route("/echo", any(echo))
        .route("/switch", any(switch))
        .layer(middleware::from_fn_with_state(shared.clone(), count_hits))
        .with_state(shared)
}

async fn count_hits(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    {
        let mut hits = shared.hits.lock().unwrap_or_else(|e| e.into_inner());
        *hits.entry(request.uri().path().to_string()).or_insert(0) += 1;
    }
    let agent = request
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let failing = {
        let agents = shared
            .failing_agents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        agents.iter().any(|text| agent.contains(text.as_str()))
    };
    if failing {
        return (StatusCode::INTERNAL_SERVER_ERROR, FAILING_AGENT_BODY).into_response();
    }
    next.run(request).await
}

async fn ok() -> &'static str {
    OK_BODY
}

async fn status(Path(code): Path<u16>) -> Response {
    match StatusCode::from_u16(code) {
        Ok(status) if (100..=599).contains(&code) => {
            (status, format!("status {code}")).into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            format!("{code} is not an HTTP status code"),
        )
            .into_response(),
    }
}

async fn slow(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow ok"
}

fn found(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

async fn redirect_loop() -> Response {
    found("/redirect-loop")
}

async fn redirect(Path(n): Path<u32>) -> Response {
    match n {
        0 => OK_BODY.into_response(),
        1 => found("/ok"),
        n => found(&format!("/redirect/{}", n - 1)),
    }
}

async fn huge(State(shared): State<Arc<Shared>>) -> Response {
    let chunk = Bytes::from(vec![b'a'; HUGE_CHUNK]);
    let chunks = HUGE_BYTES / HUGE_CHUNK;
    // Each chunk is a cheap clone of one shared buffer, produced only when the connection can
    // take more, so nothing like the whole body is ever held in memory.
    let stream = futures::stream::iter((0..chunks).map(move |_| {
        shared
            .huge_bytes_sent
            .fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok::<_, std::convert::Infallible>(chunk.clone())
    }));
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn keyword() -> String {
    let mut body = "x".repeat(KEYWORD_FILLER);
    body.push('\n');
    body.push_str(KEYWORD);
    body.push('\n');
    body
}

async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> Json<serde_json::Value> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        seen.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    Json(serde_json::json!({
        "method": method.as_str(),
        "headers": seen,
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn switch(State(shared): State<Arc<Shared>>) -> Response {
    let delay = shared.switch_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let code = shared.switch_status.load(Ordering::SeqCst);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, SWITCH_BODY).into_response()
}
