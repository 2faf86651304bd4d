//! Regions: the `User-Agent` names the worker's region, HTTP checks go through the worker's
//! proxy or the monitor's own, and the connectivity checker tells a lost network from a
//! site that is down. Against real loopback servers and a real loopback proxy.

mod common;

use common::*;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use upwatch_checker::connectivity::Connectivity;
use upwatch_checker::{Checker, CheckerConfig};
use upwatch_core::check::{CheckJob, CheckStatus, ErrorKind};
use upwatch_core::MonitorInput;
use upwatch_testkit::proxy::{ProxyProtocol, ProxyServer};
use upwatch_testkit::target::{refused_url, TargetServer, FAILING_AGENT_BODY};
use upwatch_testkit::tls::{CertKind, TestCa, TlsServer};
use upwatch_testkit::wait;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn checker() -> Checker {
    Checker::new(CheckerConfig::default()).expect("build the checker")
}

fn checker_via(proxy: &str) -> Checker {
    Checker::new(CheckerConfig {
        proxy: Some(proxy.to_string()),
        extra_roots: vec![TestCa::shared().der()],
        ..CheckerConfig::default()
    })
    .expect("build the checker")
}

/// The job of a monitor of `url`, made by the workers of `region`.
fn job_in(url: String, region: &str) -> CheckJob {
    let mut job = job(MonitorInput::for_url(url));
    job.region = region.to_string();
    job
}

/// A job whose keyword is looked for in what `/echo` received.
/// A made-up result of `job` that failed with `kind` after `ms`, checked at `at`.
fn failed(
    job: &CheckJob,
    at: chrono::DateTime<chrono::Utc>,
    ms: u32,
    kind: ErrorKind,
    message: &str,
) -> upwatch_core::check::CheckResult {
    upwatch_core::check::CheckResult::for_job(
        job,
        at,
        ms,
        None,
        Err(upwatch_core::check::CheckError::new(kind, message)),
    )
}

fn echo_job(
    server: &TargetServer,
    region: &str,
    keyword: &str,
    headers: &[(&str, &str)],
) -> CheckJob {
    let mut job = job(MonitorInput {
        url: Some(server.url("/echo")),
        keyword: Some(keyword.to_string()),
        headers: Some(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..MonitorInput::default()
    });
    job.region = region.to_string();
    job
}

#[tokio::test]
async fn the_user_agent_names_the_version_and_the_region() {
    let server = TargetServer::start().await;
    let agent = format!(r#""user-agent":"upwatch/{VERSION} (region eu-west)""#);
    let (result, _) = run(&checker(), &echo_job(&server, "eu-west", &agent, &[])).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.region, "eu-west");
}

#[tokio::test]
async fn a_user_agent_set_in_the_checker_config_keeps_the_region() {
    let server = TargetServer::start().await;
    let checker = Checker::new(CheckerConfig {
        user_agent: "upwatch/0.0.1-test".to_string(),
        ..CheckerConfig::default()
    })
    .unwrap();
    let agent = r#""user-agent":"upwatch/0.0.1-test (region b)""#;
    let (result, _) = run(&checker, &echo_job(&server, "b", agent, &[])).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
}

#[tokio::test]
async fn the_monitors_own_user_agent_wins_in_any_case() {
    let server = TargetServer::start().await;
    for name in ["User-Agent", "user-agent", "USER-AGENT"] {
        let job = echo_job(
            &server,
            "eu-west",
            r#""user-agent":"my-probe/2""#,
            &[(name, "my-probe/2")],
        );
        let (result, _) = run(&checker(), &job).await;
        assert_eq!(result.status, CheckStatus::Up, "{name}: {:?}", result.error);
    }
}

#[tokio::test]
async fn a_target_can_fail_the_checks_of_one_region() {
    let server = TargetServer::start().await;
    server.fail_for_user_agent("(region c)");
    let (c, _) = run(&checker(), &job_in(server.url("/ok"), "c")).await;
    let (b, _) = run(&checker(), &job_in(server.url("/ok"), "b")).await;
    assert_eq!(c.status, CheckStatus::Down);
    assert_eq!(c.status_code, Some(500));
    assert_eq!(b.status, CheckStatus::Up, "{:?}", b.error);
    assert_eq!(server.hits("/ok"), 2);

    server.clear_user_agent_failures();
    let (c, _) = run(&checker(), &job_in(server.url("/ok"), "c")).await;
    assert_eq!(c.status, CheckStatus::Up, "{:?}", c.error);
    assert!(!FAILING_AGENT_BODY.is_empty());
}

#[tokio::test]
async fn checks_go_through_the_workers_proxy() {
    let server = TargetServer::start().await;
    let proxy = ProxyServer::start().await;
    let checker = checker_via(&proxy.url());
    assert_eq!(checker.proxy(), Some(proxy.url().as_str()));

    let (result, _) = run(&checker, &job_in(server.url("/ok"), "eu-west")).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].protocol, ProxyProtocol::Http);
    assert_eq!(requests[0].target, server.url("/ok"));
    assert_eq!(
        requests[0].header("user-agent"),
        Some(format!("upwatch/{VERSION} (region eu-west)").as_str())
    );
    assert_eq!(server.hits("/ok"), 1);
}

#[tokio::test]
async fn a_monitors_proxy_replaces_the_workers() {
    let server = TargetServer::start().await;
    let worker_proxy = ProxyServer::start().await;
    let own_proxy = ProxyServer::start().await;
    let checker = checker_via(&worker_proxy.url());
    let job = job(MonitorInput {
        url: Some(server.url("/ok")),
        proxy: Some(own_proxy.url_with_credentials("bob", "pw")),
        ..MonitorInput::default()
    });
    for _ in 0..2 {
        let (result, _) = run(&checker, &job).await;
        assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    }
    assert!(worker_proxy.requests().is_empty());
    let requests = own_proxy.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].target, server.url("/ok"));
    // reqwest sends the URL's credentials as basic auth to the proxy.
    assert!(
        requests[0]
            .header("proxy-authorization")
            .is_some_and(|v| v.starts_with("Basic ")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn https_checks_tunnel_through_the_proxy() {
    let tls = TlsServer::start(CertKind::Valid).await;
    let proxy = ProxyServer::start().await;
    let checker = checker_via(&proxy.url());
    let url = format!("https://127.0.0.1:{}/", tls.addr().port());
    let (result, _) = run(&checker, &job_in(url, "eu-west")).await;
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?} {result:?}");
    assert_eq!(requests[0].protocol, ProxyProtocol::Connect);
    assert_eq!(requests[0].target, tls.addr().to_string());
    // The TLS server only shakes hands: the handshake went through the tunnel.
    wait::until(
        "the handshake through the tunnel",
        DEADLINE,
        Duration::from_millis(20),
        || async { (tls.handshakes() >= 1).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn checks_go_through_a_socks5_proxy() {
    let server = TargetServer::start().await;
    let proxy = ProxyServer::start().await;
    for url in [proxy.socks5_url(), proxy.socks5h_url()] {
        let (result, _) = run(&checker_via(&url), &job_in(server.url("/ok"), "a")).await;
        assert_eq!(result.status, CheckStatus::Up, "{url}: {:?}", result.error);
    }
    let requests = proxy.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|r| r.protocol == ProxyProtocol::Socks5));
    assert_eq!(requests[0].target, server.addr().to_string());
    assert_eq!(server.hits("/ok"), 2);
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_connect_error_without_its_password() {
    let server = TargetServer::start().await;
    let closed = refused_url().await;
    let port = closed.trim_end_matches('/').rsplit(':').next().unwrap();
    let with_password = format!("http://user:secretpw@127.0.0.1:{port}");

    // As the worker's proxy, and as the monitor's own.
    let via_worker = run(
        &checker_via(&with_password),
        &job_in(server.url("/ok"), "a"),
    )
    .await
    .0;
    let own = job(MonitorInput {
        url: Some(server.url("/ok")),
        proxy: Some(with_password.clone()),
        ..MonitorInput::default()
    });
    let via_monitor = run(&checker(), &own).await.0;
    let socks = format!("socks5h://user:secretpw@127.0.0.1:{port}");
    let via_socks = run(&checker_via(&socks), &job_in(server.url("/ok"), "a"))
        .await
        .0;
    let https = job_in(format!("https://{}/", server.addr()), "a");
    let via_tunnel = run(&checker_via(&with_password), &https).await.0;

    for result in [via_worker, via_monitor, via_socks, via_tunnel] {
        assert_eq!(result.status, CheckStatus::Down);
        let error = result.error.expect("an unreachable proxy fails");
        assert_eq!(error.kind, ErrorKind::Connect, "{}", error.message);
        assert!(
            error.message.contains("could not be reached"),
            "{}",
            error.message
        );
        assert!(error.message.contains(port), "{}", error.message);
        assert!(!error.message.contains("secretpw"), "{}", error.message);
    }
    assert_eq!(server.hits("/ok"), 0);
}

#[tokio::test]
async fn a_stopped_proxy_refuses_and_the_check_says_so() {
    let server = TargetServer::start().await;
    let proxy = ProxyServer::start().await;
    let checker = checker_via(&proxy.url());
    let (result, _) = run(&checker, &job_in(server.url("/ok"), "a")).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);

    proxy.stop().await;
    let (result, _) = run(&checker, &job_in(server.url("/ok"), "a")).await;
    let error = result.error.expect("a stopped proxy fails");
    assert_eq!(error.kind, ErrorKind::Connect, "{}", error.message);
    assert!(
        error.message.contains("could not be reached"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn tcp_checks_do_not_use_the_proxy() {
    let server = TargetServer::start().await;
    let closed = refused_url().await;
    let checker = checker_via(&closed);
    let (result, _) = run(&checker, &job_in(format!("tcp://{}", server.addr()), "a")).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
}

// Connectivity.

fn shared(checker: Checker) -> Arc<Checker> {
    Arc::new(checker)
}

#[tokio::test]
async fn a_target_that_answers_means_the_network_works() {
    let server = TargetServer::start().await;
    let proxy = ProxyServer::start().await;
    // Any status answers, and HTTP targets go through the worker's proxy with its agent.
    let connectivity = Connectivity::new(
        shared(checker_via(&proxy.url())),
        "eu".to_string(),
        vec![server.url("/status/503"), refused_url().await],
        Duration::from_secs(30),
    );
    assert!(connectivity.enabled());
    assert!(!connectivity.confirm().await);
    assert!(!connectivity.is_lost());
    assert_eq!(server.hits("/status/503"), 1);
    let requests = proxy.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.target == server.url("/status/503")
                && r.header("user-agent") == Some(&format!("upwatch/{VERSION} (region eu)"))),
        "{requests:?}"
    );
}

#[tokio::test]
async fn no_target_answering_means_the_network_is_lost() {
    let server = TargetServer::start().await;
    let closed_http = refused_url().await;
    let closed_tcp = format!(
        "tcp://{}",
        refused_url()
            .await
            .trim_start_matches("http://")
            .trim_end_matches('/')
    );
    let checker = shared(checker());
    let connectivity = Connectivity::new(
        checker.clone(),
        "eu".to_string(),
        vec![closed_http.clone(), closed_tcp],
        Duration::from_secs(30),
    );
    let mut verdicts = connectivity.subscribe();
    assert!(!connectivity.is_lost(), "not lost before any probe");
    assert!(connectivity.confirm().await);
    assert!(connectivity.is_lost());
    assert!(verdicts.has_changed().unwrap());
    let verdict = verdicts.borrow_and_update().clone();
    assert!(verdict.lost);
    assert!(
        verdict
            .detail
            .starts_with("none of the 2 connectivity targets answered"),
        "{}",
        verdict.detail
    );

    // A check that got no answer is inconclusive; one that did is kept.
    let (down, _) = run(&checker, &job_in(refused_url().await, "eu")).await;
    assert_eq!(down.status, CheckStatus::Down);
    let judged = connectivity.judge(down).await;
    assert_eq!(judged.status, CheckStatus::Inconclusive);
    let error = judged.error.expect("an inconclusive result says why");
    assert_eq!(error.kind, ErrorKind::LocalNetwork);
    assert!(
        error
            .message
            .starts_with("region eu lost its network: none of its 2 connectivity targets answered"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("connection refused"),
        "{}",
        error.message
    );

    let (up, _) = run(&checker, &job_in(server.url("/ok"), "eu")).await;
    assert_eq!(connectivity.judge(up.clone()).await, up);
    let (answered, _) = run(&checker, &job_in(server.url("/status/500"), "eu")).await;
    assert_eq!(answered.status, CheckStatus::Down);
    assert_eq!(connectivity.judge(answered.clone()).await, answered);
}

#[tokio::test]
async fn the_network_comes_back_when_a_target_answers_again() {
    let server = TargetServer::start().await;
    // The probe times out after the interval (1 s) while `/switch` is slower than that.
    server.set_delay(Duration::from_secs(10));
    let connectivity = Connectivity::with_freshness(
        shared(checker()),
        "eu".to_string(),
        vec![server.url("/switch")],
        Duration::from_secs(1),
        Duration::ZERO,
    );
    let mut verdicts = connectivity.subscribe();
    assert!(connectivity.confirm().await);
    assert!(verdicts.borrow_and_update().lost);

    server.set_delay(Duration::ZERO);
    assert!(!connectivity.confirm().await);
    assert!(verdicts.has_changed().unwrap());
    let verdict = verdicts.borrow_and_update().clone();
    assert!(!verdict.lost);
    assert!(
        verdict.detail.contains("/switch answered"),
        "{}",
        verdict.detail
    );
}

#[tokio::test]
async fn a_check_that_ran_while_the_network_was_lost_stays_inconclusive_after_it_is_back() {
    let server = TargetServer::start().await;
    server.set_delay(Duration::from_secs(10));
    let connectivity = Connectivity::with_freshness(
        shared(checker()),
        "eu".to_string(),
        vec![server.url("/switch")],
        Duration::from_secs(1),
        Duration::ZERO,
    );
    assert!(connectivity.confirm().await);
    // A check that started while the network was lost and timed out just as it came back.
    let job = job_in("http://127.0.0.1:9/".to_string(), "eu");
    let timed_out = |at| {
        failed(
            &job,
            at,
            1000,
            ErrorKind::Timeout,
            "no answer within 1000 ms",
        )
    };
    let during = timed_out(chrono::Utc::now());
    server.set_delay(Duration::ZERO);
    let judged = connectivity.judge(during).await;
    assert!(!connectivity.is_lost(), "the probe found the network back");
    assert_eq!(judged.status, CheckStatus::Inconclusive);
    assert_eq!(judged.error.unwrap().kind, ErrorKind::LocalNetwork);
    // A check that started after the network was back is judged on its own.
    let after = timed_out(chrono::Utc::now() + chrono::Duration::milliseconds(1));
    assert_eq!(connectivity.judge(after.clone()).await, after);
}

#[tokio::test]
async fn concurrent_confirms_share_one_probe() {
    let server = TargetServer::start().await;
    let connectivity = Connectivity::new(
        shared(checker()),
        "eu".to_string(),
        vec![server.url("/ok")],
        Duration::from_secs(30),
    );
    let mut confirms = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let connectivity = connectivity.clone();
        confirms.spawn(async move { connectivity.confirm().await });
    }
    while let Some(lost) = confirms.join_next().await {
        assert!(!lost.unwrap());
    }
    assert_eq!(server.hits("/ok"), 1);
    // Within the freshness window, the verdict stands without a probe.
    assert!(!connectivity.confirm().await);
    assert_eq!(server.hits("/ok"), 1);
}

#[tokio::test]
async fn run_probes_every_interval_until_stopped() {
    let server = TargetServer::start().await;
    let connectivity = Connectivity::with_freshness(
        shared(checker()),
        "eu".to_string(),
        vec![server.url("/ok")],
        Duration::from_millis(100),
        Duration::ZERO,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(connectivity.clone().run(async {
        let _ = stopped.await;
    }));
    wait::until(
        "three probes",
        DEADLINE,
        Duration::from_millis(20),
        || async { (server.hits("/ok") >= 3).then_some(()) },
    )
    .await;
    stop.send(()).unwrap();
    tokio::time::timeout(DEADLINE, running)
        .await
        .expect("run ends once stopped")
        .unwrap();
    assert!(!connectivity.is_lost());
}

#[tokio::test]
async fn run_reports_a_lost_network_to_subscribers() {
    let connectivity = Connectivity::new(
        shared(checker()),
        "eu".to_string(),
        vec![refused_url().await],
        Duration::from_millis(100),
    );
    let mut verdicts = connectivity.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(connectivity.clone().run(async {
        let _ = stopped.await;
    }));
    tokio::time::timeout(DEADLINE, verdicts.wait_for(|v| v.lost))
        .await
        .expect("the loss is seen within the deadline")
        .unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(DEADLINE, running)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn without_targets_the_network_is_never_lost() {
    let connectivity = Connectivity::new(
        shared(checker()),
        "eu".to_string(),
        Vec::new(),
        Duration::from_secs(1),
    );
    assert!(!connectivity.enabled());
    assert!(!connectivity.confirm().await);
    assert!(!connectivity.is_lost());
    // No check runs here: a made-up down result is judged as it is.
    let job = job_in("http://127.0.0.1:9/".to_string(), "eu");
    let down = failed(
        &job,
        chrono::Utc::now(),
        5,
        ErrorKind::Connect,
        "connection refused by 127.0.0.1:9",
    );
    assert_eq!(connectivity.judge(down.clone()).await, down);
    // `run` probes nothing and only waits for its stop.
    tokio::time::timeout(DEADLINE, connectivity.clone().run(std::future::ready(())))
        .await
        .expect("run ends with its stop");
    assert!(!connectivity.is_lost());
}
