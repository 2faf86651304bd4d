//! ntfy (<https://ntfy.sh> or a self-hosted server): one message published as JSON.
//!
//! Docs: <https://docs.ntfy.sh/publish/#publish-as-json> (the request),
//! <https://docs.ntfy.sh/publish/#message-priority>, <https://docs.ntfy.sh/publish/#tags-emojis>,
//! <https://docs.ntfy.sh/publish/#access-tokens> (authentication),
//! <https://docs.ntfy.sh/publish/#limitations> (limits and 429s).
//!
//! | Setting     | Required | Secret | Default                                         |
//! |-------------|----------|--------|-------------------------------------------------|
//! | `topic_url` | yes      | yes    |                                                 |
//! | `token`     | no       | yes    | (none: an open topic)                           |
//! | `priority`  | no       | no     | 5 down, 4 warning, 3 recovery, test and notices |
//!
//! `topic_url` is the topic's address, `https://ntfy.sh/mytopic`: on a public server the
//! topic's name is its password, so the whole URL is a secret. `token` is an access token
//! (`tk_...`) of a server that protects the topic, sent as `Authorization: Bearer`.
//! `priority` (1 to 5) replaces the default priority of every message.
//!
//! The request is `POST` to the server's root (the topic URL without its last segment,
//! `https://ntfy.sh/`) with the JSON built by [`payload`]: `topic`, `title` (the headline
//! without its icon), `message` (the lines, plain text: ntfy renders no markup unless told,
//! so nothing can be injected), `priority`, `tags` (an emoji by severity: `rotating_light`,
//! `white_check_mark`, `warning`, `information_source`) and, for a storm with a dashboard,
//! `click`. The message is cut to ntfy's default 4096-byte limit.
//!
//! Answers ([`classify`]), with ntfy's `{"code", "http", "error", "link"}` errors:
//!
//! | Answer                                                              | [`SendError`] |
//! |---------------------------------------------------------------------|---------------|
//! | 429 `42901` too many requests (`Retry-After`, else 5 s: the bucket's refill) | `RateLimited` |
//! | 429 other quotas, the daily message quota `42908` (`Retry-After`, else 10 min) | `RateLimited` |
//! | 401, 403 (the topic is protected, the token is wrong), 404          | `Disabled`    |
//! | 5xx, network failure, timeout                                       | `Retryable`   |
//! | 400, 413 and any other 4xx                                          | `Rejected`    |

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError, Severity};

use crate::http::{self, Answer};

/// The kind's name.
pub const KIND: &str = "ntfy";
/// Longest message, in bytes (ntfy's default `message-size-limit`).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longest title kept, in characters.
pub const MAX_TITLE: usize = 256;
/// Wait after a `42901` (too many requests) without `Retry-After`: ntfy's request bucket
/// refills one request every 5 s by default.
pub const REQUEST_LIMIT_WAIT: Duration = Duration::from_secs(5);
/// Wait after another 429 (a daily quota) without `Retry-After`.
pub const QUOTA_WAIT: Duration = http::MAX_RETRY_AFTER;

/// The settings that are secrets.
const SECRETS: &[&str] = &["topic_url", "token"];
/// Every setting.
const SETTINGS: &[&str] = &["topic_url", "token", "priority"];

/// The server's root and the topic of `topic_url`: `https://ntfy.sh/mytopic` is
/// `("https://ntfy.sh/", "mytopic")`. `None` when it is not a URL ending in a topic name
/// (letters, digits, `-` and `_`, at most 64).
pub fn split_topic_url(topic_url: &str) -> Option<(String, String)> {
    let mut url = url::Url::parse(topic_url.trim()).ok()?;
    let path = url.path().trim_end_matches('/').to_string();
    let slash = path.rfind('/')?;
    let topic = &path[slash + 1..];
    let valid = !topic.is_empty()
        && topic.len() <= 64
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return None;
    }
    let topic = topic.to_string();
    url.set_path(&path[..=slash]);
    url.set_fragment(None);
    Some((url.to_string(), topic))
}

/// The default priority of `message`: 5 (max) when something is down, 4 (high) for a
/// warning (a certificate expires, monitors go unchecked), 3 (default) otherwise.
pub fn default_priority(message: &Message) -> u64 {
    match message.severity() {
        Severity::Down => 5,
        Severity::Warning => 4,
        Severity::Up | Severity::Info => 3,
    }
}

/// The emoji tag of `message`, shown before its title.
pub fn tag(message: &Message) -> &'static str {
    match message.severity() {
        Severity::Down => "rotating_light",
        Severity::Up => "white_check_mark",
        Severity::Warning => "warning",
        Severity::Info => "information_source",
    }
}

/// The JSON published for `message` with the channel's (validated) `settings`.
pub fn payload(settings: &Value, message: &Message) -> Value {
    let s = Settings::lenient(settings);
    let topic = s
        .opt_str("topic_url")
        .ok()
        .flatten()
        .and_then(split_topic_url)
        .map(|(_, topic)| topic)
        .unwrap_or_default();
    let priority = s
        .get("priority")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| default_priority(message));
    let mut body = json!({
        "topic": topic,
        "title": http::cut(without_icon(&message.headline()), MAX_TITLE),
        "message": cut_bytes(&message.lines().join("\n"), MAX_MESSAGE_BYTES),
        "priority": priority,
        "tags": [tag(message)],
    });
    if let Message::Storm(storm) = message {
        if let Some(url) = &storm.dashboard_url {
            body["click"] = url.as_str().into();
        }
    }
    body
}

/// `headline` without its leading icon (`🔴 `): the tag shows one already.
fn without_icon(headline: &str) -> &str {
    match headline.split_once(' ') {
        Some((icon, rest)) if !icon.chars().any(char::is_alphanumeric) => rest,
        _ => headline,
    }
}

/// `text` cut to at most `max` bytes at a character boundary, the cut marked with `…`.
fn cut_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let room = max.saturating_sub('…'.len_utf8());
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Sorts ntfy's answer into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the texts.
pub fn classify(answer: &Answer, secrets: &[&str]) -> Result<(), SendError> {
    if answer.is_success() {
        return Ok(());
    }
    let json = answer.json();
    let code = json
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(Value::as_u64);
    let error = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str);
    let describe = || match error {
        Some(e) => http::scrub(
            format!("HTTP {}: {}", answer.status, http::cut(e, 200)),
            secrets,
        ),
        None => answer.describe(secrets),
    };
    Err(match answer.status {
        429 => SendError::RateLimited {
            retry_after: match (&answer.retry_after_header, code) {
                (Some(header), _) => http::retry_after(b"", Some(header)),
                (None, Some(c)) if c != 42901 => QUOTA_WAIT,
                (None, _) => REQUEST_LIMIT_WAIT,
            },
        },
        401 | 403 | 404 => SendError::Disabled(describe()),
        _ => match answer.classify(secrets) {
            Err(SendError::Retryable(_)) => SendError::Retryable(describe()),
            Err(SendError::Disabled(_)) => SendError::Disabled(describe()),
            Err(SendError::Rejected(_)) | Ok(()) => SendError::Rejected(describe()),
            Err(other) => other,
        },
    })
}

/// Publishes messages to an ntfy topic (see the module's documentation).
#[derive(Debug, Clone)]
pub struct NtfyNotifier {
    client: reqwest::Client,
}

impl NtfyNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`NtfyNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        NtfyNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for NtfyNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for NtfyNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        let url = s.url("topic_url")?;
        if split_topic_url(url.as_str()).is_none() {
            return Err(SettingsError::setting(
                "topic_url",
                "must end with the topic's name (letters, digits, - and _, at most 64), \
                 like https://ntfy.sh/mytopic",
            ));
        }
        s.opt_str("token")?;
        s.opt_u64("priority", 1..=5)?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let topic_url = s.text("topic_url");
        let token = s.opt_str("token").ok().flatten().map(str::trim);
        let (root, topic) = split_topic_url(topic_url).ok_or_else(|| {
            SendError::Disabled("settings.topic_url does not end with a topic's name".into())
        })?;
        let secrets = [topic_url, topic.as_str(), token.unwrap_or_default()];
        let mut request = self.client.post(root).json(&payload(settings, message));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = http::send(request, &secrets).await?;
        classify(&answer, &secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_and_topic_come_from_the_topic_url() {
        assert_eq!(
            split_topic_url("https://ntfy.sh/mytopic"),
            Some(("https://ntfy.sh/".into(), "mytopic".into()))
        );
        assert_eq!(
            split_topic_url("https://example.com/ntfy/alerts_1/"),
            Some(("https://example.com/ntfy/".into(), "alerts_1".into()))
        );
        assert_eq!(split_topic_url("https://ntfy.sh/"), None);
        assert_eq!(split_topic_url("https://ntfy.sh/a%20b"), None);
    }

    #[test]
    fn long_messages_are_cut_in_bytes() {
        let cut = cut_bytes(&"é".repeat(3000), MAX_MESSAGE_BYTES);
        assert!(cut.len() <= MAX_MESSAGE_BYTES);
        assert!(cut.ends_with('…'));
        assert_eq!(without_icon("🔴 Shop is down"), "Shop is down");
        assert_eq!(without_icon("Shop is down"), "Shop is down");
    }
}
