//! Generic webhooks: one JSON `POST` per message to any URL, with optional headers, an
//! optional body template and an optional HMAC signature.
//!
//! | setting         | required | secret | default            | meaning                           |
//! |-----------------|----------|--------|--------------------|-----------------------------------|
//! | `url`           | yes      | yes    |                    | where to `POST` (`http://` or `https://`) |
//! | `headers`       | no       | yes    | none               | extra request headers, an object of names to string values (`{"Authorization": "Bearer …"}`); all values are secrets |
//! | `body_template` | no       | no     | the JSON below     | a [MiniJinja](https://docs.rs/minijinja) template of the body |
//! | `secret`        | no       | yes    | no signature       | the key the body is signed with   |
//!
//! # The body
//!
//! Without `body_template`, the body is this JSON object ([`payload`]):
//!
//! ```json
//! {"event": "down",                  // down, recovery, certificate_expiry, reminder, storm, test, notice
//!  "status": "DOWN",                 // DOWN, UP, WARNING or INFO
//!  "title": "🔴 My Website is down",
//!  "text": "🔴 My Website is down\nSite: My Website (https://example.com)\n…",
//!  "time": "2024-01-16T20:00:00Z",   // RFC 3339: when it happened (tests and notices: when sent)
//!  "monitor": {"id": "…", "name": "My Website", "url": "https://example.com"},
//!  "error": "status_mismatch: got HTTP 500, expected 200",
//!  "incident": {"id": "0190…-1705435200000"}}
//! ```
//!
//! `monitor`, `error` (or `null`) and `incident` (or `null`) are there for single alerts; a
//! push monitor's `url` is `"push monitor"` (its real URL holds its token). A storm has
//! `monitors` instead, one `{"id", "name", "url", "error", "incident"}` per monitor (not only
//! the 25 its text names: up to [`MAX_LISTED`], so that a storm of 10,000 stays a body that
//! receivers accept), `monitors_total` (how many there are in all), and `dashboard_url` when
//! it is known.
//!
//! `incident.id` is a stable key of one down period of one monitor:
//! `<monitor id>-<when it went down, in Unix milliseconds>`. A down alert, its reminders and
//! its recovery carry the same key (a down alert's `at` is its recovery's `down_since`), so
//! a receiver can open, update and close one ticket with it. Certificate alerts have none.
//!
//! # Templates
//!
//! `body_template` is rendered with the object above as its variables: `{{ monitor.name }}`,
//! `{{ monitor.url }}`, `{{ monitor.id }}`, `{{ status }}`, `{{ event }}`, `{{ error }}`,
//! `{{ time }}`, `{{ incident.id }}`, `{{ title }}`, `{{ text }}` and, for storms,
//! `{% for m in monitors %}…{% endfor %}`. A variable that is not there renders empty
//! (`{{ monitor.name }}` in a storm). Values are inserted as they are: inside a JSON string
//! use the `tojson` filter, which quotes and escapes (`{"text": {{ text|tojson }}}`). The
//! template is compiled when the channel is saved, so one that does not parse is refused
//! then (`settings.body_template`, with the line); a template that fails while rendering
//! (a wrong filter argument, say) rejects that one message. Rendering is bounded (fuel) and
//! the body is at most 1 MiB.
//!
//! # Headers and signature
//!
//! Requests carry `Content-Type: application/json` unless `headers` sets another, and
//! `X-Upwatch-Event: <event>`. Header names starting with `X-Upwatch-`, and `Host`,
//! `Content-Length`, `Transfer-Encoding` and `Connection`, cannot be set.
//!
//! With `secret`, each request also carries `X-Upwatch-Signature-256: sha256=<hex>`, the
//! HMAC-SHA256 of the exact body bytes keyed with the secret, as GitHub's
//! `X-Hub-Signature-256`. A receiver verifies it by computing the HMAC-SHA256 of the raw body
//! it received (before any JSON parsing) with the same secret, hex-encoding it in lower
//! case, prefixing `sha256=`, and comparing with the header in constant time
//! (`hmac.compare_digest` in Python, `crypto.timingSafeEqual` in Node.js, [`verify`] here).
//! To refuse replays, it can also refuse bodies whose `time` is too old.
//!
//! # Answers
//!
//! Any 2xx is success; 401, 403, 404 and 410 disable the channel; `429` waits for
//! `Retry-After`; 408 and 5xx are tried again; other statuses reject this message.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use upwatch_core::{Alert, AlertKind};
use upwatch_notify::message::target;
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError};

use crate::http;

/// The kind's name.
pub const KIND: &str = "webhook";
/// The header holding the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Upwatch-Signature-256";
/// The header naming the event.
pub const EVENT_HEADER: &str = "X-Upwatch-Event";
/// Largest rendered body, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// The most monitors a storm's `monitors` lists (about 250 bytes each).
pub const MAX_LISTED: usize = 1000;
/// Template instructions allowed for one rendering.
const FUEL: u64 = 1_000_000;
/// Headers that only upwatch (or the HTTP client) sets.
const RESERVED_HEADERS: &[&str] = &["host", "content-length", "transfer-encoding", "connection"];

/// The settings that are secrets.
const SECRETS: &[&str] = &["url", "headers", "secret"];
/// Every setting.
const SETTINGS: &[&str] = &["url", "headers", "body_template", "secret"];

/// `down`, `recovery`, `certificate_expiry`, `reminder`, `storm`, `test` or `notice`.
pub fn event(message: &Message) -> &'static str {
    match message {
        Message::Alert(a) => a.kind.as_str(),
        Message::Storm(_) => "storm",
        Message::Test => "test",
        Message::Notice(_) => "notice",
    }
}

/// The incident `alert` belongs to: `<monitor id>-<down since, Unix ms>`, when known.
pub fn incident_id(alert: &Alert) -> Option<String> {
    let since = match alert.kind {
        AlertKind::Down => Some(alert.at),
        AlertKind::Recovery | AlertKind::Reminder => alert.down_since,
        AlertKind::CertificateExpiry => None,
    }?;
    Some(format!("{}-{}", alert.monitor_id, since.timestamp_millis()))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One monitor of an alert: `{"id", "name", "url"}`.
fn monitor(alert: &Alert) -> Value {
    json!({
        "id": alert.monitor_id.to_string(),
        "name": alert.monitor_name,
        "url": target(alert),
    })
}

fn error(alert: &Alert) -> Value {
    alert
        .error
        .as_ref()
        .map_or(Value::Null, |e| Value::String(e.to_string()))
}

fn incident(alert: &Alert) -> Value {
    incident_id(alert).map_or(Value::Null, |id| json!({ "id": id }))
}

/// The default body announcing `message` (and the variables of a template); `now` is the
/// `time` of tests and notices, which have none of their own.
pub fn payload(message: &Message, now: DateTime<Utc>) -> Value {
    let mut body = Map::new();
    body.insert("event".into(), json!(event(message)));
    body.insert("status".into(), json!(message.status()));
    body.insert("title".into(), json!(message.headline()));
    body.insert("text".into(), json!(message.text()));
    match message {
        Message::Alert(alert) => {
            body.insert("time".into(), json!(rfc3339(alert.at)));
            body.insert("monitor".into(), monitor(alert));
            body.insert("error".into(), error(alert));
            body.insert("incident".into(), incident(alert));
        }
        Message::Storm(storm) => {
            body.insert("time".into(), json!(rfc3339(storm.at())));
            let monitors: Vec<Value> = storm
                .alerts
                .iter()
                .take(MAX_LISTED)
                .map(|a| {
                    let mut m = monitor(a);
                    m["error"] = error(a);
                    m["incident"] = incident(a);
                    m
                })
                .collect();
            body.insert("monitors".into(), Value::Array(monitors));
            body.insert("monitors_total".into(), json!(storm.alerts.len()));
            if let Some(url) = &storm.dashboard_url {
                body.insert("dashboard_url".into(), json!(url));
            }
        }
        Message::Test | Message::Notice(_) => {
            body.insert("time".into(), json!(rfc3339(now)));
        }
    }
    Value::Object(body)
}

/// The template engine: no auto-escaping, undefined variables (and their attributes) render
/// empty, rendering bounded by fuel.
fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_fuel(Some(FUEL));
    env
}

/// Checks that `template` parses; the error names `settings.body_template` and carries
/// MiniJinja's message (with the line).
pub fn compile(template: &str) -> Result<(), SettingsError> {
    environment()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| {
            SettingsError::setting(
                "body_template",
                format!("is not a valid template: {}", describe(&e)),
            )
        })
}

/// A MiniJinja error with its causes, on one line.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A JSON value as a template value.
fn to_template_value(value: &Value) -> minijinja::Value {
    use minijinja::Value as V;
    match value {
        Value::Null => V::from(()),
        Value::Bool(b) => V::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => V::from(i),
            (None, Some(u)) => V::from(u),
            _ => V::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => V::from(s.as_str()),
        Value::Array(items) => items.iter().map(to_template_value).collect(),
        Value::Object(map) => V::from_pairs(
            map.iter()
                .map(|(k, v)| (V::from(k.as_str()), to_template_value(v))),
        ),
    }
}

/// `template` rendered with `variables` (an object, as [`payload`] makes).
pub fn render(template: &str, variables: &Value) -> Result<String, String> {
    let env = environment();
    let compiled = env.template_from_str(template).map_err(|e| describe(&e))?;
    let body = compiled
        .render(to_template_value(variables))
        .map_err(|e| describe(&e))?;
    if body.len() > MAX_BODY {
        return Err(format!(
            "the rendered body is {} bytes, more than {MAX_BODY}",
            body.len()
        ));
    }
    Ok(body)
}

/// The body sent for `message` with `settings`: the `body_template` rendered, or the JSON
/// of [`payload`]. A template that fails to render rejects the message.
pub fn body(settings: &Value, message: &Message, now: DateTime<Utc>) -> Result<String, SendError> {
    let variables = payload(message, now);
    match Settings::lenient(settings).opt_str("body_template") {
        Ok(Some(template)) => render(template, &variables)
            .map_err(|e| SendError::Rejected(format!("the body_template failed to render: {e}"))),
        _ => Ok(variables.to_string()),
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`, as the
/// `X-Upwatch-Signature-256` header carries it.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Upwatch-Signature-256` value) signs `body` with `secret`,
/// compared in constant time: what a receiver does.
pub fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

/// Checks the `headers` setting: valid names and values, none reserved.
fn check_headers(headers: &BTreeMap<&str, &str>) -> Result<(), SettingsError> {
    for (name, value) in headers {
        let field = |message: &str| SettingsError {
            field: format!("settings.headers.{name}"),
            message: message.to_string(),
        };
        let lower = name.to_ascii_lowercase();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(field("is not a valid HTTP header name"));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-upwatch-") {
            return Err(field("is set by upwatch and cannot be changed"));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(field(
                "must be a header value: visible ASCII characters and spaces, no line breaks",
            ));
        }
    }
    Ok(())
}

/// Posts JSON (or a templated body) to any URL: settings `url`, `headers`, `body_template`,
/// `secret`.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`WebhookNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        WebhookNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for WebhookNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for WebhookNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        s.url("url")?;
        check_headers(&s.str_map("headers")?)?;
        if let Some(template) = s.opt_str("body_template")? {
            compile(template)?;
        }
        s.opt_str("secret")?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let url = s.text("url");
        let headers = s.str_map("headers").unwrap_or_default();
        let secret = s.opt_str("secret").ok().flatten();
        let mut secrets: Vec<&str> = vec![url];
        secrets.extend(headers.values().copied());
        secrets.extend(secret);

        let body = body(settings, message, Utc::now())?;
        let mut request = self.client.post(url);
        if !headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        request = request.header(EVENT_HEADER, event(message));
        if let Some(secret) = secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, body.as_bytes()));
        }
        let answer = http::send(request.body(body), &secrets).await?;
        answer.classify(&secrets)
    }
}
