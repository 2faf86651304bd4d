//! `icmp://host` checks: echo requests, with unprivileged datagram sockets where the kernel
//! allows them and raw sockets otherwise.

use tokio::time::Instant;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};

use crate::Probe;

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

/// The ICMP prober.
#[derive(Debug)]
pub(crate) struct Pinger {
    support: IcmpSupport,
}

impl Pinger {
    pub fn new() -> Pinger {
        Pinger {
            support: IcmpSupport::Unavailable("not built yet".into()),
        }
    }

    pub fn support(&self) -> &IcmpSupport {
        &self.support
    }

    /// Sends the request's echo requests and reports loss and round-trip times.
    pub async fn probe(&self, _request: &CheckRequest, _deadline: Instant) -> Probe {
        Probe::failed(CheckError::new(ErrorKind::IcmpUnavailable, "icmp checks are not built yet"))
    }
}
