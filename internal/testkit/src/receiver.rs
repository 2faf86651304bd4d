//! A loopback HTTP server that stands in for a notification service (Slack, Telegram,
//! PagerDuty...): it accepts any method on any path, records every request whole (method,
//! path, query, headers, body) and answers with scripted [`Answer`]s, then with its default.
//!
//! Each provider's test starts one with the answer its service documents for success
//! (`HttpReceiver::start(Answer::json(200, json!({"ok": true})))` for Telegram), points the
//! provider's `api_url` (or webhook URL) at [`HttpReceiver::url`], and asserts the exact
//! request that arrived. Waiting wakes on each request rather than polling.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One answer: a status, headers and a body, sent after an optional delay.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Waits this long before answering.
    pub delay: Duration,
}

impl Answer {
    /// This status with an empty body.
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// This status with a JSON body.
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// This status with a plain-text body.
    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer with one more header (`Retry-After`, say).
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same answer, sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    /// Header names lowercased; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Request {
    /// The body as JSON. Panics when it is not JSON (the test then fails saying so).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body of {} {} is not JSON ({e}): {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The query's parameters, decoded.
    pub fn query_pairs(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// The body's form parameters (`application/x-www-form-urlencoded`), decoded.
    pub fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

struct Inner {
    requests: Vec<Request>,
    script: VecDeque<Answer>,
    default: Answer,
}

struct Shared {
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running receiver; it shuts down when dropped.
pub struct HttpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl HttpReceiver {
    /// Starts a receiver on `127.0.0.1` at a free port, answering `default` once the
    /// scripted answers are used up.
    ///
    /// Panics when no port can be bound (a broken test machine).
    pub async fn start(default: Answer) -> HttpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver to 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("local address of the receiver");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                requests: Vec::new(),
                script: VecDeque::new(),
                default,
            }),
            count: watch::Sender::new(0),
        });
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        HttpReceiver { addr, shared, stop }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues an answer; queued answers are used in order before the default.
    pub fn push(&self, answer: Answer) {
        self.shared.lock().script.push_back(answer);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// The requests answered with a 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    ///
    /// Panics when `deadline` passes first, saying how many arrived.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Request> {
        let mut rx = self.shared.count.subscribe();
        if tokio::time::timeout(deadline, rx.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            panic!(
                "the receiver got {} request(s) within {deadline:?}, expected at least {n}",
                self.requests().len()
            );
        }
        self.requests()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut inner = shared.lock();
        let answer = inner
            .script
            .pop_front()
            .unwrap_or_else(|| inner.default.clone());
        inner.requests.push(Request {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or("").to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            answered: answer.status,
        });
        let n = inner.requests.len();
        shared.count.send_replace(n);
        answer
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(answer.status).expect("a valid scripted status code"),
        answer.body,
    )
        .into_response();
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            axum::http::HeaderValue::from_str(&value).expect("a valid header value"),
        );
    }
    response
}
