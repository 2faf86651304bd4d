//! Alert delivery, the port: the [`Notifier`] trait and the outbox dispatcher. The drivers
//! (Discord) live in `upwatch-notifiers`.
//!
//! Layout:
//! - this file: the [`Notifier`] trait, one small interface per destination (as in Gatus),
//!   and its [`SendError`];
//! - [`dispatch`]: the [`Dispatcher`], which delivers the store's outbox with retries, one
//!   worker per webhook so that a slow or failing webhook never holds up the others.
//!
//! Architecture invariant: nothing here is on the path of a check. Alerts are written to the
//! store's outbox in the same transaction as the state change; the dispatcher only reads that
//! outbox, so a slow webhook can delay alerts but never checks.
//!
//! Webhook URLs are secrets: errors and logs show them through
//! [`upwatch_core::redact_url`] only.

pub mod dispatch;

use std::time::Duration;

use async_trait::async_trait;
use upwatch_core::watchdog::Notice;
use upwatch_core::{Alert, Webhook};

pub use dispatch::{Dispatcher, RetryPolicy};

/// Sends one alert to one webhook.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Delivers `alert` to `webhook`, once. Retrying is the caller's business.
    async fn send(&self, webhook: &Webhook, alert: &Alert) -> Result<(), SendError>;
    /// Sends `webhook` a message that says it is a test, once, so that people can check a
    /// webhook before an alert needs it.
    async fn send_test(&self, webhook: &Webhook) -> Result<(), SendError>;
    /// Sends `webhook` a message about upwatch itself (monitors the watchdog found unchecked,
    /// and the all-clear), once.
    async fn send_notice(&self, webhook: &Webhook, notice: &Notice) -> Result<(), SendError>;
}

/// Why a delivery attempt failed, sorted by what the caller should do next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The endpoint asked to wait (HTTP 429): try again after `retry_after`.
    #[error("rate limited, retry after {retry_after:?}")]
    RateLimited {
        /// How long the endpoint asked to wait.
        retry_after: Duration,
    },
    /// The webhook does not exist any more (HTTP 404): stop using it.
    #[error("the webhook answered 404 Not Found")]
    Gone,
    /// A failure that may pass (5xx, network, timeout): try again later.
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// The endpoint refused the message for good (other 4xx): do not try again.
    #[error("rejected: {0}")]
    Rejected(String),
}
