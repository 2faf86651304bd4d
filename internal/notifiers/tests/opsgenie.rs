//! The Opsgenie notifier: its exact requests, and what it sends and how it reads the answers
//! against a real loopback receiver standing in for the Alert API.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use upwatch_core::watchdog::Notice;
use upwatch_core::{Alert, AlertKind};
use upwatch_notifiers::opsgenie::{request, Call, OpsgenieNotifier, RATE_LIMIT_WAIT};
use upwatch_notify::{Message, Provider, SendError, Storm};
use upwatch_testkit::alerts::keyed::{down, recovery, reminder, MONITOR, START_MS};
use upwatch_testkit::alerts::{storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(5);
const KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";

fn settings(api_url: &str) -> Value {
    json!({"api_key": KEY, "api_url": api_url})
}

fn call(message: &Message) -> Call {
    request(&json!({"api_key": KEY}), message)
}

fn storm(kind: AlertKind) -> Message {
    Message::Storm(Storm {
        kind,
        alerts: storm_alerts(30),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn alias() -> String {
    format!("upwatch-{MONITOR}-{START_MS}")
}

fn accepted() -> Answer {
    Answer::json(
        202,
        json!({"result": "Request will be processed", "took": 0.302,
               "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}),
    )
}

#[test]
fn a_down_alert_creates_an_alert_with_the_incident_alias() {
    assert_eq!(
        call(&Message::Alert(down())),
        Call {
            path: "/v2/alerts".into(),
            body: json!({
                "message": "🔴 My Website is down",
                "alias": alias(),
                "description": "Site: My Website (https://example.com)\nStatus: DOWN\n\
                                Time: 2024-01-16 20:00:00 UTC\n\
                                Error: status_mismatch: got HTTP 500, expected 200",
                "priority": "P1",
                "source": "upwatch",
                "tags": ["upwatch"],
                "entity": "My Website",
                "details": {
                    "Site": "My Website (https://example.com)",
                    "Status": "DOWN",
                    "Time": "2024-01-16 20:00:00 UTC",
                    "Error": "status_mismatch: got HTTP 500, expected 200",
                    "Status code": "500",
                    "Response time": "123 ms",
                },
            }),
        }
    );
    let p3 = request(
        &json!({"api_key": KEY, "priority": "P3"}),
        &Message::Alert(down()),
    );
    assert_eq!(p3.body["priority"], "P3");
}

#[test]
fn a_recovery_closes_the_alias_and_a_reminder_adds_a_note() {
    assert_eq!(
        call(&Message::Alert(recovery())),
        Call {
            path: format!("/v2/alerts/{}/close?identifierType=alias", alias()),
            body: json!({
                "source": "upwatch",
                "note": "🟢 My Website is up again\nSite: My Website (https://example.com)\n\
                         Status: UP\nTime: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s",
            }),
        }
    );
    assert_eq!(
        call(&Message::Alert(reminder())),
        Call {
            path: format!("/v2/alerts/{}/notes?identifierType=alias", alias()),
            body: json!({
                "source": "upwatch",
                "note": "🔴 My Website is still down for 1h 0m\n\
                         Site: My Website (https://example.com)\nStatus: DOWN\n\
                         Time: 2024-01-16 21:00:00 UTC\n\
                         Error: status_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m",
            }),
        }
    );
}

#[test]
fn a_certificate_alert_is_p3_with_its_own_alias() {
    let alert = Alert {
        kind: AlertKind::CertificateExpiry,
        status_code: Some(200),
        error: None,
        certificate_expires_at: Some(Utc.with_ymd_and_hms(2024, 1, 21, 20, 0, 0).unwrap()),
        days_left: Some(5),
        regions: None,
        ..down()
    };
    let c = call(&Message::Alert(alert));
    assert_eq!(c.path, "/v2/alerts");
    assert_eq!(c.body["priority"], "P3");
    assert_eq!(
        c.body["alias"],
        format!("upwatch-cert-{MONITOR}-1705867200")
    );
    assert_eq!(
        c.body["message"],
        "🟠 My Website's certificate expires in 5 days"
    );
}

#[test]
fn a_storm_is_one_alert_listing_its_names() {
    let names: Vec<String> = (0..25)
        .map(|i| format!("site-{i:02}"))
        .chain(["and 5 more".to_string()])
        .collect();
    let description = std::iter::once("Since: 2024-01-16 20:00:00 UTC".to_string())
        .chain(names.iter().map(|n| format!("• {n}")))
        .chain(["Dashboard: https://status.example.com/".to_string()])
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        call(&storm(AlertKind::Down)),
        Call {
            path: "/v2/alerts".into(),
            body: json!({
                "message": "🔴 30 monitors are down",
                "alias": format!("upwatch-storm-{}", Uuid::from_u128(100)),
                "description": description,
                "priority": "P1",
                "source": "upwatch",
                "tags": ["upwatch"],
                "details": {
                    "Since": "2024-01-16 20:00:00 UTC",
                    "Monitors": names.join(", "),
                    "Dashboard": "https://status.example.com/",
                },
            }),
        }
    );
    let recovered = call(&storm(AlertKind::Recovery));
    assert_eq!(recovered.body["priority"], "P5");
    assert_eq!(recovered.body["message"], "🟢 30 monitors are up again");
}

#[test]
fn the_test_message_is_one_p5_alert_and_notices_use_the_watchdog_alias() {
    let mut test = call(&Message::Test);
    let alias = test.body["alias"].as_str().unwrap().to_string();
    let id = alias.strip_prefix("upwatch-test-").expect("a test alias");
    assert!(id.parse::<Uuid>().is_ok(), "{alias}");
    assert_ne!(
        call(&Message::Test).body["alias"],
        alias,
        "one alias per test"
    );
    test.body.as_object_mut().unwrap().remove("alias");
    assert_eq!(
        test,
        Call {
            path: "/v2/alerts".into(),
            body: json!({
                "message": "✅ upwatch test message",
                "description": "This channel receives upwatch's down and recovery alerts.",
                "priority": "P5",
                "source": "upwatch",
                "tags": ["upwatch"],
                "details": {"Text": "This channel receives upwatch's down and recovery alerts."},
            }),
        }
    );
    let unchecked = call(&Message::Notice(Notice::Unchecked {
        count: 2,
        intervals: 3,
        names: vec!["api".into(), "shop".into()],
    }));
    assert_eq!(
        (
            unchecked.body["alias"].as_str(),
            unchecked.body["priority"].as_str()
        ),
        (Some("upwatch-watchdog"), Some("P3"))
    );
    let again = call(&Message::Notice(Notice::CheckedAgain {
        count: 2,
        lasted_ms: 60_000,
    }));
    assert_eq!(
        again.path,
        "/v2/alerts/upwatch-watchdog/close?identifierType=alias"
    );
}

#[test]
fn texts_are_cut_to_the_documented_limits() {
    let alert = Alert {
        monitor_name: "é".repeat(20_000),
        ..down()
    };
    let body = call(&Message::Alert(alert)).body;
    let chars = |k: &str| body[k].as_str().unwrap().chars().count();
    assert_eq!(chars("message"), 130);
    assert_eq!(chars("description"), 15000);
    assert_eq!(chars("entity"), 512);
}

#[tokio::test]
async fn a_down_alert_is_posted_with_the_genie_key_and_closed_by_alias() {
    let rx = HttpReceiver::start(accepted()).await;
    let notifier = OpsgenieNotifier::new();
    let settings = settings(&rx.url());
    notifier.validate(&settings).unwrap();
    assert!(!notifier.groups_storms());
    for alert in [down(), recovery()] {
        assert_eq!(
            notifier.send(&settings, &Message::Alert(alert)).await,
            Ok(())
        );
    }
    let requests = rx.wait_for(2, WAIT).await;
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.header("authorization"),
            Some(format!("GenieKey {KEY}").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(requests[0].path, "/v2/alerts");
    assert_eq!(requests[0].query, "");
    assert_eq!(requests[0].json(), call(&Message::Alert(down())).body);
    assert_eq!(requests[1].path, format!("/v2/alerts/{}/close", alias()));
    assert_eq!(requests[1].query, "identifierType=alias");
    assert_eq!(requests[1].json(), call(&Message::Alert(recovery())).body);
}

#[tokio::test]
async fn a_reminder_adds_a_note_to_the_alert_by_alias() {
    let rx = HttpReceiver::start(accepted()).await;
    OpsgenieNotifier::new()
        .send(&settings(&rx.url()), &Message::Alert(reminder()))
        .await
        .unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests[0].path, format!("/v2/alerts/{}/notes", alias()));
    assert_eq!(requests[0].query, "identifierType=alias");
    assert_eq!(requests[0].json(), call(&Message::Alert(reminder())).body);
}

#[tokio::test]
async fn a_429_waits_for_retry_after_or_30_seconds() {
    let rx = HttpReceiver::start(accepted()).await;
    let notifier = OpsgenieNotifier::new();
    let settings = settings(&rx.url());
    rx.push(Answer::json(
        429,
        json!({"message": "Too many requests", "took": 0.0, "requestId": "x"}),
    ));
    assert_eq!(
        notifier.send(&settings, &Message::Alert(down())).await,
        Err(SendError::RateLimited {
            retry_after: RATE_LIMIT_WAIT
        })
    );
    rx.push(Answer::status(429).header("retry-after", "4"));
    assert_eq!(
        notifier.send(&settings, &Message::Alert(down())).await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(4)
        })
    );
}

#[tokio::test]
async fn a_5xx_is_retryable() {
    let rx = HttpReceiver::start(accepted()).await;
    rx.push(Answer::text(503, "unavailable"));
    assert!(matches!(
        OpsgenieNotifier::new()
            .send(&settings(&rx.url()), &Message::Alert(down()))
            .await,
        Err(SendError::Retryable(t)) if t.starts_with("HTTP 503")
    ));
}

#[tokio::test]
async fn a_refused_key_disables_and_an_unprocessable_request_rejects() {
    let rx = HttpReceiver::start(accepted()).await;
    let notifier = OpsgenieNotifier::new();
    let settings = settings(&rx.url());
    for status in [401, 403] {
        rx.push(Answer::json(
            status,
            json!({"message": format!("Could not authenticate with key {KEY}"),
                   "took": 0.0, "requestId": "x"}),
        ));
        match notifier.send(&settings, &Message::Alert(down())).await {
            Err(SendError::Disabled(reason)) => {
                assert!(reason.starts_with(&format!("HTTP {status}")), "{reason}");
                assert!(!reason.contains(KEY), "{reason}");
            }
            other => panic!("a {status} is Disabled, got {other:?}"),
        }
    }
    rx.push(Answer::json(
        422,
        json!({"message": "Request body is not processable. Please check the errors.",
               "errors": {"message": "Message can not be empty."}, "took": 0.0, "requestId": "x"}),
    ));
    assert!(matches!(
        notifier.send(&settings, &Message::Alert(down())).await,
        Err(SendError::Rejected(t)) if t.starts_with("HTTP 422")
    ));
    rx.push(Answer::json(
        404,
        json!({"message": "Alert does not exist"}),
    ));
    assert!(matches!(
        notifier.send(&settings, &Message::Alert(recovery())).await,
        Err(SendError::Rejected(_))
    ));
}

#[test]
fn validate_names_the_bad_setting() {
    let p = OpsgenieNotifier::new();
    p.validate(&json!({"api_key": KEY, "priority": "P2",
        "api_url": "https://api.eu.opsgenie.com"}))
        .unwrap();
    p.validate(&json!({"api_key": KEY})).unwrap();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    assert_eq!(field(json!({})), "settings.api_key");
    assert_eq!(field(json!({"api_key": "has a space"})), "settings.api_key");
    assert_eq!(
        field(json!({"api_key": KEY, "priority": "P6"})),
        "settings.priority"
    );
    assert_eq!(
        field(json!({"api_key": KEY, "api_url": "api.opsgenie.com"})),
        "settings.api_url"
    );
    assert_eq!(
        field(json!({"api_key": KEY, "team": "ops"})),
        "settings.team"
    );
    assert_eq!(p.secrets(), ["api_key"]);
}
