//! Microsoft Teams, through a **Workflows** webhook (Power Automate's "Post to a channel when
//! a webhook request is received" template). Office 365 connectors ("Incoming Webhook") are
//! retired; Workflows take Adaptive Cards only.
//!
//! Docs: <https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook>
//! (creating the workflow and the body it takes),
//! <https://adaptivecards.io/explorer/> and
//! <https://learn.microsoft.com/en-us/adaptive-cards/authoring-cards/text-features> (the card).
//!
//! | setting       | required | secret | default | meaning                                    |
//! |---------------|----------|--------|---------|--------------------------------------------|
//! | `webhook_url` | yes      | yes    |         | the workflow's URL (`https://….logic.azure.com/workflows/…/invoke?…&sig=…` or `https://….environment.api.powerplatform.com/…`); its `sig` is the secret |
//!
//! The body ([`payload`], a pure function of the [`Message`]):
//!
//! ```json
//! {"type": "message",
//!  "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
//!    "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
//!      "type": "AdaptiveCard", "version": "1.4",
//!      "body": [{"type": "TextBlock", "text": "🔴 My Website is down", "weight": "Bolder",
//!                "size": "Medium", "color": "Attention", "wrap": true},
//!               {"type": "FactSet", "facts": [{"title": "Site", "value": "My Website (https://example.com)"}, …]}]}}]}
//! ```
//!
//! The headline is red (`Attention`) for down, green (`Good`) for up, orange (`Warning`) for
//! warnings. A storm's facts are its monitors (name and what it checks; the first 25, then
//! "and N more"), and the card gets an `Action.OpenUrl` to the dashboard when it is known.
//! Tests and notices are one wrapped `TextBlock`.
//!
//! User text is escaped for the card's Markdown subset (backslash before `\`, `*`, `_`, `[`,
//! `]`, `` ` ``, `~`), so a name cannot forge a link; cards cannot mention anyone without
//! explicit `msteams.entities`, which upwatch never sends. Each text is cut well below
//! Teams' 28 KB message limit.
//!
//! Answers: a workflow answers `202 Accepted` (the post itself happens later, inside the
//! flow). 401, 403, 404 and 410 (a bad signature, a deleted flow) and the Logic Apps error
//! codes `WorkflowNotFound` and `WorkflowTriggerIsNotEnabled` (a deleted or turned-off flow)
//! disable the channel; other 4xx reject this message; `429` waits for `Retry-After`; `5xx`
//! is tried again.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use upwatch_core::AlertKind;
use upwatch_notify::message::{self, STORM_NAMES};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError, Severity};

use crate::http::{self, cut};

/// The kind's name.
pub const KIND: &str = "teams";
/// Longest headline kept, in characters.
pub const MAX_HEADLINE: usize = 300;
/// Longest fact title or value kept, in characters.
pub const MAX_FACT: usize = 1000;
/// Longest text block kept, in characters.
pub const MAX_TEXT: usize = 4000;
/// How much of one monitor's name a storm's facts keep.
const MAX_STORM_NAME: usize = 100;

/// Logic Apps error codes (`{"error": {"code": …}}`) that mean the flow is gone or off.
const DISABLING_CODES: &[&str] = &["WorkflowNotFound", "WorkflowTriggerIsNotEnabled"];

/// `text` with the characters of the Adaptive Card Markdown subset backslash-escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '[' | ']' | '`' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `TextBlock` colour of `severity`.
pub fn color(severity: Severity) -> &'static str {
    match severity {
        Severity::Down => "Attention",
        Severity::Up => "Good",
        Severity::Warning => "Warning",
        Severity::Info => "Default",
    }
}

/// One fact, escaped and cut.
fn fact(title: &str, value: &str) -> Value {
    json!({
        "title": cut(&escape(title), MAX_FACT),
        "value": cut(&escape(value), MAX_FACT),
    })
}

/// The Teams Workflows body announcing `message`: one Adaptive Card.
pub fn payload(message: &Message) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": cut(&escape(&message.headline()), MAX_HEADLINE),
        "weight": "Bolder",
        "size": "Medium",
        "color": color(message.severity()),
        "wrap": true,
    })];
    let mut actions = Vec::new();
    match message {
        Message::Alert(_) => {
            let facts: Vec<Value> = message
                .lines()
                .iter()
                .map(|line| match line.split_once(": ") {
                    Some((title, value)) => fact(title, value),
                    None => fact("", line),
                })
                .collect();
            body.push(json!({ "type": "FactSet", "facts": facts }));
        }
        Message::Storm(storm) => {
            let mut facts = vec![fact(
                match storm.kind {
                    AlertKind::Recovery => "Up since",
                    _ => "Down since",
                },
                &message::time(storm.at()),
            )];
            facts.extend(
                storm
                    .alerts
                    .iter()
                    .take(STORM_NAMES)
                    .map(|a| fact(&cut(&a.monitor_name, MAX_STORM_NAME), message::target(a))),
            );
            if storm.alerts.len() > STORM_NAMES {
                facts.push(fact(
                    "…",
                    &format!("and {} more", storm.alerts.len() - STORM_NAMES),
                ));
            }
            body.push(json!({ "type": "FactSet", "facts": facts }));
            if let Some(url) = &storm.dashboard_url {
                actions.push(json!({
                    "type": "Action.OpenUrl",
                    "title": "Open the dashboard",
                    "url": url,
                }));
            }
        }
        Message::Test | Message::Notice(_) => {
            body.push(json!({
                "type": "TextBlock",
                "text": cut(&escape(&message.lines().join("\n\n")), MAX_TEXT),
                "wrap": true,
            }));
        }
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// Posts Adaptive Cards to Teams Workflows webhooks: setting `webhook_url`.
#[derive(Debug, Clone)]
pub struct TeamsNotifier {
    client: reqwest::Client,
}

impl TeamsNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`TeamsNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        TeamsNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for TeamsNotifier {
    fn default() -> Self {
        Self::new()
    }
}

/// The settings that are secrets.
const SECRETS: &[&str] = &["webhook_url"];

#[async_trait]
impl Provider for TeamsNotifier {
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
        // The query's `sig` is the secret part: scrub it on its own too.
        let sig = url
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("sig="))
            .unwrap_or_default();
        let secrets = [url, sig];
        let answer = http::send(self.client.post(url).json(&payload(message)), &secrets).await?;
        if !answer.is_success() {
            let code = answer.json().and_then(|v| {
                v.pointer("/error/code")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            if code.is_some_and(|c| DISABLING_CODES.contains(&c.as_str())) {
                return Err(SendError::Disabled(answer.describe(&secrets)));
            }
        }
        answer.classify(&secrets)
    }
}
