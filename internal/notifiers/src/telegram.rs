//! Telegram, through a bot of the Bot API: `sendMessage`.
//!
//! Docs: <https://core.telegram.org/bots/api#sendmessage> (the request),
//! <https://core.telegram.org/bots/api#making-requests> (answers, `ResponseParameters`),
//! <https://core.telegram.org/bots/api#formatting-options> (HTML parse mode).
//!
//! | Setting             | Required | Secret | Default                    |
//! |---------------------|----------|--------|----------------------------|
//! | `bot_token`         | yes      | yes    |                            |
//! | `chat_id`           | yes      | no     |                            |
//! | `message_thread_id` | no       | no     | (the chat's main thread)   |
//! | `api_url`           | no       | no     | `https://api.telegram.org` |
//!
//! `bot_token` is the token @BotFather gives (`123456789:AA...`). `chat_id` is a chat's
//! number (`-1001234567890` for a supergroup or channel, given as a string or a JSON number)
//! or a public channel's `@username`; a number is sent as a JSON number. `message_thread_id`
//! picks a forum topic of a supergroup.
//!
//! The request is `POST {api_url}/bot{bot_token}/sendMessage` with the JSON body built by
//! [`payload`]: the text in HTML parse mode (the headline bold, every text from a monitor
//! escaped, so that a monitor named `<b>` cannot inject markup) and link previews off. The
//! text is cut to Telegram's 4096 characters (counted as Telegram does, in UTF-16 code
//! units, after the markup is parsed).
//!
//! Answers are `{"ok": true, "result": {...}}`, or `{"ok": false, "error_code": N,
//! "description": "...", "parameters": {...}}`, sorted by [`classify`]:
//!
//! | Answer                                                              | [`SendError`]      |
//! |---------------------------------------------------------------------|--------------------|
//! | 429 (`parameters.retry_after` seconds)                              | `RateLimited`      |
//! | 401 (token revoked), 403 (bot blocked, kicked, not a member), 404   | `Disabled`         |
//! | 400 "chat not found", "message thread not found", "not enough rights", a group upgraded to a supergroup (`parameters.migrate_to_chat_id`, named in the reason) | `Disabled` |
//! | any other 400                                                       | `Rejected`         |
//! | 5xx, network failure, timeout                                       | `Retryable`        |
//!
//! The bot token is part of the URL, and request errors print the URL: it is scrubbed out of
//! every error text, which never contains it.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError};

use crate::http::{self, Answer};

/// The kind's name.
pub const KIND: &str = "telegram";
/// The Bot API's address.
pub const API_URL: &str = "https://api.telegram.org";
/// Longest message text, in UTF-16 code units after the markup is parsed.
pub const MAX_TEXT: usize = 4096;
/// Longest headline kept, so that the lines after it always have room.
const MAX_HEADLINE: usize = 512;

/// The settings that are secrets.
const SECRETS: &[&str] = &["bot_token"];
/// Every setting.
const SETTINGS: &[&str] = &["bot_token", "chat_id", "message_thread_id", "api_url"];

/// Descriptions of a 400 that mean the channel can never work as it is set up: the chat is
/// gone or unknown, the topic was deleted, the bot may not write there.
const PERMANENT_400: &[&str] = &[
    "chat not found",
    "message thread not found",
    "not enough rights",
    "have no rights to send",
    "need administrator rights",
    "chat_write_forbidden",
    "peer_id_invalid",
];

/// The `sendMessage` body announcing `message` to the chat of `settings` (which were
/// validated): `chat_id` (a number when it is one), the HTML text, `parse_mode`, link
/// previews off and, when set, `message_thread_id`.
pub fn payload(settings: &Value, message: &Message) -> Value {
    let s = Settings::lenient(settings);
    let mut body = json!({
        "chat_id": chat_id(s.get("chat_id")),
        "text": text(message),
        "parse_mode": "HTML",
        "link_preview_options": { "is_disabled": true },
    });
    if let Some(thread) = s.get("message_thread_id").and_then(Value::as_u64) {
        body["message_thread_id"] = thread.into();
    }
    body
}

/// The chat as Telegram takes it: a chat number as a JSON number, `@username` as a string.
fn chat_id(value: Option<&Value>) -> Value {
    match value {
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(n) => n.into(),
            Err(_) => s.trim().into(),
        },
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// The message in Telegram's HTML: the headline bold, then the lines, every text escaped,
/// at most [`MAX_TEXT`] UTF-16 code units once parsed.
pub fn text(message: &Message) -> String {
    let headline = cut_utf16(&message.headline(), MAX_HEADLINE);
    let room = MAX_TEXT - utf16_len(&headline) - 1;
    let body = cut_utf16(&message.lines().join("\n"), room);
    let mut out = format!("<b>{}</b>", escape_html(&headline));
    if !body.is_empty() {
        out.push('\n');
        out.push_str(&escape_html(&body));
    }
    out
}

/// `text` with `&`, `<` and `>` escaped, as Telegram's HTML parse mode requires.
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

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` cut to at most `max` UTF-16 code units (Telegram's characters), the cut marked
/// with `…`.
fn cut_utf16(text: &str, max: usize) -> String {
    if utf16_len(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() > max.saturating_sub(1) {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// Sorts a Bot API answer into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the texts.
pub fn classify(answer: &Answer, secrets: &[&str]) -> Result<(), SendError> {
    let json = answer.json();
    let ok = json
        .as_ref()
        .and_then(|v| v.get("ok"))
        .and_then(Value::as_bool);
    if answer.is_success() && ok != Some(false) {
        return Ok(());
    }
    let description = json
        .as_ref()
        .and_then(|v| v.get("description"))
        .and_then(Value::as_str);
    let describe = || match description {
        Some(d) => http::scrub(
            format!("HTTP {}: {}", answer.status, http::cut(d, 200)),
            secrets,
        ),
        None => answer.describe(secrets),
    };
    let parameters = json.as_ref().and_then(|v| v.get("parameters"));
    match answer.status {
        429 => Err(SendError::RateLimited {
            retry_after: http::retry_after(&answer.body, answer.retry_after_header.as_deref()),
        }),
        401 | 403 | 404 => Err(SendError::Disabled(describe())),
        400 => {
            if let Some(new_id) = parameters
                .and_then(|p| p.get("migrate_to_chat_id"))
                .and_then(Value::as_i64)
            {
                return Err(SendError::Disabled(format!(
                    "{}; the group became a supergroup: set chat_id to {new_id}",
                    describe()
                )));
            }
            let lower = description.unwrap_or_default().to_ascii_lowercase();
            if PERMANENT_400.iter().any(|p| lower.contains(p)) {
                Err(SendError::Disabled(describe()))
            } else {
                Err(SendError::Rejected(describe()))
            }
        }
        s if (200..300).contains(&s) => Err(SendError::Rejected(describe())),
        _ => match answer.classify(secrets) {
            Err(SendError::Retryable(_)) => Err(SendError::Retryable(describe())),
            Err(SendError::Rejected(_)) => Err(SendError::Rejected(describe())),
            Err(SendError::Disabled(_)) => Err(SendError::Disabled(describe())),
            other => other,
        },
    }
}

/// Whether `token` looks like a bot token: digits, `:`, then letters, digits, `_` or `-`.
fn is_bot_token(token: &str) -> bool {
    match token.split_once(':') {
        Some((id, secret)) => {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !secret.is_empty()
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        None => false,
    }
}

/// Sends messages through a Telegram bot (see the module's documentation).
#[derive(Debug, Clone)]
pub struct TelegramNotifier {
    client: reqwest::Client,
}

impl TelegramNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`TelegramNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        TelegramNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for TelegramNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for TelegramNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        if !is_bot_token(s.str("bot_token")?.trim()) {
            return Err(SettingsError::setting(
                "bot_token",
                "must be the token @BotFather gave the bot, like 123456789:AAE...",
            ));
        }
        let chat_ok = match s.get("chat_id") {
            Some(Value::Number(n)) => n.is_i64(),
            _ => {
                let chat = s.str("chat_id")?.trim();
                chat.parse::<i64>().is_ok()
                    || (chat.len() > 1
                        && chat.starts_with('@')
                        && chat[1..]
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            }
        };
        if !chat_ok {
            return Err(SettingsError::setting(
                "chat_id",
                "must be a chat's number (like -1001234567890) or a channel's @username",
            ));
        }
        s.opt_u64("message_thread_id", 1..=i64::MAX as u64)?;
        s.opt_url("api_url")?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let token = s.text("bot_token");
        let api = s.base_url("api_url", API_URL);
        let url = format!("{api}/bot{token}/sendMessage");
        let secrets = [token];
        let request = self.client.post(&url).json(&payload(settings, message));
        let answer = http::send(request, &secrets).await?;
        classify(&answer, &secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Value) -> Answer {
        Answer {
            status,
            retry_after_header: None,
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn texts_are_cut_in_utf16_units() {
        assert_eq!(cut_utf16("abc", 3), "abc");
        assert_eq!(cut_utf16("abcd", 3), "ab…");
        // 🔴 is two UTF-16 units.
        assert_eq!(cut_utf16("🔴🔴", 3), "🔴…");
    }

    #[test]
    fn a_migrated_group_names_its_new_chat() {
        let a = answer(
            400,
            json!({"ok": false, "error_code": 400,
                   "description": "Bad Request: group chat was upgraded to a supergroup chat",
                   "parameters": {"migrate_to_chat_id": -1001234}}),
        );
        match classify(&a, &[]) {
            Err(SendError::Disabled(reason)) => assert!(reason.contains("-1001234"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tokens_are_checked() {
        assert!(is_bot_token("123456:ABC-def_1"));
        assert!(!is_bot_token("123456"));
        assert!(!is_bot_token("abc:def"));
        assert!(!is_bot_token("123:de/f"));
    }
}
