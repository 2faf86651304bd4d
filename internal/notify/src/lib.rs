//! Alert delivery, the port: the [`Notifier`] trait and the outbox dispatcher. The drivers
//! (Discord) live in `upwatch-notifiers`.
//!
//! Layout:
//! - this file: the [`Notifier`] port (every kind), the [`Provider`] interface (one kind, as
//!   in Gatus) and [`SendError`];
//! - [`message`]: what a channel is told ([`Message`], [`Storm`]) and the shared wording;
//! - [`settings`]: reading, checking and redacting a channel's settings;
//! - [`reminders`]: "still down" reminders at each channel's interval;
//! - [`dispatch`]: the [`Dispatcher`], which delivers the store's outbox with retries, one
//!   worker per webhook so that a slow or failing webhook never holds up the others.
//!
//! Architecture invariant: nothing here is on the path of a check. Alerts are written to the
//! store's outbox in the same transaction as the state change; the dispatcher only reads that
//! outbox, so a slow webhook can delay alerts but never checks.
//!
//! Channel settings hold secrets (webhook URLs, tokens, passwords): errors and logs show them
//! redacted only ([`settings::redact`], [`upwatch_core::redact_url`]).

pub mod dispatch;
pub mod message;
pub mod reminders;
pub mod settings;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use upwatch_core::Webhook;

pub use dispatch::{Dispatcher, RetryPolicy, StormPolicy};
pub use message::{Message, Severity, Storm};
pub use reminders::Reminders;
pub use settings::{Settings, SettingsError};

/// Sends messages to channels of every kind, and knows each kind's settings. The app builds
/// one from the providers (`upwatch-notifiers`); the dispatcher, the API and the watchdog
/// only see this port.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Delivers `message` to `channel`, once. Retrying is the caller's business.
    async fn send(&self, channel: &Webhook, message: &Message) -> Result<(), SendError>;
    /// The kinds there are, sorted.
    fn kinds(&self) -> Vec<&'static str>;
    /// The provider of `kind`, if there is one.
    fn provider(&self, kind: &str) -> Option<&dyn Provider>;

    /// Checks `settings` for a channel of `kind`: an unknown kind names `kind`, a bad
    /// setting names `settings.<name>`.
    fn validate(&self, kind: &str, settings: &Value) -> Result<(), SettingsError> {
        match self.provider(kind) {
            Some(p) => p.validate(settings),
            None => Err(SettingsError {
                field: "kind".into(),
                message: format!("must be one of {}", self.kinds().join(", ")),
            }),
        }
    }

    /// `settings` of a channel of `kind` with its secrets redacted, for responses and logs.
    fn redact(&self, kind: &str, settings: &Value) -> Value {
        match self.provider(kind) {
            Some(p) => settings::redact(settings, p.secrets()),
            // Unknown kind (a store from a newer version): show nothing of it.
            None => Value::Object(Default::default()),
        }
    }

    /// Whether a channel of `kind` gets alert storms as one message unless it says.
    fn groups_storms(&self, kind: &str) -> bool {
        self.provider(kind).is_none_or(|p| p.groups_storms())
    }
}

/// One kind of channel (Slack, email, PagerDuty...): one module per provider, as in Gatus.
/// The provider builds its payload with a pure function of the [`Message`] (tested apart)
/// and sends it with one request.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The kind's name, as the API takes it: `slack`.
    fn kind(&self) -> &'static str;
    /// The settings that are secrets (tokens, passwords, keys, webhook URLs): never
    /// returned whole, logged, put in an error, or exported in clear.
    fn secrets(&self) -> &'static [&'static str];
    /// Checks a channel's settings when it is created or changed; an error names the field
    /// (`settings.chat_id`). Settings that pass are sent with as they are.
    fn validate(&self, settings: &Value) -> Result<(), SettingsError>;
    /// Whether alert storms reach this kind as one message by default. Services that
    /// deduplicate incidents themselves (PagerDuty, Opsgenie) say no: they get one incident
    /// per monitor unless the channel asks for grouping.
    fn groups_storms(&self) -> bool {
        true
    }
    /// Sends `message` once with `settings` (validated earlier).
    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError>;
}

/// Why a delivery attempt failed, sorted by what the caller should do next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The service asked to wait (HTTP 429, or its own field): try again after
    /// `retry_after`.
    #[error("rate limited, retry after {retry_after:?}")]
    RateLimited {
        /// How long the service asked to wait.
        retry_after: Duration,
    },
    /// The service refuses this channel for good (401, 403, 404 or its equivalent: a
    /// deleted webhook, a revoked token): disable the channel with this reason until
    /// someone enables it again.
    #[error("refused for good: {0}")]
    Disabled(String),
    /// A failure that may pass (5xx, network, timeout): try again later.
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// The service refused this one message (another 4xx): do not send it again, go on
    /// with the next.
    #[error("rejected: {0}")]
    Rejected(String),
}
