//! The alerts that the notifier tests send: one monitor's down alert, its recovery and its
//! reminder, and the alerts of a storm, all on 2024-01-16 (UTC) with fixed values, so that a
//! test can spell out the exact payload a provider builds from them.
//!
//! A test that needs another value (an id that a provider's key is made of, say) changes
//! that field with struct update syntax: `Alert { id: Uuid::from_u128(1), ..down() }`.

use chrono::{DateTime, TimeZone, Utc};
use upwatch_core::{Alert, AlertKind, CheckError, ErrorKind};
use uuid::Uuid;

/// The dashboard's address that the tests' storm messages link to.
pub const DASHBOARD: &str = "https://status.example.com/";

/// `h:m` on 2024-01-16, UTC: the day that every alert here happens.
pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 16, h, m, 0).unwrap()
}

/// "My Website" (`https://example.com`) went down at 20:00: HTTP 500 in 123 ms, a
/// `status_mismatch` error "got HTTP 500, expected 200". Its id and its monitor's id are nil.
pub fn down() -> Alert {
    Alert {
        id: Uuid::nil(),
        kind: AlertKind::Down,
        monitor_id: Uuid::nil(),
        monitor_name: "My Website".into(),
        monitor_url: "https://example.com".into(),
        at: at(20, 0),
        status_code: Some(500),
        response_time_ms: 123,
        error: Some(CheckError::new(
            ErrorKind::StatusMismatch,
            "got HTTP 500, expected 200",
        )),
        down_since: None,
        certificate_expires_at: None,
        days_left: None,
        regions: None,
    }
}

/// The monitor of [`down`] is up again at 20:05 (HTTP 200, no error), after 5 minutes down.
pub fn recovery() -> Alert {
    Alert {
        kind: AlertKind::Recovery,
        at: at(20, 5),
        status_code: Some(200),
        error: None,
        down_since: Some(at(20, 0)),
        ..down()
    }
}

/// The monitor of [`down`] is still down at 21:00, an hour after it went down.
pub fn reminder() -> Alert {
    Alert {
        kind: AlertKind::Reminder,
        at: at(21, 0),
        down_since: Some(at(20, 0)),
        ..down()
    }
}

/// The down alerts of `n` monitors that went down together at 20:00, as in [`down`] but for
/// monitors named `site-00`, `site-01`, … at `https://site-00.example.com`, …: alert `i` has
/// the id `Uuid::from_u128(100 + i)`, and so has its monitor.
pub fn storm_alerts(n: usize) -> Vec<Alert> {
    (0..n)
        .map(|i| {
            let id = Uuid::from_u128(100 + i as u128);
            let name = format!("site-{i:02}");
            Alert {
                id,
                monitor_id: id,
                monitor_url: format!("https://{name}.example.com"),
                monitor_name: name,
                ..down()
            }
        })
        .collect()
}

/// The alerts of [`down`], [`recovery`] and [`reminder`] for a monitor with a real id,
/// [`MONITOR`](keyed::MONITOR): for the providers that key an incident by its monitor and its
/// start (PagerDuty's dedup key, Opsgenie's alias), whose tests spell the key out.
pub mod keyed {
    use upwatch_core::Alert;

    /// The monitor's id, a UUIDv7 as upwatch gives them.
    pub const MONITOR: &str = "0190d5a2-0000-7000-8000-00000000002a";
    /// When [`down`] went down, 2024-01-16 20:00:00 UTC, in Unix milliseconds: the incident's
    /// start.
    pub const START_MS: i64 = 1_705_435_200_000;

    /// [`super::down`], of the monitor [`MONITOR`].
    pub fn down() -> Alert {
        of_monitor(super::down())
    }

    /// [`super::recovery`], of the monitor [`MONITOR`].
    pub fn recovery() -> Alert {
        of_monitor(super::recovery())
    }

    /// [`super::reminder`], of the monitor [`MONITOR`].
    pub fn reminder() -> Alert {
        of_monitor(super::reminder())
    }

    fn of_monitor(alert: Alert) -> Alert {
        Alert {
            monitor_id: MONITOR.parse().unwrap(),
            ..alert
        }
    }
}
