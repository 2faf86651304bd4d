//! A closed-loop load generator for the live-status API: a fixed number of keep-alive
//! HTTP/1.1 connections, each sending its next GET as soon as the previous answer's body has
//! arrived, recording every request's latency.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// What a load run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadResult {
    pub path: String,
    pub connections: usize,
    /// Successful (200) answers.
    pub requests: u64,
    /// Answers other than 200, and failed requests.
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Sends `GET path` to `addr` over `connections` connections for `duration`.
pub async fn run(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            connection(addr, &path, deadline).await
        }));
    }
    let mut latencies_us: Vec<u32> = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (lat, err) = task.await??;
        latencies_us.extend(lat);
        errors += err;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let at = |q: f64| -> f64 {
        if latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((latencies_us.len() as f64 * q).ceil() as usize).clamp(1, latencies_us.len());
        f64::from(latencies_us[i - 1]) / 1000.0
    };
    Ok(LoadResult {
        path: path.to_string(),
        connections,
        requests: latencies_us.len() as u64,
        errors,
        seconds,
        requests_per_second: latencies_us.len() as f64 / seconds,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

async fn connection(
    addr: SocketAddr,
    path: &str,
    deadline: Instant,
) -> anyhow::Result<(Vec<u32>, u64)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = addr.to_string();
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    while Instant::now() < deadline {
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<Bytes>::new())?;
        let sent = Instant::now();
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.is_ok() && status == hyper::StatusCode::OK
            }
            Err(_) => false,
        };
        if ok {
            latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
        } else {
            errors += 1;
            if sender.ready().await.is_err() {
                break;
            }
        }
    }
    drop(sender);
    driver.abort();
    Ok((latencies, errors))
}
