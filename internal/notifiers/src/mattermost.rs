//! Mattermost incoming webhooks (Slack-compatible), with a coloured message attachment.
//!
//! Docs: <https://developers.mattermost.com/integrate/webhooks/incoming/> (parameters and
//! answers) and <https://developers.mattermost.com/integrate/reference/message-attachments/>
//! (attachments).
//!
//! | setting       | required | secret | default                  | meaning                          |
//! |---------------|----------|--------|--------------------------|----------------------------------|
//! | `webhook_url` | yes      | yes    |                          | the webhook's URL (`https://chat.example.com/hooks/xxx`) |
//! | `channel`     | no       | no     | the webhook's channel    | another channel (`town-square`) or a user (`@alice`), when the webhook is not locked to its channel |
//! | `username`    | no       | no     | the webhook's            | the name the post shows (needs "Enable integrations to override usernames") |
//! | `icon_url`    | no       | no     | the webhook's            | the picture the post shows (needs "Enable integrations to override profile picture icons") |
//!
//! The body ([`payload`], a pure function of the settings and the [`Message`]):
//!
//! ```json
//! {"text": "**🔴 My Website is down**",
//!  "attachments": [{"fallback": "<the plain text>", "color": "#E74C3C",
//!                   "text": "Site: My Website (https://example.com)\nStatus: DOWN\n…"}],
//!  "channel": "…", "username": "…", "icon_url": "…"}
//! ```
//!
//! The colour is red for down, green for up, orange for warnings and blue for the rest. A
//! storm's attachment lists the names (the first 25, then "and N more") and links to the
//! dashboard when it is known.
//!
//! User text (names, errors) is Markdown-escaped, and `@` in it is followed by a zero-width
//! space, so that a monitor named `@channel` or `[x](https://evil)` neither notifies a channel
//! nor forges a link. Texts stay under 4000 characters, the post limit of the oldest servers
//! (newer ones take 16383).
//!
//! Answers: Mattermost answers `200 ok`. `400` with the id `web.incoming_webhook.invalid.app_error`
//! (the webhook was deleted), `501` `web.incoming_webhook.disabled.app_error` (incoming webhooks
//! turned off), `400` `web.incoming_webhook.user.app_error` (the `channel` user does not
//! exist), and 401, 403 (locked channel, no permission), 404 (channel not found) and 410
//! disable the channel; any other 4xx rejects this message; `429` waits for `Retry-After`;
//! `5xx` is tried again.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError, Severity};

use crate::http::{self, cut};

/// The kind's name.
pub const KIND: &str = "mattermost";
/// Longest text kept, in characters: the post limit of Mattermost servers before 5.0.
pub const MAX_TEXT: usize = 4000;
/// Attachment colour of down alerts (red).
pub const COLOR_DOWN: &str = "#E74C3C";
/// Attachment colour of recoveries (green).
pub const COLOR_UP: &str = "#2ECC71";
/// Attachment colour of warnings (orange).
pub const COLOR_WARNING: &str = "#E67E22";
/// Attachment colour of tests and notices (blue).
pub const COLOR_INFO: &str = "#3498DB";
/// How much of one monitor's name a storm's list keeps.
const MAX_STORM_NAME: usize = 100;

/// The Mattermost error ids (in the answer's JSON `id`) that mean the channel cannot work
/// until someone fixes it.
const DISABLING_IDS: &[&str] = &[
    "web.incoming_webhook.invalid.app_error",
    "web.incoming_webhook.disabled.app_error",
    "web.incoming_webhook.user.app_error",
];

/// `text` safe for Mattermost Markdown: the characters that make emphasis, code, links,
/// headings and autolinks are backslash-escaped, and `@` is followed by a zero-width space
/// (no mention).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{200B}"),
            _ => out.push(c),
        }
    }
    out
}

/// The colour of `message`'s attachment.
pub fn color(message: &Message) -> &'static str {
    match message.severity() {
        Severity::Down => COLOR_DOWN,
        Severity::Up => COLOR_UP,
        Severity::Warning => COLOR_WARNING,
        Severity::Info => COLOR_INFO,
    }
}

/// The Mattermost body announcing `message`, with the optional `channel`, `username` and
/// `icon_url` of `settings`.
pub fn payload(settings: &Value, message: &Message) -> Value {
    let details = match message {
        Message::Storm(storm) => {
            let mut lines = vec![format!(
                "Since: {}",
                upwatch_notify::message::time(storm.at())
            )];
            lines.extend(
                storm
                    .names()
                    .iter()
                    .map(|name| format!("- {}", escape(&cut(name, MAX_STORM_NAME)))),
            );
            if let Some(url) = &storm.dashboard_url {
                lines.push(format!("[Open the dashboard]({})", link(url)));
            }
            lines.join("\n")
        }
        _ => {
            // The monitor's URL stays as it is, so that Mattermost links it.
            let target = message.alert().map(upwatch_notify::message::target);
            message
                .lines()
                .iter()
                .map(|line| escape_around(line, target))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let mut body = Map::new();
    body.insert(
        "text".into(),
        json!(format!("**{}**", cut(&escape(&message.headline()), 500))),
    );
    body.insert(
        "attachments".into(),
        json!([{
            "fallback": cut(&message.text(), MAX_TEXT),
            "color": color(message),
            "text": cut(&details, MAX_TEXT),
        }]),
    );
    let s = Settings::lenient(settings);
    for name in ["channel", "username", "icon_url"] {
        if let Ok(Some(value)) = s.opt_str(name) {
            body.insert(name.into(), json!(value.trim()));
        }
    }
    Value::Object(body)
}

/// `line` escaped, except for its last occurrence of `keep`.
fn escape_around(line: &str, keep: Option<&str>) -> String {
    match keep
        .filter(|k| !k.is_empty())
        .and_then(|k| line.rfind(k).map(|at| (at, k)))
    {
        Some((at, k)) => format!(
            "{}{k}{}",
            escape(&line[..at]),
            escape(&line[at + k.len()..])
        ),
        None => escape(line),
    }
}

/// `url` as a Markdown link target: spaces and parentheses percent-encoded.
fn link(url: &str) -> String {
    url.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
}

/// Posts to Mattermost incoming webhooks: settings `webhook_url`, `channel`, `username`,
/// `icon_url`.
#[derive(Debug, Clone)]
pub struct MattermostNotifier {
    client: reqwest::Client,
}

impl MattermostNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`MattermostNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        MattermostNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for MattermostNotifier {
    fn default() -> Self {
        Self::new()
    }
}

/// The settings that are secrets.
const SECRETS: &[&str] = &["webhook_url"];

#[async_trait]
impl Provider for MattermostNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(&["webhook_url", "channel", "username", "icon_url"])?;
        s.url("webhook_url")?;
        s.opt_str("channel")?;
        s.opt_str("username")?;
        s.opt_url("icon_url")?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let url = Settings::lenient(settings).text("webhook_url");
        let secrets = [url];
        let request = self.client.post(url).json(&payload(settings, message));
        let answer = http::send(request, &secrets).await?;
        if !answer.is_success() {
            let id = answer
                .json()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
            if id.is_some_and(|id| DISABLING_IDS.contains(&id.as_str())) {
                return Err(SendError::Disabled(answer.describe(&secrets)));
            }
        }
        answer.classify(&secrets)
    }
}
