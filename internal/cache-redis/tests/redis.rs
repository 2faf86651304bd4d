//! `RedisCache` against a real Redis (env `UPWATCH_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Each test writes under its own key prefix and deletes its keys
//! when it ends, so tests run in parallel and leave nothing behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use upwatch_cache::{contract, CacheError, LiveStatus, StatusCache};
use upwatch_cache_redis::RedisCache;
use upwatch_core::{MonitorState, MonitorStatus};
use uuid::Uuid;

fn redis_url() -> String {
    std::env::var("UPWATCH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A fresh key prefix whose keys are deleted when it is dropped, even after a failed assertion.
struct TestPrefix(String);

impl TestPrefix {
    fn new() -> Self {
        TestPrefix(format!("upwatch-test:{}:", Uuid::new_v4()))
    }

    async fn cache(&self) -> RedisCache {
        RedisCache::connect(&redis_url(), &self.0).await.unwrap()
    }

    /// Every key under this prefix, sorted.
    async fn keys(&self) -> Vec<String> {
        let mut conn = raw_connection().await;
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        // Best effort: a blocking connection, since drop cannot await.
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(format!("{}status", self.0))
                .arg(format!("{}checked", self.0))
                .arg(format!("{}ids", self.0))
                .arg(format!("{}stale", self.0))
                .query(&mut conn);
        }
    }
}

async fn raw_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn entry(id: Uuid, checked: Option<i64>) -> LiveStatus {
    let mut state = MonitorState::new(id);
    state.status = MonitorStatus::Up;
    state.last_checked = checked.map(|ms| DateTime::<Utc>::from_timestamp_millis(ms).unwrap());
    LiveStatus {
        name: format!("site {id}"),
        url: "http://127.0.0.1:1/".into(),
        state,
        stale_since: None,
    }
}

#[tokio::test]
async fn contract_round_trip() {
    let prefix = TestPrefix::new();
    contract::entries_round_trip(&prefix.cache().await).await;
}

#[tokio::test]
async fn contract_older_never_overwrites_newer() {
    let prefix = TestPrefix::new();
    contract::older_never_overwrites_newer(&prefix.cache().await).await;
}

#[tokio::test]
async fn contract_stale_marks() {
    let prefix = TestPrefix::new();
    contract::stale_marks(&prefix.cache().await).await;
}

#[tokio::test]
async fn contract_many_at_once() {
    let prefix = TestPrefix::new();
    contract::many_at_once(&prefix.cache().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updaters_keep_the_newest() {
    let prefix = TestPrefix::new();
    let first = prefix.cache().await;
    let second = prefix.cache().await;
    contract::concurrent_writers_keep_newest(&first, &second).await;
}

/// Writers in separate tasks, each on its own pool, race one entry: whatever the interleaving,
/// the newest version is what stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_tasks_end_with_the_newest() {
    let prefix = TestPrefix::new();
    for _ in 0..5 {
        let id = Uuid::new_v4();
        let mut writers = Vec::new();
        for (start, step) in [(0_i64, 2_i64), (1, 2)] {
            let cache = prefix.cache().await;
            writers.push(tokio::spawn(async move {
                // Each writer sends its versions out of order: newer ones, then a redelivery
                // of something older.
                let mut v = start;
                while v <= 200 {
                    cache.put(&entry(id, Some(1_000 * v))).await.unwrap();
                    cache.put(&entry(id, Some(1_000 * (v / 3)))).await.unwrap();
                    v += step;
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let stored = prefix.cache().await.get(id).await.unwrap().unwrap();
        assert_eq!(
            stored.state.last_checked,
            DateTime::<Utc>::from_timestamp_millis(200_000)
        );
    }
}

#[tokio::test]
async fn list_returns_a_thousand_entries_sorted_by_id() {
    let prefix = TestPrefix::new();
    let cache = prefix.cache().await;
    let mut written: Vec<LiveStatus> = (0..1_000)
        .map(|i| entry(Uuid::new_v4(), Some(1_700_000_000_000 + i)))
        .collect();
    stream::iter(&written)
        .map(|e| cache.put(e))
        .buffer_unordered(32)
        .try_for_each(|accepted| async move {
            assert!(accepted);
            Ok(())
        })
        .await
        .unwrap();
    written.sort_by_key(LiveStatus::id);
    assert_eq!(cache.list().await.unwrap(), written);
}

#[tokio::test]
async fn another_instance_with_the_same_prefix_sees_the_entries() {
    let prefix = TestPrefix::new();
    let updater = prefix.cache().await;
    let id = Uuid::new_v4();
    let written = entry(id, Some(1_700_000_000_123));
    assert!(updater.put(&written).await.unwrap());

    let api = prefix.cache().await;
    assert_eq!(api.get(id).await.unwrap(), Some(written.clone()));
    assert_eq!(api.list().await.unwrap(), vec![written]);
    // What one instance forgets, the other no longer sees.
    api.remove(id).await.unwrap();
    assert_eq!(updater.get(id).await.unwrap(), None);

    let elsewhere = TestPrefix::new();
    assert!(updater.put(&entry(id, Some(5))).await.unwrap());
    let other = elsewhere.cache().await;
    assert_eq!(other.get(id).await.unwrap(), None);
    assert_eq!(other.list().await.unwrap(), vec![]);
    assert!(elsewhere.keys().await.is_empty());
}

/// The documented layout: one hash of JSON entries, one of checked times in milliseconds (`-1`
/// for never checked), and a sorted set of the ids; removing an entry clears all three.
#[tokio::test]
async fn entries_live_in_two_hashes_and_an_id_index_under_the_prefix() {
    let prefix = TestPrefix::new();
    let cache = prefix.cache().await;
    let (checked, unchecked) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(cache
        .put(&entry(checked, Some(1_700_000_000_456)))
        .await
        .unwrap());
    assert!(cache.put(&entry(unchecked, None)).await.unwrap());
    assert_eq!(
        prefix.keys().await,
        vec![
            format!("{}checked", prefix.0),
            format!("{}ids", prefix.0),
            format!("{}status", prefix.0)
        ]
    );

    let mut conn = raw_connection().await;
    let times: Vec<Option<i64>> = redis::cmd("HMGET")
        .arg(format!("{}checked", prefix.0))
        .arg(checked.to_string())
        .arg(unchecked.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(times, vec![Some(1_700_000_000_456), Some(-1)]);
    let json: String = redis::cmd("HGET")
        .arg(format!("{}status", prefix.0))
        .arg(checked.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<LiveStatus>(&json).unwrap(),
        entry(checked, Some(1_700_000_000_456))
    );
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{}ids", prefix.0))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut expected = vec![checked.to_string(), unchecked.to_string()];
    expected.sort();
    assert_eq!(ids, expected);

    cache.remove(checked).await.unwrap();
    cache.remove(unchecked).await.unwrap();
    assert!(prefix.keys().await.is_empty());
}

/// A malformed entry put there by something else is reported as such, not as an outage.
#[tokio::test]
async fn a_corrupt_entry_is_a_codec_error() {
    let prefix = TestPrefix::new();
    let cache = prefix.cache().await;
    let id = Uuid::new_v4();
    let mut conn = raw_connection().await;
    let _: () = redis::cmd("HSET")
        .arg(format!("{}status", prefix.0))
        .arg(id.to_string())
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(cache.get(id).await, Err(CacheError::Codec(_))));
    assert!(matches!(cache.list().await, Err(CacheError::Codec(_))));
}

/// A port nobody listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn connect_to_a_closed_port_fails_fast_without_showing_the_password() {
    let port = closed_port().await;
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        RedisCache::connect(&format!("redis://admin:hunter2@127.0.0.1:{port}/0"), "x:"),
    )
    .await
    .expect("connect gave up within 5 s");
    let Err(CacheError::Unavailable(message)) = result else {
        panic!("expected unavailable, got {result:?}");
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        message.contains(&format!("redis://127.0.0.1:{port}")),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!message.contains("admin"), "{message}");
    assert_eq!(message, message.to_lowercase(), "lower-case message");
    assert!(!message.ends_with('.'), "{message}");
}

#[tokio::test]
async fn an_invalid_url_is_unavailable_without_echoing_it() {
    let result = RedisCache::connect("http://admin:hunter2@127.0.0.1:6379", "x:").await;
    let Err(CacheError::Unavailable(message)) = result else {
        panic!("expected unavailable, got {result:?}");
    };
    assert!(!message.contains("hunter2"), "{message}");
}

/// A server that accepts connections but never answers: connecting gives up within 5 s.
#[tokio::test]
async fn connect_to_a_silent_server_fails_fast() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold connections without ever replying.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        RedisCache::connect(&format!("redis://{addr}"), "x:"),
    )
    .await
    .expect("connect gave up within 5 s");
    assert!(
        matches!(result, Err(CacheError::Unavailable(_))),
        "{result:?}"
    );
    silent.abort();
}

/// A fake Redis that answers every command (`PONG` to `PING`, `OK` otherwise) until `muted`,
/// then reads but never answers again.
async fn fake_redis(muted: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve_fake(socket, muted.clone()));
        }
    });
    addr
}

async fn serve_fake(socket: TcpStream, muted: Arc<AtomicBool>) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    loop {
        // One command: `*N` then N bulk strings `$len` + bytes.
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let count: usize = line.trim().trim_start_matches('*').parse().unwrap_or(0);
        let mut words = Vec::new();
        for _ in 0..count {
            line.clear();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let len: usize = line.trim().trim_start_matches('$').parse().unwrap_or(0);
            let mut word = vec![0; len + 2];
            if read.read_exact(&mut word).await.is_err() {
                return;
            }
            word.truncate(len);
            words.push(String::from_utf8_lossy(&word).to_uppercase());
        }
        if muted.load(Ordering::SeqCst) {
            continue;
        }
        let answer: &[u8] = if words.first().map(String::as_str) == Some("PING") {
            b"+PONG\r\n"
        } else {
            b"+OK\r\n"
        };
        if write.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// After connecting, a Redis that stops answering makes each call fail with `Unavailable`
/// within a few seconds rather than hang.
#[tokio::test]
async fn calls_to_a_server_that_stops_answering_fail_fast() {
    let muted = Arc::new(AtomicBool::new(false));
    let addr = fake_redis(muted.clone()).await;
    let cache = RedisCache::connect(&format!("redis://{addr}"), "x:")
        .await
        .unwrap();
    cache.ping().await.unwrap();
    muted.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(5), cache.get(Uuid::new_v4()))
        .await
        .expect("get gave up within 5 s");
    assert!(
        matches!(result, Err(CacheError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Entries written before the id index existed (both hashes, no index) are not paged until a
/// put indexes them; a put indexes its id even when it loses to a newer stored entry, which is
/// what the API's warm-up at start does for every monitor.
#[tokio::test]
async fn a_put_indexes_entries_written_before_the_index_existed() {
    let prefix = TestPrefix::new();
    let cache = prefix.cache().await;
    let id = Uuid::new_v4();
    let newer = entry(id, Some(1_700_000_009_000));
    let mut conn = raw_connection().await;
    redis::pipe()
        .hset(
            format!("{}status", prefix.0),
            id.to_string(),
            serde_json::to_string(&newer).unwrap(),
        )
        .hset(
            format!("{}checked", prefix.0),
            id.to_string(),
            1_700_000_009_000_i64,
        )
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(cache.page(None, 10).await.unwrap(), vec![]);

    assert!(!cache
        .put(&entry(id, Some(1_700_000_000_000)))
        .await
        .unwrap());
    assert_eq!(cache.page(None, 10).await.unwrap(), vec![newer]);
    cache.remove(id).await.unwrap();
    assert!(prefix.keys().await.is_empty());
}
