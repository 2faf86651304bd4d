//! Pushover: one message through the Message API.
//!
//! Docs: <https://pushover.net/api> (the request, limits, answers),
//! <https://pushover.net/api#priority>, <https://pushover.net/api#limits>,
//! <https://support.pushover.net/i12-message-size-and-frequency-limitations>.
//!
//! | Setting     | Required | Secret | Default                      |
//! |-------------|----------|--------|------------------------------|
//! | `user_key`  | yes      | yes    |                              |
//! | `app_token` | yes      | yes    |                              |
//! | `device`    | no       | no     | (every device of the user)   |
//! | `priority`  | no       | no     | 1 down, 0 otherwise          |
//! | `api_url`   | no       | no     | `https://api.pushover.net`   |
//!
//! `user_key` is the user's (or a delivery group's) 30-character key; `app_token` the
//! 30-character token of an application registered at pushover.net. `device` names one
//! device (or several, comma-separated). `priority` is -2 (no notification), -1 (quiet),
//! 0 (normal) or 1 (high: bypasses quiet hours) for every message; 2 (emergency, repeated
//! until acknowledged) is not offered, since it needs `retry`/`expire` and a receipt that
//! upwatch does not follow. Without it, a down alert (or reminder, or storm) is sent at 1
//! and anything else at 0.
//!
//! The request is `POST {api_url}/1/messages.json`, form-encoded ([`form`]): `token`,
//! `user`, `title` (the headline, at most 250 characters), `message` (the lines, plain text,
//! at most 1024 characters), `priority`, `timestamp` (when the alert happened), `device`
//! when set, and `url` / `url_title` for a storm's dashboard (at most 512 and 100
//! characters). No `html=1`: nothing a monitor is named can become markup.
//!
//! Answers ([`classify`]) are `{"status": 1, "request": "..."}`, or a 4xx with
//! `{"status": 0, "errors": [...], "<field>": "invalid"}`:
//!
//! | Answer                                                                  | [`SendError`] |
//! |-------------------------------------------------------------------------|---------------|
//! | 4xx naming the token, the user key or the device invalid ("application token is invalid", "user key is invalid"...), 401, 403, 404 | `Disabled` |
//! | 429: the monthly message quota is used up (it resets on the 1st of the month, UTC) | `RateLimited` after [`QUOTA_WAIT`] (one hour) |
//! | 5xx, network failure, timeout                                           | `Retryable`   |
//! | any other 4xx, a 2xx without `status: 1`                                 | `Rejected`    |
//!
//! The keys travel in the form body; they are scrubbed out of every error text all the same.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError, Severity};

use crate::http::{self, Answer};

/// The kind's name.
pub const KIND: &str = "pushover";
/// Pushover's API.
pub const API_URL: &str = "https://api.pushover.net";
/// Longest title, in characters.
pub const MAX_TITLE: usize = 250;
/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 1024;
/// Longest supplementary URL, in characters.
pub const MAX_URL: usize = 512;
/// Longest supplementary URL's title, in characters.
pub const MAX_URL_TITLE: usize = 100;
/// Wait after a 429. Pushover answers 429 when the application's monthly quota (10,000
/// messages for free) is used up, and the quota resets only on the 1st of the month: the
/// delivery is tried again each hour rather than every few seconds, so that a quota raised
/// (or reset) by then is used within the hour.
pub const QUOTA_WAIT: Duration = Duration::from_secs(3600);

/// The settings that are secrets.
const SECRETS: &[&str] = &["user_key", "app_token"];
/// Every setting.
const SETTINGS: &[&str] = &["user_key", "app_token", "device", "priority", "api_url"];

/// The default priority of `message`: 1 (high) when something is down, 0 otherwise.
pub fn default_priority(message: &Message) -> i64 {
    match message.severity() {
        Severity::Down => 1,
        Severity::Up | Severity::Warning | Severity::Info => 0,
    }
}

/// The form posted for `message` with the channel's (validated) `settings`, in order.
pub fn form(settings: &Value, message: &Message) -> Vec<(&'static str, String)> {
    let s = Settings::lenient(settings);
    let get = |name| s.opt_str(name).ok().flatten().map(|v| v.trim().to_string());
    let priority = s
        .get("priority")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| default_priority(message));
    let mut form = vec![
        ("token", get("app_token").unwrap_or_default()),
        ("user", get("user_key").unwrap_or_default()),
        ("title", http::cut(&message.headline(), MAX_TITLE)),
        (
            "message",
            http::cut(&message.lines().join("\n"), MAX_MESSAGE),
        ),
        ("priority", priority.to_string()),
    ];
    let at = match message {
        Message::Alert(a) => Some(a.at),
        Message::Storm(s) => Some(s.at()),
        Message::Test | Message::Notice(_) => None,
    };
    if let Some(at) = at {
        form.push(("timestamp", at.timestamp().to_string()));
    }
    if let Some(device) = get("device") {
        form.push(("device", device));
    }
    if let Message::Storm(storm) = message {
        if let Some(url) = storm
            .dashboard_url
            .as_deref()
            .filter(|u| u.len() <= MAX_URL)
        {
            form.push(("url", url.to_string()));
            form.push(("url_title", http::cut("Open the dashboard", MAX_URL_TITLE)));
        }
    }
    form
}

/// The fields an answer names invalid that make the channel useless.
const PERMANENT_FIELDS: &[&str] = &["token", "user", "device"];
/// Error texts that say the same.
const PERMANENT_ERRORS: &[&str] = &[
    "application token is invalid",
    "user key is invalid",
    "user identifier is not a valid",
    "device name is not valid",
];

/// Sorts Pushover's answer into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the texts.
pub fn classify(answer: &Answer, secrets: &[&str]) -> Result<(), SendError> {
    let json = answer.json();
    let status = json
        .as_ref()
        .and_then(|v| v.get("status"))
        .and_then(Value::as_i64);
    if answer.is_success() && status == Some(1) {
        return Ok(());
    }
    let errors: Vec<String> = json
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let describe = || {
        if errors.is_empty() {
            answer.describe(secrets)
        } else {
            http::scrub(
                format!(
                    "HTTP {}: {}",
                    answer.status,
                    http::cut(&errors.join("; "), 200)
                ),
                secrets,
            )
        }
    };
    let permanent = PERMANENT_FIELDS.iter().any(|field| {
        json.as_ref()
            .and_then(|v| v.get(*field))
            .and_then(Value::as_str)
            == Some("invalid")
    }) || errors.iter().any(|e| {
        let e = e.to_ascii_lowercase();
        PERMANENT_ERRORS.iter().any(|p| e.contains(p))
    });
    Err(match answer.status {
        429 => SendError::RateLimited {
            retry_after: QUOTA_WAIT,
        },
        400..=499 if permanent => SendError::Disabled(describe()),
        200..=299 => SendError::Rejected(describe()),
        _ => match answer.classify(secrets) {
            Err(SendError::Retryable(_)) => SendError::Retryable(describe()),
            Err(SendError::Disabled(_)) => SendError::Disabled(describe()),
            Err(SendError::Rejected(_)) | Ok(()) => SendError::Rejected(describe()),
            Err(other) => other,
        },
    })
}

/// Whether `key` looks like a Pushover user key or application token: 30 letters and digits.
fn is_key(key: &str) -> bool {
    key.len() == 30 && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Sends messages through Pushover (see the module's documentation).
#[derive(Debug, Clone)]
pub struct PushoverNotifier {
    client: reqwest::Client,
}

impl PushoverNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`PushoverNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        PushoverNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for PushoverNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for PushoverNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        if !is_key(s.str("user_key")?.trim()) {
            return Err(SettingsError::setting(
                "user_key",
                "must be a Pushover user or group key: 30 letters and digits",
            ));
        }
        if !is_key(s.str("app_token")?.trim()) {
            return Err(SettingsError::setting(
                "app_token",
                "must be a Pushover application's API token: 30 letters and digits",
            ));
        }
        if let Some(device) = s.opt_str("device")? {
            let valid = device.trim().split(',').all(|d| {
                let d = d.trim();
                !d.is_empty()
                    && d.len() <= 25
                    && d.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
            if !valid {
                return Err(SettingsError::setting(
                    "device",
                    "must be a device's name (letters, digits, _ and -, at most 25), or \
                     several separated by commas",
                ));
            }
        }
        match s.get("priority") {
            None | Some(Value::Null) => {}
            Some(v) if v.as_i64().is_some_and(|p| (-2..=1).contains(&p)) => {}
            Some(_) => {
                return Err(SettingsError::setting(
                    "priority",
                    "must be a whole number from -2 to 1 (2, emergency, is not offered)",
                ))
            }
        }
        s.opt_url("api_url")?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let get = |name| s.text(name);
        let api = s.base_url("api_url", API_URL);
        let secrets = [get("user_key"), get("app_token")];
        let request = self
            .client
            .post(format!("{api}/1/messages.json"))
            .form(&form(settings, message));
        let answer = http::send(request, &secrets).await?;
        classify(&answer, &secrets)
    }
}
