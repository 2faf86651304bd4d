//! ICMP and DNS checks through the public API: pings of loopback, and queries to a real DNS
//! server on loopback ([`upwatch_testkit::dns`]), one behaviour per test.

mod common;

use common::*;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use upwatch_checker::{Checker, CheckerConfig, IcmpSupport};
use upwatch_core::check::{CheckJob, CheckResult, CheckStatus, ErrorKind};
use upwatch_core::condition::Condition;
use upwatch_core::observation::{DnsQuery, DnsQueryType, Placeholder};
use upwatch_core::MonitorInput;
use upwatch_testkit::dns::{DnsRecord, DnsRecords, DnsServer};

fn checker() -> Checker {
    Checker::new(CheckerConfig::default()).expect("build the checker")
}

// ---------------------------------------------------------------------------------------
// ICMP
// ---------------------------------------------------------------------------------------

fn ping_job(url: &str, packets: u32) -> CheckJob {
    job(MonitorInput {
        url: Some(url.to_string()),
        packets: Some(packets),
        ..MonitorInput::default()
    })
}

/// Asserts a ping of a loopback address: up with every reply where ICMP sockets open here,
/// down with `icmp_unavailable` and the reason where they do not.
async fn assert_loopback_ping(url: &str, ip: IpAddr) {
    let checker = checker();
    let (result, elapsed) = run(&checker, &ping_job(url, 3)).await;

    if let IcmpSupport::Unavailable(reason) = checker.icmp_support() {
        assert_eq!(result.status, CheckStatus::Down);
        let error = result.error.expect("icmp cannot run here");
        assert_eq!(error.kind, ErrorKind::IcmpUnavailable);
        assert_eq!(&error.message, reason);
        assert!(
            error.message.contains("ping_group_range"),
            "{}",
            error.message
        );
        assert!(error.message.contains("CAP_NET_RAW"), "{}", error.message);
        return;
    }
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.error, None);
    assert_eq!(result.details.ip, Some(ip));
    let icmp = result.details.icmp.expect("icmp facts");
    assert_eq!(icmp.packets_sent, 3);
    assert_eq!(icmp.packets_received, 3);
    assert_eq!(icmp.packet_loss_percent, 0.0);
    let (min, avg, max) = (
        icmp.rtt_min_ms.expect("a minimum round trip"),
        icmp.rtt_avg_ms.expect("a mean round trip"),
        icmp.rtt_max_ms.expect("a maximum round trip"),
    );
    assert!(0.0 < min && min <= avg && avg <= max, "{min} {avg} {max}");
    assert!(max < 1000.0, "loopback took {max} ms");
    // The latency reported is the mean round trip, rounded up.
    assert_eq!(result.response_time_ms, (avg.ceil() as u32).max(1));
    // Three packets are spaced out, but well within the default timeout of 10 s.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test]
async fn pinging_loopback_gets_every_reply_or_says_why_it_cannot() {
    assert_loopback_ping("icmp://127.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
}

#[tokio::test]
async fn pinging_ipv6_loopback_uses_icmpv6() {
    assert_loopback_ping("icmp://[::1]", IpAddr::V6(Ipv6Addr::LOCALHOST)).await;
}

#[tokio::test]
async fn one_packet_is_one_packet() {
    let checker = checker();
    let (result, _) = run(&checker, &ping_job("icmp://127.0.0.1", 1)).await;
    if matches!(checker.icmp_support(), IcmpSupport::Unavailable(_)) {
        assert_eq!(error_kind(&result), Some(ErrorKind::IcmpUnavailable));
        return;
    }
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    let icmp = result.details.icmp.expect("icmp facts");
    assert_eq!((icmp.packets_sent, icmp.packets_received), (1, 1));
}

#[tokio::test]
async fn icmp_support_is_decided_at_start() {
    // Whichever it is, it is one of the three, and the same for every clone.
    let checker = checker();
    let support = checker.icmp_support().clone();
    eprintln!("icmp support here: {support:?}");
    assert_eq!(checker.clone().icmp_support(), &support);
    if let IcmpSupport::Unavailable(reason) = &support {
        assert_eq!(
            reason,
            "this process may open neither unprivileged ICMP sockets \
             (net.ipv4.ping_group_range) nor raw ones (CAP_NET_RAW)"
        );
    }
}

#[tokio::test]
async fn pinging_a_name_that_does_not_resolve_is_a_dns_error() {
    let checker = checker();
    let (result, _) = run(&checker, &ping_job("icmp://no-such-host.invalid", 3)).await;

    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("an unknown host fails");
    if matches!(checker.icmp_support(), IcmpSupport::Unavailable(_)) {
        // Without ICMP sockets there is nothing to resolve for.
        assert_eq!(error.kind, ErrorKind::IcmpUnavailable);
        return;
    }
    assert_eq!(error.kind, ErrorKind::Dns, "{}", error.message);
    assert_eq!(error.message, "dns lookup failed for no-such-host.invalid");
    assert_eq!(result.details.icmp, None);
}

// ---------------------------------------------------------------------------------------
// DNS
// ---------------------------------------------------------------------------------------

const EXAMPLE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn records() -> DnsRecords {
    DnsRecords::new()
        .with("example.test", DnsRecord::A(EXAMPLE))
        .with("example.test", DnsRecord::A(Ipv4Addr::new(192, 0, 2, 11)))
        .with(
            "example.test",
            DnsRecord::Aaaa("2001:db8::10".parse().unwrap()),
        )
        .with("example.test", DnsRecord::mx(10, "mail.example.test"))
        .with("example.test", DnsRecord::mx(20, "backup.example.test"))
        .with(
            "example.test",
            DnsRecord::Txt(vec!["v=spf1 ".into(), "-all".into()]),
        )
        .with(
            "example.test",
            DnsRecord::Soa {
                mname: "ns1.example.test".into(),
                rname: "hostmaster.example.test".into(),
                serial: 2024010101,
                refresh: 7200,
                retry: 900,
                expire: 1209600,
                minimum: 300,
            },
        )
        .with("www.example.test", DnsRecord::Cname("example.test".into()))
        .with(
            "_sip._tcp.example.test",
            DnsRecord::srv(10, 5, 5060, "sip.example.test"),
        )
        .with("big.example.test", DnsRecord::txt("only over tcp"))
        .truncate_udp("big.example.test")
        .servfail("broken.test")
}

fn dns_job(url: String, name: &str, query_type: DnsQueryType) -> CheckJob {
    dns_job_with(url, name, query_type, Vec::new())
}

fn dns_job_with(
    url: String,
    name: &str,
    query_type: DnsQueryType,
    conditions: Vec<String>,
) -> CheckJob {
    job(MonitorInput {
        url: Some(url),
        dns: Some(DnsQuery {
            query_name: name.to_string(),
            query_type,
        }),
        conditions: (!conditions.is_empty()).then_some(conditions),
        ..MonitorInput::default()
    })
}

/// Queries the server and returns the result, which must carry DNS facts.
async fn query(server: &DnsServer, name: &str, query_type: DnsQueryType) -> CheckResult {
    let (result, _) = run(&checker(), &dns_job(server.url(), name, query_type)).await;
    assert!(
        result.details.dns.is_some(),
        "no dns facts: {:?}",
        result.error
    );
    result
}

fn answers(result: &CheckResult) -> Vec<String> {
    result
        .details
        .dns
        .as_ref()
        .expect("dns facts")
        .answers
        .clone()
}

#[tokio::test]
async fn an_a_record_is_up_with_its_addresses() {
    let server = DnsServer::start(records()).await;
    let (result, elapsed) = run(
        &checker(),
        &dns_job(server.url(), "example.test", DnsQueryType::A),
    )
    .await;

    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.error, None);
    let dns = result.details.dns.clone().expect("dns facts");
    assert_eq!(dns.rcode, "NOERROR");
    assert_eq!(dns.answers, ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(result.details.ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert!(result.response_time_ms >= 1);
    // Rounded up to whole milliseconds, so at most one more than the whole check took.
    assert!(u128::from(result.response_time_ms) <= elapsed.as_millis() + 1);
    assert_eq!(server.queries(), 1);
}

#[tokio::test]
async fn record_types_are_formatted_as_presentation_text() {
    let server = DnsServer::start(records()).await;

    let result = query(&server, "example.test", DnsQueryType::Aaaa).await;
    assert_eq!(answers(&result), ["2001:db8::10"]);

    let result = query(&server, "example.test", DnsQueryType::Mx).await;
    assert_eq!(
        answers(&result),
        ["10 mail.example.test.", "20 backup.example.test."]
    );

    // The character strings of one TXT record are joined.
    let result = query(&server, "example.test", DnsQueryType::Txt).await;
    assert_eq!(answers(&result), ["v=spf1 -all"]);

    let result = query(&server, "_sip._tcp.example.test", DnsQueryType::Srv).await;
    assert_eq!(answers(&result), ["10 5 5060 sip.example.test."]);

    let result = query(&server, "www.example.test", DnsQueryType::Cname).await;
    assert_eq!(answers(&result), ["example.test."]);

    let result = query(&server, "example.test", DnsQueryType::Soa).await;
    assert_eq!(
        answers(&result),
        ["ns1.example.test. hostmaster.example.test. 2024010101 7200 900 1209600 300"]
    );
    assert_eq!(result.status, CheckStatus::Up);
    assert_eq!(server.queries(), 6);
}

#[tokio::test]
async fn a_name_without_records_of_the_type_is_up_with_no_answers() {
    let server = DnsServer::start(records()).await;
    let result = query(&server, "www.example.test", DnsQueryType::A).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    let dns = result.details.dns.expect("dns facts");
    assert_eq!(dns.rcode, "NOERROR");
    assert!(dns.answers.is_empty(), "{:?}", dns.answers);
}

#[tokio::test]
async fn the_answers_are_the_body_for_conditions() {
    let server = DnsServer::start(records()).await;
    let holds = dns_job_with(
        server.url(),
        "example.test",
        DnsQueryType::A,
        vec!["[BODY] == pat(*192.0.2.11*)".to_string()],
    );
    let (result, _) = run(&checker(), &holds).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);

    let fails = dns_job_with(
        server.url(),
        "example.test",
        DnsQueryType::A,
        vec!["[BODY] == pat(*198.51.100.1*)".to_string()],
    );
    let (result, _) = run(&checker(), &fails).await;
    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("the condition fails");
    assert_eq!(error.kind, ErrorKind::ConditionFailed, "{}", error.message);
    // The failure shows what the body was: both answers.
    assert!(
        error.message.contains("192.0.2.10") && error.message.contains("192.0.2.11"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn nxdomain_is_down_naming_the_code() {
    let server = DnsServer::start(records()).await;
    let (result, _) = run(
        &checker(),
        &dns_job(server.url(), "nowhere.test", DnsQueryType::A),
    )
    .await;

    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("nxdomain fails");
    assert_eq!(error.kind, ErrorKind::Dns);
    assert!(error.message.contains("NXDOMAIN"), "{}", error.message);
    let dns = result.details.dns.expect("the code is reported");
    assert_eq!(dns.rcode, "NXDOMAIN");
    assert!(dns.answers.is_empty());
    assert_eq!(server.queries(), 1);
}

#[tokio::test]
async fn servfail_is_down_naming_the_code() {
    let server = DnsServer::start(records()).await;
    let result = query(&server, "broken.test", DnsQueryType::A).await;
    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("servfail fails");
    assert_eq!(error.kind, ErrorKind::Dns);
    assert!(error.message.contains("SERVFAIL"), "{}", error.message);
    assert_eq!(result.details.dns.unwrap().rcode, "SERVFAIL");
}

#[tokio::test]
async fn nxdomain_is_up_when_a_condition_expects_it() {
    let condition = "[DNS_RCODE] == NXDOMAIN";
    let parsed = Condition::parse(condition).expect("the condition parses");
    assert_eq!(parsed.placeholders(), [Placeholder::DnsRcode]);

    let server = DnsServer::start(records()).await;
    let expects_nxdomain = |name: &str| {
        dns_job_with(
            server.url(),
            name,
            DnsQueryType::A,
            vec![condition.to_string()],
        )
    };
    let (result, _) = run(&checker(), &expects_nxdomain("nowhere.test")).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(result.details.dns.unwrap().rcode, "NXDOMAIN");

    // And a name that exists now fails that condition.
    let (result, _) = run(&checker(), &expects_nxdomain("example.test")).await;
    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("NOERROR is not NXDOMAIN");
    assert_eq!(error.kind, ErrorKind::ConditionFailed);
    assert!(error.message.contains("NOERROR"), "{}", error.message);
}

#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let server = DnsServer::start(records()).await;
    let result = query(&server, "big.example.test", DnsQueryType::Txt).await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    assert_eq!(answers(&result), ["only over tcp"]);
    // Once over UDP, once over TCP.
    assert_eq!(server.queries(), 2);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    // A port that was free a moment ago: the kernel answers the query with ICMP port
    // unreachable, which the connected socket reports as a refusal.
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a udp port");
    let addr = socket.local_addr().unwrap();
    drop(socket);

    let job = dns_job(format!("dns://{addr}"), "example.test", DnsQueryType::A);
    let (result, elapsed) = run(&checker(), &job).await;

    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("nothing listens");
    assert_eq!(error.kind, ErrorKind::Connect, "{}", error.message);
    assert_eq!(error.message, format!("no dns server answers at {addr}"));
    assert_eq!(result.details.dns, None);
    assert_eq!(result.details.ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    // Refused at once, not after the timeout.
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_on_time() {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a udp port");
    let addr = socket.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let silent = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while socket.recv_from(&mut buf).await.is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });

    let job = job(MonitorInput {
        url: Some(format!("dns://{addr}")),
        dns: Some(DnsQuery {
            query_name: "example.test".to_string(),
            query_type: DnsQueryType::A,
        }),
        timeout_seconds: Some(1),
        ..MonitorInput::default()
    });
    let (result, elapsed) = run(&checker(), &job).await;
    silent.abort();

    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("no answer fails");
    assert_eq!(error.kind, ErrorKind::Timeout, "{}", error.message);
    assert_eq!(error.message, "no answer within 1000 ms");
    assert_eq!(result.details.dns, None);
    assert_eq!(
        received.load(Ordering::SeqCst),
        1,
        "the query reached the server"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
}

#[tokio::test]
async fn a_resolver_name_that_does_not_resolve_is_a_dns_error() {
    let job = dns_job(
        "dns://no-such-resolver.invalid".to_string(),
        "example.test",
        DnsQueryType::A,
    );
    let (result, _) = run(&checker(), &job).await;
    assert_eq!(result.status, CheckStatus::Down);
    let error = result.error.expect("an unknown resolver fails");
    assert_eq!(error.kind, ErrorKind::Dns, "{}", error.message);
    assert_eq!(
        error.message,
        "dns lookup failed for no-such-resolver.invalid"
    );
}

#[tokio::test]
async fn the_server_stops_when_dropped() {
    let server = DnsServer::start(records()).await;
    let url = server.url();
    let (result, _) = run(
        &checker(),
        &dns_job(url.clone(), "example.test", DnsQueryType::A),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Up, "{:?}", result.error);
    drop(server);

    // Dropping cancels the serving task; once it has let go of the socket, queries are
    // refused (a query queued on the socket as it closes times out). Ask until then.
    let job = job(MonitorInput {
        url: Some(url),
        dns: Some(DnsQuery {
            query_name: "example.test".to_string(),
            query_type: DnsQueryType::A,
        }),
        timeout_seconds: Some(1),
        ..MonitorInput::default()
    });
    let started = Instant::now();
    loop {
        let (result, _) = run(&checker(), &job).await;
        if error_kind(&result) == Some(ErrorKind::Connect) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still answered after drop: {result:?}"
        );
        tokio::task::yield_now().await;
    }
}
