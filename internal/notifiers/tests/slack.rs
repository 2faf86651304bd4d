//! The Slack notifier: its exact Block Kit payloads, and a real loopback receiver standing
//! in for hooks.slack.com.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::AlertKind;
use upwatch_notifiers::slack::{payload, SlackNotifier};
use upwatch_notify::{Message, Provider, SendError, Storm};
use upwatch_testkit::alerts::{down, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const WAIT: Duration = Duration::from_secs(5);
const TOKEN: &str = "XXXXSECRETXXXX";

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text, "emoji": true}})
}

fn field(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn storm(n: usize) -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(n),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
}

#[test]
fn a_down_alert_is_a_header_fields_and_the_time() {
    let message = Message::Alert(down());
    assert_eq!(
        payload(&message),
        json!({
            "text": "🔴 My Website is down\nSite: My Website (https://example.com)\nStatus: DOWN\n\
                     Time: 2024-01-16 20:00:00 UTC\nError: status_mismatch: got HTTP 500, expected 200",
            "blocks": [
                header("🔴 My Website is down"),
                {"type": "section", "fields": [
                    field("*Site*\nMy Website (https://example.com)"),
                    field("*Status*\nDOWN"),
                    field("*Error*\nstatus_mismatch: got HTTP 500, expected 200"),
                ]},
                context("Time: 2024-01-16 20:00:00 UTC"),
            ],
        })
    );
}

#[test]
fn a_recovery_says_how_long_it_was_down() {
    assert_eq!(
        payload(&Message::Alert(recovery())),
        json!({
            "text": "🟢 My Website is up again\nSite: My Website (https://example.com)\nStatus: UP\n\
                     Time: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s",
            "blocks": [
                header("🟢 My Website is up again"),
                {"type": "section", "fields": [
                    field("*Site*\nMy Website (https://example.com)"),
                    field("*Status*\nUP"),
                    field("*Downtime*\n5m 0s"),
                ]},
                context("Time: 2024-01-16 20:05:00 UTC"),
            ],
        })
    );
}

#[test]
fn a_reminder_says_it_is_still_down() {
    assert_eq!(
        payload(&Message::Alert(reminder())),
        json!({
            "text": "🔴 My Website is still down for 1h 0m\nSite: My Website (https://example.com)\n\
                     Status: DOWN\nTime: 2024-01-16 21:00:00 UTC\n\
                     Error: status_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m",
            "blocks": [
                header("🔴 My Website is still down for 1h 0m"),
                {"type": "section", "fields": [
                    field("*Site*\nMy Website (https://example.com)"),
                    field("*Status*\nDOWN"),
                    field("*Error*\nstatus_mismatch: got HTTP 500, expected 200"),
                    field("*Down for*\n1h 0m"),
                ]},
                context("Time: 2024-01-16 21:00:00 UTC"),
            ],
        })
    );
}

#[test]
fn a_storm_of_30_lists_25_names_then_the_rest_and_links_the_dashboard() {
    let names: Vec<String> = (0..25).map(|i| format!("• site-{i:02}")).collect();
    let list = format!("{}\n• and 5 more", names.join("\n"));
    assert_eq!(
        payload(&storm(30)),
        json!({
            "text": format!(
                "🔴 30 monitors are down\nSince: 2024-01-16 20:00:00 UTC\n{list}\n\
                 Dashboard: https://status.example.com/"
            ),
            "blocks": [
                header("🔴 30 monitors are down"),
                {"type": "section", "text": {"type": "mrkdwn", "text": list}},
                {"type": "section", "text": {"type": "mrkdwn",
                    "text": "<https://status.example.com/|Open the dashboard>"}},
                context("Since: 2024-01-16 20:00:00 UTC"),
            ],
        })
    );
}

#[test]
fn the_test_message_is_a_header_and_a_sentence() {
    assert_eq!(
        payload(&Message::Test),
        json!({
            "text": "✅ upwatch test message\nThis channel receives upwatch's down and recovery alerts.",
            "blocks": [
                header("✅ upwatch test message"),
                {"type": "section", "text": {"type": "mrkdwn",
                    "text": "This channel receives upwatch's down and recovery alerts."}},
            ],
        })
    );
}

#[test]
fn names_cannot_mention_or_link_and_headers_stay_within_150() {
    let mut alert = down();
    alert.monitor_name = "<!channel> & <https://evil.example|click>".into();
    let p = payload(&Message::Alert(alert.clone()));
    // The header is plain_text (never parsed); the mrkdwn texts are escaped.
    assert_eq!(
        p["blocks"][0]["text"],
        json!({"type": "plain_text", "text": "🔴 <!channel> & <https://evil.example|click> is down", "emoji": true})
    );
    let escaped = "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;";
    assert_eq!(
        p["blocks"][1]["fields"][0]["text"],
        format!("*Site*\n{escaped} (https://example.com)")
    );
    let text = p["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("🔴 {escaped} is down\n")),
        "{text}"
    );
    assert!(!text.contains("<!channel>"), "{text}");

    alert.monitor_name = "é".repeat(500);
    let p = payload(&Message::Alert(alert));
    let header = p["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    assert!(header.ends_with('…'));
}

fn settings(rx: &HttpReceiver) -> Value {
    json!({ "webhook_url": format!("{}/services/T000/B000/{TOKEN}", rx.url()) })
}

#[tokio::test]
async fn a_down_alert_is_posted_as_json_to_the_webhook() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    let message = Message::Alert(down());
    SlackNotifier::new()
        .send(&settings(&rx), &message)
        .await
        .unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/services/T000/B000/{TOKEN}"));
    assert_eq!(req.query, "");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.json(), payload(&message));
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    rx.push(Answer::text(429, "rate_limited").header("retry-after", "30"));
    let outcome = SlackNotifier::new()
        .send(&settings(&rx), &Message::Alert(down()))
        .await;
    assert_eq!(
        outcome,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(30)
        })
    );
    assert_eq!(rx.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_500_is_retryable() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    rx.push(Answer::text(500, "rollup_error"));
    match SlackNotifier::new()
        .send(&settings(&rx), &Message::Alert(down()))
        .await
    {
        Err(SendError::Retryable(text)) => {
            assert_eq!(text, "HTTP 500 Internal Server Error: rollup_error")
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_revoked_webhook_or_archived_channel_disables_without_showing_the_url() {
    for (status, reason) in [
        (404, "no_service"),
        (404, "channel_not_found"),
        (403, "action_prohibited"),
        (403, "invalid_token"),
        (410, "channel_is_archived"),
    ] {
        let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
        let settings = settings(&rx);
        let url = settings["webhook_url"].as_str().unwrap().to_string();
        // Even an answer that repeats the URL does not put the token in the error.
        rx.push(Answer::text(status, &format!("{reason} ({url})")));
        match SlackNotifier::new()
            .send(&settings, &Message::Alert(down()))
            .await
        {
            Err(SendError::Disabled(text)) => {
                assert!(text.contains(reason), "{text}");
                assert!(!text.contains(TOKEN), "{text}");
            }
            other => panic!("{status} {reason}: expected Disabled, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_invalid_payload_rejects_this_message_only() {
    let rx = HttpReceiver::start(Answer::text(200, "ok")).await;
    rx.push(Answer::text(400, "invalid_payload"));
    assert_eq!(
        SlackNotifier::new()
            .send(&settings(&rx), &Message::Test)
            .await,
        Err(SendError::Rejected(
            "HTTP 400 Bad Request: invalid_payload".into()
        ))
    );
}

#[test]
fn validate_names_the_bad_setting() {
    let slack = SlackNotifier::new();
    assert_eq!(slack.kind(), "slack");
    assert_eq!(slack.secrets(), &["webhook_url"]);
    slack
        .validate(&json!({"webhook_url": "https://hooks.slack.com/services/T0/B0/abc"}))
        .unwrap();
    let e = slack.validate(&json!({})).unwrap_err();
    assert_eq!(e.field, "settings.webhook_url");
    let e = slack
        .validate(&json!({"webhook_url": "ftp://hooks.slack.com/x"}))
        .unwrap_err();
    assert_eq!(e.field, "settings.webhook_url");
    let e = slack
        .validate(&json!({"webhook_url": "https://hooks.slack.com/x", "channel": "#ops"}))
        .unwrap_err();
    assert_eq!(e.field, "settings.channel");
}
