//! The Pushover notifier: its exact forms, and its requests and answers against a real
//! loopback receiver standing in for Pushover's API.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::{Alert, AlertKind};
use upwatch_notifiers::pushover::{form, PushoverNotifier, MAX_MESSAGE, QUOTA_WAIT};
use upwatch_notifiers::Channels;
use upwatch_notify::{Message, Notifier, Provider, SendError, Storm};
use upwatch_testkit::alerts::{down, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const WAIT: Duration = Duration::from_secs(5);
const USER: &str = "usersecret0123456789abcdefghij";
const APP: &str = "appsecret0123456789abcdefghijk";

fn settings(api_url: &str) -> Value {
    json!({"user_key": USER, "app_token": APP, "api_url": api_url})
}

fn storm() -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(30),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn pairs(fields: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    fields.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

#[test]
fn a_down_alert_is_high_priority() {
    assert_eq!(
        form(&settings(""), &Message::Alert(down())),
        pairs(&[
            ("token", APP),
            ("user", USER),
            ("title", "🔴 My Website is down"),
            (
                "message",
                "Site: My Website (https://example.com)\nStatus: DOWN\n\
                 Time: 2024-01-16 20:00:00 UTC\n\
                 Error: status_mismatch: got HTTP 500, expected 200"
            ),
            ("priority", "1"),
            ("timestamp", "1705435200"),
        ])
    );
}

#[test]
fn a_recovery_is_normal_priority() {
    assert_eq!(
        form(&settings(""), &Message::Alert(recovery())),
        pairs(&[
            ("token", APP),
            ("user", USER),
            ("title", "🟢 My Website is up again"),
            (
                "message",
                "Site: My Website (https://example.com)\nStatus: UP\n\
                 Time: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s"
            ),
            ("priority", "0"),
            ("timestamp", "1705435500"),
        ])
    );
}

#[test]
fn a_reminder_is_high_priority_again() {
    assert_eq!(
        form(&settings(""), &Message::Alert(reminder())),
        pairs(&[
            ("token", APP),
            ("user", USER),
            ("title", "🔴 My Website is still down for 1h 0m"),
            (
                "message",
                "Site: My Website (https://example.com)\nStatus: DOWN\n\
                 Time: 2024-01-16 21:00:00 UTC\n\
                 Error: status_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m"
            ),
            ("priority", "1"),
            ("timestamp", "1705438800"),
        ])
    );
}

#[test]
fn a_storm_of_30_lists_25_names_and_links_the_dashboard() {
    let mut message = "Since: 2024-01-16 20:00:00 UTC".to_string();
    for i in 0..25 {
        message.push_str(&format!("\n• site-{i:02}"));
    }
    message.push_str("\n• and 5 more\nDashboard: https://status.example.com/");
    assert_eq!(
        form(&settings(""), &storm()),
        pairs(&[
            ("token", APP),
            ("user", USER),
            ("title", "🔴 30 monitors are down"),
            ("message", &message),
            ("priority", "1"),
            ("timestamp", "1705435200"),
            ("url", "https://status.example.com/"),
            ("url_title", "Open the dashboard"),
        ])
    );
}

#[test]
fn the_test_message_is_exact() {
    assert_eq!(
        form(&settings(""), &Message::Test),
        pairs(&[
            ("token", APP),
            ("user", USER),
            ("title", "✅ upwatch test message"),
            (
                "message",
                "This channel receives upwatch's down and recovery alerts."
            ),
            ("priority", "0"),
        ])
    );
}

#[test]
fn device_and_priority_settings_apply_to_every_message() {
    let s = json!({"user_key": USER, "app_token": APP, "device": "phone,tablet", "priority": -1});
    let f = form(&s, &Message::Alert(down()));
    assert!(f.contains(&("priority", "-1".to_string())), "{f:?}");
    assert!(f.contains(&("device", "phone,tablet".to_string())), "{f:?}");
}

#[test]
fn long_messages_are_cut_to_1024_characters() {
    let alert = Alert {
        monitor_name: "é".repeat(3000),
        ..down()
    };
    let f: BTreeMap<_, _> = form(&settings(""), &Message::Alert(alert))
        .into_iter()
        .collect();
    assert_eq!(f["message"].chars().count(), MAX_MESSAGE);
    assert!(f["message"].ends_with('…'));
    assert_eq!(f["title"].chars().count(), 250);
}

async fn send(rx: &HttpReceiver, message: &Message) -> Result<(), SendError> {
    PushoverNotifier::new()
        .send(&settings(&rx.url()), message)
        .await
}

fn ok() -> Answer {
    Answer::json(
        200,
        json!({"status": 1, "request": "647d2300-702c-4b38-8b2f-d56326ae460b"}),
    )
}

#[tokio::test]
async fn a_down_alert_is_posted_as_a_form() {
    let rx = HttpReceiver::start(ok()).await;
    let message = Message::Alert(down());
    send(&rx, &message).await.unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/1/messages.json");
    assert_eq!(req.query, "", "the keys stay out of the URL");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let expected: BTreeMap<String, String> = form(&settings(""), &message)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(req.form(), expected);
}

#[tokio::test]
async fn a_429_waits_an_hour_for_the_monthly_quota() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(
        Answer::json(
            429,
            json!({"status": 0, "errors": ["application has exceeded its message limit"]}),
        )
        .header("retry-after", "5"),
    );
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: QUOTA_WAIT
        })
    );
    assert_eq!(QUOTA_WAIT, Duration::from_secs(3600));
}

#[tokio::test]
async fn a_5xx_is_retryable() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::text(503, "Service Unavailable"));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Retryable(
            "HTTP 503 Service Unavailable: Service Unavailable".into()
        ))
    );
}

#[tokio::test]
async fn an_invalid_token_or_user_disables_the_channel_without_the_keys() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        400,
        json!({"token": "invalid", "errors": ["application token is invalid"],
               "status": 0, "request": "5042853c-402d-4a18-abcb-168734a801de"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Disabled(
            "HTTP 400: application token is invalid".into()
        ))
    );
    rx.push(Answer::json(
        400,
        json!({"user": "invalid",
               "errors": [format!("user key {USER} is invalid, token {APP}")],
               "status": 0, "request": "5042853c-402d-4a18-abcb-168734a801de"}),
    ));
    match send(&rx, &Message::Test).await {
        Err(SendError::Disabled(reason)) => {
            assert!(reason.starts_with("HTTP 400: user key "), "{reason}");
            assert!(!reason.contains(USER), "{reason}");
            assert!(!reason.contains(APP), "{reason}");
        }
        other => panic!("expected Disabled, got {other:?}"),
    }
}

#[tokio::test]
async fn another_4xx_rejects_only_this_message() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        400,
        json!({"message": "cannot be blank", "errors": ["message cannot be blank"],
               "status": 0, "request": "5042853c-402d-4a18-abcb-168734a801de"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Rejected(
            "HTTP 400: message cannot be blank".into()
        ))
    );
    // A 200 that does not say status 1 is not a delivery either.
    rx.push(Answer::json(
        200,
        json!({"status": 0, "errors": ["unknown"]}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Rejected("HTTP 200: unknown".into()))
    );
}

#[test]
fn settings_are_checked() {
    let p = PushoverNotifier::new();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    assert_eq!(field(json!({"app_token": APP})), "settings.user_key");
    assert_eq!(field(json!({"user_key": USER})), "settings.app_token");
    assert_eq!(
        field(json!({"user_key": USER, "app_token": APP, "sound": "siren"})),
        "settings.sound"
    );
    assert_eq!(
        field(json!({"user_key": USER, "app_token": APP, "api_url": "api.pushover.net"})),
        "settings.api_url"
    );
    assert_eq!(
        field(json!({"user_key": USER, "app_token": APP, "priority": 2})),
        "settings.priority"
    );
    assert_eq!(
        field(json!({"user_key": USER, "app_token": APP, "priority": -3})),
        "settings.priority"
    );
    assert_eq!(
        field(json!({"user_key": USER, "app_token": APP, "device": "my phone"})),
        "settings.device"
    );
    let short = p
        .validate(&json!({"user_key": "usersecret", "app_token": APP}))
        .unwrap_err();
    assert_eq!(short.field, "settings.user_key");
    assert!(!short.to_string().contains("usersecret"), "{short}");

    p.validate(&json!({
        "user_key": USER,
        "app_token": APP,
        "device": "iphone",
        "priority": -2,
        "api_url": "https://api.pushover.net"
    }))
    .unwrap();
}

#[test]
fn the_kind_is_registered_and_its_keys_redacted() {
    let channels = Channels::all(Duration::from_secs(1));
    assert!(channels.kinds().contains(&"pushover"));
    let redacted = channels.redact("pushover", &settings("https://api.pushover.net"));
    let text = redacted.to_string();
    assert!(!text.contains(USER) && !text.contains(APP), "{text}");
}
