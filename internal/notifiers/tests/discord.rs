//! The Discord notifier against a real loopback receiver.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_notifiers::discord::{message, GONE_REASON};
use upwatch_notifiers::DiscordNotifier;
use upwatch_notify::{Message, Provider, SendError};
use upwatch_testkit::alerts::down;
use upwatch_testkit::discord::{DiscordReceiver, Reply};

const WAIT: Duration = Duration::from_secs(5);

/// The settings of a Discord channel posting to `url`.
fn settings(url: String) -> Value {
    json!({ "webhook_url": url })
}

/// Sends one alert to a fresh receiver that first answers `reply`.
async fn send_with(reply: Option<Reply>) -> (DiscordReceiver, Result<(), SendError>) {
    let receiver = DiscordReceiver::start().await;
    if let Some(reply) = reply {
        receiver.push_response(reply);
    }
    let notifier = DiscordNotifier::new();
    let outcome = notifier
        .send(&settings(receiver.url()), &Message::Alert(down()))
        .await;
    (receiver, outcome)
}

#[tokio::test]
async fn a_204_is_success_and_the_body_is_the_message() {
    let (receiver, outcome) = send_with(None).await;
    outcome.unwrap();
    let messages = receiver.wait_for_messages(1, WAIT).await;
    assert_eq!(messages, vec![message(&down())]);
    assert_eq!(
        messages[0]["content"],
        "🔴 Website Down Alert\nSite: My Website (https://example.com)\nStatus: DOWN\n\
         Time: 2024-01-16 20:00:00 UTC\nError: status_mismatch: got HTTP 500, expected 200"
    );
    assert_eq!(receiver.attempts(), 1);
}

#[tokio::test]
async fn a_429_is_rate_limited_with_the_body_retry_after() {
    let (receiver, outcome) = send_with(Some(Reply::RateLimited {
        retry_after_secs: 2.5,
    }))
    .await;
    // The body's 2.5 s wins over the header's whole 3 s.
    assert_eq!(
        outcome,
        Err(SendError::RateLimited {
            retry_after: Duration::from_millis(2500)
        })
    );
    assert_eq!(receiver.attempts(), 1);
    assert!(receiver.messages().is_empty());
}

#[tokio::test]
async fn a_404_means_the_webhook_is_gone() {
    let (receiver, outcome) = send_with(Some(Reply::Status(404))).await;
    assert_eq!(outcome, Err(SendError::Disabled(GONE_REASON.to_string())));
    assert_eq!(receiver.attempts(), 1);
}

#[tokio::test]
async fn a_500_is_retryable() {
    let (receiver, outcome) = send_with(Some(Reply::Status(500))).await;
    match outcome {
        Err(SendError::Retryable(text)) => {
            assert!(text.starts_with("HTTP 500 Internal Server Error"), "{text}");
            assert!(!text.contains("test-token"), "{text}");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    assert!(receiver.messages().is_empty());
}

#[tokio::test]
async fn a_400_is_rejected_with_status_and_body() {
    let (_receiver, outcome) = send_with(Some(Reply::Status(400))).await;
    match outcome {
        Err(SendError::Rejected(text)) => {
            assert!(text.starts_with("HTTP 400 Bad Request: "), "{text}");
            assert!(text.contains("scripted HTTP 400"), "{text}");
            assert!(text.chars().count() <= 250, "{text}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_hides_the_url() {
    // A port that was free a moment ago and has nobody listening now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/api/webhooks/1/very-secret-token");
    let outcome = DiscordNotifier::new()
        .send(&settings(url), &Message::Alert(down()))
        .await;
    match outcome {
        Err(SendError::Retryable(text)) => {
            assert!(text.starts_with("could not connect"), "{text}");
            assert!(!text.contains("very-secret-token"), "{text}");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_endpoint_times_out_as_retryable() {
    let receiver = DiscordReceiver::start().await;
    receiver.push_response(Reply::Delay(Duration::from_secs(3)));
    let notifier = DiscordNotifier::with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let outcome = notifier
        .send(&settings(receiver.url()), &Message::Alert(down()))
        .await;
    match outcome {
        Err(SendError::Retryable(text)) => {
            assert!(text.starts_with("the request timed out"), "{text}");
            assert!(!text.contains("test-token"), "{text}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}
