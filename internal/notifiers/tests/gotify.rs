//! The Gotify notifier: its exact JSON messages, and its requests and answers against a
//! real loopback receiver standing in for a Gotify server.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::AlertKind;
use upwatch_notifiers::gotify::{payload, GotifyNotifier};
use upwatch_notifiers::Channels;
use upwatch_notify::{Message, Notifier, Provider, SendError, Storm};
use upwatch_testkit::alerts::{down, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const WAIT: Duration = Duration::from_secs(5);
const TOKEN: &str = "AsecretToken7x.Q";

fn settings(server_url: &str) -> Value {
    json!({"server_url": server_url, "app_token": TOKEN})
}

fn storm() -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(30),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

const PLAIN: &str = "text/plain";

#[test]
fn a_down_alert_pops_up() {
    assert_eq!(
        payload(&settings(""), &Message::Alert(down())),
        json!({
            "title": "🔴 My Website is down",
            "message": "Site: My Website (https://example.com)\nStatus: DOWN\n\
                        Time: 2024-01-16 20:00:00 UTC\n\
                        Error: status_mismatch: got HTTP 500, expected 200",
            "priority": 8,
            "extras": {"client::display": {"contentType": PLAIN}},
        })
    );
}

#[test]
fn a_recovery_has_a_normal_priority() {
    assert_eq!(
        payload(&settings(""), &Message::Alert(recovery())),
        json!({
            "title": "🟢 My Website is up again",
            "message": "Site: My Website (https://example.com)\nStatus: UP\n\
                        Time: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s",
            "priority": 5,
            "extras": {"client::display": {"contentType": PLAIN}},
        })
    );
}

#[test]
fn a_reminder_pops_up_again() {
    assert_eq!(
        payload(&settings(""), &Message::Alert(reminder())),
        json!({
            "title": "🔴 My Website is still down for 1h 0m",
            "message": "Site: My Website (https://example.com)\nStatus: DOWN\n\
                        Time: 2024-01-16 21:00:00 UTC\n\
                        Error: status_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m",
            "priority": 8,
            "extras": {"client::display": {"contentType": PLAIN}},
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
        payload(&settings(""), &storm()),
        json!({
            "title": "🔴 30 monitors are down",
            "message": message,
            "priority": 8,
            "extras": {
                "client::display": {"contentType": PLAIN},
                "client::notification": {"click": {"url": "https://status.example.com/"}},
            },
        })
    );
}

#[test]
fn the_test_message_is_exact() {
    assert_eq!(
        payload(&settings(""), &Message::Test),
        json!({
            "title": "✅ upwatch test message",
            "message": "This channel receives upwatch's down and recovery alerts.",
            "priority": 5,
            "extras": {"client::display": {"contentType": PLAIN}},
        })
    );
}

#[test]
fn a_set_priority_applies_to_every_message() {
    let s = json!({"server_url": "https://g.example.com", "app_token": TOKEN, "priority": 0});
    assert_eq!(payload(&s, &Message::Alert(down()))["priority"], 0);
    assert_eq!(payload(&s, &Message::Test)["priority"], 0);
}

async fn send(rx: &HttpReceiver, message: &Message) -> Result<(), SendError> {
    GotifyNotifier::new()
        .send(&settings(&rx.url()), message)
        .await
}

fn ok() -> Answer {
    Answer::json(
        200,
        json!({"id": 25, "appid": 5, "message": "…", "title": "…", "priority": 8,
               "date": "2024-01-16T20:00:00Z"}),
    )
}

#[tokio::test]
async fn a_down_alert_is_posted_with_the_key_in_a_header() {
    let rx = HttpReceiver::start(ok()).await;
    let message = Message::Alert(down());
    send(&rx, &message).await.unwrap();
    // A server behind a path prefix, given with a trailing slash.
    GotifyNotifier::new()
        .send(&settings(&format!("{}/gotify/", rx.url())), &message)
        .await
        .unwrap();
    let requests = rx.wait_for(2, WAIT).await;
    assert_eq!(requests.len(), 2);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/message");
    assert_eq!(req.query, "", "the token stays out of the URL");
    assert_eq!(req.header("x-gotify-key"), Some(TOKEN));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.json(), payload(&settings(""), &message));
    assert_eq!(requests[1].path, "/gotify/message");
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::status(429).header("retry-after", "12"));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(12)
        })
    );
}

#[tokio::test]
async fn a_5xx_is_retryable() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        500,
        json!({"error": "Internal Server Error", "errorCode": 500,
               "errorDescription": "database is locked"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Retryable(
            "HTTP 500: Internal Server Error: database is locked".into()
        ))
    );
}

#[tokio::test]
async fn a_refused_token_disables_the_channel_without_it() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        401,
        json!({"error": "Unauthorized", "errorCode": 401,
               "errorDescription": "you need to provide a valid access token or user credentials to access this api"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Disabled(
            "HTTP 401: Unauthorized: you need to provide a valid access token or user \
             credentials to access this api"
                .into()
        ))
    );
    rx.push(Answer::json(
        403,
        json!({"error": "Forbidden", "errorCode": 403,
               "errorDescription": format!("token {TOKEN} is not an application token")}),
    ));
    match send(&rx, &Message::Test).await {
        Err(SendError::Disabled(reason)) => {
            assert!(
                reason.starts_with("HTTP 403: Forbidden: token "),
                "{reason}"
            );
            assert!(!reason.contains(TOKEN), "{reason}");
        }
        other => panic!("expected Disabled, got {other:?}"),
    }
}

#[tokio::test]
async fn a_400_rejects_only_this_message() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        400,
        json!({"error": "Bad Request", "errorCode": 400,
               "errorDescription": "Field 'message' is required"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Rejected(
            "HTTP 400: Bad Request: Field 'message' is required".into()
        ))
    );
}

#[test]
fn settings_are_checked() {
    let p = GotifyNotifier::new();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    assert_eq!(field(json!({"app_token": TOKEN})), "settings.server_url");
    assert_eq!(
        field(json!({"server_url": "https://g.example.com"})),
        "settings.app_token"
    );
    assert_eq!(
        field(json!({"server_url": "https://g.example.com", "app_token": TOKEN, "token": "x"})),
        "settings.token"
    );
    assert_eq!(
        field(json!({"server_url": "g.example.com", "app_token": TOKEN})),
        "settings.server_url"
    );
    assert_eq!(
        field(json!({"server_url": "https://g.example.com/message?token=x", "app_token": TOKEN})),
        "settings.server_url"
    );
    assert_eq!(
        field(json!({"server_url": "https://g.example.com", "app_token": TOKEN, "priority": 11})),
        "settings.priority"
    );

    p.validate(&json!({
        "server_url": "https://gotify.example.com",
        "app_token": TOKEN,
        "priority": 8
    }))
    .unwrap();
}

#[test]
fn the_kind_is_registered_and_its_token_redacted() {
    let channels = Channels::all(Duration::from_secs(1));
    assert!(channels.kinds().contains(&"gotify"));
    let redacted = channels.redact("gotify", &settings("https://gotify.example.com"));
    assert!(!redacted.to_string().contains(TOKEN), "{redacted}");
    assert_eq!(redacted["server_url"], "https://gotify.example.com");
}
