//! Gotify (self-hosted push notifications): one message to an application.
//!
//! Docs: <https://gotify.net/docs/pushmsg> (the request), <https://gotify.net/api-docs>
//! (`POST /message`, the error model), <https://gotify.net/docs/msgextras> (extras).
//!
//! | Setting      | Required | Secret | Default                                            |
//! |--------------|----------|--------|----------------------------------------------------|
//! | `server_url` | yes      | no     |                                                    |
//! | `app_token`  | yes      | yes    |                                                    |
//! | `priority`   | no       | no     | 8 down, 6 warning, 5 recovery, test and notices     |
//!
//! `server_url` is the server's base URL (`https://gotify.example.com`, with its path
//! prefix when it has one); `app_token` is the token of an application created in Gotify's
//! web UI (Apps > Create application). `priority` (0 to 10) replaces the default priority of
//! every message; Gotify's Android app notifies from 1, with sound from 4, and pops up from 8.
//!
//! The request is `POST {server_url}/message` with the header `X-Gotify-Key: {app_token}`
//! (kept out of the URL, where `?token=` would end in logs) and the JSON built by
//! [`payload`]: `title` (the headline), `message` (the lines), `priority` and `extras` with
//! `client::display.contentType` `text/plain` (so that no monitor name is rendered as
//! Markdown) and, for a storm with a dashboard, `client::notification.click.url`. Gotify
//! documents no length limit; the title is cut to 250 characters and the message to 4096.
//!
//! Answers ([`classify`]), with Gotify's `{"error", "errorCode", "errorDescription"}`:
//!
//! | Answer                                            | [`SendError`] |
//! |---------------------------------------------------|---------------|
//! | 401, 403 (the token is wrong or was deleted), 404 | `Disabled`    |
//! | 429 (a proxy's; `Retry-After`)                    | `RateLimited` |
//! | 5xx, network failure, timeout                     | `Retryable`   |
//! | 400 and any other 4xx                             | `Rejected`    |

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError, Severity};

use crate::http::{self, Answer};

/// The kind's name.
pub const KIND: &str = "gotify";
/// Longest title, in characters.
pub const MAX_TITLE: usize = 250;
/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 4096;

/// The settings that are secrets.
const SECRETS: &[&str] = &["app_token"];
/// Every setting.
const SETTINGS: &[&str] = &["server_url", "app_token", "priority"];

/// The default priority of `message`: 8 (pops up) when something is down, 6 for a warning
/// (a certificate expires, monitors go unchecked), 5 otherwise.
pub fn default_priority(message: &Message) -> u64 {
    match message.severity() {
        Severity::Down => 8,
        Severity::Warning => 6,
        Severity::Up | Severity::Info => 5,
    }
}

/// The JSON posted for `message` with the channel's (validated) `settings`.
pub fn payload(settings: &Value, message: &Message) -> Value {
    let priority = Settings::lenient(settings)
        .get("priority")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| default_priority(message));
    let mut extras = json!({ "client::display": { "contentType": "text/plain" } });
    if let Message::Storm(storm) = message {
        if let Some(url) = &storm.dashboard_url {
            extras["client::notification"] = json!({ "click": { "url": url } });
        }
    }
    json!({
        "title": http::cut(&message.headline(), MAX_TITLE),
        "message": http::cut(&message.lines().join("\n"), MAX_MESSAGE),
        "priority": priority,
        "extras": extras,
    })
}

/// `POST` URL of a message: `{server_url}/message`, whatever the server URL ends with.
pub fn url(server_url: &str) -> String {
    format!("{}/message", server_url.trim().trim_end_matches('/'))
}

/// Sorts Gotify's answer into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the texts.
pub fn classify(answer: &Answer, secrets: &[&str]) -> Result<(), SendError> {
    if answer.is_success() {
        return Ok(());
    }
    let description = answer.json().and_then(|v| {
        let error = v.get("error").and_then(Value::as_str)?.to_string();
        Some(match v.get("errorDescription").and_then(Value::as_str) {
            Some(d) => format!("{error}: {d}"),
            None => error,
        })
    });
    let describe = || match &description {
        Some(d) => http::scrub(
            format!("HTTP {}: {}", answer.status, http::cut(d, 200)),
            secrets,
        ),
        None => answer.describe(secrets),
    };
    match answer.classify(secrets) {
        Err(SendError::Retryable(_)) => Err(SendError::Retryable(describe())),
        Err(SendError::Disabled(_)) => Err(SendError::Disabled(describe())),
        Err(SendError::Rejected(_)) => Err(SendError::Rejected(describe())),
        other => other,
    }
}

/// Pushes messages to a Gotify application (see the module's documentation).
#[derive(Debug, Clone)]
pub struct GotifyNotifier {
    client: reqwest::Client,
}

impl GotifyNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`GotifyNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        GotifyNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for GotifyNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for GotifyNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        let server = s.url("server_url")?;
        if server.query().is_some() || server.fragment().is_some() {
            return Err(SettingsError::setting(
                "server_url",
                "must be the server's base URL, without a query (the token goes in app_token)",
            ));
        }
        let token = s.str("app_token")?;
        if token
            .trim()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(SettingsError::setting(
                "app_token",
                "must be an application's token, without spaces",
            ));
        }
        s.opt_u64("priority", 0..=10)?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let server = s.text("server_url");
        let token = s.text("app_token");
        let request = self
            .client
            .post(url(server))
            .header("X-Gotify-Key", token)
            .json(&payload(settings, message));
        let secrets = [token];
        let answer = http::send(request, &secrets).await?;
        classify(&answer, &secrets)
    }
}
