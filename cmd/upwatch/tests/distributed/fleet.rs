//! A fleet of `upwatch` processes sharing one fresh database, topic pair and key prefix.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

/// How long a test waits for a condition before failing. Consumer groups take seconds to
/// rebalance, so this is generous.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Partitions of each topic of a test's fleet (`UPWATCH_KAFKA_PARTITIONS`).
pub const PARTITIONS: i32 = 3;

/// The environment of a role whose log must show its consumer group's joins: librdkafka's
/// `cgrp` debug messages, forwarded by the Kafka bus at debug level (`librdkafka=debug` makes
/// the rdkafka crate pass librdkafka's debug level on at all).
pub const GROUP_DEBUG_ENV: &[(&str, &str)] = &[
    ("UPWATCH_KAFKA_PROPERTIES", "debug=cgrp"),
    (
        "UPWATCH_LOG",
        "info,upwatch_notify=debug,upwatch_bus=debug,librdkafka=debug",
    ),
];

fn service(var: &str, default: Option<&str>) -> String {
    match (std::env::var(var), default) {
        (Ok(v), _) => v,
        (Err(_), Some(d)) => d.to_string(),
        (Err(_), None) => panic!("{var} is not set: run the tests with `bash deploy/test.sh`, which starts the Kafka-protocol broker"),
    }
}

/// One running `upwatch` process.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times this process has lost partitions in a rebalance.
    pub fn revocations(&self) -> usize {
        self.log().matches("kafka partitions revoked").count()
    }

    /// The partitions of the last "kafka partitions assigned" line (a role with one
    /// subscription, such as a worker: the whole assignment of the eager rebalance protocol).
    pub fn assigned_partitions(&self) -> Option<Vec<i32>> {
        let log = self.log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("\"kafka partitions assigned\""))?;
        let fields: Value = serde_json::from_str(line).ok()?;
        let listed = fields["partitions"].as_str()?; // `?partitions`: "[0, 2]"
        listed
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().ok())
            .collect()
    }

    /// The generation of the last group join librdkafka reported, and whether this member was
    /// its leader. Needs [`GROUP_DEBUG_ENV`]: librdkafka's debug line "JoinGroup response:
    /// GenerationId G, Protocol P, LeaderId L (me), my MemberId M, ..." names the leader the
    /// broker chose, with "(me)" in the leader's own log.
    pub fn group_join(&self) -> Option<(i64, bool)> {
        let log = self.log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("JoinGroup response: GenerationId "))?;
        let after = line.split("JoinGroup response: GenerationId ").nth(1)?;
        let generation = after.split(',').next()?.trim().parse().ok()?;
        Some((generation, after.contains(" (me), my MemberId ")))
    }

    /// Whether the process is still running (it has not exited, or been killed).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`, ...) with `kill`.
    fn signal(&self, signal: &str) -> std::process::ExitStatus {
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
    }

    /// SIGSTOP: the process stays, but does nothing at all (no heartbeat, no check). Dropping
    /// it still ends it (SIGKILL ends a stopped process too).
    pub fn pause(&mut self) {
        let status = self.signal("STOP");
        assert!(status.success(), "kill -STOP {}: {status}", self.name);
    }

    /// Its resident memory in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// SIGCONT: a paused process goes on.
    pub fn resume(&mut self) {
        let status = self.signal("CONT");
        assert!(status.success(), "kill -CONT {}: {status}", self.name);
    }

    /// `kill -9`: no drain, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) {
        let _ = self.signal("TERM");
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.log()
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not stop after SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One line on how the process is: running or exited, its last warning and its last line
    /// (each cut short), for a failure message that must say why before any log tail.
    pub fn summary(&mut self) -> String {
        let state = match self.child.try_wait() {
            Ok(None) => "running".to_string(),
            Ok(Some(status)) => format!("EXITED ({status})"),
            Err(e) => format!("unknown ({e})"),
        };
        let log = self.log();
        let cut = |line: &str| line.chars().take(300).collect::<String>();
        let warning = log
            .lines()
            .rev()
            .find(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
            .map(cut)
            .unwrap_or_default();
        let last = log.lines().last().map(cut).unwrap_or_default();
        format!(
            "{}: {state}; last warning: {warning}; last line: {last}",
            self.name
        )
    }

    /// The address in the process's "upwatch is running" log line.
    pub async fn listen_addr(&self) -> String {
        let line = eventually(&format!("{} to start", self.name), || async {
            self.log()
                .lines()
                .find(|l| l.contains("upwatch is running"))
                .map(str::to_string)
        })
        .await;
        let log: Value = serde_json::from_str(&line).unwrap();
        log["listen"]
            .as_str()
            .expect("a listen address")
            .to_string()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // A failed test shows what each process said last.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.name);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The shared configuration of one test's fleet and the processes it started.
pub struct Fleet {
    env: HashMap<String, String>,
    pub database_url: String,
    admin_url: String,
    database: String,
    pub redis_url: String,
    pub redis_prefix: String,
    dir: tempfile::TempDir,
    counter: usize,
}

impl Fleet {
    /// A fresh database (migrated with `upwatch migrate`), fresh topics, groups and prefix.
    pub async fn new(discord_url: Option<&str>) -> Fleet {
        let admin_url = service(
            "UPWATCH_TEST_DATABASE_URL",
            Some("postgres://postgres:postgres@127.0.0.1:5432/postgres"),
        );
        Fleet::on_postgres(&admin_url, discord_url).await
    }

    /// As [`Fleet::new`], with its database created through `admin_url` (a PostgreSQL the
    /// test owns, say).
    pub async fn on_postgres(admin_url: &str, discord_url: Option<&str>) -> Fleet {
        let admin_url = admin_url.to_string();
        let redis_url = service("UPWATCH_TEST_REDIS_URL", Some("redis://127.0.0.1:6379"));
        let brokers = service("UPWATCH_TEST_KAFKA_BROKERS", None);
        let tag = Uuid::new_v4().simple().to_string();
        let database = format!("upwatch_e2e_{tag}");
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .expect("PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let database_url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{database}"),
            None => panic!("UPWATCH_TEST_DATABASE_URL must end with a database name"),
        };
        let redis_prefix = format!("upwatch-e2e:{tag}:");
        let mut env = HashMap::from([
            ("DATABASE_URL".to_string(), database_url.clone()),
            ("KAFKA_BROKERS".into(), brokers),
            ("UPWATCH_KAFKA_JOBS_TOPIC".into(), format!("e2e.{tag}.jobs")),
            (
                "UPWATCH_KAFKA_RESULTS_TOPIC".into(),
                format!("e2e.{tag}.results"),
            ),
            ("UPWATCH_KAFKA_PARTITIONS".into(), PARTITIONS.to_string()),
            ("UPWATCH_KAFKA_GROUP_PREFIX".into(), format!("e2e-{tag}-")),
            ("REDIS_URL".into(), redis_url.clone()),
            ("UPWATCH_REDIS_PREFIX".into(), redis_prefix.clone()),
            ("UPWATCH_LOGGER_BATCH_MS".into(), "50".into()),
            ("UPWATCH_ALERTER_BATCH_MS".into(), "50".into()),
            ("UPWATCH_SCHEDULER_RELOAD_MS".into(), "200".into()),
            ("UPWATCH_DRAIN_TIMEOUT_SECONDS".into(), "10".into()),
            ("UPWATCH_LOG".into(), "info,upwatch_notify=debug".into()),
        ]);
        if let Some(url) = discord_url {
            env.insert("DISCORD_WEBHOOK_URL".into(), url.to_string());
        }
        let fleet = Fleet {
            env,
            database_url,
            admin_url,
            database,
            redis_url,
            redis_prefix,
            dir: tempfile::tempdir().unwrap(),
            counter: 0,
        };
        let out = fleet.command("migrate").output().unwrap();
        assert!(
            out.status.success(),
            "upwatch migrate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fleet
    }

    fn command(&self, role: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_upwatch"));
        for (key, _) in std::env::vars() {
            if key.starts_with("UPWATCH_")
                || [
                    "DATABASE_URL",
                    "DISCORD_WEBHOOK_URL",
                    "SITES_TO_MONITOR",
                    "KAFKA_BROKERS",
                    "REDIS_URL",
                ]
                .contains(&key.as_str())
            {
                cmd.env_remove(key);
            }
        }
        cmd.envs(&self.env)
            .arg("--log-format")
            .arg("json")
            .arg(role);
        cmd
    }

    /// Starts `upwatch <role>`; the API and roles given `--listen` bind a free port.
    pub fn spawn(&mut self, role: &str) -> Proc {
        self.spawn_with(role, &[])
    }

    /// One process of every role, the API last (so `procs.last()` is the API), the workers
    /// with `worker_env` over the fleet's environment.
    pub fn spawn_every_role(&mut self, worker_env: &[(&str, &str)]) -> [Proc; 6] {
        [
            self.spawn("alerter"),
            self.spawn("logger"),
            self.spawn("cache-updater"),
            self.spawn_with("worker", worker_env),
            self.spawn("scheduler"),
            self.spawn("api"),
        ]
    }

    /// Starts `upwatch <role> --listen` on a free port, for its `/readyz` and `/metrics`.
    pub fn spawn_listening(&mut self, role: &str) -> Proc {
        self.spawn_process(role, &[], true)
    }

    /// Starts `upwatch <role> --listen` on a free port with `env` over the fleet's environment.
    pub fn spawn_listening_with(&mut self, role: &str, env: &[(&str, &str)]) -> Proc {
        self.spawn_process(role, env, true)
    }

    /// Sets `key` for every process started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), value.to_string());
    }

    /// Starts `upwatch <role>` with `env` over the fleet's environment.
    pub fn spawn_with(&mut self, role: &str, env: &[(&str, &str)]) -> Proc {
        self.spawn_process(role, env, role == "api" || role == "serve")
    }

    fn spawn_process(&mut self, role: &str, env: &[(&str, &str)], listen: bool) -> Proc {
        self.counter += 1;
        let name = format!("{role}#{}", self.counter);
        let log = self.dir.path().join(format!("{name}.log"));
        let file = File::create(&log).unwrap();
        let mut cmd = self.command(role);
        cmd.envs(env.iter().copied());
        if listen {
            cmd.arg("--listen").arg("127.0.0.1:0");
        }
        let child = cmd
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Proc { name, child, log }
    }

    /// A store on the fleet's database, to look at what the fleet wrote.
    pub async fn store(&self) -> upwatch_store_sql::PostgresStore {
        upwatch_store_sql::PostgresStore::connect(&self.database_url)
            .await
            .unwrap()
    }

    /// A cache reader on the fleet's Redis prefix.
    pub async fn cache(&self) -> upwatch_cache_redis::RedisCache {
        upwatch_cache_redis::RedisCache::connect(&self.redis_url, &self.redis_prefix)
            .await
            .unwrap()
    }

    /// Drops the test database (best effort; processes must be gone). Dropping the fleet does
    /// the same, so that a test that fails leaves no database behind either.
    pub async fn cleanup(self) {
        drop(self);
    }
}

impl Drop for Fleet {
    /// Drops the test database, also when a test panics (unwinding runs this).
    fn drop(&mut self) {
        upwatch_testkit::postgres::drop_database_blocking(&self.admin_url, &self.database);
    }
}

/// After a group member was killed, waits until the broker has noticed (it expired the dead
/// member's session and made a survivor of the group rebalance) and starts a replacement, as
/// systemd's `Restart=` would after its delay.
pub async fn replace_after_eviction(
    fleet: &mut Fleet,
    survivor: &Proc,
    revocations_before: usize,
    role: &str,
) -> Proc {
    eventually(
        &format!("the broker to notice the killed {role}"),
        || async { (survivor.revocations() > revocations_before).then_some(()) },
    )
    .await;
    fleet.spawn(role)
}

/// Waits until `condition` returns `Some`, polling every 100 ms, failing after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    upwatch_testkit::wait::until(what, DEADLINE, Duration::from_millis(100), condition).await
}

/// [`eventually`], but a timeout's message says how each of `procs` is first, so that a
/// failure in CI, whose output may be cut, still says which process stopped doing its part.
pub async fn eventually_in<T, F, Fut>(what: &str, procs: &mut [Proc], condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match upwatch_testkit::wait::within(DEADLINE, Duration::from_millis(100), condition).await {
        Some(value) => value,
        None => timed_out(what, procs),
    }
}

/// The panic of a wait for `what` that timed out: how each of `procs` is first (running or
/// exited, its last warning, its last line).
pub fn timed_out(what: &str, procs: &mut [Proc]) -> ! {
    let how: Vec<String> = procs.iter_mut().map(Proc::summary).collect();
    panic!(
        "timed out after {DEADLINE:?} waiting for {what}; the processes:\n{}",
        how.join("\n")
    )
}

/// A client of one API process.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub async fn of(proc: &Proc) -> Api {
        Api {
            base: format!("http://{}", proc.listen_addr().await),
            client: reqwest::Client::new(),
        }
    }

    /// Creates a monitor and returns its id.
    pub async fn create_site(&self, body: Value) -> Uuid {
        let response = self
            .client
            .post(format!("{}/api/v1/sites", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        created["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn status(&self, id: Uuid) -> Value {
        self.get(&format!("/api/v1/sites/{id}/status")).await
    }

    /// The JSON answer of a `GET` of `path`.
    pub async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The partition librdkafka's default partitioner (`consistent_random`: CRC-32 of the key,
/// modulo the partition count) gives to the messages of monitor `id`, which the scheduler keys
/// by the id's hyphenated lower-case text.
pub fn partition_of(id: Uuid) -> i32 {
    (crc32(id.hyphenated().to_string().as_bytes()) % PARTITIONS as u32) as i32
}

/// CRC-32 (IEEE, zlib's), the hash of librdkafka's `consistent_random` partitioner.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Number of stored results of `id`.
pub async fn stored(store: &dyn upwatch_store::Store, id: Uuid) -> usize {
    let query = upwatch_store::HistoryQuery {
        limit: 100_000,
        ..Default::default()
    };
    store
        .history(id, &query)
        .await
        .map(|h| h.len())
        .unwrap_or(0)
}

/// When the first stored result of `id` checked at or after `since` was checked.
pub async fn first_checked_since(
    store: &dyn upwatch_store::Store,
    id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let query = upwatch_store::HistoryQuery {
        since: Some(since),
        limit: 100_000,
        ..Default::default()
    };
    let history = store.history(id, &query).await.ok()?;
    history.iter().map(|entry| entry.checked_at).min()
}

#[test]
fn crc32_is_zlibs() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the standard check value");
    assert_eq!(crc32(b""), 0);
}
