//! TCP and TLS checks against real servers on loopback, with rcgen certificates.

mod common;

use common::*;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use upwatch_checker::{cert, Checker, CheckerConfig};
use upwatch_core::check::{CheckError, CheckJob, CheckResult, CheckStatus, ErrorKind};
use upwatch_core::observation::{Certificate, Starttls};
use upwatch_core::MonitorInput;
use upwatch_testkit::tls::{
    closed_port, CertKind, TcpServer, TestCa, TlsServer, Upgrade, CA_CN, IMAP_REFUSAL, SERVER_CN,
    UNKNOWN_CA_CN, VALID_DAYS, WRONG_NAME,
};
use upwatch_testkit::wait;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A checker that trusts the test CA the servers issue from.
fn checker() -> Checker {
    Checker::new(CheckerConfig {
        extra_roots: vec![TestCa::shared().der()],
        ..CheckerConfig::default()
    })
    .expect("build the checker")
}

fn job_for(url: String) -> CheckJob {
    job(MonitorInput {
        url: Some(url),
        ..MonitorInput::default()
    })
}

fn up(result: &CheckResult) {
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.error, None);
}

fn down(result: CheckResult, kind: ErrorKind) -> CheckError {
    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("the check fails");
    assert_eq!(error.kind, kind, "{}", error.message);
    error
}

fn certificate(result: &CheckResult) -> &Certificate {
    result
        .details
        .certificate
        .as_ref()
        .expect("the certificate is reported")
}

/// Whether the reported latency fits in the time the check took (a latency is at least 1 ms).
fn within(response_time_ms: u32, elapsed: Duration) -> bool {
    u128::from(response_time_ms) <= elapsed.as_millis().max(1)
}

fn days_left(certificate: &Certificate) -> f64 {
    (certificate.expires_at - Utc::now()).num_seconds() as f64 / 86_400.0
}

// TCP

#[tokio::test]
async fn an_open_port_is_up_with_its_address_and_connect_time() {
    let server = TcpServer::start().await;
    let (result, elapsed) = run(&checker(), &job_for(server.url())).await;

    up(&result);
    assert_eq!(result.details.ip, Some(LOOPBACK));
    assert_eq!(result.details.certificate, None);
    assert!(result.response_time_ms >= 1);
    assert!(
        within(result.response_time_ms, elapsed),
        "{} ms reported, {elapsed:?} taken",
        result.response_time_ms
    );
    wait::until(
        "the connection to arrive",
        DEADLINE,
        Duration::from_millis(10),
        || async { (server.accepted() == 1).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_naming_it() {
    let port = closed_port();
    let (result, _) = run(&checker(), &job_for(format!("tcp://127.0.0.1:{port}"))).await;

    let error = down(result, ErrorKind::Connect);
    assert_eq!(
        error.message,
        format!("connection refused by 127.0.0.1:{port}")
    );
}

#[tokio::test]
async fn a_name_is_resolved_and_its_addresses_tried_in_turn() {
    // `localhost` may resolve to ::1 first, where nothing listens: 127.0.0.1 must be tried.
    let server = TcpServer::start().await;
    let url = format!("tcp://localhost:{}", server.addr().port());
    let (result, _) = run(&checker(), &job_for(url)).await;

    up(&result);
    assert_eq!(result.details.ip, Some(LOOPBACK));
}

#[tokio::test]
async fn an_unresolvable_name_is_a_dns_error() {
    let (result, _) = run(&checker(), &job_for("tcp://upwatch-test.invalid:80".into())).await;

    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("the check fails");
    // Where no resolver answers at all the lookup may run out of time instead.
    match error.kind {
        ErrorKind::Dns => assert_eq!(error.message, "could not resolve upwatch-test.invalid"),
        ErrorKind::Timeout => {}
        other => panic!("expected a dns error, got {other}: {}", error.message),
    }
}

// TLS: timeouts and servers that do not speak TLS

#[tokio::test]
async fn a_handshake_that_never_comes_times_out_on_time() {
    let server = TcpServer::start().await;
    let job = job(MonitorInput {
        url: Some(format!("tls://{}", server.addr())),
        timeout_seconds: Some(1),
        ..MonitorInput::default()
    });
    let (result, elapsed) = run(&checker(), &job).await;

    // The connection was made; it is the handshake that got no answer.
    assert_eq!(result.details.ip, Some(LOOPBACK));
    assert_eq!(server.accepted(), 1);
    let error = down(result, ErrorKind::Timeout);
    assert_eq!(error.message, "no answer within 1000 ms");
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
}

#[tokio::test]
async fn a_server_that_hangs_up_during_the_handshake_is_a_tls_error() {
    let server = TcpServer::start_closing().await;
    let (result, _) = run(&checker(), &job_for(format!("tls://{}", server.addr()))).await;

    let error = down(result, ErrorKind::Tls);
    assert!(
        error.message.contains(&server.addr().to_string()),
        "{}",
        error.message
    );
    assert!(error.message.contains("tls handshake"), "{}", error.message);
}

#[tokio::test]
async fn a_closed_port_with_tls_is_a_connect_error() {
    let port = closed_port();
    let (result, _) = run(&checker(), &job_for(format!("tls://127.0.0.1:{port}"))).await;

    let error = down(result, ErrorKind::Connect);
    assert_eq!(
        error.message,
        format!("connection refused by 127.0.0.1:{port}")
    );
}

// TLS: certificates

#[tokio::test]
async fn a_valid_certificate_is_up_with_its_facts() {
    let server = TlsServer::start(CertKind::Valid).await;
    let (result, elapsed) = run(&checker(), &job_for(server.url())).await;

    up(&result);
    assert_eq!(result.details.ip, Some(LOOPBACK));
    assert!(result.response_time_ms >= 1);
    assert!(within(result.response_time_ms, elapsed));

    let facts = certificate(&result);
    let left = days_left(facts);
    let valid_days = f64::from(VALID_DAYS);
    assert!(
        left > valid_days - 1.0 && left <= valid_days,
        "{left} days left"
    );
    assert!(facts.not_before < Utc::now());
    assert!(facts.subject.contains(SERVER_CN), "{}", facts.subject);
    assert!(facts.issuer.contains(CA_CN), "{}", facts.issuer);
    assert!(
        facts.sans.iter().any(|s| s == "localhost"),
        "{:?}",
        facts.sans
    );
    assert!(
        facts.sans.iter().any(|s| s == "127.0.0.1"),
        "{:?}",
        facts.sans
    );
    assert_eq!(facts.fingerprint.len(), 64);
    assert!(facts
        .fingerprint
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    // The very certificate the server presents.
    let expected = cert::facts(&server.certificate()).unwrap();
    assert_eq!(facts.fingerprint, expected.fingerprint);

    wait::until(
        "the server to count the handshake",
        DEADLINE,
        Duration::from_millis(10),
        || async { (server.handshakes() == 1).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn the_server_name_is_sent_for_a_host_name() {
    // The certificate names `localhost`, so the check is up only if SNI and the name check
    // use the host of the URL; `localhost` may also resolve to ::1 first, where nothing listens.
    let server = TlsServer::start(CertKind::Valid).await;
    let url = format!("tls://localhost:{}", server.addr().port());
    let (result, _) = run(&checker(), &job_for(url)).await;

    up(&result);
    assert_eq!(result.details.ip, Some(LOOPBACK));
    assert!(certificate(&result).subject.contains(SERVER_CN));
}

#[tokio::test]
async fn a_certificate_expiring_soon_is_still_up() {
    let server = TlsServer::start(CertKind::ExpiresIn(5)).await;
    let (result, _) = run(&checker(), &job_for(server.url())).await;

    up(&result);
    let left = days_left(certificate(&result));
    assert!(left > 4.0 && left <= 5.0, "{left} days left");
}

#[tokio::test]
async fn an_expired_certificate_is_a_tls_error_with_its_date() {
    let server = TlsServer::start(CertKind::Expired).await;
    let (result, _) = run(&checker(), &job_for(server.url())).await;

    assert_eq!(result.details.ip, Some(LOOPBACK));
    let error = down(result, ErrorKind::Tls);
    let date = error
        .message
        .strip_prefix("certificate expired at ")
        .unwrap_or_else(|| panic!("{}", error.message));
    let expired_at = DateTime::parse_from_rfc3339(date).expect("an RFC 3339 date");
    // The certificate expired a day ago.
    let ago = Utc::now() - expired_at.with_timezone(&Utc);
    assert!(
        ago > chrono::Duration::hours(23) && ago < chrono::Duration::hours(25),
        "{ago:?}"
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_a_tls_error() {
    let server = TlsServer::start(CertKind::UnknownCa).await;
    let (result, _) = run(&checker(), &job_for(server.url())).await;

    let error = down(result, ErrorKind::Tls);
    assert_eq!(
        error.message,
        "certificate is not signed by a trusted authority (unknown issuer)"
    );
}

#[tokio::test]
async fn the_test_ca_is_trusted_only_as_an_extra_root() {
    let server = TlsServer::start(CertKind::Valid).await;
    let checker = Checker::new(CheckerConfig::default()).unwrap();
    let (result, _) = run(&checker, &job_for(server.url())).await;

    let error = down(result, ErrorKind::Tls);
    assert!(
        error.message.contains("unknown issuer"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_tls_error() {
    let server = TlsServer::start(CertKind::WrongName).await;
    let (result, _) = run(&checker(), &job_for(server.url())).await;

    let error = down(result, ErrorKind::Tls);
    assert!(
        error
            .message
            .starts_with("certificate is not valid for 127.0.0.1"),
        "{}",
        error.message
    );
    assert!(error.message.contains(WRONG_NAME), "{}", error.message);
}

#[tokio::test]
async fn skipping_verification_accepts_an_unknown_ca_and_still_reports_it() {
    let server = TlsServer::start(CertKind::UnknownCa).await;
    let job = job(MonitorInput {
        url: Some(server.url()),
        tls_skip_verify: Some(true),
        ..MonitorInput::default()
    });
    let (result, _) = run(&checker(), &job).await;

    up(&result);
    let facts = certificate(&result);
    assert!(facts.issuer.contains(UNKNOWN_CA_CN), "{}", facts.issuer);
    assert_eq!(
        facts.fingerprint,
        cert::facts(&server.certificate()).unwrap().fingerprint
    );
}

#[tokio::test]
async fn skipping_verification_accepts_expired_and_misnamed_certificates() {
    for kind in [CertKind::Expired, CertKind::WrongName] {
        let server = TlsServer::start(kind).await;
        let job = job(MonitorInput {
            url: Some(server.url()),
            tls_skip_verify: Some(true),
            ..MonitorInput::default()
        });
        let (result, _) = run(&checker(), &job).await;

        up(&result);
        assert!(result.details.certificate.is_some(), "{kind:?}");
    }
}

// Conditions on the certificate

#[tokio::test]
async fn a_certificate_expiration_condition_fails_on_a_short_lived_certificate() {
    let condition = "[CERTIFICATE_EXPIRATION] > 72h";
    let with_condition = |url: String| {
        job(MonitorInput {
            url: Some(url),
            conditions: Some(vec![condition.to_string()]),
            ..MonitorInput::default()
        })
    };

    let short = TlsServer::start(CertKind::ExpiresIn(2)).await;
    let (result, _) = run(&checker(), &with_condition(short.url())).await;
    // The handshake itself succeeded: the certificate is reported.
    assert!(result.details.certificate.is_some());
    let error = down(result, ErrorKind::ConditionFailed);
    assert!(error.message.contains(condition), "{}", error.message);

    let long = TlsServer::start(CertKind::Valid).await;
    let (result, _) = run(&checker(), &with_condition(long.url())).await;
    up(&result);
}

// STARTTLS

const UPGRADES: [(Starttls, Upgrade); 3] = [
    (Starttls::Smtp, Upgrade::Smtp),
    (Starttls::Imap, Upgrade::Imap),
    (Starttls::Postgres, Upgrade::Postgres),
];

fn starttls_job(url: String, starttls: Starttls) -> CheckJob {
    job(MonitorInput {
        url: Some(url),
        starttls: Some(starttls),
        ..MonitorInput::default()
    })
}

/// A check of a server that upgrades with `protocol` is up and reports the certificate.
async fn upgrades_and_reports_the_certificate(protocol: Starttls, upgrade: Upgrade) {
    let server = TlsServer::starttls(upgrade, CertKind::Valid).await;
    let (result, elapsed) = run(&checker(), &starttls_job(server.url(), protocol)).await;

    up(&result);
    assert_eq!(result.details.ip, Some(LOOPBACK));
    assert!(within(result.response_time_ms, elapsed));
    let facts = certificate(&result);
    let left = days_left(facts);
    let valid_days = f64::from(VALID_DAYS);
    assert!(
        left > valid_days - 1.0 && left <= valid_days,
        "{protocol:?}: {left} days left"
    );
    assert!(facts.subject.contains(SERVER_CN), "{}", facts.subject);
    assert!(facts.issuer.contains(CA_CN), "{}", facts.issuer);
    assert_eq!(
        facts.fingerprint,
        cert::facts(&server.certificate()).unwrap().fingerprint
    );
    wait::until(
        "the server to count the handshake",
        DEADLINE,
        Duration::from_millis(10),
        || async { (server.handshakes() == 1).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn smtp_starttls_is_up_with_the_certificate_facts() {
    upgrades_and_reports_the_certificate(Starttls::Smtp, Upgrade::Smtp).await;
}

#[tokio::test]
async fn imap_starttls_is_up_with_the_certificate_facts() {
    upgrades_and_reports_the_certificate(Starttls::Imap, Upgrade::Imap).await;
}

#[tokio::test]
async fn postgres_ssl_request_is_up_with_the_certificate_facts() {
    upgrades_and_reports_the_certificate(Starttls::Postgres, Upgrade::Postgres).await;
}

/// A check of a server that refuses the upgrade is a TLS error with `message`.
async fn refused_with(protocol: Starttls, upgrade: Upgrade, message: &str) {
    let server = TlsServer::starttls_refusing(upgrade).await;
    let (result, _) = run(&checker(), &starttls_job(server.url(), protocol)).await;

    // The connection was made; no handshake was tried.
    assert_eq!(result.details.ip, Some(LOOPBACK));
    assert_eq!(result.details.certificate, None);
    let error = down(result, ErrorKind::Tls);
    assert_eq!(error.message, message);
    assert_eq!(server.handshakes(), 0);
}

#[tokio::test]
async fn an_smtp_server_without_starttls_is_down() {
    refused_with(
        Starttls::Smtp,
        Upgrade::Smtp,
        "the smtp server does not offer STARTTLS",
    )
    .await;
}

#[tokio::test]
async fn an_imap_server_refusing_starttls_is_down_quoting_it() {
    refused_with(
        Starttls::Imap,
        Upgrade::Imap,
        &format!("the imap server refused STARTTLS: {IMAP_REFUSAL}"),
    )
    .await;
}

#[tokio::test]
async fn a_postgres_server_answering_n_is_down() {
    refused_with(
        Starttls::Postgres,
        Upgrade::Postgres,
        "the postgresql server does not accept tls (answered N)",
    )
    .await;
}

#[tokio::test]
async fn a_tls_server_that_never_greets_times_out_during_starttls() {
    // A direct TLS server waits for a ClientHello while the check waits for a greeting.
    let server = TlsServer::start(CertKind::Valid).await;
    let job = job(MonitorInput {
        url: Some(server.url()),
        starttls: Some(Starttls::Smtp),
        timeout_seconds: Some(1),
        ..MonitorInput::default()
    });
    let (result, elapsed) = run(&checker(), &job).await;

    assert_eq!(result.details.ip, Some(LOOPBACK));
    let error = down(result, ErrorKind::Timeout);
    assert_eq!(error.message, "no answer within 1000 ms");
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    assert_eq!(server.handshakes(), 0);
}

#[tokio::test]
async fn a_closed_connection_during_starttls_is_a_connect_error() {
    let server = TcpServer::start_closing().await;
    let (result, _) = run(
        &checker(),
        &starttls_job(format!("tls://{}", server.addr()), Starttls::Imap),
    )
    .await;

    let error = down(result, ErrorKind::Connect);
    assert_eq!(
        error.message,
        format!("{} closed the connection before STARTTLS", server.addr())
    );
}

#[tokio::test]
async fn after_starttls_the_certificate_is_verified_as_usual() {
    for (protocol, upgrade) in UPGRADES {
        let expired = TlsServer::starttls(upgrade, CertKind::Expired).await;
        let (result, _) = run(&checker(), &starttls_job(expired.url(), protocol)).await;
        let error = down(result, ErrorKind::Tls);
        assert!(
            error.message.starts_with("certificate expired at "),
            "{protocol:?}: {}",
            error.message
        );

        let unknown = TlsServer::starttls(upgrade, CertKind::UnknownCa).await;
        let (result, _) = run(&checker(), &starttls_job(unknown.url(), protocol)).await;
        let error = down(result, ErrorKind::Tls);
        assert_eq!(
            error.message, "certificate is not signed by a trusted authority (unknown issuer)",
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn after_starttls_the_host_name_is_sent_and_skipping_verification_works() {
    // `localhost` is in the certificate: SNI and the name check use the URL's host.
    let server = TlsServer::starttls(Upgrade::Smtp, CertKind::Valid).await;
    let url = format!("tls://localhost:{}", server.addr().port());
    let (result, _) = run(&checker(), &starttls_job(url, Starttls::Smtp)).await;
    up(&result);

    let misnamed = TlsServer::starttls(Upgrade::Postgres, CertKind::WrongName).await;
    let job = job(MonitorInput {
        url: Some(misnamed.url()),
        starttls: Some(Starttls::Postgres),
        tls_skip_verify: Some(true),
        ..MonitorInput::default()
    });
    let (result, _) = run(&checker(), &job).await;
    up(&result);
    assert!(result.details.certificate.is_some());
}
