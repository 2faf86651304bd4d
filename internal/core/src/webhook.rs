//! Alert destinations.
//!
//! A webhook URL is a secret (whoever has it can post to the channel), so it is never printed
//! whole: [`redact_url`] keeps the scheme, the host and a short tail.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a webhook was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookSource {
    /// From `DISCORD_WEBHOOK_URL`; re-created at every start.
    Config,
    /// Created through the API.
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

/// A Discord (or Discord-compatible) webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: Uuid,
    pub name: String,
    /// The full URL: a secret.
    pub url: String,
    /// False once the endpoint answered 404 (deleted on Discord's side), or when switched off.
    pub enabled: bool,
    /// Why it was disabled, for people.
    pub disabled_reason: Option<String>,
    pub source: WebhookSource,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
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
