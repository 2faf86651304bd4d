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
