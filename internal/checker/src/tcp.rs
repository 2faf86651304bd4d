//! `tcp://host:port` checks: up when a TCP connection opens within the timeout.
//!
//! The host is resolved (an address is used as is), and its addresses are tried in the order
//! the resolver gives them until one accepts; each attempt may use what is left of the
//! deadline. The connection is closed as soon as it is open: nothing is sent.
//!
//! [`connect`] is shared with the TLS prober, which then runs its handshake on the stream.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use tokio::net::TcpStream;
use tokio::time::Instant;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};
use upwatch_core::observation::Observation;

use crate::classify::{connect_message, timeout_error};
use crate::Probe;

/// Connects to the request's host and port; the latency is the connect time.
pub(crate) async fn probe(request: &CheckRequest, deadline: Instant) -> Probe {
    let (host, port) = match endpoint(&request.url) {
        Ok(endpoint) => endpoint,
        Err(error) => return Probe::failed(error),
    };
    match connect(&host, port, deadline, request.timeout_ms).await {
        Ok((stream, peer, took)) => {
            // Closing right away: a TCP check only asks whether the port accepts connections.
            drop(stream);
            let mut observation = Observation {
                connected: true,
                response_time_ms: latency_ms(took),
                ..Observation::default()
            };
            observation.details.ip = Some(peer.ip());
            Probe {
                observation,
                outcome: Ok(()),
            }
        }
        Err(error) => Probe::failed(error),
    }
}

/// The host (without the brackets of an IPv6 address) and port of a `tcp://` or `tls://` URL.
pub(crate) fn endpoint(url: &str) -> Result<(String, u16), CheckError> {
    let parsed = Url::parse(url)
        .map_err(|e| CheckError::new(ErrorKind::Other, format!("invalid url: {e}")))?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CheckError::new(ErrorKind::Other, "invalid url: it names no host"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = parsed
        .port()
        .ok_or_else(|| CheckError::new(ErrorKind::Other, "invalid url: it names no port"))?;
    Ok((host.to_string(), port))
}

/// `host:port` as messages write it, with brackets around an IPv6 address.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Milliseconds of `took`, at least 1 so that the checker reports it as the latency.
pub(crate) fn latency_ms(took: Duration) -> u32 {
    u32::try_from(took.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// Resolves `host` and opens a TCP connection to `port` on the first of its addresses that
/// accepts, before `deadline`.
///
/// Returns the stream, the address it is connected to and how long the successful attempt
/// took (name resolution and refused attempts excluded). `timeout_ms` is only for the message
/// of a timeout.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout_ms: u64,
) -> Result<(TcpStream, SocketAddr, Duration), CheckError> {
    let target = host_port(host, port);
    let addrs = resolve(host, port, deadline, timeout_ms).await?;
    let mut last_error = None;
    for addr in addrs {
        let started = Instant::now();
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timeout_error(timeout_ms)),
            Ok(Ok(stream)) => {
                let took = started.elapsed();
                let peer = stream.peer_addr().unwrap_or(addr);
                return Ok((stream, peer, took));
            }
            Ok(Err(error)) => {
                tracing::trace!(%addr, %error, "tcp connect attempt failed");
                last_error = Some(error);
            }
        }
    }
    Err(match last_error {
        Some(error) => connect_error(&error, &target, timeout_ms),
        // `resolve` never returns an empty list.
        None => dns_error(host),
    })
}

/// The addresses of `host` (just itself when it is an IP address), never an empty list.
async fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout_ms: u64,
) -> Result<Vec<SocketAddr>, CheckError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs = match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await
    {
        Err(_) => return Err(timeout_error(timeout_ms)),
        Ok(Err(error)) => {
            tracing::debug!(host, %error, "name lookup failed");
            return Err(dns_error(host));
        }
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
    };
    if addrs.is_empty() {
        return Err(dns_error(host));
    }
    Ok(addrs)
}

fn dns_error(host: &str) -> CheckError {
    CheckError::new(ErrorKind::Dns, format!("could not resolve {host}"))
}

/// The error for a failed connection attempt to `target` (`host:port`).
fn connect_error(error: &io::Error, target: &str, timeout_ms: u64) -> CheckError {
    if error.kind() == io::ErrorKind::TimedOut {
        return timeout_error(timeout_ms);
    }
    let message = connect_message(error.kind(), target)
        .unwrap_or_else(|| format!("could not connect to {target}: {error}"));
    CheckError::new(ErrorKind::Connect, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_names_and_addresses() {
        assert_eq!(
            endpoint("tcp://db.example.com:5432").unwrap(),
            ("db.example.com".to_string(), 5432)
        );
        assert_eq!(
            endpoint("tls://127.0.0.1:443").unwrap(),
            ("127.0.0.1".to_string(), 443)
        );
        assert_eq!(endpoint("tcp://[::1]:22").unwrap(), ("::1".to_string(), 22));
        assert_eq!(
            endpoint("tcp://example.com").unwrap_err().kind,
            ErrorKind::Other
        );
        assert_eq!(endpoint("not a url").unwrap_err().kind, ErrorKind::Other);
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("::1", 22), "[::1]:22");
        assert_eq!(host_port("127.0.0.1", 9), "127.0.0.1:9");
        assert_eq!(host_port("example.com", 443), "example.com:443");
    }

    #[test]
    fn latency_is_never_zero() {
        assert_eq!(latency_ms(Duration::from_micros(300)), 1);
        assert_eq!(latency_ms(Duration::from_millis(42)), 42);
    }

    #[test]
    fn connect_errors_name_the_target() {
        let refused = connect_error(
            &io::Error::from(io::ErrorKind::ConnectionRefused),
            "127.0.0.1:9",
            1000,
        );
        assert_eq!(refused.kind, ErrorKind::Connect);
        assert_eq!(refused.message, "connection refused by 127.0.0.1:9");

        let odd = connect_error(&io::Error::other("odd"), "[::1]:9", 1000);
        assert_eq!(odd.kind, ErrorKind::Connect);
        assert_eq!(odd.message, "could not connect to [::1]:9: odd");

        let timed_out = connect_error(&io::Error::from(io::ErrorKind::TimedOut), "h:1", 1500);
        assert_eq!(timed_out.kind, ErrorKind::Timeout);
        assert_eq!(timed_out.message, "no answer within 1500 ms");
    }

    #[tokio::test]
    async fn an_unknown_name_is_a_dns_error() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let error = connect("name.invalid", 80, deadline, 10_000)
            .await
            .unwrap_err();
        // A resolver that cannot be reached at all may also time out; it never connects.
        assert!(
            matches!(error.kind, ErrorKind::Dns | ErrorKind::Timeout),
            "{error:?}"
        );
        if error.kind == ErrorKind::Dns {
            assert_eq!(error.message, "could not resolve name.invalid");
        }
    }
}
