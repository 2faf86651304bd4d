//! `icmp://host` checks: echo requests, with unprivileged datagram sockets where the kernel
//! allows them and raw sockets otherwise.
//!
//! Which of the two this process may open is found out once, when the [`Pinger`] is built,
//! by opening (and closing) a plain socket of each kind: a datagram ICMP socket needs our
//! group in `net.ipv4.ping_group_range`, a raw one needs root or `CAP_NET_RAW`. The
//! [surge-ping](https://docs.rs/surge-ping) clients that send the echo requests spawn a task
//! to receive replies, so they are made on the first probe (inside the runtime), one for
//! ICMPv4 and one for ICMPv6, and shared by every later probe (so a `Checker` belongs to the
//! runtime of its first ICMP check).
//!
//! A probe sends the job's packets one after another, [`INTERVAL`] apart at most; each waits
//! for its reply for its share of the time left (at least [`MIN_WAIT`]), so all of them fit in
//! the job's timeout. The check is up when at least one reply came back.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Client, Config, IcmpPacket, PingIdentifier, PingSequence, SurgeError, ICMP};
use tokio::time::Instant;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};
use upwatch_core::observation::{CheckDetails, IcmpFacts, Observation};

use crate::Probe;

/// Echo requests sent when the job does not say.
const DEFAULT_PACKETS: u32 = 3;
/// The longest gap between two echo requests of one probe.
const INTERVAL: Duration = Duration::from_millis(200);
/// The shortest wait for one reply, however little time is left.
const MIN_WAIT: Duration = Duration::from_millis(100);
/// The payload of every echo request, as `ping` sends 56 bytes by default.
const PAYLOAD: [u8; 56] = [0x75; 56];
/// ICMPv4 and ICMPv6 echo reply types.
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REPLY_V6: u8 = 129;

/// Which ICMP sockets this process can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcmpSupport {
    /// Unprivileged ICMP datagram sockets (`net.ipv4.ping_group_range`).
    Datagram,
    /// Raw sockets (root or `CAP_NET_RAW`).
    Raw,
    /// Neither: ICMP monitors fail with `icmp_unavailable`; the text says why.
    Unavailable(String),
}

/// Why ICMP checks cannot run when neither kind of socket opens.
const UNAVAILABLE: &str = "this process may open neither unprivileged ICMP sockets \
     (net.ipv4.ping_group_range) nor raw ones (CAP_NET_RAW)";

/// The ICMP prober.
pub(crate) struct Pinger {
    support: IcmpSupport,
    /// The shared clients, made on first use; an error says why one could not be made.
    v4: OnceLock<Result<Client, String>>,
    v6: OnceLock<Result<Client, String>>,
}

impl fmt::Debug for Pinger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinger")
            .field("support", &self.support)
            .field("v4_ready", &matches!(self.v4.get(), Some(Ok(_))))
            .field("v6_ready", &matches!(self.v6.get(), Some(Ok(_))))
            .finish()
    }
}

impl Pinger {
    /// Finds out which ICMP sockets this process may open, and logs it once.
    ///
    /// Needs no runtime: the clients are made by the first probe.
    pub fn new() -> Pinger {
        let support = detect_support();
        match &support {
            IcmpSupport::Datagram => tracing::info!(
                icmp_socket = "datagram",
                "icmp checks use unprivileged datagram sockets"
            ),
            IcmpSupport::Raw => tracing::info!(
                icmp_socket = "raw",
                "icmp checks use raw sockets (unprivileged datagram sockets are not allowed)"
            ),
            IcmpSupport::Unavailable(reason) => tracing::warn!(
                icmp_socket = "unavailable",
                reason = %reason,
                "icmp checks cannot run and will report icmp_unavailable"
            ),
        }
        Pinger {
            support,
            v4: OnceLock::new(),
            v6: OnceLock::new(),
        }
    }

    pub fn support(&self) -> &IcmpSupport {
        &self.support
    }

    /// Sends the request's echo requests and reports loss and round-trip times.
    pub async fn probe(&self, request: &CheckRequest, deadline: Instant) -> Probe {
        let socket_type = match &self.support {
            IcmpSupport::Datagram => Type::DGRAM,
            IcmpSupport::Raw => Type::RAW,
            IcmpSupport::Unavailable(reason) => {
                return Probe::failed(CheckError::new(ErrorKind::IcmpUnavailable, reason.clone()))
            }
        };
        let ip = match resolve(&request.url, request.timeout_ms, deadline).await {
            Ok(ip) => ip,
            Err(error) => return Probe::failed(error),
        };
        let client = match self.client(ip, socket_type) {
            Ok(client) => client,
            Err(reason) => {
                let mut probe = Probe::failed(CheckError::new(ErrorKind::IcmpUnavailable, reason));
                probe.observation.details.ip = Some(ip);
                return probe;
            }
        };
        let count = request.packets.unwrap_or(DEFAULT_PACKETS).max(1);
        let rtts = ping_series(client, ip, count, deadline).await;
        observe(ip, &rtts, request.timeout_ms)
    }

    /// The shared client of `ip`'s family, made on first use.
    fn client(&self, ip: IpAddr, socket_type: Type) -> Result<&Client, String> {
        let (cell, kind, name) = match ip {
            IpAddr::V4(_) => (&self.v4, ICMP::V4, "icmp"),
            IpAddr::V6(_) => (&self.v6, ICMP::V6, "icmpv6"),
        };
        cell.get_or_init(|| {
            let config = Config::builder()
                .kind(kind)
                .sock_type_hint(socket_type)
                .build();
            Client::new(&config).map_err(|e| {
                tracing::warn!(family = name, error = %e, "cannot open an icmp socket");
                format!("cannot open an {name} socket: {}", lower_io(&e))
            })
        })
        .as_ref()
        .map_err(Clone::clone)
    }
}

/// Which socket kind opens: datagram first, then raw.
fn detect_support() -> IcmpSupport {
    for (socket_type, support) in [
        (Type::DGRAM, IcmpSupport::Datagram),
        (Type::RAW, IcmpSupport::Raw),
    ] {
        match Socket::new(Domain::IPV4, socket_type, Some(Protocol::ICMPV4)) {
            Ok(_socket) => return support,
            Err(e) => tracing::debug!(
                icmp_socket = ?socket_type,
                error = %e,
                "cannot open an icmp socket of this kind"
            ),
        }
    }
    IcmpSupport::Unavailable(UNAVAILABLE.to_string())
}

/// The address to ping: the URL's IP, or the first address its name resolves to (IPv4
/// preferred, as `ping` does).
async fn resolve(url: &str, timeout_ms: u64, deadline: Instant) -> Result<IpAddr, CheckError> {
    let parsed = Url::parse(url)
        .map_err(|e| CheckError::new(ErrorKind::Other, format!("invalid url: {e}")))?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(CheckError::new(ErrorKind::Other, "invalid url: no host"));
    };
    // An IPv6 address comes in brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    let name = host.to_string();
    let lookup = tokio::net::lookup_host((name.as_str(), 0));
    let addrs: Vec<IpAddr> = match tokio::time::timeout_at(deadline, lookup).await {
        Err(_) => return Err(crate::classify::timeout_error(timeout_ms)),
        Ok(Err(_)) => Vec::new(),
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
    };
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| CheckError::new(ErrorKind::Dns, format!("dns lookup failed for {name}")))
}

/// Sends `count` echo requests to `ip`, one after another, and returns the round trip of each
/// one that was sent (`None` when no reply came back in time).
async fn ping_series(
    client: &Client,
    ip: IpAddr,
    count: u32,
    deadline: Instant,
) -> Vec<Option<Duration>> {
    let mut pinger = client.pinger(ip, PingIdentifier(rand::random())).await;
    let base: u16 = rand::random();
    let mut rtts = Vec::with_capacity(count as usize);
    let mut next_send = Instant::now();
    for i in 0..count {
        let left_after = count - i - 1;
        // Leave every later packet its minimum wait.
        let latest = deadline
            .checked_sub(MIN_WAIT * left_after)
            .unwrap_or(deadline);
        tokio::time::sleep_until(next_send.min(latest)).await;
        let sent_at = Instant::now();
        let remaining = deadline.saturating_duration_since(sent_at);
        if remaining.is_zero() {
            break;
        }
        let wait = (remaining / (left_after + 1)).max(MIN_WAIT).min(remaining);
        pinger.timeout(wait);
        // The sequence numbers of two probes of the same host could meet; move on then.
        let mut seq = base.wrapping_add(u16::try_from(i).unwrap_or(u16::MAX));
        let mut outcome = pinger.ping(PingSequence(seq), &PAYLOAD).await;
        for _ in 0..4 {
            if !matches!(outcome, Err(SurgeError::IdenticalRequests { .. })) {
                break;
            }
            seq = seq.wrapping_add(0x4000);
            outcome = pinger.ping(PingSequence(seq), &PAYLOAD).await;
        }
        let rtt = match outcome {
            Ok((packet, rtt)) if is_echo_reply(&packet) => Some(rtt),
            Ok((packet, _)) => {
                tracing::debug!(%ip, ?packet, "icmp error instead of an echo reply");
                None
            }
            Err(e) => {
                tracing::debug!(%ip, error = %e, "no echo reply");
                None
            }
        };
        rtts.push(rtt);
        next_send = sent_at + INTERVAL;
    }
    rtts
}

/// Whether `packet` is an echo reply rather than an ICMP error about our request.
fn is_echo_reply(packet: &IcmpPacket) -> bool {
    match packet {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == ECHO_REPLY_V4,
        IcmpPacket::V6(p) => p.get_icmpv6_type().0 == ECHO_REPLY_V6,
    }
}

/// The observation and outcome of a series of echo requests.
fn observe(ip: IpAddr, rtts: &[Option<Duration>], timeout_ms: u64) -> Probe {
    let sent = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
    let replies: Vec<f64> = rtts
        .iter()
        .flatten()
        .map(|rtt| rtt.as_secs_f64() * 1000.0)
        .collect();
    let received = u32::try_from(replies.len()).unwrap_or(u32::MAX);
    let loss = if sent == 0 {
        100.0
    } else {
        f64::from(sent - received) * 100.0 / f64::from(sent)
    };
    let (min, avg, max) = if replies.is_empty() {
        (None, None, None)
    } else {
        let min = replies.iter().copied().fold(f64::INFINITY, f64::min);
        let max = replies.iter().copied().fold(0.0, f64::max);
        let avg = replies.iter().sum::<f64>() / replies.len() as f64;
        (Some(min), Some(avg), Some(max))
    };
    let observation = Observation {
        connected: received > 0,
        // The mean round trip, rounded up, and at least 1 ms so that it reads as measured.
        response_time_ms: avg.map_or(0, |avg| (avg.ceil() as u32).max(1)),
        details: CheckDetails {
            ip: Some(ip),
            icmp: Some(IcmpFacts {
                packets_sent: sent,
                packets_received: received,
                packet_loss_percent: loss,
                rtt_min_ms: min,
                rtt_avg_ms: avg,
                rtt_max_ms: max,
            }),
            ..CheckDetails::default()
        },
        ..Observation::default()
    };
    let outcome = if received > 0 {
        Ok(())
    } else if sent == 0 {
        Err(crate::classify::timeout_error(timeout_ms))
    } else {
        Err(CheckError::new(
            ErrorKind::NoReply,
            format!(
                "no echo reply from {ip} to {sent} packet{}",
                if sent == 1 { "" } else { "s" }
            ),
        ))
    };
    Probe {
        observation,
        outcome,
    }
}

/// An I/O error in lower-case words, without the OS error number.
fn lower_io(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.trim_end_matches('.').to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn all_replies_are_up_with_the_rounded_up_mean() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let probe = observe(ip, &[ms(1), ms(2), ms(4)], 1000);
        assert!(probe.outcome.is_ok());
        let o = &probe.observation;
        assert!(o.connected);
        assert_eq!(o.response_time_ms, 3); // 7 / 3 = 2.33, rounded up
        assert_eq!(o.details.ip, Some(ip));
        let icmp = o.details.icmp.clone().unwrap();
        assert_eq!((icmp.packets_sent, icmp.packets_received), (3, 3));
        assert_eq!(icmp.packet_loss_percent, 0.0);
        assert_eq!(icmp.rtt_min_ms, Some(1.0));
        assert_eq!(icmp.rtt_max_ms, Some(4.0));
    }

    #[test]
    fn partial_loss_is_up_and_counted() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let probe = observe(
            ip,
            &[None, Some(Duration::from_micros(10)), None, None],
            1000,
        );
        assert!(probe.outcome.is_ok());
        let icmp = probe.observation.details.icmp.unwrap();
        assert_eq!((icmp.packets_sent, icmp.packets_received), (4, 1));
        assert_eq!(icmp.packet_loss_percent, 75.0);
        // A reply under a millisecond still reports 1 ms.
        assert_eq!(probe.observation.response_time_ms, 1);
    }

    #[test]
    fn no_reply_names_the_address_and_the_count() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let probe = observe(ip, &[None, None, None], 1000);
        let error = probe.outcome.unwrap_err();
        assert_eq!(error.kind, ErrorKind::NoReply);
        assert_eq!(error.message, "no echo reply from 2001:db8::1 to 3 packets");
        assert!(!probe.observation.connected);
        assert_eq!(probe.observation.response_time_ms, 0);
        let icmp = probe.observation.details.icmp.unwrap();
        assert_eq!(icmp.packet_loss_percent, 100.0);
        assert_eq!(icmp.rtt_avg_ms, None);

        let one = observe(ip, &[None], 1000).outcome.unwrap_err();
        assert_eq!(one.message, "no echo reply from 2001:db8::1 to 1 packet");
    }

    #[test]
    fn nothing_sent_is_a_timeout() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let error = observe(ip, &[], 1500).outcome.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Timeout);
    }

    #[test]
    fn io_errors_lose_their_number_and_capitals() {
        let e = std::io::Error::from_raw_os_error(1);
        assert_eq!(lower_io(&e), "operation not permitted");
    }

    #[tokio::test]
    async fn addresses_are_used_as_they_are_and_bad_names_are_dns_errors() {
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            resolve("icmp://127.0.0.1", 5000, deadline).await.unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            resolve("icmp://[::1]", 5000, deadline).await.unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        let error = resolve("icmp://no-such-host.invalid", 5000, deadline)
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Dns);
        assert_eq!(error.message, "dns lookup failed for no-such-host.invalid");
    }
}
