//! The PagerDuty notifier: its exact events, and its requests and answers against a real
//! loopback receiver standing in for the Events API v2.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use upwatch_core::watchdog::Notice;
use upwatch_core::{Alert, AlertKind};
use upwatch_notifiers::pagerduty::{
    incident_key, payload, Endpoint, Event, PagerDutyNotifier, RATE_LIMIT_WAIT, WATCHDOG_KEY,
};
use upwatch_notify::{Message, Provider, SendError, Storm};
use upwatch_testkit::alerts::keyed::{down, recovery, reminder, MONITOR, START_MS};
use upwatch_testkit::alerts::{storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(5);
const KEY: &str = "R0uTiNgKeY0123456789abcdefABCDEF";

fn storm(kind: AlertKind) -> Message {
    Message::Storm(Storm {
        kind,
        alerts: storm_alerts(30),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn settings(api_url: &str) -> Value {
    json!({"routing_key": KEY, "api_url": api_url})
}

fn body(message: &Message) -> Value {
    payload(&json!({"routing_key": KEY}), message).body
}

fn accepted() -> Answer {
    Answer::json(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": "x"}),
    )
}

#[test]
fn a_down_alert_triggers_with_the_incident_key() {
    let event = payload(&json!({"routing_key": KEY}), &Message::Alert(down()));
    assert_eq!(event.endpoint, Endpoint::Alerts);
    assert_eq!(
        event.body,
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": format!("upwatch-{MONITOR}-{START_MS}"),
            "payload": {
                "summary": "🔴 My Website is down",
                "source": "https://example.com",
                "severity": "critical",
                "timestamp": "2024-01-16T20:00:00.000Z",
                "component": "My Website",
                "custom_details": {
                    "Site": "My Website (https://example.com)",
                    "Status": "DOWN",
                    "Time": "2024-01-16 20:00:00 UTC",
                    "Error": "status_mismatch: got HTTP 500, expected 200",
                    "Status code": "500",
                    "Response time": "123 ms",
                },
            },
            "client": "upwatch",
        })
    );
    // The channel's severity applies to down alerts.
    let warning = payload(
        &json!({"routing_key": KEY, "severity": "error"}),
        &Message::Alert(down()),
    );
    assert_eq!(warning.body["payload"]["severity"], "error");
}

#[test]
fn a_recovery_resolves_the_same_key_and_a_reminder_triggers_it_again() {
    assert_eq!(
        body(&Message::Alert(recovery())),
        json!({
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": format!("upwatch-{MONITOR}-{START_MS}"),
        })
    );
    assert_eq!(incident_key(&recovery()), incident_key(&down()));
    assert_eq!(
        body(&Message::Alert(reminder())),
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": format!("upwatch-{MONITOR}-{START_MS}"),
            "payload": {
                "summary": "🔴 My Website is still down for 1h 0m",
                "source": "https://example.com",
                "severity": "critical",
                "timestamp": "2024-01-16T21:00:00.000Z",
                "component": "My Website",
                "custom_details": {
                    "Site": "My Website (https://example.com)",
                    "Status": "DOWN",
                    "Time": "2024-01-16 21:00:00 UTC",
                    "Error": "status_mismatch: got HTTP 500, expected 200",
                    "Down for": "1h 0m",
                    "Status code": "500",
                    "Response time": "123 ms",
                },
            },
            "client": "upwatch",
        })
    );
}

#[test]
fn a_certificate_alert_is_a_warning_per_certificate() {
    let alert = Alert {
        kind: AlertKind::CertificateExpiry,
        status_code: Some(200),
        error: None,
        certificate_expires_at: Some(Utc.with_ymd_and_hms(2024, 1, 21, 20, 0, 0).unwrap()),
        days_left: Some(5),
        regions: None,
        ..down()
    };
    let b = body(&Message::Alert(alert));
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], format!("upwatch-cert-{MONITOR}-1705867200"));
    assert_eq!(b["payload"]["severity"], "warning");
    assert_eq!(
        b["payload"]["summary"],
        "🟠 My Website's certificate expires in 5 days"
    );
}

#[test]
fn a_push_monitor_is_named_by_its_type() {
    let alert = Alert {
        monitor_url: "push://feedface00feedface00feedface00ff".into(),
        ..down()
    };
    let b = body(&Message::Alert(alert));
    assert_eq!(b["payload"]["source"], "push monitor");
    assert!(!b.to_string().contains("feedface"), "{b}");
}

#[test]
fn a_storm_is_one_trigger_keyed_by_its_first_alert() {
    let names: Vec<String> = (0..25)
        .map(|i| format!("site-{i:02}"))
        .chain(["and 5 more".to_string()])
        .collect();
    assert_eq!(
        body(&storm(AlertKind::Down)),
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": format!("upwatch-storm-{}", Uuid::from_u128(100)),
            "payload": {
                "summary": "🔴 30 monitors are down",
                "source": "upwatch",
                "severity": "critical",
                "timestamp": "2024-01-16T20:00:00.000Z",
                "custom_details": {
                    "Since": "2024-01-16 20:00:00 UTC",
                    "Monitors": names.join(", "),
                    "Dashboard": "https://status.example.com/",
                },
            },
            "client": "upwatch",
            "client_url": "https://status.example.com/",
        })
    );
    let recovered = payload(&json!({"routing_key": KEY}), &storm(AlertKind::Recovery));
    assert_eq!(recovered.endpoint, Endpoint::Changes);
    assert_eq!(
        recovered.body,
        json!({
            "routing_key": KEY,
            "payload": {
                "summary": "🟢 30 monitors are up again",
                "source": "upwatch",
                "timestamp": "2024-01-16T20:00:00.000Z",
                "custom_details": {
                    "Since": "2024-01-16 20:00:00 UTC",
                    "Monitors": names.join(", "),
                    "Dashboard": "https://status.example.com/",
                },
            },
            "links": [{"href": "https://status.example.com/", "text": "upwatch dashboard"}],
        })
    );
}

#[test]
fn the_test_message_is_a_change_event_and_notices_use_the_watchdog_key() {
    assert_eq!(
        payload(&json!({"routing_key": KEY}), &Message::Test),
        Event {
            endpoint: Endpoint::Changes,
            body: json!({
                "routing_key": KEY,
                "payload": {
                    "summary": "✅ upwatch test message",
                    "source": "upwatch",
                    "custom_details": {
                        "Text": "This channel receives upwatch's down and recovery alerts."
                    },
                },
            }),
        }
    );
    let unchecked = body(&Message::Notice(Notice::Unchecked {
        count: 2,
        intervals: 3,
        names: vec!["api".into(), "shop".into()],
    }));
    assert_eq!(unchecked["event_action"], "trigger");
    assert_eq!(unchecked["dedup_key"], WATCHDOG_KEY);
    assert_eq!(unchecked["payload"]["severity"], "warning");
    assert_eq!(
        body(&Message::Notice(Notice::CheckedAgain {
            count: 2,
            lasted_ms: 60_000
        })),
        json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": WATCHDOG_KEY})
    );
}

#[test]
fn a_long_headline_is_cut_to_1024_characters() {
    let alert = Alert {
        monitor_name: "é".repeat(3000),
        ..down()
    };
    let summary = body(&Message::Alert(alert))["payload"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(summary.chars().count(), 1024);
    assert!(summary.ends_with('…'));
}

#[tokio::test]
async fn an_incident_is_triggered_then_resolved_with_one_key() {
    let rx = HttpReceiver::start(accepted()).await;
    let notifier = PagerDutyNotifier::new();
    let settings = settings(&rx.url());
    notifier.validate(&settings).unwrap();
    assert!(!notifier.groups_storms());
    assert_eq!(
        notifier.send(&settings, &Message::Alert(down())).await,
        Ok(())
    );
    assert_eq!(
        notifier.send(&settings, &Message::Alert(recovery())).await,
        Ok(())
    );
    let requests = rx.wait_for(2, WAIT).await;
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v2/enqueue")
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(requests[0].json(), body(&Message::Alert(down())));
    assert_eq!(requests[1].json(), body(&Message::Alert(recovery())));
    assert_eq!(
        requests[0].json()["dedup_key"],
        requests[1].json()["dedup_key"]
    );
}

#[tokio::test]
async fn a_test_message_goes_to_the_change_events() {
    let rx = HttpReceiver::start(accepted()).await;
    assert_eq!(
        PagerDutyNotifier::new()
            .send(&settings(&rx.url()), &Message::Test)
            .await,
        Ok(())
    );
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests[0].path, "/v2/change/enqueue");
    assert_eq!(requests[0].json(), body(&Message::Test));
}

#[tokio::test]
async fn a_429_waits_for_retry_after_or_30_seconds() {
    let rx = HttpReceiver::start(accepted()).await;
    let notifier = PagerDutyNotifier::new();
    let settings = settings(&rx.url());
    rx.push(Answer::status(429));
    assert_eq!(
        notifier.send(&settings, &Message::Alert(down())).await,
        Err(SendError::RateLimited {
            retry_after: RATE_LIMIT_WAIT
        })
    );
    assert_eq!(RATE_LIMIT_WAIT, Duration::from_secs(30));
    rx.push(Answer::status(429).header("retry-after", "7"));
    assert_eq!(
        notifier.send(&settings, &Message::Alert(down())).await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(7)
        })
    );
}

#[tokio::test]
async fn a_5xx_is_retryable() {
    let rx = HttpReceiver::start(accepted()).await;
    rx.push(Answer::text(502, "bad gateway"));
    match PagerDutyNotifier::new()
        .send(&settings(&rx.url()), &Message::Alert(down()))
        .await
    {
        Err(SendError::Retryable(text)) => assert!(text.starts_with("HTTP 502"), "{text}"),
        other => panic!("a 502 is Retryable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invalid_routing_key_disables_and_an_invalid_event_rejects() {
    let rx = HttpReceiver::start(accepted()).await;
    let notifier = PagerDutyNotifier::new();
    let settings = settings(&rx.url());
    rx.push(Answer::json(
        400,
        json!({"status": "invalid event", "message": "Event object is invalid",
               "errors": ["Invalid routing key", KEY]}),
    ));
    match notifier.send(&settings, &Message::Alert(down())).await {
        Err(SendError::Disabled(reason)) => {
            assert!(reason.starts_with("HTTP 400 Bad Request"), "{reason}");
            assert!(reason.contains("Invalid routing key"), "{reason}");
            assert!(!reason.contains(KEY), "{reason}");
        }
        other => panic!("an invalid routing key is Disabled, got {other:?}"),
    }
    rx.push(Answer::json(
        400,
        json!({"status": "invalid event", "message": "Event object is invalid",
               "errors": ["'payload.summary' is missing or blank"]}),
    ));
    assert!(matches!(
        notifier.send(&settings, &Message::Alert(down())).await,
        Err(SendError::Rejected(t)) if t.contains("payload.summary")
    ));
    let requests = rx.requests();
    assert_eq!(requests.len(), 2);
    // The key travels in the body only.
    assert!(requests[0].headers.values().all(|v| !v.contains(KEY)));
}

#[test]
fn validate_names_the_bad_setting() {
    let p = PagerDutyNotifier::new();
    p.validate(&json!({"routing_key": KEY, "severity": "warning",
        "api_url": "https://events.eu.pagerduty.com"}))
        .unwrap();
    p.validate(&json!({"routing_key": KEY})).unwrap();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    assert_eq!(field(json!({})), "settings.routing_key");
    assert_eq!(
        field(json!({"routing_key": &KEY[1..]})),
        "settings.routing_key"
    );
    assert_eq!(
        field(json!({"routing_key": "R0uTiNgKeY0123456789abcdefABCD-F"})),
        "settings.routing_key"
    );
    assert_eq!(
        field(json!({"routing_key": KEY, "severity": "high"})),
        "settings.severity"
    );
    assert_eq!(
        field(json!({"routing_key": KEY, "api_url": "ftp://x"})),
        "settings.api_url"
    );
    assert_eq!(
        field(json!({"routing_key": KEY, "service_key": "x"})),
        "settings.service_key"
    );
    let e = p.validate(&json!({"routing_key": &KEY[1..]})).unwrap_err();
    assert!(!e.to_string().contains(&KEY[1..]), "{e}");
    assert_eq!(p.secrets(), ["routing_key"]);
}
