//! One contract over every HTTP provider, through the `Notifier` port the dispatcher uses
//! (`Channels`): a test message arrives; the service's "slow down" is `RateLimited` with a
//! wait; a 5xx is `Retryable`; the service's permanent refusal is `Disabled` (which makes the
//! dispatcher disable the channel, as `upwatch-notify`'s dispatch tests show for every
//! `SendError`) and its reason holds no secret. Email has the same contract over SMTP in
//! `email.rs`.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_core::{ChannelOptions, Webhook, WebhookSource};
use upwatch_notifiers::Channels;
use upwatch_notify::{Message, Notifier, SendError};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const SECRET: &str = "s3cretTOKENvalue0123456789abcd";

/// One kind: how its settings point at `base`, what it answers when it is happy, when it
/// asks to slow down, and when it refuses the channel for good.
struct Kind {
    kind: &'static str,
    settings: fn(&str) -> Value,
    ok: fn() -> Answer,
    slow_down: fn() -> Answer,
    refuse: fn() -> Answer,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            kind: "discord",
            settings: |b| json!({"webhook_url": format!("{b}/api/webhooks/1/{SECRET}")}),
            ok: || Answer::status(204),
            slow_down: || {
                Answer::json(
                    429,
                    json!({"message": "You are being rate limited.", "retry_after": 0.5, "global": false}),
                )
            },
            refuse: || Answer::json(404, json!({"message": "Unknown Webhook", "code": 10015})),
        },
        Kind {
            kind: "slack",
            settings: |b| json!({"webhook_url": format!("{b}/services/T0/B0/{SECRET}")}),
            ok: || Answer::text(200, "ok"),
            slow_down: || Answer::text(429, "rate_limited").header("retry-after", "3"),
            refuse: || Answer::text(404, "no_service"),
        },
        Kind {
            kind: "mattermost",
            settings: |b| json!({"webhook_url": format!("{b}/hooks/{SECRET}")}),
            ok: || Answer::text(200, "ok"),
            slow_down: || Answer::text(429, "too many requests").header("retry-after", "3"),
            refuse: || {
                Answer::json(
                    400,
                    json!({"id": "web.incoming_webhook.invalid.app_error",
                    "message": "Invalid webhook", "status_code": 400}),
                )
            },
        },
        Kind {
            kind: "teams",
            settings: |b| json!({"webhook_url": format!("{b}/workflows/1/triggers/manual/paths/invoke?sig={SECRET}")}),
            ok: || Answer::status(202),
            slow_down: || Answer::status(429).header("retry-after", "3"),
            refuse: || Answer::json(404, json!({"error": {"code": "WorkflowNotFound"}})),
        },
        Kind {
            kind: "webhook",
            settings: |b| {
                json!({"url": format!("{b}/in"), "secret": SECRET,
                                 "headers": {"Authorization": format!("Bearer {SECRET}")}})
            },
            ok: || Answer::status(200),
            slow_down: || Answer::status(429).header("retry-after", "3"),
            refuse: || Answer::status(410),
        },
        Kind {
            kind: "telegram",
            settings: |b| json!({"bot_token": format!("123456:{SECRET}"), "chat_id": "42", "api_url": b}),
            ok: || Answer::json(200, json!({"ok": true, "result": {"message_id": 1}})),
            slow_down: || {
                Answer::json(
                    429,
                    json!({"ok": false, "error_code": 429,
                    "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}}),
                )
            },
            refuse: || {
                Answer::json(
                    403,
                    json!({"ok": false, "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user"}),
                )
            },
        },
        Kind {
            kind: "matrix",
            settings: |b| json!({"homeserver": b, "access_token": SECRET, "room_id": "!room:example.org"}),
            ok: || Answer::json(200, json!({"event_id": "$event"})),
            slow_down: || {
                Answer::json(
                    429,
                    json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests",
                    "retry_after_ms": 3000}),
                )
            },
            refuse: || {
                Answer::json(
                    401,
                    json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown access token"}),
                )
            },
        },
        Kind {
            kind: "ntfy",
            settings: |b| json!({"topic_url": format!("{b}/{SECRET}"), "token": SECRET}),
            ok: || Answer::json(200, json!({"id": "abc", "event": "message"})),
            slow_down: || {
                Answer::json(429, json!({"code": 42901, "http": 429, "error": "limit reached: too many requests"}))
                    .header("retry-after", "3")
            },
            refuse: || {
                Answer::json(
                    403,
                    json!({"code": 40301, "http": 403, "error": "forbidden"}),
                )
            },
        },
        Kind {
            kind: "gotify",
            settings: |b| json!({"server_url": b, "app_token": SECRET}),
            ok: || Answer::json(200, json!({"id": 1})),
            slow_down: || Answer::status(429).header("retry-after", "3"),
            refuse: || {
                Answer::json(
                    401,
                    json!({"error": "Unauthorized", "errorCode": 401,
                    "errorDescription": "you need to provide a valid access token or user credentials to access this api"}),
                )
            },
        },
        Kind {
            kind: "pushover",
            settings: |b| json!({"user_key": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "app_token": SECRET, "api_url": b}),
            ok: || Answer::json(200, json!({"status": 1, "request": "r"})),
            slow_down: || {
                Answer::json(
                    429,
                    json!({"status": 0, "request": "r",
                "errors": ["message limit reached"]}),
                )
            },
            refuse: || {
                Answer::json(
                    400,
                    json!({"status": 0, "request": "r", "token": "invalid",
                    "errors": ["application token is invalid, see https://pushover.net/api"]}),
                )
            },
        },
        Kind {
            kind: "pagerduty",
            settings: |b| json!({"routing_key": format!("{SECRET}ef"), "api_url": b}),
            ok: || {
                Answer::json(
                    202,
                    json!({"status": "success", "message": "Event processed", "dedup_key": "k"}),
                )
            },
            slow_down: || Answer::status(429),
            refuse: || {
                Answer::json(
                    400,
                    json!({"status": "invalid event", "message": "Event object is invalid",
                    "errors": ["Invalid routing key"]}),
                )
            },
        },
        Kind {
            kind: "opsgenie",
            settings: |b| json!({"api_key": SECRET, "api_url": b}),
            ok: || {
                Answer::json(
                    202,
                    json!({"result": "Request will be processed", "took": 0.1, "requestId": "r"}),
                )
            },
            slow_down: || Answer::json(429, json!({"message": "Too many requests", "took": 0.0})),
            refuse: || {
                Answer::json(
                    401,
                    json!({"message": "Could not authenticate", "took": 0.0}),
                )
            },
        },
    ]
}

fn channel(kind: &str, settings: Value) -> Webhook {
    Webhook {
        name: format!("{kind} channel"),
        source: WebhookSource::Api,
        enabled: true,
        kind: kind.to_string(),
        settings,
        options: ChannelOptions::default(),
        ..Webhook::default()
    }
}

#[tokio::test]
async fn every_kind_keeps_the_delivery_contract() {
    let channels = Channels::all(Duration::from_secs(5));
    let mut covered: Vec<&str> = Vec::new();
    for k in kinds() {
        let rx = HttpReceiver::start((k.ok)()).await;
        let settings = (k.settings)(&rx.url());
        channels
            .validate(k.kind, &settings)
            .unwrap_or_else(|e| panic!("{}: the example settings are valid: {e}", k.kind));
        let c = channel(k.kind, settings);

        // A test message arrives.
        assert_eq!(
            channels.send(&c, &Message::Test).await,
            Ok(()),
            "{}",
            k.kind
        );
        assert_eq!(rx.wait_for(1, Duration::from_secs(5)).await.len(), 1);

        // Slow down: wait as the service says.
        rx.push((k.slow_down)());
        match channels.send(&c, &Message::Test).await {
            Err(SendError::RateLimited { retry_after }) => {
                assert!(
                    retry_after >= Duration::from_millis(500),
                    "{}: {retry_after:?}",
                    k.kind
                )
            }
            other => panic!("{}: a 429 is RateLimited, got {other:?}", k.kind),
        }

        // A 5xx is tried again later.
        rx.push(Answer::text(503, "upstream unavailable"));
        assert!(
            matches!(
                channels.send(&c, &Message::Test).await,
                Err(SendError::Retryable(_))
            ),
            "{}: a 503 is Retryable",
            k.kind
        );

        // The service's permanent refusal disables the channel, and says why without the
        // secret.
        rx.push((k.refuse)());
        match channels.send(&c, &Message::Test).await {
            Err(SendError::Disabled(reason)) => {
                assert!(!reason.is_empty(), "{}", k.kind);
                assert!(!reason.contains(SECRET), "{}: {reason}", k.kind);
            }
            other => panic!("{}: a permanent refusal is Disabled, got {other:?}", k.kind),
        }
        assert_eq!(rx.requests().len(), 4, "{}: one request per send", k.kind);
        covered.push(k.kind);
    }
    // Every HTTP kind the registry has is in the contract (email's is over SMTP).
    let mut http_kinds: Vec<&str> = channels
        .kinds()
        .into_iter()
        .filter(|k| *k != "email")
        .collect();
    http_kinds.sort();
    covered.sort();
    assert_eq!(covered, http_kinds);
}

/// The README's example of each kind is a valid notifier, and there is one per kind.
#[test]
fn the_readme_examples_are_valid_and_cover_every_kind() {
    let readme = include_str!("../../../README.md");
    let channels = Channels::default();
    let mut kinds: Vec<String> = Vec::new();
    for line in readme.lines().filter(|l| l.starts_with("{\"name\": ")) {
        let example: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: not JSON: {e}"));
        let kind = example["kind"].as_str().expect("a kind");
        channels
            .validate(kind, &example["settings"])
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        kinds.push(kind.to_string());
    }
    kinds.sort();
    kinds.dedup();
    let mut all: Vec<String> = channels.kinds().iter().map(|k| k.to_string()).collect();
    all.sort();
    assert_eq!(kinds, all);
}
