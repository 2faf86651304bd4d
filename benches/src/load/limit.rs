//! The "limit" of the live-status read: a bare axum server that answers `GET /status` with
//! the same JSON as upwatch's `GET /api/v1/sites/{id}/status`, from memory, and
//! `GET /redis` with the same JSON read by one Redis `HGET` per request. The load benchmark
//! starts it beside upwatch and loads it with the same generator in the same run, so every
//! live-read figure is a share of what this machine reaches without upwatch's work.
//!
//! It runs as a process of its own, `upwatch-bench limit-server --body-file PATH
//! [--redis-url URL --redis-key KEY]` (see [`start`]), so that it competes for the cores as
//! upwatch's API process does; it prints `listening on ADDR` once ready.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "upwatch-bench limit-server")]
struct Opts {
    /// The JSON body to answer with.
    #[arg(long)]
    body_file: std::path::PathBuf,
    /// Redis, for `/redis`.
    #[arg(long)]
    redis_url: Option<String>,
    /// The hash whose field `body` holds the JSON, for `/redis`.
    #[arg(long, default_value = "upwatch-bench:limit")]
    redis_key: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

#[derive(Clone)]
struct Limit {
    body: Bytes,
    redis: Option<redis::aio::MultiplexedConnection>,
    key: Arc<str>,
}

async fn from_memory(State(limit): State<Limit>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        limit.body.clone(),
    )
}

async fn from_redis(State(limit): State<Limit>) -> axum::response::Response {
    let Some(mut redis) = limit.redis.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let read: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("HGET")
        .arg(&*limit.key)
        .arg("body")
        .query_async(&mut redis)
        .await;
    match read {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Serves until killed, with the arguments after `limit-server`.
pub async fn serve(args: Vec<String>) -> anyhow::Result<()> {
    let opts = Opts::parse_from(args);
    let body = Bytes::from(std::fs::read(&opts.body_file).context("reading --body-file")?);
    let redis = match &opts.redis_url {
        Some(url) => Some(
            redis::Client::open(url.as_str())?
                .get_multiplexed_async_connection()
                .await
                .context("connecting to Redis")?,
        ),
        None => None,
    };
    let limit = Limit {
        body,
        redis,
        key: Arc::from(opts.redis_key.as_str()),
    };
    let app = Router::new()
        .route("/status", get(from_memory))
        .route("/redis", get(from_redis))
        .with_state(limit);
    let listener = tokio::net::TcpListener::bind(&opts.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// A running limit server.
pub struct LimitServer {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for LimitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LimitServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Starts this binary as a limit server answering `body` (written to `dir`), and, with
/// `redis`, `/redis` from the hash `key` of that Redis (which this writes).
pub async fn start(
    body: &[u8],
    redis: Option<(&str, &str)>,
    dir: &Path,
) -> anyhow::Result<LimitServer> {
    let file = dir.join("limit-body.json");
    std::fs::write(&file, body)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("limit-server").arg("--body-file").arg(&file);
    if let Some((url, key)) = redis {
        let mut conn = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        let _: () = redis::cmd("HSET")
            .arg(key)
            .arg("body")
            .arg(body)
            .query_async(&mut conn)
            .await?;
        cmd.arg("--redis-url").arg(url).arg("--redis-key").arg(key);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("the limit server's stdout")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await??;
    anyhow::ensure!(Instant::now() < deadline, "the limit server did not start");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .context("the limit server's first line")?
        .parse()?;
    Ok(LimitServer { child, addr })
}
