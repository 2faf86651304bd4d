//! The notification drivers of the [`Notifier`](upwatch_notify::Notifier) port: one module per
//! kind of destination, each building its message with a pure function and sending it with
//! one HTTP request. Only `upwatch-app` (and tests) name this crate; the dispatcher, the API
//! and the watchdog see the port.
//!
//! - [`discord`]: Discord webhooks.

pub mod discord;

pub use discord::DiscordNotifier;
