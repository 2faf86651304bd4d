//! The sites being checked: a small HTTP/1.1 server on a loopback address, answering every
//! request after a configurable latency with 200 (or 503 for a configurable share) and
//! `connection: close`, so that every check opens a fresh TCP connection, as checks of
//! independent sites do. It is deliberately minimal, so that its CPU cost, which competes
//! with upwatch for the same cores, stays small; the bench reports it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
const FAIL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndown";

/// A running target server.
pub struct Target {
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Counters {
    answered: AtomicU64,
    failed: AtomicU64,
}

impl Target {
    /// Starts the server on `ip` (which must be a loopback address) and a free port.
    pub async fn start(
        ip: std::net::IpAddr,
        latency: Duration,
        failure_rate: f64,
    ) -> anyhow::Result<Target> {
        anyhow::ensure!(
            ip.is_loopback(),
            "the target server may only listen on a loopback address, not {ip}"
        );
        let socket = match ip {
            std::net::IpAddr::V4(_) => TcpSocket::new_v4()?,
            std::net::IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::new(ip, 0))?;
        // A deep accept queue: checks arrive in bursts when many monitors share a due time.
        let listener = socket.listen(8192)?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let task = {
            let counters = counters.clone();
            tokio::spawn(async move {
                loop {
                    let stream = match listener.accept().await {
                        Ok((stream, _)) => stream,
                        Err(error) => {
                            tracing::warn!(%error, "target server cannot accept");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    let counters = counters.clone();
                    tokio::spawn(answer(stream, counters, latency, failure_rate));
                }
            })
        };
        tracing::info!(%addr, latency_ms = latency.as_millis() as u64, failure_rate, "target server listening");
        Ok(Target {
            addr,
            counters,
            task,
        })
    }

    /// Requests answered so far.
    pub fn answered(&self) -> u64 {
        self.counters.answered.load(Ordering::Relaxed)
    }

    /// Requests answered with 503 so far.
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut stream: TcpStream,
    counters: Arc<Counters>,
    latency: Duration,
    failure_rate: f64,
) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 4096];
    let mut len = 0;
    // Read the request head (checks send no body unless a monitor has one; this benchmark's
    // monitors have none).
    loop {
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
            break;
        }
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let n = counters.answered.fetch_add(1, Ordering::Relaxed);
    // Exactly `failure_rate` of the answers fail, evenly spread.
    let fail = (((n + 1) as f64) * failure_rate).floor() > ((n as f64) * failure_rate).floor();
    if fail {
        counters.failed.fetch_add(1, Ordering::Relaxed);
    }
    let _ = stream.write_all(if fail { FAIL } else { OK }).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_and_fails_the_given_share() {
        let target = Target::start([127, 0, 0, 1].into(), Duration::ZERO, 0.25)
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let mut failed = 0;
        for _ in 0..8 {
            let r = client
                .get(format!("http://{}/x", target.addr))
                .send()
                .await
                .unwrap();
            failed += usize::from(r.status() == 503);
        }
        assert_eq!(failed, 2);
        assert_eq!(target.answered(), 8);
        assert_eq!(target.failed(), 2);
    }

    #[tokio::test]
    async fn refuses_addresses_other_than_loopback() {
        assert!(Target::start([192, 0, 2, 1].into(), Duration::ZERO, 0.0)
            .await
            .is_err());
    }
}
