//! Matrix, through the client-server API: one `m.room.message` event per message.
//!
//! Docs: <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid>
//! (the request), <https://spec.matrix.org/latest/client-server-api/#mtext> (the event),
//! <https://spec.matrix.org/latest/client-server-api/#standard-error-response> (errors and
//! rate limits).
//!
//! | Setting        | Required | Secret | Default |
//! |----------------|----------|--------|---------|
//! | `homeserver`   | yes      | no     |         |
//! | `access_token` | yes      | yes    |         |
//! | `room_id`      | yes      | no     |         |
//!
//! `homeserver` is the client-server API's base URL (`https://matrix.example.org`);
//! `access_token` is the sending account's (a bot user that joined the room); `room_id` is
//! the room's ID (`!abc:example.org`, under the room's advanced settings), not an alias.
//!
//! The request is `PUT {homeserver}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn_id}`
//! with `Authorization: Bearer {access_token}` and the event content built by [`payload`]:
//! an `m.text` message (not `m.notice`: the default push rule `.m.rule.suppress_notices`
//! never notifies anyone of a notice, and a down alert must be noticed) with the plain text
//! in `body` and an HTML `formatted_body` (headline bold, every text escaped). The room ID
//! is percent-encoded in the path. The text is cut to [`MAX_BODY`] characters so that the
//! event stays below Matrix's 65536 bytes.
//!
//! The transaction ID ([`txn_id`]) is derived from the message (a SHA-256 of the room and the
//! alert's id, or of a storm's alert ids), so that a retried send of the same message is
//! deduplicated by the homeserver instead of posted twice. A test message or a notice gets
//! a fresh one.
//!
//! Answers ([`classify`]), by the spec's standard error response `{"errcode", "error"}`:
//!
//! | Answer                                                         | [`SendError`] |
//! |----------------------------------------------------------------|---------------|
//! | 429 `M_LIMIT_EXCEEDED` (`Retry-After`, else `retry_after_ms`)   | `RateLimited` |
//! | 401 `M_UNKNOWN_TOKEN`, 403 `M_FORBIDDEN` (not in the room), 404 | `Disabled`    |
//! | 5xx, network failure, timeout                                  | `Retryable`   |
//! | any other 4xx (`M_TOO_LARGE`, `M_BAD_JSON`...)                  | `Rejected`    |

use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use upwatch_core::AlertKind;
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError};

use crate::http::{self, Answer};

/// The kind's name.
pub const KIND: &str = "matrix";
/// Longest plain text sent, in characters: with its HTML form (escaped, so up to five
/// bytes a character) it stays below the 65536 bytes of an event.
pub const MAX_BODY: usize = 6000;

/// The settings that are secrets.
const SECRETS: &[&str] = &["access_token"];
/// Every setting.
const SETTINGS: &[&str] = &["homeserver", "access_token", "room_id"];

/// What a path segment escapes: everything but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `m.room.message` content announcing `message`.
pub fn payload(message: &Message) -> Value {
    let text = http::cut(&message.text(), MAX_BODY);
    json!({
        "msgtype": "m.text",
        "body": text,
        "format": "org.matrix.custom.html",
        "formatted_body": html(&text),
    })
}

/// The plain `text` (headline, then lines) as HTML: the headline bold, lines joined with
/// `<br>`, every text escaped.
fn html(text: &str) -> String {
    let mut lines = text.split('\n');
    let mut out = format!("<b>{}</b>", escape_html(lines.next().unwrap_or_default()));
    for line in lines {
        out.push_str("<br>");
        out.push_str(&escape_html(line));
    }
    out
}

/// `text` with `&`, `<` and `>` escaped for HTML (no attribute is ever built from it).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The transaction ID of `message` in `room_id`: the SHA-256 (hex) of the room and the
/// alert's id, or of the storm's kind and alert ids, so that sending the same message again
/// is deduplicated by the homeserver. `None` for a test message or a notice, which have no
/// id: they get a fresh one each time.
pub fn txn_id(room_id: &str, message: &Message) -> Option<String> {
    let key = match message {
        Message::Alert(a) => format!("upwatch/{room_id}/alert/{}", a.id),
        Message::Storm(s) => {
            let kind = match s.kind {
                AlertKind::Recovery => "recovery",
                _ => "down",
            };
            let ids: Vec<String> = s.alerts.iter().map(|a| a.id.to_string()).collect();
            format!("upwatch/{room_id}/storm/{kind}/{}", ids.join(","))
        }
        Message::Test | Message::Notice(_) => return None,
    };
    Some(hex::encode(Sha256::digest(key.as_bytes())))
}

/// `PUT` URL of `message`'s event: the room ID percent-encoded.
pub fn url(homeserver: &str, room_id: &str, txn_id: &str) -> String {
    format!(
        "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        homeserver.trim().trim_end_matches('/'),
        utf8_percent_encode(room_id.trim(), SEGMENT),
        utf8_percent_encode(txn_id, SEGMENT),
    )
}

/// Sorts a homeserver's answer into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the texts.
pub fn classify(answer: &Answer, secrets: &[&str]) -> Result<(), SendError> {
    if answer.is_success() {
        return Ok(());
    }
    let json = answer.json();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let describe = || match (field("errcode"), field("error")) {
        (Some(code), error) => http::scrub(
            format!(
                "HTTP {}: {code}{}",
                answer.status,
                error
                    .map(|e| format!(": {}", http::cut(&e, 200)))
                    .unwrap_or_default()
            ),
            secrets,
        ),
        _ => answer.describe(secrets),
    };
    Err(match answer.status {
        429 => {
            let from_body = json
                .as_ref()
                .and_then(|v| v.get("retry_after_ms"))
                .and_then(Value::as_u64)
                .map(|ms| Duration::from_millis(ms).min(http::MAX_RETRY_AFTER));
            // The spec prefers the header; `retry_after_ms` is its older form.
            let retry_after = match (&answer.retry_after_header, from_body) {
                (None, Some(d)) => d,
                (header, _) => http::retry_after(b"", header.as_deref()),
            };
            SendError::RateLimited { retry_after }
        }
        401 | 403 | 404 => SendError::Disabled(describe()),
        _ => match answer.classify(secrets) {
            Err(SendError::Retryable(_)) => SendError::Retryable(describe()),
            Err(SendError::Disabled(_)) => SendError::Disabled(describe()),
            Err(SendError::Rejected(_)) | Ok(()) => SendError::Rejected(describe()),
            Err(other) => other,
        },
    })
}

/// Posts messages to a Matrix room (see the module's documentation).
#[derive(Debug, Clone)]
pub struct MatrixNotifier {
    client: reqwest::Client,
}

impl MatrixNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`MatrixNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        MatrixNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for MatrixNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for MatrixNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        let homeserver = s.url("homeserver")?;
        if homeserver.query().is_some() || homeserver.fragment().is_some() {
            return Err(SettingsError::setting(
                "homeserver",
                "must be the homeserver's base URL, without a query or fragment",
            ));
        }
        s.str("access_token")?;
        let room = s.str("room_id")?.trim();
        if !room.starts_with('!') || room.len() < 2 || room.chars().any(char::is_whitespace) {
            return Err(SettingsError::setting(
                "room_id",
                "must be a room ID like !abc:example.org (in the room's advanced settings), \
                 not an alias",
            ));
        }
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let get = |name| s.text(name);
        let (homeserver, token, room) = (
            get("homeserver"),
            get("access_token").trim(),
            get("room_id"),
        );
        let txn = txn_id(room.trim(), message)
            .unwrap_or_else(|| format!("upwatch-{}", uuid::Uuid::new_v4().simple()));
        let request = self
            .client
            .put(url(homeserver, room, &txn))
            .bearer_auth(token)
            .json(&payload(message));
        let secrets = [token];
        let answer = http::send(request, &secrets).await?;
        classify(&answer, &secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_percent_encoded() {
        assert_eq!(
            url("https://m.example.org/", "!abc:example.org", "t1"),
            "https://m.example.org/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t1"
        );
    }

    #[test]
    fn html_escapes_every_line() {
        assert_eq!(html("a<b\nc&d"), "<b>a&lt;b</b><br>c&amp;d");
    }
}
