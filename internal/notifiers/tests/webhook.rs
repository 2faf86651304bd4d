//! The generic webhook notifier: its documented JSON body, templates, HMAC signatures and
//! headers, against a real loopback receiver.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use upwatch_core::watchdog::Notice;
use upwatch_core::{Alert, AlertKind};
use upwatch_notifiers::webhook::{body, payload, signature, verify, WebhookNotifier};
use upwatch_notify::{Message, Provider, SendError, Storm};
use upwatch_testkit::alerts::{self, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &str = "whsec-0123456789-signing-key";
const TOKEN: &str = "Bearer tok-abcdef0123456789";
const MONITOR: &str = "00000000-0000-0000-0000-000000000002";
/// `MONITOR-<2024-01-16T20:00:00Z in Unix ms>`.
const INCIDENT: &str = "00000000-0000-0000-0000-000000000002-1705435200000";

/// A shared alert, of monitor 2 ([`MONITOR`]).
fn of_monitor_2(alert: Alert) -> Alert {
    Alert {
        monitor_id: Uuid::from_u128(2),
        ..alert
    }
}

fn down() -> Alert {
    of_monitor_2(alerts::down())
}

fn recovery() -> Alert {
    of_monitor_2(alerts::recovery())
}

fn reminder() -> Alert {
    of_monitor_2(alerts::reminder())
}

fn storm(n: usize) -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(n),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 2, 1, 12, 0, 0).unwrap()
}

#[test]
fn a_down_alert_is_the_documented_json() {
    assert_eq!(
        payload(&Message::Alert(down()), now()),
        json!({
            "event": "down",
            "status": "DOWN",
            "title": "🔴 My Website is down",
            "text": "🔴 My Website is down\nSite: My Website (https://example.com)\nStatus: DOWN\n\
                     Time: 2024-01-16 20:00:00 UTC\nError: status_mismatch: got HTTP 500, expected 200",
            "time": "2024-01-16T20:00:00Z",
            "monitor": {"id": MONITOR, "name": "My Website", "url": "https://example.com"},
            "error": "status_mismatch: got HTTP 500, expected 200",
            "incident": {"id": INCIDENT},
        })
    );
}

#[test]
fn a_recovery_and_a_reminder_carry_the_incident_of_their_down_alert() {
    assert_eq!(
        payload(&Message::Alert(recovery()), now()),
        json!({
            "event": "recovery",
            "status": "UP",
            "title": "🟢 My Website is up again",
            "text": "🟢 My Website is up again\nSite: My Website (https://example.com)\nStatus: UP\n\
                     Time: 2024-01-16 20:05:00 UTC\nDowntime: 5m 0s",
            "time": "2024-01-16T20:05:00Z",
            "monitor": {"id": MONITOR, "name": "My Website", "url": "https://example.com"},
            "error": null,
            "incident": {"id": INCIDENT},
        })
    );
    assert_eq!(
        payload(&Message::Alert(reminder()), now()),
        json!({
            "event": "reminder",
            "status": "DOWN",
            "title": "🔴 My Website is still down for 1h 0m",
            "text": "🔴 My Website is still down for 1h 0m\nSite: My Website (https://example.com)\n\
                     Status: DOWN\nTime: 2024-01-16 21:00:00 UTC\n\
                     Error: status_mismatch: got HTTP 500, expected 200\nDown for: 1h 0m",
            "time": "2024-01-16T21:00:00Z",
            "monitor": {"id": MONITOR, "name": "My Website", "url": "https://example.com"},
            "error": "status_mismatch: got HTTP 500, expected 200",
            "incident": {"id": INCIDENT},
        })
    );
}

#[test]
fn a_storm_of_30_lists_every_monitor_and_the_text_names_25() {
    let message = storm(30);
    let monitors: Vec<Value> = (0..30)
        .map(|i| {
            let id = Uuid::from_u128(100 + i as u128);
            json!({
                "id": id.to_string(),
                "name": format!("site-{i:02}"),
                "url": format!("https://site-{i:02}.example.com"),
                "error": "status_mismatch: got HTTP 500, expected 200",
                "incident": {"id": format!("{id}-1705435200000")},
            })
        })
        .collect();
    let names: Vec<String> = (0..25).map(|i| format!("• site-{i:02}")).collect();
    assert_eq!(
        payload(&message, now()),
        json!({
            "event": "storm",
            "status": "DOWN",
            "title": "🔴 30 monitors are down",
            "text": format!(
                "🔴 30 monitors are down\nSince: 2024-01-16 20:00:00 UTC\n{}\n• and 5 more\n\
                 Dashboard: https://status.example.com/",
                names.join("\n")
            ),
            "time": "2024-01-16T20:00:00Z",
            "monitors": monitors,
            "monitors_total": 30,
            "dashboard_url": "https://status.example.com/",
        })
    );
}

#[test]
fn tests_and_notices_are_timed_when_sent() {
    assert_eq!(
        payload(&Message::Test, now()),
        json!({
            "event": "test",
            "status": "INFO",
            "title": "✅ upwatch test message",
            "text": "✅ upwatch test message\nThis channel receives upwatch's down and recovery alerts.",
            "time": "2024-02-01T12:00:00Z",
        })
    );
    let notice = Message::Notice(Notice::Unchecked {
        count: 1,
        intervals: 3,
        names: vec!["api".into()],
    });
    let p = payload(&notice, now());
    assert_eq!(p["event"], "notice");
    assert_eq!(p["status"], "WARNING");
    assert_eq!(p["time"], "2024-02-01T12:00:00Z");
    assert!(p.get("monitor").is_none());
}

#[test]
fn certificates_have_no_incident_and_push_tokens_stay_out() {
    let cert = Alert {
        kind: AlertKind::CertificateExpiry,
        error: None,
        certificate_expires_at: Some(Utc.with_ymd_and_hms(2024, 1, 21, 20, 0, 0).unwrap()),
        days_left: Some(5),
        regions: None,
        ..down()
    };
    let p = payload(&Message::Alert(cert), now());
    assert_eq!(p["event"], "certificate_expiry");
    assert_eq!(p["status"], "UP");
    assert_eq!(p["incident"], Value::Null);

    let push = Alert {
        monitor_url: "push://0123456789abcdef0123456789abcdef".into(),
        ..down()
    };
    let p = payload(&Message::Alert(push), now());
    assert_eq!(p["monitor"]["url"], "push monitor");
    assert!(!p.to_string().contains("0123456789abcdef"));
}

#[test]
fn a_template_renders_exactly_and_missing_variables_are_empty() {
    let settings = json!({
        "url": "https://example.com/hook",
        "body_template": "{\"text\": \"{{ monitor.name }} is {{ status }}\", \"incident\": \"{{ incident.id }}\", \"missing\": \"{{ nothing.at.all }}\"}",
    });
    assert_eq!(
        body(&settings, &Message::Alert(down()), now()).unwrap(),
        format!(
            "{{\"text\": \"My Website is DOWN\", \"incident\": \"{INCIDENT}\", \"missing\": \"\"}}"
        )
    );
    // In a storm there is no `monitor`: it renders empty; `monitors` is the list.
    let settings = json!({
        "url": "https://example.com/hook",
        "body_template": "[{{ monitor.name }}]{% for m in monitors %}{{ m.name }};{% endfor %}",
    });
    assert_eq!(
        body(&settings, &storm(3), now()).unwrap(),
        "[]site-00;site-01;site-02;"
    );
    // `tojson` quotes and escapes for JSON.
    let mut alert = down();
    alert.monitor_name = "say \"hi\"\n".into();
    let settings = json!({
        "url": "https://example.com/hook",
        "body_template": "{\"name\": {{ monitor.name|tojson }}}",
    });
    let rendered = body(&settings, &Message::Alert(alert), now()).unwrap();
    let parsed: Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(parsed["name"], "say \"hi\"\n");
    // Without a template, the body is the payload.
    let settings = json!({"url": "https://example.com/hook"});
    assert_eq!(
        serde_json::from_str::<Value>(&body(&settings, &Message::Test, now()).unwrap()).unwrap(),
        payload(&Message::Test, now())
    );
}

fn settings(rx: &HttpReceiver) -> Value {
    json!({
        "url": format!("{}/hooks/upwatch?key=abc", rx.url()),
        "headers": {"Authorization": TOKEN, "X-Team": "ops"},
        "secret": SECRET,
    })
}

/// The signature a receiver computes over the body it got, independently of upwatch.
fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[tokio::test]
async fn a_down_alert_is_posted_signed_with_its_headers() {
    let rx = HttpReceiver::start(Answer::status(204)).await;
    let message = Message::Alert(down());
    WebhookNotifier::new()
        .send(&settings(&rx), &message)
        .await
        .unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/upwatch");
    assert_eq!(req.query, "key=abc");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some(TOKEN));
    assert_eq!(req.header("x-team"), Some("ops"));
    assert_eq!(req.header("x-upwatch-event"), Some("down"));
    assert_eq!(req.json(), payload(&message, now()));

    // The signature verifies with the secret over the exact bytes received...
    let header = req.header("x-upwatch-signature-256").unwrap();
    assert_eq!(header, expected_signature(SECRET, &req.body));
    assert!(verify(SECRET, &req.body, header));
    assert_eq!(signature(SECRET, &req.body), header);
    // ...and not with another secret or over another body.
    assert_ne!(header, expected_signature("another-secret", &req.body));
    assert!(!verify("another-secret", &req.body, header));
    let mut tampered = req.body.clone();
    tampered[0] = b' ';
    assert!(!verify(SECRET, &tampered, header));
}

#[tokio::test]
async fn a_template_is_sent_as_rendered_and_the_users_content_type_wins() {
    let rx = HttpReceiver::start(Answer::status(200)).await;
    let settings = json!({
        "url": format!("{}/notify", rx.url()),
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body_template": "{{ monitor.name }} is {{ status }} since {{ time }}",
        "secret": SECRET,
    });
    WebhookNotifier::new()
        .send(&settings, &Message::Alert(down()))
        .await
        .unwrap();
    let req = &rx.wait_for(1, WAIT).await[0];
    assert_eq!(req.text(), "My Website is DOWN since 2024-01-16T20:00:00Z");
    assert_eq!(
        req.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        req.header("x-upwatch-signature-256"),
        Some(expected_signature(SECRET, b"My Website is DOWN since 2024-01-16T20:00:00Z").as_str())
    );
}

#[tokio::test]
async fn without_a_secret_there_is_no_signature() {
    let rx = HttpReceiver::start(Answer::status(200)).await;
    let settings = json!({"url": format!("{}/notify", rx.url())});
    WebhookNotifier::new()
        .send(&settings, &Message::Test)
        .await
        .unwrap();
    let req = &rx.wait_for(1, WAIT).await[0];
    assert_eq!(req.header("x-upwatch-signature-256"), None);
    assert_eq!(req.header("x-upwatch-event"), Some("test"));
    assert_eq!(req.json()["event"], "test");
}

#[tokio::test]
async fn a_template_that_fails_to_render_rejects_the_message_and_sends_nothing() {
    let rx = HttpReceiver::start(Answer::status(200)).await;
    let settings = json!({
        "url": format!("{}/notify", rx.url()),
        "body_template": "{{ monitor.name|no_such_filter }}",
    });
    let notifier = WebhookNotifier::new();
    // It parses, so it is valid when saved...
    notifier.validate(&settings).unwrap();
    // ...and rejects the message when it fails to render.
    match notifier.send(&settings, &Message::Alert(down())).await {
        Err(SendError::Rejected(text)) => {
            assert!(
                text.starts_with("the body_template failed to render: "),
                "{text}"
            );
            assert!(text.contains("no_such_filter"), "{text}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let rx = HttpReceiver::start(Answer::status(200)).await;
    rx.push(Answer::status(429).header("retry-after", "4"));
    assert_eq!(
        WebhookNotifier::new()
            .send(&settings(&rx), &Message::Alert(down()))
            .await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(4)
        })
    );
}

#[tokio::test]
async fn a_500_is_retryable() {
    let rx = HttpReceiver::start(Answer::status(200)).await;
    rx.push(Answer::text(500, "boom"));
    assert!(matches!(
        WebhookNotifier::new()
            .send(&settings(&rx), &Message::Alert(down()))
            .await,
        Err(SendError::Retryable(text)) if text == "HTTP 500 Internal Server Error: boom"
    ));
}

#[tokio::test]
async fn a_401_disables_without_showing_any_secret() {
    for status in [401, 403, 404, 410] {
        let rx = HttpReceiver::start(Answer::status(200)).await;
        // An answer that repeats every secret it was sent.
        rx.push(Answer::text(
            status,
            &format!(
                "refused {TOKEN} / {SECRET} / {}/hooks/upwatch?key=abc",
                rx.url()
            ),
        ));
        match WebhookNotifier::new()
            .send(&settings(&rx), &Message::Alert(down()))
            .await
        {
            Err(SendError::Disabled(text)) => {
                assert!(text.starts_with(&format!("HTTP {status} ")), "{text}");
                assert!(!text.contains("tok-abcdef"), "{text}");
                assert!(!text.contains(SECRET), "{text}");
                assert!(!text.contains("key=abc"), "{text}");
            }
            other => panic!("{status}: expected Disabled, got {other:?}"),
        }
    }
}

#[test]
fn validate_names_the_bad_setting() {
    let hook = WebhookNotifier::new();
    assert_eq!(hook.kind(), "webhook");
    assert_eq!(hook.secrets(), &["url", "headers", "secret"]);
    hook.validate(&json!({
        "url": "https://example.com/hook",
        "headers": {"Authorization": "Bearer x", "X-Team": "ops"},
        "body_template": "{\"text\": {{ text|tojson }}}",
        "secret": "s3cr3t",
    }))
    .unwrap();
    let field = |settings: Value| hook.validate(&settings).unwrap_err().field;
    assert_eq!(field(json!({})), "settings.url");
    assert_eq!(field(json!({"url": "example.com/hook"})), "settings.url");
    assert_eq!(
        field(json!({"url": "https://example.com", "method": "PUT"})),
        "settings.method"
    );
    assert_eq!(
        field(json!({"url": "https://example.com", "headers": ["a"]})),
        "settings.headers"
    );
    assert_eq!(
        field(json!({"url": "https://example.com", "headers": {"X-Count": 5}})),
        "settings.headers.X-Count"
    );
    assert_eq!(
        field(json!({"url": "https://example.com", "headers": {"bad name": "x"}})),
        "settings.headers.bad name"
    );
    assert_eq!(
        field(json!({"url": "https://example.com", "headers": {"X-Upwatch-Event": "x"}})),
        "settings.headers.X-Upwatch-Event"
    );
    assert_eq!(
        field(json!({"url": "https://example.com", "headers": {"Host": "x"}})),
        "settings.headers.Host"
    );
    let e = hook
        .validate(&json!({"url": "https://example.com", "headers": {"X-A": "hunter2\nhunter3"}}))
        .unwrap_err();
    assert_eq!(e.field, "settings.headers.X-A");
    assert!(!e.message.contains("hunter"), "{}", e.message);
    assert_eq!(
        field(json!({"url": "https://example.com", "secret": 42})),
        "settings.secret"
    );
}

#[test]
fn a_template_that_does_not_parse_is_refused_when_saved_with_its_line() {
    let e = WebhookNotifier::new()
        .validate(&json!({
            "url": "https://example.com/hook",
            "body_template": "{\n  \"text\": \"{{ monitor.name }\"\n}",
        }))
        .unwrap_err();
    assert_eq!(e.field, "settings.body_template");
    assert!(
        e.message.starts_with("is not a valid template: "),
        "{}",
        e.message
    );
    assert!(e.message.contains("syntax error"), "{}", e.message);
    assert!(e.message.contains(":2"), "{}", e.message);
}
