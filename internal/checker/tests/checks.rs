//! Checks against a real HTTP server on loopback, one behaviour of a site per test.

mod common;

use common::*;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use upwatch_checker::{Checker, CheckerConfig};
use upwatch_core::check::{CheckJob, CheckStatus, ErrorKind};
use upwatch_core::expected::{ExpectedStatus, StatusMatcher};
use upwatch_core::MonitorInput;
use upwatch_testkit::target::{refused_url, TargetServer, HUGE_BYTES};

fn checker() -> Checker {
    Checker::new(CheckerConfig::default()).expect("build the checker")
}

fn job_for(url: String) -> CheckJob {
    job(MonitorInput::for_url(url))
}

#[tokio::test]
async fn a_200_is_up_with_its_code_and_a_response_time() {
    let server = TargetServer::start().await;
    let job = job_for(server.url("/ok"));
    let before = Utc::now();
    let (result, elapsed) = run(&checker(), &job).await;

    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.error, None);
    assert_eq!(result.status_code, Some(200));
    assert!(u128::from(result.response_time_ms) <= elapsed.as_millis());
    assert!(result.checked_at >= before && result.checked_at <= Utc::now());
    assert_eq!(result.job_id, job.id);
    assert_eq!(result.monitor_id, job.monitor_id);
    assert_eq!(server.hits("/ok"), 1);
}

#[tokio::test]
async fn a_500_is_a_status_mismatch_with_its_code() {
    let server = TargetServer::start().await;
    let (result, _) = run(&checker(), &job_for(server.url("/status/500"))).await;

    assert_eq!(result.status, CheckStatus::Down);
    assert_eq!(result.status_code, Some(500));
    let error = result.error.expect("a 500 fails");
    assert_eq!(error.kind, ErrorKind::StatusMismatch);
    assert_eq!(error.message, "got HTTP 500, expected 200");
}

#[tokio::test]
async fn a_slow_answer_times_out_on_time() {
    let server = TargetServer::start().await;
    let job = job(MonitorInput {
        url: Some(server.url("/slow/3000")),
        timeout_seconds: Some(1),
        ..MonitorInput::default()
    });
    let (result, elapsed) = run(&checker(), &job).await;

    assert_eq!(
        error_kind(&result),
        Some(ErrorKind::Timeout),
        "{:?}",
        result.error
    );
    assert_eq!(result.error.unwrap().message, "no answer within 1000 ms");
    assert_eq!(result.status, CheckStatus::Down);
    assert_eq!(result.status_code, None);
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    assert!(
        result.response_time_ms >= 900,
        "{}",
        result.response_time_ms
    );
}

#[tokio::test]
async fn a_refused_port_is_a_connect_error() {
    let url = refused_url().await;
    let (result, _) = run(&checker(), &job_for(url.clone())).await;

    assert_eq!(result.status, CheckStatus::Down);
    assert_eq!(result.status_code, None);
    let error = result.error.expect("a refused connection fails");
    assert_eq!(error.kind, ErrorKind::Connect, "{}", error.message);
    let host_port = url.trim_start_matches("http://").trim_end_matches('/');
    assert_eq!(error.message, format!("connection refused by {host_port}"));
}

#[tokio::test]
async fn a_redirect_loop_is_too_many_redirects() {
    let server = TargetServer::start().await;
    let (result, _) = run(&checker(), &job_for(server.url("/redirect-loop"))).await;

    let error = result.error.expect("a loop fails");
    assert_eq!(error.kind, ErrorKind::TooManyRedirects, "{}", error.message);
    assert_eq!(error.message, "more than 10 redirects");
    // The first request plus ten followed hops, and not one more.
    assert_eq!(server.hits("/redirect-loop"), 11);
}

#[tokio::test]
async fn redirects_are_followed_only_when_asked() {
    let server = TargetServer::start().await;
    let checker = checker();

    let (result, _) = run(&checker, &job_for(server.url("/redirect/2"))).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.status_code, Some(200));
    assert_eq!(server.hits("/redirect/1"), 1);
    assert_eq!(server.hits("/ok"), 1);

    let direct = job(MonitorInput {
        url: Some(server.url("/redirect/2")),
        follow_redirects: Some(false),
        expected_status_code: Some(StatusMatcher::Code(200)),
        ..MonitorInput::default()
    });
    let (result, _) = run(&checker, &direct).await;
    assert_eq!(result.status_code, Some(302));
    assert_eq!(error_kind(&result), Some(ErrorKind::StatusMismatch));
    // The redirect was not followed: the next hop saw no second request.
    assert_eq!(server.hits("/redirect/1"), 1);
    assert_eq!(server.hits("/redirect/2"), 2);
}

#[tokio::test]
async fn a_huge_body_is_read_only_up_to_the_bound() {
    let server = TargetServer::start().await;
    let job = job(MonitorInput {
        url: Some(server.url("/huge")),
        keyword: Some("not in a sea of a".to_string()),
        ..MonitorInput::default()
    });
    let (result, elapsed) = run(&checker(), &job).await;

    assert_eq!(result.status_code, Some(200));
    assert_eq!(
        error_kind(&result),
        Some(ErrorKind::KeywordMissing),
        "{:?}",
        result.error
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // Reading the whole body would have made the server produce all of it; stopping after
    // the bound leaves it at most the few MiB the socket buffers took.
    let sent = server.huge_bytes_sent();
    assert!(
        sent < HUGE_BYTES as u64 / 2,
        "the server produced {sent} of {HUGE_BYTES} bytes"
    );
}

#[tokio::test]
async fn a_keyword_in_the_body_is_found_and_an_absent_one_is_not() {
    let server = TargetServer::start().await;
    let checker = checker();
    let with = |keyword: &str| {
        job(MonitorInput {
            url: Some(server.url("/keyword")),
            keyword: Some(keyword.to_string()),
            ..MonitorInput::default()
        })
    };

    let (result, _) = run(&checker, &with("welcome to upwatch")).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.status_code, Some(200));

    let (result, _) = run(&checker, &with("absent text")).await;
    assert_eq!(result.status, CheckStatus::Down);
    assert_eq!(result.status_code, Some(200));
    let error = result.error.expect("an absent keyword fails");
    assert_eq!(error.kind, ErrorKind::KeywordMissing);
    assert_eq!(error.message, "the response does not contain `absent text`");
}

#[tokio::test]
async fn a_keyword_past_the_body_bound_is_not_seen() {
    let server = TargetServer::start().await;
    // The keyword sits after 1 KiB of filler, beyond a 512-byte bound.
    let checker = Checker::new(CheckerConfig {
        max_body_bytes: 512,
        ..CheckerConfig::default()
    })
    .unwrap();
    let job = job(MonitorInput {
        url: Some(server.url("/keyword")),
        keyword: Some("welcome to upwatch".to_string()),
        ..MonitorInput::default()
    });
    let (result, _) = run(&checker, &job).await;
    assert_eq!(error_kind(&result), Some(ErrorKind::KeywordMissing));
}

#[tokio::test]
async fn a_post_reaches_the_server_with_its_headers_and_body() {
    let server = TargetServer::start().await;
    let checker = checker();
    let headers = BTreeMap::from([
        ("X-Upwatch-Test".to_string(), "hello".to_string()),
        ("Content-Type".to_string(), "application/json".to_string()),
    ]);
    // `/echo` answers with compact JSON of what it received, so each part of the request
    // can be looked for as a keyword by the checker itself.
    let post = |keyword: &str| {
        job(MonitorInput {
            url: Some(server.url("/echo")),
            method: Some("post".to_string()),
            headers: Some(headers.clone()),
            body: Some(r#"{"ping":true}"#.to_string()),
            keyword: Some(keyword.to_string()),
            ..MonitorInput::default()
        })
    };
    let agent = format!(
        r#""user-agent":"upwatch/{} (region default)""#,
        env!("CARGO_PKG_VERSION")
    );
    for expected in [
        r#""method":"POST""#,
        r#""body":"{\"ping\":true}""#,
        r#""x-upwatch-test":"hello""#,
        r#""content-type":"application/json""#,
        agent.as_str(),
    ] {
        let (result, _) = run(&checker, &post(expected)).await;
        assert_eq!(
            result.status,
            CheckStatus::Up,
            "{expected}: {:?}",
            result.error
        );
    }
    // A header that was not sent is not echoed, so the keywords above did discriminate.
    let (result, _) = run(&checker, &post(r#""x-not-sent""#)).await;
    assert_eq!(error_kind(&result), Some(ErrorKind::KeywordMissing));
    assert_eq!(server.hits("/echo"), 6);
}

#[tokio::test]
async fn a_class_of_codes_accepts_a_204() {
    let server = TargetServer::start().await;
    let job = job(MonitorInput {
        url: Some(server.url("/status/204")),
        expected_status_codes: Some(ExpectedStatus(vec![StatusMatcher::Range(200, 299)])),
        ..MonitorInput::default()
    });
    let (result, _) = run(&checker(), &job).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.status_code, Some(204));
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_a_tls_error() {
    let server = TargetServer::start().await;
    let url = server.url("/ok").replacen("http://", "https://", 1);
    let (result, _) = run(&checker(), &job_for(url)).await;

    assert_eq!(result.status_code, None);
    let error = result.error.expect("a failed handshake fails");
    assert_eq!(error.kind, ErrorKind::Tls, "{}", error.message);
    let prefix = format!("tls handshake with {} failed: ", server.addr());
    assert!(error.message.starts_with(&prefix), "{}", error.message);
}

#[tokio::test]
async fn the_switch_route_goes_down_and_up_again() {
    let server = TargetServer::start().await;
    let checker = checker();
    let job = job(MonitorInput {
        url: Some(server.url("/switch")),
        keyword: Some("switch ok".to_string()),
        timeout_seconds: Some(1),
        ..MonitorInput::default()
    });

    let (result, _) = run(&checker, &job).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);

    server.set_status(503);
    let (result, _) = run(&checker, &job).await;
    assert_eq!(result.status_code, Some(503));
    assert_eq!(error_kind(&result), Some(ErrorKind::StatusMismatch));

    server.set_status(200);
    server.set_delay(Duration::from_millis(1500));
    let (result, elapsed) = run(&checker, &job).await;
    assert_eq!(error_kind(&result), Some(ErrorKind::Timeout));
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");

    server.set_delay(Duration::ZERO);
    let (result, _) = run(&checker, &job).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(server.hits("/switch"), 4);
}

#[tokio::test]
async fn check_url_uses_the_monitor_defaults() {
    let server = TargetServer::start().await;
    let checker = checker();

    let result = checker
        .check_url(&server.url("/ok"))
        .await
        .expect("a valid url");
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    // The default expectation is 200 only.
    let result = checker
        .check_url(&server.url("/status/204"))
        .await
        .expect("a valid url");
    assert_eq!(error_kind(&result), Some(ErrorKind::StatusMismatch));
}
