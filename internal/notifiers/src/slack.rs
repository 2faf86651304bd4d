//! Slack incoming webhooks, with Block Kit.
//!
//! Docs: <https://api.slack.com/messaging/webhooks> (posting), <https://api.slack.com/block-kit>
//! (blocks), <https://api.slack.com/reference/surfaces/formatting#escaping> (escaping) and
//! <https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks>
//! (errors).
//!
//! | setting       | required | secret | default | meaning                                   |
//! |---------------|----------|--------|---------|-------------------------------------------|
//! | `webhook_url` | yes      | yes    |         | the incoming webhook's URL (`https://hooks.slack.com/services/…`) |
//!
//! The body ([`payload`], a pure function of the [`Message`]) is
//!
//! ```json
//! {"text": "<the plain text, for notifications>",
//!  "blocks": [
//!    {"type": "header", "text": {"type": "plain_text", "text": "🔴 My Website is down", "emoji": true}},
//!    {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Site*\nMy Website (https://example.com)"}, …]},
//!    {"type": "context", "elements": [{"type": "mrkdwn", "text": "Time: 2024-01-16 20:00:00 UTC"}]}]}
//! ```
//!
//! A storm's section lists the names instead (the first 25, then "and N more"), followed by a
//! link to the dashboard when it is known; tests and notices are one section of text.
//!
//! Limits (Block Kit): the header is at most 150 characters, a section's text 3000, a field
//! 2000; `text` is kept under Slack's recommended 4000. User text (names, errors, URLs) has
//! `&`, `<` and `>` escaped as Slack documents, so no name can mention `<!channel>` or forge a
//! link.
//!
//! Answers: Slack answers `200 ok`. `404 no_service` / `channel_not_found` (the webhook was
//! revoked or its channel deleted), `403 action_prohibited` / `invalid_token` and
//! `410 channel_is_archived` disable the channel; `400 invalid_payload` rejects this message;
//! `429` waits for `Retry-After`; `5xx` (`rollup_error`) is tried again.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError};

use crate::http::{self, cut};

/// The kind's name.
pub const KIND: &str = "slack";
/// Longest header block text, in characters.
pub const MAX_HEADER: usize = 150;
/// Longest section text, in characters.
pub const MAX_SECTION: usize = 3000;
/// Longest section field, in characters.
pub const MAX_FIELD: usize = 2000;
/// Longest top-level `text` (Slack truncates past 40 000 and advises 4000).
pub const MAX_TEXT: usize = 4000;
/// Most fields in one section.
pub const MAX_FIELDS: usize = 10;
/// How much of one monitor's name a storm's list keeps.
const MAX_STORM_NAME: usize = 100;

/// `text` with `&`, `<` and `>` replaced by their HTML entities, as Slack's mrkdwn requires
/// (these three are its control characters; nothing else is escaped).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One `{"type": "mrkdwn", "text": ...}` object.
fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

/// The Slack body announcing `message`.
pub fn payload(message: &Message) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": cut(&message.headline(), MAX_HEADER),
            "emoji": true,
        },
    })];
    match message {
        Message::Alert(_) => {
            let mut fields = Vec::new();
            let mut time = None;
            for line in message.lines() {
                match line.split_once(": ") {
                    Some(("Time", _)) => time = Some(line),
                    Some((label, value)) => fields.push(mrkdwn(cut(
                        &format!("*{}*\n{}", escape(label), escape(value)),
                        MAX_FIELD,
                    ))),
                    None => fields.push(mrkdwn(cut(&escape(&line), MAX_FIELD))),
                }
            }
            fields.truncate(MAX_FIELDS);
            blocks.push(json!({ "type": "section", "fields": fields }));
            if let Some(time) = time {
                blocks.push(context(time));
            }
        }
        Message::Storm(storm) => {
            let list = storm
                .names()
                .iter()
                .map(|name| format!("• {}", escape(&cut(name, MAX_STORM_NAME))))
                .collect::<Vec<_>>()
                .join("\n");
            blocks.push(json!({
                "type": "section",
                "text": mrkdwn(cut(&list, MAX_SECTION)),
            }));
            if let Some(url) = &storm.dashboard_url {
                blocks.push(json!({
                    "type": "section",
                    "text": mrkdwn(format!("<{}|Open the dashboard>", escape(url).replace('|', "%7C"))),
                }));
            }
            blocks.push(context(format!(
                "Since: {}",
                upwatch_notify::message::time(storm.at())
            )));
        }
        Message::Test | Message::Notice(_) => {
            blocks.push(json!({
                "type": "section",
                "text": mrkdwn(cut(&escape(&message.lines().join("\n")), MAX_SECTION)),
            }));
        }
    }
    json!({
        "text": cut(&escape(&message.text()), MAX_TEXT),
        "blocks": blocks,
    })
}

/// A context block with one line of text.
fn context(text: String) -> Value {
    json!({ "type": "context", "elements": [mrkdwn(escape(&text))] })
}

/// Posts to Slack incoming webhooks: setting `webhook_url`.
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    client: reqwest::Client,
}

impl SlackNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`SlackNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        SlackNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for SlackNotifier {
    fn default() -> Self {
        Self::new()
    }
}

/// The settings that are secrets.
const SECRETS: &[&str] = &["webhook_url"];

#[async_trait]
impl Provider for SlackNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(&["webhook_url"])?;
        s.url("webhook_url")?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let url = Settings::lenient(settings).text("webhook_url");
        let secrets = [url];
        let answer = http::send(self.client.post(url).json(&payload(message)), &secrets).await?;
        // Slack's statuses are the common ones (404 no_service, 403 action_prohibited, 410
        // channel_is_archived, 400 invalid_payload, 429, 5xx); its body names the reason,
        // which `describe` keeps.
        answer.classify(&secrets)
    }
}
