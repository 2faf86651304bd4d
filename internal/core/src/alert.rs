//! What an alert says, independent of where it is delivered.
//!
//! An alert is built once, when the state machine reports a transition, and stored whole (in
//! the outbox) so that formatting it for any notifier is a pure function of this value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::check::{CheckError, CheckResult};
use crate::state::{CertificateExpiry, Transition};

/// Down, recovered, or a certificate close to its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Down,
    Recovery,
    /// The monitor's certificate crossed an expiry threshold; the site is still up, so no
    /// incident opens.
    CertificateExpiry,
    /// The monitor is still down: sent at a channel's reminder interval while the incident
    /// lasts (`down_since` is when it went down, `at` when the reminder was due).
    Reminder,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Down => "down",
            AlertKind::Recovery => "recovery",
            AlertKind::CertificateExpiry => "certificate_expiry",
            AlertKind::Reminder => "reminder",
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
    /// The certificate's expiry (certificate alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires_at: Option<DateTime<Utc>>,
    /// Whole days left until then (certificate alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// How the regions saw it, when several check the monitor: "down from eu-west, us-east;
    /// up from ap-south".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<String>,
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
            certificate_expires_at: None,
            days_left: None,
            regions: None,
        }
    }

    /// This alert naming how the regions saw it (when there are several).
    pub fn with_regions(mut self, votes: Option<crate::state::RegionVotes>) -> Alert {
        self.regions = votes.map(|v| v.words());
        self
    }

    /// The alert that `result`'s certificate crossed a threshold.
    pub fn certificate(expiry: &CertificateExpiry, result: &CheckResult) -> Alert {
        Alert {
            id: Uuid::now_v7(),
            kind: AlertKind::CertificateExpiry,
            monitor_id: result.monitor_id,
            monitor_name: result.monitor_name.clone(),
            monitor_url: result.url.clone(),
            at: result.checked_at,
            status_code: result.status_code,
            response_time_ms: result.response_time_ms,
            error: None,
            down_since: None,
            certificate_expires_at: Some(expiry.expires_at),
            days_left: Some(expiry.days_left),
            regions: None,
        }
    }

    /// "expires in 5 days", "expires today", "expired 2 days ago", for certificate alerts.
    pub fn expiry_words(&self) -> Option<String> {
        let days = self.days_left?;
        Some(match days {
            d if d < 0 => format!("expired {} day{} ago", -d, if d == -1 { "" } else { "s" }),
            0 => "expires within a day".to_string(),
            1 => "expires in 1 day".to_string(),
            d => format!("expires in {d} days"),
        })
    }

    /// The reminder, due at `at` for the channel `channel_id`, that `monitor` is still down
    /// since `down_since` (its incident `incident_id`, opened by a check that failed with
    /// `error`). Its id is derived from the incident, the channel and the due time, so that
    /// two processes (or a restart) deciding the same reminder store it once.
    pub fn reminder(
        incident_id: Uuid,
        monitor: &crate::Monitor,
        down_since: DateTime<Utc>,
        error: Option<CheckError>,
        status_code: Option<u16>,
        channel_id: Uuid,
        at: DateTime<Utc>,
    ) -> Alert {
        let key = format!("{incident_id}/{channel_id}/{}", at.timestamp_millis());
        Alert {
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()),
            kind: AlertKind::Reminder,
            monitor_id: monitor.id,
            monitor_name: monitor.name.clone(),
            monitor_url: monitor.url.clone(),
            at,
            status_code,
            response_time_ms: 0,
            error,
            down_since: Some(down_since),
            certificate_expires_at: None,
            days_left: None,
            regions: None,
        }
    }

    /// How long the monitor was down, for recovery alerts (and still is, for reminders).
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
