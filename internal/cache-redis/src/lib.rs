//! The Redis driver of the [`StatusCache`] port, the cache of the distributed mode: every
//! monitor's status in Redis, shared by the cache updaters that write it and the API
//! processes that read it.
//!
//! Layout, under a key prefix chosen by the deployment (so several installations or test runs
//! can share one Redis):
//!
//! - `{prefix}status`: a hash from monitor id to the [`LiveStatus`] as JSON;
//! - `{prefix}checked`: a hash from monitor id to the entry's `last_checked` in unix
//!   milliseconds, or `-1` when the monitor was never checked;
//! - `{prefix}ids`: a sorted set of the monitor ids, all with score 0, so that it is ordered by
//!   id (hyphenated lower-case ids sort as the ids do), for reading one page of entries without
//!   listing every id;
//! - `{prefix}stale`: a hash from monitor id to the time (unix milliseconds) the watchdog found
//!   it without a result for too long; read with the entries, cleared by the next result.
//!
//! Every operation is one round trip. A write is one Lua script that compares the stored
//! `checked` value with the new one and writes both fields only when the new entry is not older,
//! so a redelivered old result never replaces a newer status, even with several cache updaters
//! writing at once. Ages are compared in milliseconds: two results of one monitor less than a
//! millisecond apart count as the same age (checks of one monitor are seconds apart).
//!
//! Connections come from a deadpool pool whose manager wraps deadpool-redis's: a connection on
//! which an I/O error happened is dropped instead of going back into use, and an idle connection
//! is checked with a `PING` before reuse, so a busy API pays no extra round trip per request.
//! Every wait (for a free connection, for a new one, for an answer) is bounded by
//! [`TIMEOUT`], so an unreachable Redis makes calls fail fast with
//! [`CacheError::Unavailable`] instead of hanging.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool::managed::{self, Metrics, Pool, PoolError, RecycleError, RecycleResult, TimeoutType};
use deadpool::Runtime;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use uuid::Uuid;

use upwatch_cache::{CacheError, CacheResult, LiveStatus, StaleMark, StatusCache};

/// How long any step may take: waiting for a free pooled connection, opening a connection, or
/// waiting for Redis to answer a command.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// How many connections one process keeps open at most.
pub const POOL_SIZE: usize = 16;

/// An idle connection older than this is checked with a `PING` before it is reused; one used
/// more recently is reused as is (a broken one is dropped as soon as an error shows it).
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(10);

/// Writes both fields of each entry unless the stored one was checked more recently.
///
/// `KEYS[1]` is the status hash, `KEYS[2]` the checked hash, `KEYS[3]` the id index, `KEYS[4]`
/// the watchdog's stale marks; `ARGV` holds triples of monitor id, the entry as JSON and its
/// `last_checked` in unix milliseconds or `-1`. Returns, per entry, 1 when written, 0 when
/// the stored entry is newer. A newer check time (the monitor's next result) clears the
/// monitor's stale mark in the same step. The id is indexed either way, so that entries
/// written before the index existed are indexed by the API's warm-up at its next start.
const PUT_LUA: &str = r#"
local written = {}
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  local new = tonumber(ARGV[i + 2])
  redis.call('ZADD', KEYS[3], 0, id)
  local stored = -1
  local ok = 1
  local old = redis.call('HGET', KEYS[2], id)
  if old then
    stored = tonumber(old)
    if stored ~= -1 and (new == -1 or new < stored) then
      ok = 0
    end
  end
  if ok == 1 then
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('HSET', KEYS[2], id, ARGV[i + 2])
    if new > stored then
      redis.call('HDEL', KEYS[4], id)
    end
  end
  written[#written + 1] = ok
end
return written
"#;

/// Entries written per call of [`PUT_SCRIPT`], so that no script runs for long.
const PUTS_PER_CALL: usize = 500;

/// Sets stale marks whose check time is still the one judged.
///
/// `KEYS[1]` is the checked hash, `KEYS[2]` the stale marks; `ARGV` holds triples of monitor
/// id, the check time judged (unix milliseconds or `-1`) and the time the mark is for.
const MARK_LUA: &str = r#"
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i]) or '-1'
  if current == ARGV[i + 1] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
end
return 1
"#;

/// The mark script, loaded by hash like [`PUT_SCRIPT`].
static MARK_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(MARK_LUA));

/// Marks set or cleared per command, so that no script runs for long.
const MARKS_PER_CALL: usize = 1000;

/// The write script, loaded by hash (`EVALSHA`) and sent whole only when Redis lacks it.
static PUT_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(PUT_LUA));

/// A [`StatusCache`] in Redis, shared by every process configured with the same URL and prefix.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct RedisCache {
    pool: Pool<Manager>,
    /// The server's address without credentials, for messages.
    url: String,
    prefix: String,
    status_key: String,
    checked_key: String,
    ids_key: String,
    stale_key: String,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Opens a pool of connections to the Redis at `url` (`redis://[user:password@]host:port[/db]`)
    /// whose keys all start with `prefix`, and checks that Redis answers.
    ///
    /// Fails with [`CacheError::Unavailable`] within a few seconds when the URL is invalid or
    /// Redis cannot be reached; the message names the server without its credentials.
    pub async fn connect(url: &str, prefix: &str) -> CacheResult<RedisCache> {
        let info = url
            .into_connection_info()
            // The parser's message is not shown: it says little, and the URL may hold a password.
            .map_err(|_| {
                CacheError::Unavailable(
                    "invalid redis url, expected redis://[user:password@]host:port[/db]".to_owned(),
                )
            })?;
        let shown = redacted(&info.addr);
        let manager = Manager::new(info).map_err(|e| {
            CacheError::Unavailable(format!("invalid redis url {shown}: {}", describe(&e)))
        })?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .recycle_timeout(Some(TIMEOUT))
            .build()
            .map_err(|e| {
                CacheError::Unavailable(format!("could not build a redis pool for {shown}: {e}"))
            })?;
        let cache = RedisCache {
            pool,
            url: shown,
            prefix: prefix.to_owned(),
            status_key: format!("{prefix}status"),
            checked_key: format!("{prefix}checked"),
            ids_key: format!("{prefix}ids"),
            stale_key: format!("{prefix}stale"),
        };
        cache.ping().await.map_err(|e| match e {
            CacheError::Unavailable(why) => {
                CacheError::Unavailable(format!("could not reach {why}"))
            }
            other => other,
        })?;
        Ok(cache)
    }

    /// The key prefix this cache writes under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The server's address as shown in messages: scheme, host and port, never credentials.
    pub fn redacted_url(&self) -> &str {
        &self.url
    }

    /// A pooled connection, or why none could be had.
    async fn conn(&self) -> CacheResult<managed::Object<Manager>> {
        self.pool.get().await.map_err(|e| {
            let why = match e {
                PoolError::Timeout(TimeoutType::Wait) => {
                    format!("no free connection within {}s", TIMEOUT.as_secs())
                }
                PoolError::Timeout(TimeoutType::Create) => {
                    format!("no connection within {}s", TIMEOUT.as_secs())
                }
                PoolError::Timeout(TimeoutType::Recycle) => {
                    format!("no answer to a ping within {}s", TIMEOUT.as_secs())
                }
                PoolError::Backend(e) => describe(&e),
                PoolError::Closed => "the connection pool is closed".to_owned(),
                other => other.to_string(),
            };
            CacheError::Unavailable(format!("redis at {}: {why}", self.url))
        })
    }

    /// The error of a failed command.
    fn failed(&self, e: &RedisError) -> CacheError {
        CacheError::Unavailable(format!("redis at {}: {}", self.url, describe(e)))
    }
}

#[async_trait]
impl StatusCache for RedisCache {
    async fn ping(&self) -> CacheResult<()> {
        let mut conn = self.conn().await?;
        let answer: String = redis::cmd("PING")
            .query_async(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(CacheError::Unavailable(format!(
                "redis at {}: unexpected answer to ping",
                self.url
            )))
        }
    }

    async fn get(&self, id: Uuid) -> CacheResult<Option<LiveStatus>> {
        let mut conn = self.conn().await?;
        let (json, stale): (Option<String>, Option<i64>) = redis::pipe()
            .hget(&self.status_key, id.to_string())
            .hget(&self.stale_key, id.to_string())
            .query_async(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))?;
        drop(conn);
        json.map(|json| decode(&json, stale)).transpose()
    }

    /// Two `HMGET`s in one pipeline, whatever the number of ids.
    async fn get_many(&self, ids: &[Uuid]) -> CacheResult<HashMap<Uuid, LiveStatus>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let fields: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let mut conn = self.conn().await?;
        let (jsons, stales): (Vec<Option<String>>, Vec<Option<i64>>) = redis::pipe()
            .cmd("HMGET")
            .arg(&self.status_key)
            .arg(&fields)
            .cmd("HMGET")
            .arg(&self.stale_key)
            .arg(&fields)
            .query_async(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))?;
        drop(conn);
        let mut found = HashMap::with_capacity(ids.len());
        for ((id, json), stale) in ids.iter().zip(jsons).zip(stales) {
            if let Some(json) = json {
                found.insert(*id, decode(&json, stale)?);
            }
        }
        Ok(found)
    }

    async fn list(&self) -> CacheResult<Vec<LiveStatus>> {
        let mut conn = self.conn().await?;
        let (fields, stale): (Vec<(String, String)>, HashMap<String, i64>) = redis::pipe()
            .hgetall(&self.status_key)
            .hgetall(&self.stale_key)
            .query_async(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))?;
        drop(conn);
        let mut entries = fields
            .iter()
            .map(|(id, json)| decode(json, stale.get(id).copied()))
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(LiveStatus::id);
        Ok(entries)
    }

    /// The page's ids come from the sorted id index (`ZRANGEBYLEX`), then only the page's
    /// entries are read and decoded: two round trips, whatever the number of monitors.
    async fn page(&self, after: Option<Uuid>, limit: usize) -> CacheResult<Vec<LiveStatus>> {
        let mut conn = self.conn().await?;
        let from = after.map_or_else(|| "-".to_owned(), |after| format!("({after}"));
        let wanted: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(&self.ids_key)
            .arg(from)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            // Redis takes a signed 64-bit count: "every entry" (usize::MAX) is capped to it.
            .arg(limit.min(i64::MAX as usize))
            .query_async(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))?;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let (values, stale): (Vec<Option<String>>, Vec<Option<i64>>) = redis::pipe()
            .cmd("HMGET")
            .arg(&self.status_key)
            .arg(&wanted)
            .cmd("HMGET")
            .arg(&self.stale_key)
            .arg(&wanted)
            .query_async(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))?;
        drop(conn);
        // An entry removed between the two commands is simply left out.
        values
            .into_iter()
            .zip(stale)
            .filter_map(|(json, stale)| json.map(|json| decode(&json, stale)))
            .collect()
    }

    async fn put(&self, entry: &LiveStatus) -> CacheResult<bool> {
        Ok(self.put_many(std::slice::from_ref(entry)).await?[0])
    }

    /// One script call per [`PUTS_PER_CALL`] entries; each entry is judged on its own, as by
    /// [`StatusCache::put`].
    async fn put_many(&self, entries: &[LiveStatus]) -> CacheResult<Vec<bool>> {
        let mut written = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(PUTS_PER_CALL) {
            let mut invocation = PUT_SCRIPT.prepare_invoke();
            invocation
                .key(&self.status_key)
                .key(&self.checked_key)
                .key(&self.ids_key)
                .key(&self.stale_key);
            for entry in chunk {
                let checked_ms = entry
                    .state
                    .last_checked
                    .map_or(-1, |at| at.timestamp_millis());
                invocation
                    .arg(entry.id().to_string())
                    .arg(serde_json::to_string(entry)?)
                    .arg(checked_ms);
            }
            let mut conn = self.conn().await?;
            let answers: Vec<i64> = invocation
                .invoke_async(&mut *conn)
                .await
                .map_err(|e| self.failed(&e))?;
            written.extend(answers.into_iter().map(|w| w == 1));
        }
        Ok(written)
    }

    async fn remove(&self, id: Uuid) -> CacheResult<()> {
        let id = id.to_string();
        let mut conn = self.conn().await?;
        redis::pipe()
            .atomic()
            .hdel(&self.status_key, &id)
            .ignore()
            .hdel(&self.checked_key, &id)
            .ignore()
            .zrem(&self.ids_key, &id)
            .ignore()
            .hdel(&self.stale_key, &id)
            .ignore()
            .query_async::<()>(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))
    }

    async fn check_times(&self) -> CacheResult<HashMap<Uuid, Option<DateTime<Utc>>>> {
        let mut conn = self.conn().await?;
        let fields: Vec<(String, i64)> = redis::cmd("HGETALL")
            .arg(&self.checked_key)
            .query_async(&mut *conn)
            .await
            .map_err(|e| self.failed(&e))?;
        drop(conn);
        Ok(fields
            .into_iter()
            .filter_map(|(id, ms)| {
                let id = Uuid::parse_str(&id).ok()?;
                Some((id, (ms >= 0).then(|| millis(ms)).flatten()))
            })
            .collect())
    }

    async fn set_stale(&self, marks: &[StaleMark], cleared: &[Uuid]) -> CacheResult<()> {
        let mut conn = self.conn().await?;
        for chunk in cleared.chunks(MARKS_PER_CALL) {
            redis::cmd("HDEL")
                .arg(&self.stale_key)
                .arg(chunk.iter().map(Uuid::to_string).collect::<Vec<_>>())
                .query_async::<()>(&mut *conn)
                .await
                .map_err(|e| self.failed(&e))?;
        }
        for chunk in marks.chunks(MARKS_PER_CALL) {
            let mut call = MARK_SCRIPT.key(&self.checked_key);
            call.key(&self.stale_key);
            for mark in chunk {
                call.arg(mark.monitor_id.to_string())
                    .arg(mark.seen.map_or(-1, |at| at.timestamp_millis()))
                    .arg(mark.since.timestamp_millis());
            }
            call.invoke_async::<()>(&mut *conn)
                .await
                .map_err(|e| self.failed(&e))?;
        }
        Ok(())
    }
}

/// An entry as stored, with the watchdog's mark (unix milliseconds) filled in.
fn decode(json: &str, stale_ms: Option<i64>) -> CacheResult<LiveStatus> {
    let mut entry: LiveStatus = serde_json::from_str(json)?;
    entry.stale_since = stale_ms.and_then(millis);
    Ok(entry)
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// The address of a server as shown to people: scheme, host and port (or socket path).
fn redacted(addr: &ConnectionAddr) -> String {
    match addr {
        ConnectionAddr::Tcp(..) => format!("redis://{addr}"),
        ConnectionAddr::TcpTls { .. } => format!("rediss://{addr}"),
        ConnectionAddr::Unix(_) => format!("redis+unix://{addr}"),
    }
}

/// A Redis error as a short lower-case phrase.
fn describe(e: &RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_connection_dropped() {
        "connection closed".to_owned()
    } else {
        let text = e.to_string();
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => "unknown error".to_owned(),
        }
    }
}

/// Whether an error leaves a connection unfit for reuse: anything that went wrong on the wire,
/// as opposed to an error reply from Redis.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_unrecoverable_error()
}

/// A pooled connection that remembers whether an error broke it.
struct TrackedConnection {
    inner: MultiplexedConnection,
    broken: bool,
}

impl TrackedConnection {
    /// Notes a failed command's error.
    fn note<T>(&mut self, result: &Result<T, RedisError>) {
        if let Err(e) = result {
            if breaks_connection(e) && !self.broken {
                tracing::debug!(error = %e, "dropping a broken redis connection");
                self.broken = true;
            }
        }
    }
}

impl ConnectionLike for TrackedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.inner.req_packed_command(cmd).await;
            self.note(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.inner.req_packed_commands(cmd, offset, count).await;
            self.note(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// Opens connections with a response timeout and keeps broken ones out of the pool.
struct Manager {
    inner: deadpool_redis::Manager,
}

impl Manager {
    fn new(info: redis::ConnectionInfo) -> redis::RedisResult<Self> {
        Ok(Manager {
            inner: deadpool_redis::Manager::new(info)?,
        })
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl managed::Manager for Manager {
    type Type = TrackedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<TrackedConnection, RedisError> {
        let mut inner = managed::Manager::create(&self.inner).await?;
        inner.set_response_timeout(TIMEOUT);
        Ok(TrackedConnection {
            inner,
            broken: false,
        })
    }

    async fn recycle(
        &self,
        conn: &mut TrackedConnection,
        metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        if conn.broken {
            return Err(RecycleError::message("the connection broke"));
        }
        if metrics.last_used() < IDLE_CHECK_AFTER {
            return Ok(());
        }
        let result = managed::Manager::recycle(&self.inner, &mut conn.inner, metrics).await;
        if result.is_err() {
            conn.broken = true;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_never_show_credentials() {
        let info = "redis://user:hunter2@cache.example:6380/3"
            .into_connection_info()
            .unwrap();
        assert_eq!(redacted(&info.addr), "redis://cache.example:6380");
        let info = "redis://:hunter2@127.0.0.1".into_connection_info().unwrap();
        assert_eq!(redacted(&info.addr), "redis://127.0.0.1:6379");
    }

    #[test]
    fn io_errors_break_connections_and_error_replies_do_not() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(breaks_connection(&io));
        let timeout = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(breaks_connection(&timeout));
        let reply = RedisError::from((redis::ErrorKind::TypeError, "wrong type"));
        assert!(!breaks_connection(&reply));
    }

    /// A connection that Redis closed is not handed out again: after at most one failed call,
    /// the next one gets a fresh connection.
    #[tokio::test]
    async fn a_connection_killed_by_the_server_is_replaced() {
        let url = std::env::var("UPWATCH_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let prefix = format!("upwatch-test:{}:", Uuid::new_v4());
        let cache = RedisCache::connect(&url, &prefix).await.unwrap();
        let id: i64 = {
            let mut conn = cache.pool.get().await.unwrap();
            redis::cmd("CLIENT")
                .arg("ID")
                .query_async(&mut *conn)
                .await
                .unwrap()
        };
        assert_eq!(cache.pool.status().size, 1, "one pooled connection");
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut killer = client.get_multiplexed_async_connection().await.unwrap();
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut killer)
            .await
            .unwrap();
        assert_eq!(killed, 1);
        match cache.get(Uuid::new_v4()).await {
            Ok(None) | Err(CacheError::Unavailable(_)) => {}
            other => panic!("unexpected answer on a killed connection: {other:?}"),
        }
        assert_eq!(cache.get(Uuid::new_v4()).await.unwrap(), None);
        cache.ping().await.unwrap();
    }
}
