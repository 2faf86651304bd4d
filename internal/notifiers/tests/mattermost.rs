//! The Mattermost notifier: its exact payloads, and a real loopback receiver standing in for
//! a Mattermost server.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::AlertKind;
use upwatch_notifiers::mattermost::{payload, MattermostNotifier};
use upwatch_notify::{Message, Provider, SendError, Storm};
use upwatch_testkit::alerts::{down, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const WAIT: Duration = Duration::from_secs(5);
const KEY: &str = "xxxgeneratedkeyxxx1234";

fn storm(n: usize) -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(n),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn no_settings() -> Value {
    json!({"webhook_url": "https://chat.example.com/hooks/abc"})
}

#[test]
fn a_down_alert_is_bold_text_and_a_red_attachment() {
    let message = Message::Alert(down());
    assert_eq!(
        payload(&no_settings(), &message),
        json!({
            "text": "**🔴 My Website is down**",
            "attachments": [{
                "fallback": "🔴 My Website is down\nSite: My Website (https://example.com)\n\
                             Status: DOWN\nTime: 2024-01-16 20:00:00 UTC\n\
                             Error: status_mismatch: got HTTP 500, expected 200",
                "color": "#E74C3C",
                "text": "Site: My Website (https://example.com)\nStatus: DOWN\n\
                         Time: 2024-01-16 20:00:00 UTC\n\
                         Error: status\\_mismatch: got HTTP 500, expected 200",
            }],
        })
    );
}

#[test]
fn a_recovery_is_green_with_its_downtime() {
    assert_eq!(
        payload(&no_settings(), &Message::Alert(recovery())),
        json!({
            "text": "**🟢 My Website is up again**",
            "attachments": [{
                "fallback": "🟢 My Website is up again\nSite: My Website (https://example.com)\n\
                             Status: UP\nTime: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s",
                "color": "#2ECC71",
                "text": "Site: My Website (https://example.com)\nStatus: UP\n\
                         Time: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s",
            }],
        })
    );
}

#[test]
fn a_reminder_is_red_and_says_for_how_long() {
    assert_eq!(
        payload(&no_settings(), &Message::Alert(reminder())),
        json!({
            "text": "**🔴 My Website is still down for 1h 0m**",
            "attachments": [{
                "fallback": "🔴 My Website is still down for 1h 0m\n\
                             Site: My Website (https://example.com)\nStatus: DOWN\n\
                             Time: 2024-01-16 21:00:00 UTC\n\
                             Error: status_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m",
                "color": "#E74C3C",
                "text": "Site: My Website (https://example.com)\nStatus: DOWN\n\
                         Time: 2024-01-16 21:00:00 UTC\n\
                         Error: status\\_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m",
            }],
        })
    );
}

#[test]
fn a_storm_of_30_lists_25_names_then_the_rest_and_links_the_dashboard() {
    let names: Vec<String> = (0..25).map(|i| format!("site-{i:02}")).collect();
    let fallback_list = names
        .iter()
        .map(|n| format!("• {n}"))
        .collect::<Vec<_>>()
        .join("\n");
    let markdown_list = names
        .iter()
        .map(|n| format!("- {n}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        payload(&no_settings(), &storm(30)),
        json!({
            "text": "**🔴 30 monitors are down**",
            "attachments": [{
                "fallback": format!(
                    "🔴 30 monitors are down\nSince: 2024-01-16 20:00:00 UTC\n{fallback_list}\n\
                     • and 5 more\nDashboard: https://status.example.com/"
                ),
                "color": "#E74C3C",
                "text": format!(
                    "Since: 2024-01-16 20:00:00 UTC\n{markdown_list}\n- and 5 more\n\
                     [Open the dashboard](https://status.example.com/)"
                ),
            }],
        })
    );
}

#[test]
fn the_test_message_is_blue_and_carries_the_overrides() {
    let settings = json!({
        "webhook_url": "https://chat.example.com/hooks/abc",
        "channel": "ops-alerts",
        "username": "upwatch",
        "icon_url": "https://example.com/upwatch.png",
    });
    assert_eq!(
        payload(&settings, &Message::Test),
        json!({
            "text": "**✅ upwatch test message**",
            "attachments": [{
                "fallback": "✅ upwatch test message\n\
                             This channel receives upwatch's down and recovery alerts.",
                "color": "#3498DB",
                "text": "This channel receives upwatch's down and recovery alerts.",
            }],
            "channel": "ops-alerts",
            "username": "upwatch",
            "icon_url": "https://example.com/upwatch.png",
        })
    );
}

#[test]
fn names_cannot_mention_or_forge_links() {
    let mut alert = down();
    alert.monitor_name = "@channel [click](https://evil.example) **big**".into();
    let p = payload(&no_settings(), &Message::Alert(alert));
    assert_eq!(
        p["text"],
        "**🔴 @\u{200B}channel \\[click\\](https://evil.example) \\*\\*big\\*\\* is down**"
    );
    let text = p["attachments"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "Site: @\u{200B}channel \\[click\\](https://evil.example) \\*\\*big\\*\\* \
             (https://example.com)\n"
        ),
        "{text}"
    );
    // The plain fallback is not Markdown and keeps the name as it is.
    assert!(p["attachments"][0]["fallback"]
        .as_str()
        .unwrap()
        .contains("@channel [click]"));
}

fn settings(rx: &HttpReceiver) -> Value {
    json!({
        "webhook_url": format!("{}/hooks/{KEY}", rx.url()),
        "channel": "town-square",
        "username": "upwatch",
    })
}

#[tokio::test]
async fn a_down_alert_is_posted_as_json_to_the_hook() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    let settings = settings(&rx);
    let message = Message::Alert(down());
    MattermostNotifier::new()
        .send(&settings, &message)
        .await
        .unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/hooks/{KEY}"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), None);
    let body = req.json();
    assert_eq!(body, payload(&settings, &message));
    assert_eq!(body["channel"], "town-square");
    assert_eq!(body["username"], "upwatch");
    assert!(body.get("icon_url").is_none());
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    rx.push(Answer::json(429, json!({"message": "too many requests"})).header("retry-after", "7"));
    assert_eq!(
        MattermostNotifier::new()
            .send(&settings(&rx), &Message::Alert(down()))
            .await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(7)
        })
    );
}

#[tokio::test]
async fn a_503_is_retryable() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    rx.push(Answer::status(503));
    assert!(matches!(
        MattermostNotifier::new()
            .send(&settings(&rx), &Message::Alert(down()))
            .await,
        Err(SendError::Retryable(text)) if text == "HTTP 503 Service Unavailable"
    ));
}

#[tokio::test]
async fn a_deleted_webhook_disables_without_showing_its_key() {
    // Mattermost answers 400 (not 404) for a hook that does not exist; its id says why.
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    let settings = settings(&rx);
    let url = settings["webhook_url"].as_str().unwrap().to_string();
    rx.push(Answer::json(
        400,
        json!({"id": "web.incoming_webhook.invalid.app_error", "message": "Invalid webhook.",
               "detailed_error": format!("hook {url} not found"), "status_code": 400}),
    ));
    match MattermostNotifier::new()
        .send(&settings, &Message::Alert(down()))
        .await
    {
        Err(SendError::Disabled(text)) => {
            assert!(
                text.starts_with("HTTP 400 Bad Request: ")
                    && text.contains("web.incoming_webhook.invalid.app_error"),
                "{text}"
            );
            assert!(!text.contains(KEY), "{text}");
        }
        other => panic!("expected Disabled, got {other:?}"),
    }

    // Incoming webhooks turned off by an admin: 501, disabled too.
    rx.push(Answer::json(
        501,
        json!({"id": "web.incoming_webhook.disabled.app_error", "status_code": 501}),
    ));
    assert!(matches!(
        MattermostNotifier::new()
            .send(&settings, &Message::Test)
            .await,
        Err(SendError::Disabled(_))
    ));
}

#[tokio::test]
async fn another_400_rejects_this_message_only() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    rx.push(Answer::json(
        400,
        json!({"id": "web.incoming_webhook.parse.app_error", "status_code": 400}),
    ));
    assert!(matches!(
        MattermostNotifier::new()
            .send(&settings(&rx), &Message::Test)
            .await,
        Err(SendError::Rejected(text)) if text.contains("parse.app_error")
    ));
}

#[test]
fn validate_names_the_bad_setting() {
    let mm = MattermostNotifier::new();
    assert_eq!(mm.kind(), "mattermost");
    assert_eq!(mm.secrets(), &["webhook_url"]);
    mm.validate(&json!({
        "webhook_url": "https://chat.example.com/hooks/abc",
        "channel": "@alice",
        "username": "upwatch",
        "icon_url": "https://example.com/upwatch.png",
    }))
    .unwrap();
    assert_eq!(
        mm.validate(&json!({"channel": "x"})).unwrap_err().field,
        "settings.webhook_url"
    );
    assert_eq!(
        mm.validate(&json!({"webhook_url": "chat.example.com/hooks/abc"}))
            .unwrap_err()
            .field,
        "settings.webhook_url"
    );
    assert_eq!(
        mm.validate(&json!({"webhook_url": "https://chat.example.com/hooks/abc",
                            "icon_url": "not a url"}))
            .unwrap_err()
            .field,
        "settings.icon_url"
    );
    assert_eq!(
        mm.validate(&json!({"webhook_url": "https://chat.example.com/hooks/abc",
                            "icon_emoji": ":bell:"}))
            .unwrap_err()
            .field,
        "settings.icon_emoji"
    );
    assert_eq!(
        mm.validate(&json!({"webhook_url": "https://chat.example.com/hooks/abc", "channel": 5}))
            .unwrap_err()
            .field,
        "settings.channel"
    );
}
