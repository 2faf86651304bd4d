//! The Teams notifier: its exact Adaptive Cards, and a real loopback receiver standing in for
//! a Power Automate workflow.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::AlertKind;
use upwatch_notifiers::teams::{payload, TeamsNotifier};
use upwatch_notify::{Message, Provider, SendError, Storm};
use upwatch_testkit::alerts::{down, recovery, reminder, storm_alerts, DASHBOARD};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const WAIT: Duration = Duration::from_secs(5);
const SIG: &str = "Zq3vSeCrEtSiGnAtUrE0123456789abcdefXYZ_-";
const PATH: &str = "/workflows/0a1b2c/triggers/manual/paths/invoke";

/// The Workflows envelope around one card.
fn envelope(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn card(body: Value) -> Value {
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    })
}

fn headline(text: &str, color: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "weight": "Bolder", "size": "Medium",
           "color": color, "wrap": true})
}

fn storm(n: usize) -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(n),
        dashboard_url: Some(DASHBOARD.into()),
    })
}

fn facts(pairs: &[(&str, &str)]) -> Value {
    let facts: Vec<Value> = pairs
        .iter()
        .map(|(t, v)| json!({"title": t, "value": v}))
        .collect();
    json!({"type": "FactSet", "facts": facts})
}

#[test]
fn a_down_alert_is_a_red_headline_and_its_facts() {
    assert_eq!(
        payload(&Message::Alert(down())),
        envelope(card(json!([
            headline("🔴 My Website is down", "Attention"),
            facts(&[
                ("Site", "My Website (https://example.com)"),
                ("Status", "DOWN"),
                ("Time", "2024-01-16 20:00:00 UTC"),
                ("Error", "status\\_mismatch: got HTTP 500, expected 200"),
            ]),
        ])))
    );
}

#[test]
fn a_recovery_is_green_with_its_downtime() {
    assert_eq!(
        payload(&Message::Alert(recovery())),
        envelope(card(json!([
            headline("🟢 My Website is up again", "Good"),
            facts(&[
                ("Site", "My Website (https://example.com)"),
                ("Status", "UP"),
                ("Time", "2024-01-16 20:05:00 UTC"),
                ("Downtime", "5m 0s"),
            ]),
        ])))
    );
}

#[test]
fn a_reminder_is_red_and_says_for_how_long() {
    assert_eq!(
        payload(&Message::Alert(reminder())),
        envelope(card(json!([
            headline("🔴 My Website is still down for 1h 0m", "Attention"),
            facts(&[
                ("Site", "My Website (https://example.com)"),
                ("Status", "DOWN"),
                ("Time", "2024-01-16 21:00:00 UTC"),
                ("Error", "status\\_mismatch: got HTTP 500, expected 200"),
                ("Down for", "1h 0m"),
            ]),
        ])))
    );
}

#[test]
fn a_storm_of_30_lists_25_monitors_then_the_rest_and_opens_the_dashboard() {
    let names: Vec<(String, String)> = (0..25)
        .map(|i| {
            (
                format!("site-{i:02}"),
                format!("https://site-{i:02}.example.com"),
            )
        })
        .collect();
    let mut pairs: Vec<(&str, &str)> = vec![("Down since", "2024-01-16 20:00:00 UTC")];
    pairs.extend(names.iter().map(|(n, u)| (n.as_str(), u.as_str())));
    pairs.push(("…", "and 5 more"));
    let mut expected = card(json!([
        headline("🔴 30 monitors are down", "Attention"),
        facts(&pairs),
    ]));
    expected["actions"] = json!([{
        "type": "Action.OpenUrl",
        "title": "Open the dashboard",
        "url": "https://status.example.com/",
    }]);
    assert_eq!(payload(&storm(30)), envelope(expected));

    // Without a known dashboard there is no action.
    let Message::Storm(mut s) = storm(3) else {
        unreachable!()
    };
    s.dashboard_url = None;
    let p = payload(&Message::Storm(s));
    assert!(
        p["attachments"][0]["content"].get("actions").is_none(),
        "{p}"
    );
}

#[test]
fn the_test_message_is_a_headline_and_a_sentence() {
    assert_eq!(
        payload(&Message::Test),
        envelope(card(json!([
            headline("✅ upwatch test message", "Default"),
            {"type": "TextBlock",
             "text": "This channel receives upwatch's down and recovery alerts.",
             "wrap": true},
        ])))
    );
}

#[test]
fn names_cannot_forge_links_or_formatting() {
    let mut alert = down();
    alert.monitor_name = "[click](https://evil.example) **big**".into();
    let p = payload(&Message::Alert(alert));
    let body = &p["attachments"][0]["content"]["body"];
    assert_eq!(
        body[0]["text"],
        "🔴 \\[click\\](https://evil.example) \\*\\*big\\*\\* is down"
    );
    assert_eq!(
        body[1]["facts"][0]["value"],
        "\\[click\\](https://evil.example) \\*\\*big\\*\\* (https://example.com)"
    );
}

fn settings(rx: &HttpReceiver) -> Value {
    json!({
        "webhook_url": format!("{}{PATH}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}", rx.url())
    })
}

#[tokio::test]
async fn a_down_alert_is_posted_to_the_workflow_and_202_is_success() {
    let rx = HttpReceiver::start(Answer::status(202)).await;
    let message = Message::Alert(down());
    TeamsNotifier::new()
        .send(&settings(&rx), &message)
        .await
        .unwrap();
    let requests = rx.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, PATH);
    assert_eq!(req.query_pairs()["sig"], SIG);
    assert_eq!(req.query_pairs()["api-version"], "1");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.json(), payload(&message));
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let rx = HttpReceiver::start(Answer::status(202)).await;
    rx.push(
        Answer::json(429, json!({"error": {"code": "WorkflowRequestsThrottled"}}))
            .header("retry-after", "12"),
    );
    assert_eq!(
        TeamsNotifier::new()
            .send(&settings(&rx), &Message::Alert(down()))
            .await,
        Err(SendError::RateLimited {
            retry_after: Duration::from_secs(12)
        })
    );
}

#[tokio::test]
async fn a_502_is_retryable() {
    let rx = HttpReceiver::start(Answer::status(202)).await;
    rx.push(Answer::text(502, "bad gateway"));
    assert!(matches!(
        TeamsNotifier::new()
            .send(&settings(&rx), &Message::Alert(down()))
            .await,
        Err(SendError::Retryable(text)) if text == "HTTP 502 Bad Gateway: bad gateway"
    ));
}

#[tokio::test]
async fn a_deleted_or_turned_off_flow_disables_without_showing_the_signature() {
    let rx = HttpReceiver::start(Answer::status(202)).await;
    let settings = settings(&rx);
    let url = settings["webhook_url"].as_str().unwrap().to_string();
    // A deleted flow: 404, with an answer that repeats the URL and the signature.
    rx.push(Answer::json(
        404,
        json!({"error": {"code": "WorkflowNotFound",
                         "message": format!("no workflow at {url} (sig={SIG})")}}),
    ));
    // A bad signature: 401.
    rx.push(Answer::json(
        401,
        json!({"error": {"code": "DirectApiInvalidAuthorizationScheme", "message": SIG}}),
    ));
    // A flow turned off, whatever its status: its code says so.
    rx.push(Answer::json(
        400,
        json!({"error": {"code": "WorkflowTriggerIsNotEnabled",
                         "message": "The workflow is disabled."}}),
    ));
    for expected in [
        "WorkflowNotFound",
        "DirectApiInvalid",
        "WorkflowTriggerIsNotEnabled",
    ] {
        match TeamsNotifier::new()
            .send(&settings, &Message::Alert(down()))
            .await
        {
            Err(SendError::Disabled(text)) => {
                assert!(text.contains(expected), "{text}");
                assert!(!text.contains(SIG), "{text}");
                assert!(!text.contains("0a1b2c"), "{text}");
            }
            other => panic!("{expected}: expected Disabled, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn another_400_rejects_this_message_only() {
    let rx = HttpReceiver::start(Answer::status(202)).await;
    rx.push(Answer::json(
        400,
        json!({"error": {"code": "TriggerInputSchemaMismatch"}}),
    ));
    assert!(matches!(
        TeamsNotifier::new()
            .send(&settings(&rx), &Message::Test)
            .await,
        Err(SendError::Rejected(text)) if text.contains("TriggerInputSchemaMismatch")
    ));
}

#[test]
fn validate_names_the_bad_setting() {
    let teams = TeamsNotifier::new();
    assert_eq!(teams.kind(), "teams");
    assert_eq!(teams.secrets(), &["webhook_url"]);
    teams
        .validate(&json!({"webhook_url":
            "https://prod-00.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=x"}))
        .unwrap();
    assert_eq!(
        teams.validate(&json!({})).unwrap_err().field,
        "settings.webhook_url"
    );
    assert_eq!(
        teams
            .validate(&json!({"webhook_url": "mailto:ops@example.com"}))
            .unwrap_err()
            .field,
        "settings.webhook_url"
    );
    assert_eq!(
        teams
            .validate(&json!({"webhook_url": "https://x.example.com/", "title": "x"}))
            .unwrap_err()
            .field,
        "settings.title"
    );
}
