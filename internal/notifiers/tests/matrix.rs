//! The Matrix notifier: its exact event contents and transaction IDs, and its requests and
//! answers against a real loopback receiver standing in for a homeserver.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::{Alert, AlertKind};
use upwatch_notifiers::matrix::{payload, txn_id, MatrixNotifier};
use upwatch_notifiers::Channels;
use upwatch_notify::{Message, Notifier, Provider, SendError, Storm};
use upwatch_testkit::alerts::{self, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(5);
const TOKEN: &str = "syt_dXB3YXRjaA_secret_token_1a2b3c";
const ROOM: &str = "!abc:example.org";
/// The room as it appears in the request path.
const ROOM_IN_PATH: &str = "%21abc%3Aexample.org";

/// The shared down alert, with the id 1: the transaction ids below hash it.
fn down() -> Alert {
    Alert {
        id: Uuid::from_u128(1),
        ..alerts::down()
    }
}

/// A storm of `n` monitors, its alerts numbered 1, 2, … (hashed into its transaction id).
fn storm_of(n: usize) -> Message {
    let mut alerts = storm_alerts(n);
    for (alert, id) in alerts.iter_mut().zip(1..) {
        alert.id = Uuid::from_u128(id);
    }
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts,
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn settings(homeserver: &str) -> Value {
    json!({"homeserver": homeserver, "access_token": TOKEN, "room_id": ROOM})
}

fn content(lines: &[&str]) -> Value {
    let escaped: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        })
        .collect();
    json!({
        "msgtype": "m.text",
        "body": lines.join("\n"),
        "format": "org.matrix.custom.html",
        "formatted_body": format!("<b>{}</b><br>{}", escaped[0], escaped[1..].join("<br>")),
    })
}

#[test]
fn a_down_alert_is_plain_text_and_html() {
    assert_eq!(
        payload(&Message::Alert(down())),
        json!({
            "msgtype": "m.text",
            "body": "🔴 My Website is down\nSite: My Website (https://example.com)\n\
                     Status: DOWN\nTime: 2024-01-16 20:00:00 UTC\n\
                     Error: status_mismatch: got HTTP 500, expected 200",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>🔴 My Website is down</b><br>Site: My Website (https://example.com)<br>\
                               Status: DOWN<br>Time: 2024-01-16 20:00:00 UTC<br>\
                               Error: status_mismatch: got HTTP 500, expected 200",
        })
    );
}

#[test]
fn a_recovery_says_how_long_it_was_down() {
    assert_eq!(
        payload(&Message::Alert(recovery())),
        content(&[
            "🟢 My Website is up again",
            "Site: My Website (https://example.com)",
            "Status: UP",
            "Time: 2024-01-16 20:05:00 UTC",
            "Downtime: 5m 0s",
        ])
    );
}

#[test]
fn a_reminder_says_it_is_still_down() {
    assert_eq!(
        payload(&Message::Alert(reminder())),
        content(&[
            "🔴 My Website is still down for 1h 0m",
            "Site: My Website (https://example.com)",
            "Status: DOWN",
            "Time: 2024-01-16 21:00:00 UTC",
            "Error: status_mismatch: got HTTP 500, expected 200",
            "Down for: 1h 0m",
        ])
    );
}

#[test]
fn a_storm_of_30_lists_25_names_then_the_rest() {
    let names: Vec<String> = (0..25).map(|i| format!("• site-{i:02}")).collect();
    let mut lines = vec!["🔴 30 monitors are down", "Since: 2024-01-16 20:00:00 UTC"];
    lines.extend(names.iter().map(String::as_str));
    lines.extend(["• and 5 more", "Dashboard: https://status.example.com/"]);
    let expected = content(&lines);
    assert_eq!(payload(&storm_of(30)), expected);
    assert!(expected["formatted_body"]
        .as_str()
        .unwrap()
        .contains("<br>• site-24<br>• and 5 more<br>"));
}

#[test]
fn the_test_message_is_exact() {
    assert_eq!(
        payload(&Message::Test),
        json!({
            "msgtype": "m.text",
            "body": "✅ upwatch test message\nThis channel receives upwatch's down and recovery alerts.",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>✅ upwatch test message</b><br>This channel receives upwatch's down and recovery alerts.",
        })
    );
}

#[test]
fn monitor_names_cannot_inject_html() {
    let alert = Alert {
        monitor_name: "<img src=x> & co".into(),
        ..down()
    };
    let c = payload(&Message::Alert(alert));
    let html = c["formatted_body"].as_str().unwrap();
    assert!(
        html.starts_with("<b>🔴 &lt;img src=x&gt; &amp; co is down</b><br>"),
        "{html}"
    );
    assert!(c["body"]
        .as_str()
        .unwrap()
        .starts_with("🔴 <img src=x> & co"));
}

#[test]
fn transaction_ids_are_stable_per_message_and_room() {
    let alert = Message::Alert(down());
    assert_eq!(
        txn_id(ROOM, &alert).as_deref(),
        Some("7421bac9eda5df68506619449d9a34f17da17b8a44ade1f3be0b0e3d0138a39f")
    );
    assert_eq!(
        txn_id(ROOM, &storm_of(2)).as_deref(),
        Some("179830ddc4dc4ac8426278df78a2f4e0993d0c31ec5af67fa88f9606ec9a0113")
    );
    assert_ne!(txn_id("!other:example.org", &alert), txn_id(ROOM, &alert));
    let other = Message::Alert(Alert {
        id: Uuid::from_u128(2),
        ..down()
    });
    assert_ne!(txn_id(ROOM, &other), txn_id(ROOM, &alert));
    assert_eq!(txn_id(ROOM, &Message::Test), None);
}

async fn send(rx: &HttpReceiver, message: &Message) -> Result<(), SendError> {
    MatrixNotifier::new()
        .send(&settings(&rx.url()), message)
        .await
}

fn ok() -> Answer {
    Answer::json(200, json!({"event_id": "$YUwRidLecu:example.org"}))
}

#[tokio::test]
async fn a_down_alert_is_put_into_the_room() {
    let rx = HttpReceiver::start(ok()).await;
    let message = Message::Alert(down());
    send(&rx, &message).await.unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "PUT");
    assert_eq!(
        req.path,
        format!(
            "/_matrix/client/v3/rooms/{ROOM_IN_PATH}/send/m.room.message/{}",
            txn_id(ROOM, &message).unwrap()
        )
    );
    assert_eq!(
        req.header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.json(), payload(&message));
}

#[tokio::test]
async fn a_retried_alert_reuses_its_transaction_id_and_tests_do_not() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        502,
        json!({"errcode": "M_UNKNOWN", "error": "Bad gateway"}),
    ));
    let message = Message::Alert(down());
    assert!(matches!(
        send(&rx, &message).await,
        Err(SendError::Retryable(_))
    ));
    send(&rx, &message).await.unwrap();
    send(&rx, &Message::Test).await.unwrap();
    send(&rx, &Message::Test).await.unwrap();
    let paths: Vec<String> = rx
        .wait_for(4, WAIT)
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths[0], paths[1], "the retry is the same transaction");
    assert_ne!(paths[2], paths[3], "each test message is a new one");
    assert!(paths[2].starts_with(&format!(
        "/_matrix/client/v3/rooms/{ROOM_IN_PATH}/send/m.room.message/"
    )));
}

#[tokio::test]
async fn a_429_waits_for_retry_after_ms_or_the_header() {
    let rx = HttpReceiver::start(ok()).await;
    let limited = json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests",
                         "retry_after_ms": 2500});
    rx.push(Answer::json(429, limited.clone()));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_millis(2500)
        })
    );
    // The spec prefers Retry-After when both are there.
    rx.push(Answer::json(429, limited).header("retry-after", "4"));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(4)
        })
    );
}

#[tokio::test]
async fn a_5xx_is_retryable() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::status(503));
    match send(&rx, &Message::Test).await {
        Err(SendError::Retryable(text)) => {
            assert!(text.starts_with("HTTP 503 Service Unavailable"), "{text}")
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[tokio::test]
async fn refusals_for_good_disable_the_channel_without_the_token() {
    let rx = HttpReceiver::start(ok()).await;
    let refusals = [
        (
            401,
            "M_UNKNOWN_TOKEN",
            format!("Unknown access token {TOKEN}"),
        ),
        (
            403,
            "M_FORBIDDEN",
            "User @bot:example.org not in room !abc:example.org".to_string(),
        ),
        (404, "M_NOT_FOUND", "Unknown room".to_string()),
    ];
    for (status, code, error) in &refusals {
        rx.push(Answer::json(
            *status,
            json!({"errcode": code, "error": error}),
        ));
        match send(&rx, &Message::Test).await {
            Err(SendError::Disabled(reason)) => {
                assert!(
                    reason.starts_with(&format!("HTTP {status}: {code}: ")),
                    "{reason}"
                );
                assert!(!reason.contains("secret_token"), "{reason}");
            }
            other => panic!("{code}: expected Disabled, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn another_4xx_rejects_only_this_message() {
    let rx = HttpReceiver::start(ok()).await;
    rx.push(Answer::json(
        413,
        json!({"errcode": "M_TOO_LARGE", "error": "Event too large"}),
    ));
    assert_eq!(
        send(&rx, &Message::Test).await,
        Err(SendError::Rejected(
            "HTTP 413: M_TOO_LARGE: Event too large".into()
        ))
    );
}

#[test]
fn settings_are_checked() {
    let p = MatrixNotifier::new();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    let full = settings("https://matrix.example.org");
    let without = |name: &str| {
        let mut v = full.clone();
        v.as_object_mut().unwrap().remove(name);
        v
    };
    assert_eq!(field(without("homeserver")), "settings.homeserver");
    assert_eq!(field(without("access_token")), "settings.access_token");
    assert_eq!(field(without("room_id")), "settings.room_id");
    let mut unknown = full.clone();
    unknown["msgtype"] = json!("m.notice");
    assert_eq!(field(unknown), "settings.msgtype");
    let mut bad_url = full.clone();
    bad_url["homeserver"] = json!("matrix.example.org");
    assert_eq!(field(bad_url), "settings.homeserver");
    let mut alias = full.clone();
    alias["room_id"] = json!("#ops:example.org");
    assert_eq!(field(alias), "settings.room_id");

    p.validate(&full).unwrap();
    let mut v12 = full.clone();
    v12["room_id"] = json!("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM");
    p.validate(&v12).unwrap();
}

#[test]
fn the_kind_is_registered_and_its_token_redacted() {
    let channels = Channels::all(Duration::from_secs(1));
    assert!(channels.kinds().contains(&"matrix"));
    let redacted = channels.redact("matrix", &settings("https://matrix.example.org"));
    assert!(!redacted.to_string().contains("secret_token"), "{redacted}");
    assert_eq!(redacted["room_id"], ROOM);
}
