//! The pure domain of upwatch.
//!
//! Everything here is plain data and functions: no IO, no clocks, no async. The roles in
//! `upwatch-pipeline` feed it time and events; the stores persist what it returns.
//!
//! Layout:
//! - [`monitor`]: a monitor's definition, its defaults and validation, and partial updates.
//! - [`expected`]: the expected-status language (`200`, `"2xx"`, `"200-299"`).
//! - [`maintenance`]: maintenance windows, one-off or recurring (RFC 5545), and when they apply.
//! - [`check`]: jobs, results, error kinds, and the evaluation of a response.
//! - [`schedule`]: the fixed-rate, spread-out schedule of many monitors.
//! - [`state`]: the up/down state machine with thresholds, and the transitions that alert.
//! - [`alert`]: what an alert says, independent of where it is sent.
//! - [`rollup`]: per-minute, hour and day rollups of results, with a mergeable latency sketch,
//!   and the retention that bounds how long each is kept.
//! - [`span`]: lengths of time as people write them (`24h`, `7d`).
//! - [`webhook`]: alert destinations and how their secret URLs are shown.
//! - [`watchdog`]: which monitors went unchecked for too long, and the messages about it.

pub mod alert;
pub mod calendar;
pub mod check;
pub mod condition;
pub mod expected;
pub mod maintenance;
pub mod monitor;
pub mod observation;
pub mod rollup;
pub mod schedule;
pub mod span;
pub mod state;
pub mod watchdog;
pub mod webhook;

pub use alert::{Alert, AlertKind};
pub use check::{
    CheckError, CheckJob, CheckRequest, CheckResult, CheckStatus, ErrorKind, StateRules,
};
pub use expected::{ExpectedStatus, StatusMatcher};
pub use monitor::{Monitor, MonitorInput, ValidationError};
pub use span::{format_span, parse_span};
pub use state::{MonitorState, MonitorStatus, Silenced, Transition};
pub use webhook::{redact_url, ChannelOptions, Webhook, WebhookSource, WebhookView};
