//! What a channel is told, and the words every provider shares.
//!
//! A provider builds its service's payload from a [`Message`] with a pure function; the
//! wording (headline, detail lines, the list of a storm) comes from here, so that a Slack
//! message and an email say the same thing. Discord keeps its own seed format for single
//! alerts.

use chrono::{DateTime, Utc};
use upwatch_core::alert::human_duration;
use upwatch_core::watchdog::Notice;
use upwatch_core::{Alert, AlertKind};

/// How many monitors a storm message names before "and N more".
pub const STORM_NAMES: usize = 25;

/// One message to one channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// One monitor's alert: down, recovery, certificate expiry or reminder.
    Alert(Alert),
    /// Many monitors went down (or came back) together: one message for all.
    Storm(Storm),
    /// "This channel works": sent on request from the API.
    Test,
    /// About upwatch itself (the watchdog's).
    Notice(Notice),
}

/// An alert storm: the alerts of one kind (down or recovery) that one channel gets as one
/// message, in the order they happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Storm {
    /// [`AlertKind::Down`] or [`AlertKind::Recovery`].
    pub kind: AlertKind,
    /// At least one.
    pub alerts: Vec<Alert>,
    /// A link to the dashboard (`UPWATCH_PUBLIC_URL`), when it is known.
    pub dashboard_url: Option<String>,
}

impl Storm {
    /// When the storm's first alert happened.
    pub fn at(&self) -> DateTime<Utc> {
        self.alerts
            .iter()
            .map(|a| a.at)
            .min()
            .unwrap_or_else(Utc::now)
    }

    /// The first [`STORM_NAMES`] monitors' names, then "and N more".
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .alerts
            .iter()
            .take(STORM_NAMES)
            .map(|a| a.monitor_name.clone())
            .collect();
        if self.alerts.len() > STORM_NAMES {
            names.push(format!("and {} more", self.alerts.len() - STORM_NAMES));
        }
        names
    }
}

/// How bad the news is, for colours, priorities and icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something is down (or still down).
    Down,
    /// Something is up again.
    Up,
    /// Something will break (a certificate expires).
    Warning,
    /// Tests and notices.
    Info,
}

impl Message {
    /// How bad the news is.
    pub fn severity(&self) -> Severity {
        match self {
            Message::Alert(a) => kind_severity(a.kind),
            Message::Storm(s) => kind_severity(s.kind),
            Message::Test => Severity::Info,
            Message::Notice(notice) if notice.opens() => Severity::Warning,
            Message::Notice(_) => Severity::Info,
        }
    }

    /// The alert this message is about, when it is about one.
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            Message::Alert(a) => Some(a),
            _ => None,
        }
    }

    /// One line: `🔴 My Website is down`, `🟢 12 monitors are up again`, ...
    pub fn headline(&self) -> String {
        match self {
            Message::Alert(a) => match a.kind {
                AlertKind::Down => format!("🔴 {} is down", a.monitor_name),
                AlertKind::Recovery => format!("🟢 {} is up again", a.monitor_name),
                AlertKind::CertificateExpiry => format!(
                    "🟠 {}'s certificate {}",
                    a.monitor_name,
                    a.expiry_words().unwrap_or_default()
                ),
                AlertKind::Reminder => format!(
                    "🔴 {} is still down{}",
                    a.monitor_name,
                    a.downtime()
                        .map(|d| format!(" for {}", human_duration(d)))
                        .unwrap_or_default()
                ),
            },
            Message::Storm(s) => {
                let n = s.alerts.len();
                let monitors = if n == 1 { "monitor is" } else { "monitors are" };
                match s.kind {
                    AlertKind::Recovery => format!("🟢 {n} {monitors} up again"),
                    _ => format!("🔴 {n} {monitors} down"),
                }
            }
            Message::Test => "✅ upwatch test message".to_string(),
            Message::Notice(n) => n.title().to_string(),
        }
    }

    /// The details, one per line, without the headline.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Message::Alert(a) => alert_lines(a),
            Message::Storm(s) => {
                let mut lines = vec![format!("Since: {}", time(s.at()))];
                lines.extend(s.names().into_iter().map(|n| format!("• {n}")));
                if let Some(url) = &s.dashboard_url {
                    lines.push(format!("Dashboard: {url}"));
                }
                lines
            }
            Message::Test => {
                vec!["This channel receives upwatch's down and recovery alerts.".to_string()]
            }
            Message::Notice(n) => vec![n.text()],
        }
    }

    /// The headline and the details, one per line: the plain-text body of any provider.
    pub fn text(&self) -> String {
        let mut out = self.headline();
        for line in self.lines() {
            out.push('\n');
            out.push_str(&line);
        }
        out
    }

    /// `DOWN`, `UP` or `INFO`.
    pub fn status(&self) -> &'static str {
        match self.severity() {
            Severity::Down => "DOWN",
            Severity::Up => "UP",
            Severity::Warning => match self {
                Message::Alert(_) => "UP",
                _ => "WARNING",
            },
            Severity::Info => "INFO",
        }
    }
}

fn kind_severity(kind: AlertKind) -> Severity {
    match kind {
        AlertKind::Down | AlertKind::Reminder => Severity::Down,
        AlertKind::Recovery => Severity::Up,
        AlertKind::CertificateExpiry => Severity::Warning,
    }
}

/// What a monitor checks, for people: its URL, or "push monitor" (a push URL holds a token).
pub fn target(alert: &Alert) -> &str {
    if alert.monitor_url.starts_with("push://") {
        "push monitor"
    } else {
        &alert.monitor_url
    }
}

/// `2024-01-16 20:00:00 UTC`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The detail lines of one alert, as in the Discord seed format.
fn alert_lines(a: &Alert) -> Vec<String> {
    let status = match a.kind {
        AlertKind::Down | AlertKind::Reminder => "DOWN",
        AlertKind::Recovery | AlertKind::CertificateExpiry => "UP",
    };
    let mut lines = vec![
        format!("Site: {} ({})", a.monitor_name, target(a)),
        format!("Status: {status}"),
        format!("Time: {}", time(a.at)),
    ];
    if let Some(regions) = &a.regions {
        lines.push(format!("Regions: {regions}"));
    }
    match a.kind {
        AlertKind::Down | AlertKind::Reminder => {
            if let Some(error) = &a.error {
                lines.push(format!("Error: {error}"));
            }
            if a.kind == AlertKind::Reminder {
                if let Some(d) = a.downtime() {
                    lines.push(format!("Down for: {}", human_duration(d)));
                }
            }
        }
        AlertKind::Recovery => {
            if let Some(d) = a.downtime() {
                lines.push(format!("Downtime: {}", human_duration(d)));
            }
        }
        AlertKind::CertificateExpiry => {
            if let (Some(words), Some(at)) = (a.expiry_words(), a.certificate_expires_at) {
                lines.push(format!("Certificate: {words} ({})", time(at)));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use upwatch_core::{CheckError, ErrorKind};
    use uuid::Uuid;

    fn alert(kind: AlertKind, name: &str) -> Alert {
        Alert {
            id: Uuid::now_v7(),
            kind,
            monitor_id: Uuid::now_v7(),
            monitor_name: name.into(),
            monitor_url: "https://example.com".into(),
            at: Utc.with_ymd_and_hms(2024, 1, 16, 21, 0, 0).unwrap(),
            status_code: Some(500),
            response_time_ms: 12,
            error: Some(CheckError::new(ErrorKind::StatusMismatch, "got HTTP 500")),
            down_since: Some(Utc.with_ymd_and_hms(2024, 1, 16, 20, 0, 0).unwrap()),
            certificate_expires_at: None,
            days_left: None,
            regions: None,
        }
    }

    #[test]
    fn a_reminder_says_how_long() {
        let m = Message::Alert(alert(AlertKind::Reminder, "Shop"));
        assert_eq!(m.headline(), "🔴 Shop is still down for 1h 0m");
        assert!(m.text().contains("Down for: 1h 0m"), "{}", m.text());
        assert_eq!(m.severity(), Severity::Down);
    }

    #[test]
    fn a_storm_lists_25_names_then_the_rest() {
        let alerts = (0..30)
            .map(|i| alert(AlertKind::Down, &format!("site-{i:02}")))
            .collect();
        let m = Message::Storm(Storm {
            kind: AlertKind::Down,
            alerts,
            dashboard_url: Some("https://status.example.com/".into()),
        });
        assert_eq!(m.headline(), "🔴 30 monitors are down");
        let lines = m.lines();
        assert_eq!(lines[1], "• site-00");
        assert_eq!(lines[25], "• site-24");
        assert_eq!(lines[26], "• and 5 more");
        assert_eq!(lines[27], "Dashboard: https://status.example.com/");
    }

    #[test]
    fn a_push_monitor_hides_its_token() {
        let mut a = alert(AlertKind::Down, "cron");
        a.monitor_url = "push://0123456789abcdef0123456789abcdef".into();
        assert!(!Message::Alert(a).text().contains("0123456789abcdef"));
    }
}
