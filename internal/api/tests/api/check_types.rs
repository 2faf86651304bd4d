//! Monitors of every check type through the API, their validation, and push monitors' pushes.

use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};
use upwatch_bus::{Bus, Topic};
use upwatch_core::{CheckResult, CheckStatus, ErrorKind};

use crate::helpers::*;

#[tokio::test]
async fn every_scheme_makes_its_type_and_shows_it() {
    let app = spawn_app().await;
    for (body, kind, url) in [
        (
            json!({"url": "https://example.com/"}),
            "http",
            "https://example.com/",
        ),
        (
            json!({"url": "tcp://db.example.com:5432"}),
            "tcp",
            "tcp://db.example.com:5432",
        ),
        (
            json!({"url": "tls://mail.example.com:465"}),
            "tls",
            "tls://mail.example.com:465",
        ),
        (
            json!({"url": "icmp://example.com"}),
            "icmp",
            "icmp://example.com",
        ),
        (
            json!({"url": "dns://127.0.0.1", "dns": {"query_name": "example.com.", "query_type": "MX"}}),
            "dns",
            "dns://127.0.0.1:53",
        ),
    ] {
        let site = app.create_site(body.clone()).await;
        assert_eq!(site["type"], kind, "{body}");
        assert_eq!(site["url"], url, "{body}");
        let read = app
            .get(&format!("/api/v1/sites/{}", site["id"].as_str().unwrap()))
            .await;
        assert_eq!(read.json()["type"], kind);
    }
    let dns = app
        .create_site(json!({"url": "dns://127.0.0.1:5353", "dns": {"query_name": "a.test", "query_type": "AAAA"}}))
        .await;
    assert_eq!(
        dns["dns"],
        json!({"query_name": "a.test", "query_type": "AAAA"})
    );
    let icmp = app.create_site(json!({"url": "icmp://127.0.0.1"})).await;
    assert_eq!(
        icmp["packets"], 3,
        "icmp monitors send 3 packets by default"
    );
}

#[tokio::test]
async fn bad_check_settings_are_422s_naming_the_field() {
    let app = spawn_app().await;
    for (body, field, says) in [
        (
            json!({"url": "gopher://example.com"}),
            "url",
            "http, https, tcp, tls, icmp or dns",
        ),
        (
            json!({"url": "tcp://example.com:70000"}),
            "url",
            "1 to 65535",
        ),
        (json!({"url": "tcp://example.com"}), "url", "needs a port"),
        (json!({"url": "tcp://example.com:0"}), "url", "port 0"),
        (
            json!({"url": "icmp://example.com:80"}),
            "url",
            "must not have a port",
        ),
        (json!({"url": "dns://127.0.0.1"}), "dns", "is required"),
        (
            json!({"url": "dns://127.0.0.1", "dns": {"query_name": "a.test", "query_type": "AXFR"}}),
            "",
            "query_type",
        ),
        (
            json!({"url": "dns://127.0.0.1", "dns": {"query_name": "not a name", "query_type": "A"}}),
            "dns.query_name",
            "not a domain name",
        ),
        (
            json!({"url": "https://a.test", "conditions": ["[STATUS] =="]}),
            "conditions[0]",
            "does not parse",
        ),
        (
            json!({"url": "https://a.test", "conditions": ["[STATUS] == 200", "[NOPE] == 1"]}),
            "conditions[1]",
            "[NOPE]",
        ),
        (
            json!({"url": "tcp://a.test:1", "conditions": ["[BODY] == x"]}),
            "conditions[0]",
            "[BODY]",
        ),
        (
            json!({"url": "http://a.test", "conditions": ["[CERTIFICATE_EXPIRATION] > 72h"]}),
            "conditions[0]",
            "plain http",
        ),
        (
            json!({"url": "tcp://a.test:1", "keyword": "x"}),
            "keyword",
            "only to http",
        ),
        (
            json!({"url": "https://a.test", "packets": 2}),
            "packets",
            "only to icmp",
        ),
        (
            json!({"url": "icmp://a.test", "packets": 0}),
            "packets",
            "between 1 and",
        ),
        (
            json!({"url": "http://a.test", "tls_skip_verify": true}),
            "tls_skip_verify",
            "https and tls",
        ),
        (
            json!({"url": "tcp://a.test:25", "starttls": "smtp"}),
            "starttls",
            "only to tls",
        ),
        (
            json!({"url": "https://a.test", "cert_expiry_alert_days": [0]}),
            "cert_expiry_alert_days",
            "from 1 to 365",
        ),
        (json!({"type": "tcp"}), "url", "is required"),
        (
            json!({"type": "tcp", "url": "http://a.test"}),
            "type",
            "agree",
        ),
        (
            json!({"type": "push", "push_grace_seconds": 100000}),
            "push_grace_seconds",
            "at most",
        ),
        (json!({"url": "push://abc"}), "url", "32 lower-case hex"),
    ] {
        let response = app.post_json("/api/v1/sites", &body).await;
        let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        if !field.is_empty() {
            assert_eq!(problem["field"], field, "{body}: {problem}");
        }
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(says),
            "{body}: `{detail}` should say `{says}`"
        );
    }
}

#[tokio::test]
async fn conditions_and_tls_settings_are_kept() {
    let app = spawn_app().await;
    let site = app
        .create_site(json!({
            "url": "https://a.test/health",
            "conditions": ["[STATUS] < 400", "[BODY].status == UP", "[CERTIFICATE_EXPIRATION] > 72h"],
            "tls_skip_verify": true,
            "cert_expiry_alert_days": [3, 30, 3]
        }))
        .await;
    assert_eq!(site["conditions"].as_array().unwrap().len(), 3);
    assert_eq!(site["tls_skip_verify"], true);
    assert_eq!(site["cert_expiry_alert_days"], json!([30, 3]));
    // A patch that makes it a TCP monitor must drop what only HTTP has.
    let id = site["id"].as_str().unwrap();
    let refused = app
        .patch_json(
            &format!("/api/v1/sites/{id}"),
            &json!({"url": "tcp://a.test:443"}),
        )
        .await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    let changed = app
        .patch_json(
            &format!("/api/v1/sites/{id}"),
            &json!({"url": "tls://a.test:443", "conditions": ["[CONNECTED] == true"]}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.json()["type"], "tls");
}

async fn push_monitor(app: &TestApp) -> (Value, String) {
    let site = app
        .create_site(json!({"type": "push", "name": "nightly backup", "interval_seconds": 3600}))
        .await;
    assert_eq!(site["type"], "push");
    let push_url = site["push_url"].as_str().expect("a push_url").to_string();
    let token = push_url.rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(site["url"], format!("push://{token}"));
    assert_eq!(site["push_grace_seconds"], 30);
    (site, push_url)
}

async fn next_result(sub: &mut Box<dyn upwatch_bus::Subscription>) -> CheckResult {
    let message = tokio::time::timeout(std::time::Duration::from_secs(5), sub.recv())
        .await
        .expect("a result within 5 s")
        .unwrap()
        .expect("the topic is open");
    serde_json::from_slice(&message.payload).unwrap()
}

#[tokio::test]
async fn a_push_publishes_a_result_without_the_api_token() {
    let app = spawn_app_with(Options {
        api_token: Some("a-token-of-sixteen-chars"),
        ..Default::default()
    })
    .await;
    let mut app = app;
    let mut results = app.bus.subscribe(Topic::Results, "test").await.unwrap();
    app.token = Some("a-token-of-sixteen-chars".to_string());
    let (site, push_url) = push_monitor(&app).await;
    // Pushes need no API token.
    app.token = None;
    let anonymous = &app;

    let up = anonymous.get(&push_url).await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    assert_eq!(up.json()["status"], "up");
    let result = next_result(&mut results).await;
    assert_eq!(result.monitor_id.to_string(), site["id"].as_str().unwrap());
    assert_eq!(result.status, CheckStatus::Up);
    assert_eq!(result.monitor_name, "nightly backup");

    let down = anonymous
        .call(
            Method::POST,
            &format!("{push_url}?status=down&msg=disk%20full"),
        )
        .await;
    assert_eq!(down.status, StatusCode::OK, "{}", down.text());
    let result = next_result(&mut results).await;
    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.unwrap();
    assert_eq!(error.kind, ErrorKind::ReportedDown);
    assert_eq!(error.message, "disk full");

    let bad = anonymous.get(&format!("{push_url}?status=sideways")).await;
    let problem = bad.assert_problem(StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap().contains("`status`"));
}

#[tokio::test]
async fn an_unknown_token_is_a_404_problem() {
    let app = spawn_app().await;
    for token in ["0123456789abcdef0123456789abcdef", "short", "ZZZ"] {
        let response = app.get(&format!("/api/v1/push/{token}")).await;
        let problem = response.assert_problem(StatusCode::NOT_FOUND);
        assert!(problem["detail"].as_str().unwrap().contains("push_url"));
    }
    // A token of an HTTP monitor does not exist: only push monitors have one.
    let site = app.create_site(json!({"url": "https://a.test/"})).await;
    assert!(site.get("push_url").is_none_or(Value::is_null));
}

#[tokio::test]
async fn pushes_are_rate_limited_per_monitor_with_retry_after() {
    let app = spawn_app_with(Options {
        push_max_per_minute: Some(3),
        ..Default::default()
    })
    .await;
    let (_, first) = push_monitor(&app).await;
    let (_, second) = push_monitor(&app).await;
    for _ in 0..3 {
        assert_eq!(app.get(&first).await.status, StatusCode::OK);
    }
    let limited = app.get(&first).await;
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited
        .header(header::RETRY_AFTER)
        .expect("a Retry-After header")
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    // Another monitor has its own allowance.
    assert_eq!(app.get(&second).await.status, StatusCode::OK);
}

#[tokio::test]
async fn push_monitors_keep_their_token_across_a_patch() {
    let app = spawn_app().await;
    let (site, push_url) = push_monitor(&app).await;
    let id = site["id"].as_str().unwrap();
    let patched = app
        .patch_json(
            &format!("/api/v1/sites/{id}"),
            &json!({"push_grace_seconds": 120}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    assert_eq!(patched.json()["push_url"], push_url.as_str());
    assert_eq!(patched.json()["push_grace_seconds"], 120);
}
