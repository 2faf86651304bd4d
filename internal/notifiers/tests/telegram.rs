//! The Telegram notifier: its exact `sendMessage` bodies, and its requests and answers
//! against a real loopback receiver standing in for the Bot API.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::{Alert, AlertKind, CheckError, ErrorKind};
use upwatch_notifiers::telegram::{payload, TelegramNotifier, MAX_TEXT};
use upwatch_notifiers::Channels;
use upwatch_notify::{Message, Notifier, Provider, SendError, Storm};
use upwatch_testkit::alerts::{down, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const WAIT: Duration = Duration::from_secs(5);
const TOKEN: &str = "123456789:AAE-secret_token-XYZ";

fn settings(api_url: &str) -> Value {
    json!({"bot_token": TOKEN, "chat_id": "-1001234567890", "api_url": api_url})
}

fn storm() -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(30),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn body(text: &str) -> Value {
    json!({
        "chat_id": -1001234567890_i64,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    })
}

#[test]
fn a_down_alert_is_a_bold_headline_and_its_lines() {
    assert_eq!(
        payload(&settings(""), &Message::Alert(down())),
        body(
            "<b>🔴 My Website is down</b>\n\
             Site: My Website (https://example.com)\n\
             Status: DOWN\n\
             Time: 2024-01-16 20:00:00 UTC\n\
             Error: status_mismatch: got HTTP 500, expected 200"
        )
    );
}

#[test]
fn a_recovery_says_how_long_it_was_down() {
    assert_eq!(
        payload(&settings(""), &Message::Alert(recovery())),
        body(
            "<b>🟢 My Website is up again</b>\n\
             Site: My Website (https://example.com)\n\
             Status: UP\n\
             Time: 2024-01-16 20:05:00 UTC\n\
             Downtime: 5m 0s"
        )
    );
}

#[test]
fn a_reminder_says_it_is_still_down() {
    assert_eq!(
        payload(&settings(""), &Message::Alert(reminder())),
        body(
            "<b>🔴 My Website is still down for 1h 0m</b>\n\
             Site: My Website (https://example.com)\n\
             Status: DOWN\n\
             Time: 2024-01-16 21:00:00 UTC\n\
             Error: status_mismatch: got HTTP 500, expected 200\n\
             Down for: 1h 0m"
        )
    );
}

#[test]
fn a_storm_of_30_lists_25_names_then_the_rest() {
    let mut text = "<b>🔴 30 monitors are down</b>\nSince: 2024-01-16 20:00:00 UTC".to_string();
    for i in 0..25 {
        text.push_str(&format!("\n• site-{i:02}"));
    }
    text.push_str("\n• and 5 more\nDashboard: https://status.example.com/");
    assert_eq!(payload(&settings(""), &storm()), body(&text));
}

#[test]
fn the_test_message_is_exact() {
    assert_eq!(
        payload(&settings(""), &Message::Test),
        body(
            "<b>✅ upwatch test message</b>\n\
             This channel receives upwatch's down and recovery alerts."
        )
    );
}

#[test]
fn monitor_names_cannot_inject_markup() {
    let alert = Alert {
        monitor_name: "<a href=\"x\">A&B</a>".into(),
        ..down()
    };
    let text = payload(&settings(""), &Message::Alert(alert))["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with("<b>🔴 &lt;a href=\"x\"&gt;A&amp;B&lt;/a&gt; is down</b>\n"),
        "{text}"
    );
    assert!(!text.contains("<a "), "{text}");
}

#[test]
fn long_texts_are_cut_to_4096_utf16_units() {
    let alert = Alert {
        monitor_name: "é".repeat(3000),
        error: Some(CheckError {
            kind: ErrorKind::Other,
            message: "🔴".repeat(3000),
        }),
        ..down()
    };
    let text = payload(&settings(""), &Message::Alert(alert))["text"]
        .as_str()
        .unwrap()
        .to_string();
    // What Telegram counts: the text once the <b> tags are parsed away.
    let visible = text.replace("<b>", "").replace("</b>", "");
    let units = visible.encode_utf16().count();
    assert!(units <= MAX_TEXT, "{units}");
    assert!(units > MAX_TEXT - 10, "{units}");
    assert!(visible.ends_with('…'));
    assert!(text.starts_with("<b>🔴 éé"), "the headline stays bold");
    assert!(
        text.contains("…</b>\nSite: "),
        "the lines follow the headline"
    );
}

#[test]
fn chats_and_topics_are_sent_as_telegram_takes_them() {
    let m = Message::Test;
    let by_name = payload(
        &json!({"bot_token": TOKEN, "chat_id": "@upwatch_alerts"}),
        &m,
    );
    assert_eq!(by_name["chat_id"], json!("@upwatch_alerts"));
    assert!(by_name.get("message_thread_id").is_none());
    let by_number = payload(
        &json!({"bot_token": TOKEN, "chat_id": 42, "message_thread_id": 7}),
        &m,
    );
    assert_eq!(by_number["chat_id"], json!(42));
    assert_eq!(by_number["message_thread_id"], json!(7));
}

async fn send(rx: &HttpReceiver, message: &Message) -> Result<(), SendError> {
    TelegramNotifier::new()
        .send(&settings(&rx.url()), message)
        .await
}

fn ok() -> Answer {
    Answer::json(200, json!({"ok": true, "result": {"message_id": 1}}))
}

#[tokio::test]
async fn a_down_alert_is_posted_to_send_message() {
    let rx = HttpReceiver::start(ok()).await;
    let message = Message::Alert(down());
    send(&rx, &message).await.unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(req.query, "");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.json(), payload(&settings(""), &message));
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        429,
        json!({"ok": false, "error_code": 429,
               "description": "Too Many Requests: retry after 7",
               "parameters": {"retry_after": 7}}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(7)
        })
    );
}

#[tokio::test]
async fn a_5xx_is_retryable_and_hides_the_token() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::text(
        502,
        &format!("Bad Gateway for /bot{TOKEN}/sendMessage"),
    ));
    match send(&rx, &Message::Test).await {
        Err(SendError::Retryable(text)) => {
            assert!(text.starts_with("HTTP 502 Bad Gateway"), "{text}");
            assert!(!text.contains(TOKEN), "{text}");
            assert!(!text.contains("secret_token"), "{text}");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[tokio::test]
async fn refusals_for_good_disable_the_channel() {
    let rx = HttpReceiver::start(ok()).await;
    let refusals = [
        (401, "Unauthorized"),
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: bot was kicked from the group chat"),
        (400, "Bad Request: chat not found"),
    ];
    for (status, description) in refusals {
        rx.push(Answer::json(
            status,
            json!({"ok": false, "error_code": status, "description": description}),
        ));
        match send(&rx, &Message::Test).await {
            Err(SendError::Disabled(reason)) => {
                assert_eq!(reason, format!("HTTP {status}: {description}"));
                assert!(!reason.contains("secret_token"), "{reason}");
            }
            other => panic!("{description}: expected Disabled, got {other:?}"),
        }
    }
    assert_eq!(rx.wait_for(4, WAIT).await.len(), 4);
}

#[tokio::test]
async fn another_400_rejects_only_this_message() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        400,
        json!({"ok": false, "error_code": 400,
               "description": "Bad Request: can't parse entities: unexpected end tag"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Rejected(
            "HTTP 400: Bad Request: can't parse entities: unexpected end tag".into()
        ))
    );
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_hides_the_token() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let outcome = TelegramNotifier::new()
        .send(
            &settings(&format!("http://127.0.0.1:{port}")),
            &Message::Test,
        )
        .await;
    match outcome {
        Err(SendError::Retryable(text)) => {
            assert!(text.starts_with("could not connect"), "{text}");
            assert!(!text.contains("secret_token"), "{text}");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[test]
fn settings_are_checked() {
    let p = TelegramNotifier::new();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    assert_eq!(field(json!({"chat_id": "42"})), "settings.bot_token");
    assert_eq!(field(json!({"bot_token": TOKEN})), "settings.chat_id");
    assert_eq!(
        field(json!({"bot_token": TOKEN, "chat_id": "42", "chat": "x"})),
        "settings.chat"
    );
    assert_eq!(
        field(json!({"bot_token": TOKEN, "chat_id": "42", "api_url": "ftp://x"})),
        "settings.api_url"
    );
    assert_eq!(
        field(json!({"bot_token": TOKEN, "chat_id": "my chat"})),
        "settings.chat_id"
    );
    assert_eq!(
        field(json!({"bot_token": TOKEN, "chat_id": "42", "message_thread_id": "x"})),
        "settings.message_thread_id"
    );
    let bad_token = p
        .validate(&json!({"bot_token": "not a token secret_token", "chat_id": "42"}))
        .unwrap_err();
    assert_eq!(bad_token.field, "settings.bot_token");
    assert!(!bad_token.to_string().contains("secret_token"));

    p.validate(&json!({
        "bot_token": TOKEN,
        "chat_id": "-1001234567890",
        "message_thread_id": 7,
        "api_url": "https://api.telegram.org"
    }))
    .unwrap();
    p.validate(&json!({"bot_token": TOKEN, "chat_id": -1001234567890_i64}))
        .unwrap();
    p.validate(&json!({"bot_token": TOKEN, "chat_id": "@upwatch_alerts"}))
        .unwrap();
}

#[test]
fn the_kind_is_registered_and_its_token_redacted() {
    let channels = Channels::all(Duration::from_secs(1));
    assert!(channels.kinds().contains(&"telegram"));
    let redacted = channels.redact("telegram", &settings("https://api.telegram.org"));
    assert!(!redacted.to_string().contains("secret_token"), "{redacted}");
    assert_eq!(redacted["chat_id"], "-1001234567890");
}
