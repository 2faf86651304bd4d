//! The notification drivers of the [`Notifier`] port: one module per kind of channel
//! ([`Provider`]), each building its service's payload with a pure function and sending it
//! with one request. [`Channels`] puts them together behind the port. Only `upwatch-app`
//! (and tests) name this crate; the dispatcher, the API and the watchdog see the port.
//!
//! - [`discord`]: Discord webhooks (the seed format);
//! - [`mattermost`]: Mattermost incoming webhooks;
//! - [`slack`]: Slack incoming webhooks (Block Kit);
//! - [`teams`]: Microsoft Teams Workflows webhooks (Adaptive Cards);
//! - [`webhook`]: generic JSON webhooks (templates, HMAC signatures);
//! - [`telegram`]: Telegram bots (Bot API `sendMessage`, HTML);
//! - [`matrix`]: Matrix rooms (client-server API, idempotent transaction IDs);
//! - [`ntfy`]: ntfy topics (JSON publishing);
//! - [`gotify`]: Gotify applications;
//! - [`pushover`]: Pushover (Message API);
//! - [`email`]: email over SMTP (lettre; STARTTLS or implicit TLS, AUTH);
//! - [`pagerduty`]: PagerDuty (Events API v2: trigger, resolve, change events);
//! - [`opsgenie`]: Opsgenie (Alert API: create, close and note by alias);
//! - [`http`]: what the HTTP providers share (client, answers, retry-after, scrubbing).

pub mod discord;
pub mod email;
pub mod gotify;
pub mod http;
pub mod matrix;
pub mod mattermost;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod pushover;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use upwatch_core::Webhook;
use upwatch_notify::{Message, Notifier, Provider, SendError};

pub use discord::DiscordNotifier;

/// Every provider, by kind: the [`Notifier`] the app hands to the dispatcher, the API and
/// the watchdog.
#[derive(Clone)]
pub struct Channels {
    providers: BTreeMap<&'static str, Arc<dyn Provider>>,
}

impl Channels {
    /// Every kind upwatch knows, each request given up after `timeout`.
    pub fn all(timeout: Duration) -> Channels {
        let providers: Vec<Arc<dyn Provider>> = vec![
            Arc::new(DiscordNotifier::with_timeout(timeout)),
            Arc::new(telegram::TelegramNotifier::with_timeout(timeout)),
            Arc::new(matrix::MatrixNotifier::with_timeout(timeout)),
            Arc::new(ntfy::NtfyNotifier::with_timeout(timeout)),
            Arc::new(gotify::GotifyNotifier::with_timeout(timeout)),
            Arc::new(pushover::PushoverNotifier::with_timeout(timeout)),
            Arc::new(mattermost::MattermostNotifier::with_timeout(timeout)),
            Arc::new(slack::SlackNotifier::with_timeout(timeout)),
            Arc::new(teams::TeamsNotifier::with_timeout(timeout)),
            Arc::new(webhook::WebhookNotifier::with_timeout(timeout)),
            Arc::new(email::EmailNotifier::with_timeout(timeout)),
            Arc::new(pagerduty::PagerDutyNotifier::with_timeout(timeout)),
            Arc::new(opsgenie::OpsgenieNotifier::with_timeout(timeout)),
        ];
        Channels::of(providers)
    }

    /// Only these providers.
    pub fn of(providers: Vec<Arc<dyn Provider>>) -> Channels {
        Channels {
            providers: providers.into_iter().map(|p| (p.kind(), p)).collect(),
        }
    }
}

impl Default for Channels {
    fn default() -> Self {
        Channels::all(http::TIMEOUT)
    }
}

#[async_trait]
impl Notifier for Channels {
    async fn send(&self, channel: &Webhook, message: &Message) -> Result<(), SendError> {
        match self.providers.get(channel.kind.as_str()) {
            Some(p) => p.send(&channel.settings, message).await,
            None => Err(SendError::Disabled(format!(
                "this version of upwatch has no channel kind `{}`",
                channel.kind
            ))),
        }
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.providers.keys().copied().collect()
    }

    fn provider(&self, kind: &str) -> Option<&dyn Provider> {
        self.providers.get(kind).map(|p| p.as_ref())
    }
}
