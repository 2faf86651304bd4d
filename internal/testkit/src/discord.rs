//! A Discord-compatible webhook receiver on loopback.
//!
//! [`DiscordReceiver::start`] serves `POST /api/webhooks/{id}/{token}` on `127.0.0.1` at a
//! free port. Each request takes the next scripted [`Reply`] (see
//! [`DiscordReceiver::push_response`]) or, when none is queued, answers `204 No Content` as
//! Discord does. Bodies answered with a 2xx are recorded as messages; every request counts as
//! an attempt. Tests wait for messages with [`DiscordReceiver::wait_for_messages`], which
//! wakes on each request rather than polling.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `429 Too Many Requests` with Discord's body:
    /// `{"message": "You are being rate limited.", "retry_after": X, "global": false}`
    /// and a `Retry-After` header rounded up to whole seconds.
    RateLimited {
        /// The `retry_after` of the body, in seconds.
        retry_after_secs: f64,
    },
    /// This status code, with a small JSON body (`404` gets Discord's `Unknown Webhook`).
    /// A 2xx code records the message.
    Status(u16),
    /// Waits this long, then answers `204` and records the message.
    Delay(Duration),
}

/// What the receiver has seen so far, published to waiters.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    messages: usize,
    attempts: usize,
}

#[derive(Default)]
struct Inner {
    messages: Vec<Value>,
    attempts: usize,
    script: VecDeque<Reply>,
}

struct Shared {
    inner: Mutex<Inner>,
    counts: watch::Sender<Counts>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the recorded messages from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, inner: &Inner) {
        self.counts.send_replace(Counts {
            messages: inner.messages.len(),
            attempts: inner.attempts,
        });
    }
}

/// A running receiver; it shuts down when dropped.
pub struct DiscordReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl DiscordReceiver {
    /// Starts a receiver on `127.0.0.1` at a free port.
    ///
    /// Panics when no port can be bound (a broken test machine).
    pub async fn start() -> DiscordReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the discord receiver to 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("local address of the discord receiver");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            counts: watch::Sender::new(Counts::default()),
        });
        let app = Router::new()
            .route("/api/webhooks/{id}/{token}", post(receive))
            .with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        DiscordReceiver { addr, shared, stop }
    }

    /// The webhook URL to give a notifier: `http://127.0.0.1:PORT/api/webhooks/1/test-token`.
    pub fn url(&self) -> String {
        format!("http://{}/api/webhooks/1/test-token", self.addr)
    }

    /// The address the receiver listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bodies received and answered with a 2xx, in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        self.shared.lock().messages.clone()
    }

    /// Every POST received so far, whatever the answer.
    pub fn attempts(&self) -> usize {
        self.shared.lock().attempts
    }

    /// Queues an answer; queued answers are used in order before the default `204`.
    pub fn push_response(&self, reply: Reply) {
        self.shared.lock().script.push_back(reply);
    }

    /// Waits until at least `n` messages were received and returns them all.
    ///
    /// Panics when `deadline` passes first, saying how many arrived.
    pub async fn wait_for_messages(&self, n: usize, deadline: Duration) -> Vec<Value> {
        let mut rx = self.shared.counts.subscribe();
        if tokio::time::timeout(deadline, rx.wait_for(|c| c.messages >= n))
            .await
            .is_err()
        {
            let (messages, attempts) = {
                let inner = self.shared.lock();
                (inner.messages.len(), inner.attempts)
            };
            panic!(
                "the discord receiver got {messages} message(s) ({attempts} attempt(s)) \
                 within {deadline:?}, expected at least {n}"
            );
        }
        self.messages()
    }

    /// Waits until at least `n` requests were received, whatever their answers.
    ///
    /// Panics when `deadline` passes first, saying how many arrived.
    pub async fn wait_for_attempts(&self, n: usize, deadline: Duration) {
        let mut rx = self.shared.counts.subscribe();
        if tokio::time::timeout(deadline, rx.wait_for(|c| c.attempts >= n))
            .await
            .is_err()
        {
            panic!(
                "the discord receiver got {} attempt(s) within {deadline:?}, expected at least {n}",
                self.attempts()
            );
        }
    }
}

impl Drop for DiscordReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let reply = {
        let mut inner = shared.lock();
        inner.attempts += 1;
        let reply = inner.script.pop_front();
        shared.publish(&inner);
        reply
    };
    let status = match reply {
        None => StatusCode::NO_CONTENT,
        Some(Reply::Delay(wait)) => {
            tokio::time::sleep(wait).await;
            StatusCode::NO_CONTENT
        }
        Some(Reply::RateLimited { retry_after_secs }) => {
            let header = retry_after_secs.max(0.0).ceil().to_string();
            let body = json!({
                "message": "You are being rate limited.",
                "retry_after": retry_after_secs,
                "global": false,
            });
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", header)],
                Json(body),
            )
                .into_response();
        }
        Some(Reply::Status(code)) => {
            let status = StatusCode::from_u16(code).expect("a valid scripted status code");
            if !status.is_success() {
                let body = if code == 404 {
                    json!({ "message": "Unknown Webhook", "code": 10015 })
                } else {
                    json!({ "message": format!("scripted HTTP {code}"), "code": 0 })
                };
                return (status, Json(body)).into_response();
            }
            status
        }
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        let body = json!({ "message": "Cannot send an empty message", "code": 50006 });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    {
        let mut inner = shared.lock();
        inner.messages.push(message);
        shared.publish(&inner);
    }
    status.into_response()
}
