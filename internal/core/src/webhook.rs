//! Alert destinations.
//!
//! A webhook URL is a secret (whoever has it can post to the channel), so it is never printed
//! whole: [`redact_url`] keeps the scheme, the host and a short tail.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a webhook was defined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookSource {
    /// From `DISCORD_WEBHOOK_URL` or `UPWATCH_NOTIFIERS_FILE`; re-created at every start.
    Config,
    /// Created through the API (or `upwatch import`).
    #[default]
    Api,
}

impl WebhookSource {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookSource::Config => "config",
            WebhookSource::Api => "api",
        }
    }

    /// The source named by [`WebhookSource::as_str`], for stores that keep it as text.
    pub fn parse(text: &str) -> Option<WebhookSource> {
        [WebhookSource::Config, WebhookSource::Api]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// The kind of notification channel that `/api/v1/webhooks` creates and that stores written
/// before channels had kinds hold.
pub const DISCORD: &str = "discord";

/// A notification channel ("notifier"): a Discord webhook, a Slack webhook, an email
/// address list, a PagerDuty service... Its `kind` names the provider that sends to it and
/// its `settings` are that provider's (validated by it); the dispatcher delivers the outbox
/// per channel. The type keeps its historical name: Discord webhooks were the first kind.
#[derive(Clone, Default, PartialEq)]
pub struct Webhook {
    pub id: Uuid,
    pub name: String,
    /// The full URL of a Discord channel (a secret); empty for the other kinds, whose
    /// addresses are in `settings`.
    pub url: String,
    /// False once the endpoint answered 404 (deleted on Discord's side), or when switched off.
    pub enabled: bool,
    /// Why it was disabled, for people.
    pub disabled_reason: Option<String>,
    pub source: WebhookSource,
    pub created_at: DateTime<Utc>,
    /// The provider: `discord`, `slack`, `email`... (see the notifiers' kinds).
    pub kind: String,
    /// The provider's settings, secrets included. For `discord`, `webhook_url` is `url`.
    pub settings: serde_json::Value,
    /// Routing, reminders and grouping.
    pub options: ChannelOptions,
}

/// The longest channel name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A channel's name trimmed, or why it is refused (empty, or longer than
/// [`MAX_NAME_CHARS`]), naming the field `name`.
pub fn validate_name(name: &str) -> Result<String, crate::ValidationError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(crate::ValidationError::new("name", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(crate::ValidationError::new(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_string())
}

/// How a channel is chosen and what it is sent besides transitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelOptions {
    /// Receives the alerts of monitors that name no channel (and whose group names none).
    #[serde(default)]
    pub default: bool,
    /// Receives the alerts of the monitors of these groups that name no channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// While a monitor stays down, a reminder every this many seconds (off when absent);
    /// a monitor's own `reminder_interval_seconds` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_interval_seconds: Option<u32>,
    /// Whether alert storms reach this channel as one grouped message. Absent: yes, except
    /// for kinds that deduplicate incidents themselves (PagerDuty, Opsgenie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_alerts: Option<bool>,
    /// Receives upwatch's messages about itself: the watchdog's (monitors unchecked) and a
    /// region's lost and regained connectivity. When no channel is marked, the watchdog's go
    /// to every enabled channel and connectivity changes only to the log.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
}

/// The enabled channels that upwatch's messages about itself go to: those marked
/// `system`, or, for the watchdog's messages only (`everyone_otherwise`), every enabled one
/// when none is marked.
pub fn system_channels(channels: Vec<Webhook>, everyone_otherwise: bool) -> Vec<Webhook> {
    let enabled: Vec<Webhook> = channels.into_iter().filter(|c| c.enabled).collect();
    if enabled.iter().any(|c| c.options.system) {
        enabled.into_iter().filter(|c| c.options.system).collect()
    } else if everyone_otherwise {
        enabled
    } else {
        Vec::new()
    }
}

/// The channels that `monitor`'s alerts go to, among the enabled `channels` (in their
/// order): the monitor's own `notifier_ids` when it names any; else the channels that name
/// its group; else the default channels.
pub fn route<'a>(
    notifier_ids: &[Uuid],
    group: Option<&str>,
    channels: &'a [Webhook],
) -> Vec<&'a Webhook> {
    let enabled = || channels.iter().filter(|c| c.enabled);
    if !notifier_ids.is_empty() {
        return enabled().filter(|c| notifier_ids.contains(&c.id)).collect();
    }
    if let Some(group) = group {
        let of_group: Vec<&Webhook> = enabled()
            .filter(|c| c.options.groups.iter().any(|g| g == group))
            .collect();
        if !of_group.is_empty() {
            return of_group;
        }
    }
    enabled().filter(|c| c.options.default).collect()
}

impl Webhook {
    /// A Discord channel posting to `url`, as `/api/v1/webhooks` and `DISCORD_WEBHOOK_URL`
    /// make them: a default channel, so that monitors naming none are alerted on it.
    pub fn discord(id: Uuid, name: String, url: String, source: WebhookSource) -> Webhook {
        Webhook {
            id,
            name,
            settings: serde_json::json!({ "webhook_url": url }),
            url,
            enabled: true,
            disabled_reason: None,
            source,
            created_at: Utc::now(),
            kind: DISCORD.to_string(),
            options: ChannelOptions {
                default: true,
                ..ChannelOptions::default()
            },
        }
    }

    /// The channel with a Discord channel's two places for its URL agreeing: `url` (the
    /// column stores have always had) and `settings.webhook_url` (what the provider reads),
    /// whichever is set filling the other. Other kinds are returned as they are.
    pub fn normalized(mut self) -> Webhook {
        if self.kind != DISCORD {
            return self;
        }
        let in_settings = self
            .settings
            .get("webhook_url")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        match in_settings {
            Some(url) => self.url = url,
            None => {
                if !self.settings.is_object() {
                    self.settings = serde_json::json!({});
                }
                self.settings["webhook_url"] = serde_json::Value::String(self.url.clone());
            }
        }
        self
    }

    /// Whether this is a Discord channel (what `/api/v1/webhooks` shows).
    pub fn is_discord(&self) -> bool {
        self.kind == DISCORD
    }

    /// The stable id of a configured webhook, so restarts do not duplicate it.
    pub fn config_id(url: &str) -> Uuid {
        Uuid::new_v5(&Uuid::NAMESPACE_URL, url.as_bytes())
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .field("source", &self.source)
            .finish()
    }
}

/// What people and logs see of a webhook view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub name: String,
    /// Scheme, host and the last four characters only.
    pub url: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub source: WebhookSource,
    pub created_at: DateTime<Utc>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id,
            name: w.name.clone(),
            url: redact_url(&w.url),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            source: w.source,
            created_at: w.created_at,
        }
    }
}

/// `https://discord.com/api/webhooks/123/abcdefgh` -> `https://discord.com/…efgh`.
pub fn redact_url(url: &str) -> String {
    let tail: String = {
        let chars: Vec<char> = url.trim_end_matches('/').chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    match url::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}/…{tail}", parsed.scheme())
        }
        Err(_) => format!("…{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_scheme_host_and_tail_only() {
        let url = "https://discord.com/api/webhooks/123456/secret-token-abcd";
        let shown = redact_url(url);
        assert_eq!(shown, "https://discord.com/…abcd");
        assert!(!shown.contains("secret"));
        assert_eq!(
            redact_url("http://127.0.0.1:9000/hook/xyz123"),
            "http://127.0.0.1:9000/…z123"
        );
        assert_eq!(redact_url("garbage-value"), "…alue");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let w = Webhook {
            id: Uuid::nil(),
            name: "ops".into(),
            url: "https://discord.com/api/webhooks/1/very-secret".into(),
            enabled: true,
            disabled_reason: None,
            source: WebhookSource::Api,
            created_at: Utc::now(),
            kind: "discord".into(),
            settings: Default::default(),
            options: crate::ChannelOptions {
                default: true,
                ..Default::default()
            },
        };
        assert!(!format!("{w:?}").contains("very-secret"));
    }

    #[test]
    fn config_ids_are_stable() {
        assert_eq!(
            Webhook::config_id("http://a/1"),
            Webhook::config_id("http://a/1")
        );
        assert_ne!(
            Webhook::config_id("http://a/1"),
            Webhook::config_id("http://a/2")
        );
    }
}
