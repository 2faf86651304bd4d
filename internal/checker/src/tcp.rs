//! `tcp://host:port` checks: up when a TCP connection opens within the timeout.

use tokio::time::Instant;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};

use crate::Probe;

/// Connects to the request's host and port; the latency is the connect time.
pub(crate) async fn probe(_request: &CheckRequest, _deadline: Instant) -> Probe {
    Probe::failed(CheckError::new(ErrorKind::Other, "tcp checks are not built yet"))
}
