//! What an alert says, independent of where it is delivered.
//!
//! An alert is built once, when the state machine reports a transition, and stored whole (in
//! the outbox) so that formatting it for any notifier is a pure function of this value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::check::{CheckError, CheckResult};
use crate::state::Transition;

/// Down or recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Down,
    Recovery,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Down => "down",
            AlertKind::Recovery => "recovery",
        }
    }
}

/// One alert about one monitor's transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique per transition (UUIDv7); deliveries are keyed on it so a transition alerts once.
    pub id: Uuid,
    pub kind: AlertKind,
    pub monitor_id: Uuid,
    pub monitor_name: String,
    pub monitor_url: String,
    /// When the transition happened (the start of the deciding check).
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub response_time_ms: u32,
    /// The deciding check's error (down alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CheckError>,
    /// When the monitor went down (recovery alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<DateTime<Utc>>,
}

impl Alert {
    /// The alert for `transition`, caused by `result`.
    pub fn new(transition: &Transition, result: &CheckResult) -> Alert {
        let (kind, at, down_since) = match *transition {
            Transition::WentDown { at } => (AlertKind::Down, at, None),
            Transition::Recovered { at, down_since } => (AlertKind::Recovery, at, Some(down_since)),
        };
        Alert {
            id: Uuid::now_v7(),
            kind,
            monitor_id: result.monitor_id,
            monitor_name: result.monitor_name.clone(),
            monitor_url: result.url.clone(),
            at,
            status_code: result.status_code,
            response_time_ms: result.response_time_ms,
            error: result.error.clone(),
            down_since,
        }
    }

    /// How long the monitor was down, for recovery alerts.
    pub fn downtime(&self) -> Option<chrono::Duration> {
        self.down_since.map(|since| self.at - since)
    }
}

/// A duration in words a person reads at a glance: `45s`, `3m 20s`, `2h 5m`, `1d 4h`.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match () {
        _ if days > 0 => format!("{days}d {hours}h"),
        _ if hours > 0 => format!("{hours}h {minutes}m"),
        _ if minutes > 0 => format!("{minutes}m {seconds}s"),
        _ => format!("{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::seconds(0)), "0s");
        assert_eq!(human_duration(Duration::seconds(45)), "45s");
        assert_eq!(human_duration(Duration::seconds(200)), "3m 20s");
        assert_eq!(human_duration(Duration::seconds(7500)), "2h 5m");
        assert_eq!(human_duration(Duration::seconds(100_800)), "1d 4h");
        assert_eq!(human_duration(Duration::seconds(-5)), "0s");
    }
}
