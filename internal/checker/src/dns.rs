//! `dns://resolver:port` checks: one query to the resolver, with hickory's message types.
//!
//! The query (the job's name and record type, recursion desired, a random id, EDNS with a
//! 1232-byte payload) goes over UDP from a connected socket, so that an ICMP port unreachable
//! comes back as a refused connection rather than as silence. The first datagram that answers
//! our id is the answer; a truncated one is asked again over TCP. Whatever the response code,
//! it is reported as seen (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, ...): the judge decides what it
//! means for the monitor ([`upwatch_core::check::judge`]).
//!
//! The answers kept are the answer records of the queried type, as presentation text
//! (`93.184.216.34`, `10 mail.example.com.`, `10 5 5060 sip.example.com.`); they are also the
//! body, one per line, for `[BODY]` conditions.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType};
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};
use upwatch_core::observation::{CheckDetails, DnsFacts, DnsQueryType, Observation};

use crate::Probe;

/// The UDP payload size we advertise (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;
/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_535;

/// Sends the request's query to its resolver and reports the answer.
pub(crate) async fn probe(request: &CheckRequest, deadline: Instant) -> Probe {
    match query(request, deadline).await {
        Ok(probe) => probe,
        Err(failure) => {
            let mut probe = Probe::failed(failure.error);
            probe.observation.details.ip = failure.ip;
            probe
        }
    }
}

/// A failed query, with the resolver's address once it is known.
struct Failure {
    error: CheckError,
    ip: Option<IpAddr>,
}

impl From<CheckError> for Failure {
    fn from(error: CheckError) -> Failure {
        Failure { error, ip: None }
    }
}

async fn query(request: &CheckRequest, deadline: Instant) -> Result<Probe, Failure> {
    let Some(question) = &request.dns else {
        return Err(CheckError::new(ErrorKind::Other, "a dns check needs a query").into());
    };
    let record_type = record_type(question.query_type);
    let name = Name::from_ascii(&question.query_name).map_err(|_| {
        CheckError::new(
            ErrorKind::Other,
            format!("`{}` is not a domain name", question.query_name),
        )
    })?;
    let server = resolver(&request.url, request.timeout_ms, deadline).await?;
    let fail = |error: CheckError| Failure {
        error,
        ip: Some(server.ip()),
    };
    let timeout = || fail(crate::classify::timeout_error(request.timeout_ms));

    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name, record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    message.set_edns(edns);
    let id = message.metadata.id;
    let bytes = message.to_vec().map_err(|e| {
        fail(CheckError::new(
            ErrorKind::Other,
            format!("cannot build the dns query: {e}"),
        ))
    })?;

    let started = Instant::now();
    let exchange = async {
        let mut response = over_udp(&bytes, id, server).await?;
        if response.metadata.truncation {
            tracing::debug!(%server, "truncated dns answer; asking again over tcp");
            response = over_tcp(&bytes, id, server).await?;
        }
        Ok::<Message, Exchange>(response)
    };
    let response = match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => return Err(timeout()),
        Ok(Err(Exchange::Io(e))) => return Err(fail(io_error(&e, server))),
        Ok(Err(Exchange::Tcp(e))) => {
            return Err(fail(CheckError::new(
                ErrorKind::Connect,
                format!(
                    "the answer over udp was truncated and tcp to {server} failed: {}",
                    io_words(&e, server)
                ),
            )))
        }
        Ok(Err(Exchange::Malformed(why))) => {
            return Err(fail(CheckError::new(
                ErrorKind::Other,
                format!("malformed dns answer from {server}: {why}"),
            )))
        }
        Ok(Ok(response)) => response,
    };
    let elapsed = started.elapsed();

    let answers: Vec<String> = response
        .answers
        .iter()
        .filter(|record| record.record_type() == record_type)
        .map(|record| record.data.to_string())
        .collect();
    let body = answers.join("\n").into_bytes();
    let observation = Observation {
        connected: true,
        response_time_ms: millis_at_least_one(elapsed),
        body: Some(body),
        details: CheckDetails {
            ip: Some(server.ip()),
            dns: Some(DnsFacts {
                rcode: rcode_name(u16::from(response.metadata.response_code)),
                answers,
            }),
            ..CheckDetails::default()
        },
        ..Observation::default()
    };
    Ok(Probe {
        observation,
        outcome: Ok(()),
    })
}

/// Why an exchange with the resolver failed.
enum Exchange {
    /// The UDP socket failed, or the resolver refused it.
    Io(io::Error),
    /// The TCP retry of a truncated answer failed.
    Tcp(io::Error),
    /// A message with our id that is no DNS answer.
    Malformed(String),
}

/// Sends `bytes` over UDP and waits for the datagram that answers `id`.
async fn over_udp(bytes: &[u8], id: u16, server: SocketAddr) -> Result<Message, Exchange> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(Exchange::Io)?;
    socket.connect(server).await.map_err(Exchange::Io)?;
    socket.send(bytes).await.map_err(Exchange::Io)?;
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let len = socket.recv(&mut buf).await.map_err(Exchange::Io)?;
        if let Some(message) = answer_to(&buf[..len], id)? {
            return Ok(message);
        }
    }
}

/// Sends `bytes` over TCP (length-prefixed) and reads the answer to `id`.
async fn over_tcp(bytes: &[u8], id: u16, server: SocketAddr) -> Result<Message, Exchange> {
    let mut stream = TcpStream::connect(server).await.map_err(Exchange::Tcp)?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| Exchange::Malformed("query too long".to_string()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(Exchange::Tcp)?;
    loop {
        let mut prefix = [0u8; 2];
        stream
            .read_exact(&mut prefix)
            .await
            .map_err(Exchange::Tcp)?;
        let mut buf = vec![0; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut buf).await.map_err(Exchange::Tcp)?;
        if let Some(message) = answer_to(&buf, id)? {
            return Ok(message);
        }
    }
}

/// The message in `datagram` when it answers `id`; `None` for anything else (a late answer
/// to another query, noise), which is skipped.
fn answer_to(datagram: &[u8], id: u16) -> Result<Option<Message>, Exchange> {
    if datagram.len() < 2 || u16::from_be_bytes([datagram[0], datagram[1]]) != id {
        return Ok(None);
    }
    let message = Message::from_vec(datagram).map_err(|e| Exchange::Malformed(e.to_string()))?;
    if message.metadata.message_type != MessageType::Response {
        return Ok(None);
    }
    Ok(Some(message))
}

/// The resolver's address: the URL's IP, or what its name resolves to.
async fn resolver(url: &str, timeout_ms: u64, deadline: Instant) -> Result<SocketAddr, CheckError> {
    let parsed = Url::parse(url)
        .map_err(|e| CheckError::new(ErrorKind::Other, format!("invalid url: {e}")))?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(CheckError::new(ErrorKind::Other, "invalid url: no host"));
    };
    let port = parsed.port().unwrap_or(53);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let lookup = tokio::net::lookup_host((bare, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout_at(deadline, lookup).await {
        Err(_) => return Err(crate::classify::timeout_error(timeout_ms)),
        Ok(Err(_)) => Vec::new(),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| CheckError::new(ErrorKind::Dns, format!("dns lookup failed for {bare}")))
}

/// The error of a failed UDP exchange: a refusal means nothing listens there.
fn io_error(error: &io::Error, server: SocketAddr) -> CheckError {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        return CheckError::new(
            ErrorKind::Connect,
            format!("no dns server answers at {server}"),
        );
    }
    CheckError::new(
        ErrorKind::Connect,
        format!("cannot query {server}: {}", io_words(error, server)),
    )
}

/// An I/O error in lower-case words.
fn io_words(error: &io::Error, server: SocketAddr) -> String {
    use io::ErrorKind as K;
    match error.kind() {
        K::ConnectionRefused => format!("connection refused by {server}"),
        K::ConnectionReset => format!("connection reset by {server}"),
        K::HostUnreachable => "host unreachable".to_string(),
        K::NetworkUnreachable => "network unreachable".to_string(),
        K::UnexpectedEof => "the server closed the connection".to_string(),
        _ => {
            let text = error.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            text.trim_end_matches('.').to_lowercase()
        }
    }
}

/// Whole milliseconds, rounded up, at least 1.
fn millis_at_least_one(elapsed: Duration) -> u32 {
    let micros = elapsed.as_micros();
    u32::try_from(micros.div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}

fn record_type(query_type: DnsQueryType) -> RecordType {
    match query_type {
        DnsQueryType::A => RecordType::A,
        DnsQueryType::Aaaa => RecordType::AAAA,
        DnsQueryType::Cname => RecordType::CNAME,
        DnsQueryType::Mx => RecordType::MX,
        DnsQueryType::Ns => RecordType::NS,
        DnsQueryType::Txt => RecordType::TXT,
        DnsQueryType::Soa => RecordType::SOA,
        DnsQueryType::Srv => RecordType::SRV,
        DnsQueryType::Ptr => RecordType::PTR,
    }
}

/// The mnemonic of a response code (RFC 6895's registry), such as `NXDOMAIN`.
fn rcode_name(code: u16) -> String {
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        other => return format!("RCODE{other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_have_their_mnemonics() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(2), "SERVFAIL");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(5), "REFUSED");
        assert_eq!(rcode_name(4000), "RCODE4000");
        for code in 0..=23 {
            let name = rcode_name(code);
            assert_eq!(name, name.to_uppercase());
        }
    }

    #[test]
    fn every_query_type_maps_to_its_record_type() {
        for query_type in DnsQueryType::ALL {
            assert_eq!(record_type(query_type).to_string(), query_type.as_str());
        }
    }

    #[test]
    fn times_round_up_to_at_least_a_millisecond() {
        assert_eq!(millis_at_least_one(Duration::ZERO), 1);
        assert_eq!(millis_at_least_one(Duration::from_micros(1001)), 2);
        assert_eq!(millis_at_least_one(Duration::from_millis(7)), 7);
    }

    #[test]
    fn only_responses_to_our_id_are_taken() {
        let mut response = Message::response(42, hickory_proto::op::OpCode::Query);
        response.add_query(Query::query(
            Name::from_ascii("a.test.").unwrap(),
            RecordType::A,
        ));
        let bytes = response.to_vec().unwrap();
        assert!(matches!(answer_to(&bytes, 41), Ok(None)));
        assert!(matches!(answer_to(&bytes, 42), Ok(Some(_))));
        let query = Message::new(42, MessageType::Query, hickory_proto::op::OpCode::Query);
        assert!(matches!(answer_to(&query.to_vec().unwrap(), 42), Ok(None)));
        assert!(matches!(
            answer_to(&[0, 42, 0xff], 42),
            Err(Exchange::Malformed(_))
        ));
        assert!(matches!(answer_to(&[0], 42), Ok(None)));
    }

    #[test]
    fn a_refused_udp_exchange_means_no_server() {
        let server: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let error = io_error(&io::Error::from(io::ErrorKind::ConnectionRefused), server);
        assert_eq!(error.kind, ErrorKind::Connect);
        assert_eq!(error.message, "no dns server answers at 127.0.0.1:5353");
    }
}
