//! The ntfy notifier: its exact JSON messages, and its requests and answers against a real
//! loopback receiver standing in for an ntfy server.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::{Alert, AlertKind};
use upwatch_notifiers::ntfy::{payload, NtfyNotifier, QUOTA_WAIT, REQUEST_LIMIT_WAIT};
use upwatch_notifiers::Channels;
use upwatch_notify::{Message, Notifier, Provider, SendError, Storm};
use upwatch_testkit::alerts::{at, down, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const WAIT: Duration = Duration::from_secs(5);
const TOPIC: &str = "upwatch_alerts_x7k2";
const TOKEN: &str = "tk_secrettoken0123456789abcd";

fn public() -> Value {
    json!({"topic_url": format!("https://ntfy.sh/{TOPIC}")})
}

fn storm() -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(30),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

#[test]
fn a_down_alert_is_urgent() {
    assert_eq!(
        payload(&public(), &Message::Alert(down())),
        json!({
            "topic": TOPIC,
            "title": "My Website is down",
            "message": "Site: My Website (https://example.com)\nStatus: DOWN\n\
                        Time: 2024-01-16 20:00:00 UTC\n\
                        Error: status_mismatch: got HTTP 500, expected 200",
            "priority": 5,
            "tags": ["rotating_light"],
        })
    );
}

#[test]
fn a_recovery_has_the_default_priority() {
    assert_eq!(
        payload(&public(), &Message::Alert(recovery())),
        json!({
            "topic": TOPIC,
            "title": "My Website is up again",
            "message": "Site: My Website (https://example.com)\nStatus: UP\n\
                        Time: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s",
            "priority": 3,
            "tags": ["white_check_mark"],
        })
    );
}

#[test]
fn a_reminder_is_urgent_again() {
    assert_eq!(
        payload(&public(), &Message::Alert(reminder())),
        json!({
            "topic": TOPIC,
            "title": "My Website is still down for 1h 0m",
            "message": "Site: My Website (https://example.com)\nStatus: DOWN\n\
                        Time: 2024-01-16 21:00:00 UTC\n\
                        Error: status_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m",
            "priority": 5,
            "tags": ["rotating_light"],
        })
    );
}

#[test]
fn a_certificate_alert_is_a_warning() {
    let alert = Alert {
        kind: AlertKind::CertificateExpiry,
        status_code: Some(200),
        error: None,
        certificate_expires_at: Some(at(20, 0) + chrono::Duration::days(5)),
        days_left: Some(5),
        regions: None,
        ..down()
    };
    assert_eq!(
        payload(&public(), &Message::Alert(alert)),
        json!({
            "topic": TOPIC,
            "title": "My Website's certificate expires in 5 days",
            "message": "Site: My Website (https://example.com)\nStatus: UP\n\
                        Time: 2024-01-16 20:00:00 UTC\n\
                        Certificate: expires in 5 days (2024-01-21 20:00:00 UTC)",
            "priority": 4,
            "tags": ["warning"],
        })
    );
}

#[test]
fn a_storm_of_30_lists_25_names_and_opens_the_dashboard() {
    let mut message = "Since: 2024-01-16 20:00:00 UTC".to_string();
    for i in 0..25 {
        message.push_str(&format!("\n• site-{i:02}"));
    }
    message.push_str("\n• and 5 more\nDashboard: https://status.example.com/");
    assert_eq!(
        payload(&public(), &storm()),
        json!({
            "topic": TOPIC,
            "title": "30 monitors are down",
            "message": message,
            "priority": 5,
            "tags": ["rotating_light"],
            "click": "https://status.example.com/",
        })
    );
}

#[test]
fn the_test_message_is_exact() {
    assert_eq!(
        payload(&public(), &Message::Test),
        json!({
            "topic": TOPIC,
            "title": "upwatch test message",
            "message": "This channel receives upwatch's down and recovery alerts.",
            "priority": 3,
            "tags": ["information_source"],
        })
    );
}

#[test]
fn a_set_priority_applies_to_every_message() {
    let settings = json!({"topic_url": format!("https://ntfy.sh/{TOPIC}"), "priority": 2});
    assert_eq!(payload(&settings, &Message::Alert(down()))["priority"], 2);
    assert_eq!(payload(&settings, &Message::Test)["priority"], 2);
}

#[test]
fn long_messages_stay_within_4096_bytes() {
    let alert = Alert {
        monitor_name: "é".repeat(3000),
        ..down()
    };
    let body = payload(&public(), &Message::Alert(alert));
    let message = body["message"].as_str().unwrap();
    assert!(message.len() <= 4096, "{}", message.len());
    assert!(message.ends_with('…'));
    assert!(body["title"].as_str().unwrap().chars().count() <= 256);
}

fn settings(rx: &HttpReceiver, token: Option<&str>) -> Value {
    let mut s = json!({"topic_url": format!("{}/{TOPIC}", rx.url())});
    if let Some(token) = token {
        s["token"] = token.into();
    }
    s
}

async fn send(rx: &HttpReceiver, message: &Message) -> Result<(), SendError> {
    NtfyNotifier::new()
        .send(&settings(rx, Some(TOKEN)), message)
        .await
}

fn ok() -> Answer {
    Answer::json(
        200,
        json!({"id": "sPs71M8A2T", "time": 1705435200, "event": "message", "topic": TOPIC}),
    )
}

#[tokio::test]
async fn a_down_alert_is_published_as_json_to_the_root() {
    let rx = HttpReceiver::start(ok()).await;
    let message = Message::Alert(down());
    let s = settings(&rx, Some(TOKEN));
    NtfyNotifier::new().send(&s, &message).await.unwrap();
    NtfyNotifier::new()
        .send(&settings(&rx, None), &message)
        .await
        .unwrap();
    let requests = rx.wait_for(2, WAIT).await;
    assert_eq!(requests.len(), 2);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/");
    assert_eq!(
        req.header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.json(), payload(&s, &message));
    assert_eq!(req.json()["topic"], TOPIC);
    // An open topic sends no credentials.
    assert_eq!(requests[1].header("authorization"), None);
    assert_eq!(requests[1].json(), req.json());
}

#[tokio::test]
async fn a_429_waits_as_ntfy_says() {
    let rx = HttpReceiver::start(ok()).await;
    let too_many = |code: u64, error: &str| {
        Answer::json(
            429,
            json!({"code": code, "http": 429, "error": error,
                   "link": "https://ntfy.sh/docs/publish/#limitations"}),
        )
    };
    rx.push(too_many(42901, "limit reached: too many requests"));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: REQUEST_LIMIT_WAIT
        })
    );
    rx.push(too_many(
        42908,
        "limit reached: daily message quota reached",
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: QUOTA_WAIT
        })
    );
    rx.push(too_many(42901, "limit reached: too many requests").header("retry-after", "9"));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(9)
        })
    );
}

#[tokio::test]
async fn a_5xx_is_retryable() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        500,
        json!({"code": 50001, "http": 500, "error": "internal server error"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Retryable(
            "HTTP 500: internal server error".into()
        ))
    );
}

#[tokio::test]
async fn a_refused_topic_disables_the_channel_without_its_secrets() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        403,
        json!({"code": 40301, "http": 403, "error": "forbidden",
               "link": "https://ntfy.sh/docs/publish/#authentication"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Disabled("HTTP 403: forbidden".into()))
    );
    rx.push(Answer::text(
        401,
        &format!("unauthorized: {TOKEN} may not write to {TOPIC}"),
    ));
    match send(&rx, &Message::Test).await {
        Err(SendError::Disabled(reason)) => {
            assert!(reason.starts_with("HTTP 401 Unauthorized"), "{reason}");
            assert!(!reason.contains(TOKEN), "{reason}");
            assert!(!reason.contains(TOPIC), "{reason}");
        }
        other => panic!("expected Disabled, got {other:?}"),
    }
}

#[tokio::test]
async fn a_400_rejects_only_this_message() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        400,
        json!({"code": 40024, "http": 400, "error": "invalid request: JSON body invalid"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Rejected(
            "HTTP 400: invalid request: JSON body invalid".into()
        ))
    );
}

#[test]
fn settings_are_checked() {
    let p = NtfyNotifier::new();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    assert_eq!(field(json!({"token": TOKEN})), "settings.topic_url");
    assert_eq!(
        field(json!({"topic_url": "https://ntfy.sh/x", "topic": "x"})),
        "settings.topic"
    );
    assert_eq!(
        field(json!({"topic_url": "ntfy.sh/x"})),
        "settings.topic_url"
    );
    let no_topic = p
        .validate(&json!({"topic_url": "https://ntfy.sh/"}))
        .unwrap_err();
    assert_eq!(no_topic.field, "settings.topic_url");
    assert!(no_topic.message.contains("topic"), "{no_topic}");
    assert_eq!(
        field(json!({"topic_url": "https://ntfy.sh/x", "priority": 6})),
        "settings.priority"
    );
    assert_eq!(
        field(json!({"topic_url": "https://ntfy.sh/x", "priority": 0})),
        "settings.priority"
    );

    p.validate(&json!({
        "topic_url": format!("https://ntfy.example.com/{TOPIC}"),
        "token": TOKEN,
        "priority": 4
    }))
    .unwrap();
}

#[test]
fn the_kind_is_registered_and_its_topic_redacted() {
    let channels = Channels::all(Duration::from_secs(1));
    assert!(channels.kinds().contains(&"ntfy"));
    let redacted = channels.redact(
        "ntfy",
        &json!({"topic_url": format!("https://ntfy.sh/{TOPIC}"), "token": TOKEN}),
    );
    let text = redacted.to_string();
    assert!(!text.contains(TOPIC), "{text}");
    assert!(!text.contains("secrettoken"), "{text}");
}
