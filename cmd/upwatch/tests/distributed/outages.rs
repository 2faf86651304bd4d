//! A dependency that goes away for a while (issue 16's outage suite), a fleet with 500
//! monitors at 2 s each time.
//!
//! PostgreSQL (a cluster the test owns) stopped for 30 s: every role that needs it says so in
//! `/readyz`, the API still answers live status from Redis, nothing alerts meanwhile, and
//! once it is back within 30 s results are stored again, the two sites that went down as it
//! went are alerted once each, and every result published is stored exactly once.
//!
//! The broker (a nisshi the test owns) paused for 30 s: every role's `/readyz` names it, the
//! API still answers live status, the worker's memory stays bounded (it stops taking jobs
//! rather than buffer results), and once it is back within 30 s results are stored again, no
//! monitor alerts (the watchdog says once that checks stopped and once that they are back),
//! and every result published is stored exactly once.
//!
//! Redis stopped for 30 s: The API answers live status from
//! PostgreSQL meanwhile and says in `/readyz` that the status cache is missing, as does the
//! cache updater; nothing exits, nothing alerts, the pipeline goes on storing, and once Redis
//! is back (empty, as a restarted Redis without persistence is) every monitor is in it again
//! with a fresh check within 30 s. At the end every result published is stored exactly once.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use upwatch_cache::StatusCache;
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::target::TargetServer;

use crate::fleet::{eventually, eventually_in, timed_out, Api, Fleet, Proc, DEADLINE};

const MONITORS: usize = 500;
const OUTAGE: Duration = Duration::from_secs(30);

/// A Redis server this test owns, on a free loopback port, keeping nothing on disk.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = free_port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port, empty, and waits until it answers.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (deploy/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn readyz(client: &reqwest::Client, base: &str) -> Option<(u16, String)> {
    let response = client.get(format!("{base}/readyz")).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

async fn rows(fleet: &Fleet) -> i64 {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&fleet.database_url)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM results")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn last_checked(status: &Value) -> Option<DateTime<Utc>> {
    status["last_checked"].as_str()?.parse().ok()
}

/// What the workers said they published, from their drain lines.
fn published(workers: &[&Proc]) -> u64 {
    workers
        .iter()
        .flat_map(|w| w.log().lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|l| l["message"] == "worker pool stopped")
        .filter_map(|l| l["results_published"].as_u64())
        .sum()
}

/// A free loopback port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` sites of `target` checked every 2 s, named `Site <i>`.
fn sites(target: &TargetServer, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"name": format!("Site {i}"), "url": target.url(&format!("/ok?{i}")),
                   "interval_seconds": 2})
        })
        .collect()
}

/// Creates `items` in one bulk request and waits until two results of each are stored;
/// returns their ids in order.
async fn create_and_wait(api: &Api, fleet: &Fleet, items: Vec<Value>) -> Vec<uuid::Uuid> {
    let n = items.len() as i64;
    let created = api
        .client
        .post(format!("{}/api/v1/sites/bulk", api.base))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let ids = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().parse().unwrap())
        .collect();
    eventually("two results of every monitor stored", || async {
        (rows(fleet).await >= 2 * n).then_some(())
    })
    .await;
    ids
}

/// Waits until every one of `bases` answers `/readyz` with 200.
async fn all_ready(client: &reqwest::Client, bases: &[String]) {
    eventually("every /readyz ready again", || async {
        for base in bases {
            if readyz(client, base).await?.0 != 200 {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// Every process still runs and none panicked.
fn assert_alive(procs: &mut [Proc]) {
    for p in procs.iter_mut() {
        assert!(p.running(), "{} exited during the outage", p.name);
        assert!(!p.log().contains("panicked"), "{} panicked", p.name);
    }
}

/// Stops the fleet (the worker is `procs[3]`) and checks that every result it published is
/// stored exactly once.
async fn stop_and_count(procs: &mut [Proc], fleet: &Fleet) {
    for p in procs.iter_mut().rev() {
        p.stop();
    }
    let published = published(&[&procs[3]]);
    assert!(published > 0);
    assert_eq!(
        rows(fleet).await as u64,
        published,
        "every result published is stored exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_for_30_s_loses_nothing_and_the_api_reads_postgresql() {
    let target = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let mut redis = OwnRedis::start();
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    fleet.set_env("REDIS_URL", &redis.url());
    let mut procs = [
        fleet.spawn("alerter"),
        fleet.spawn("logger"),
        fleet.spawn_listening("cache-updater"),
        fleet.spawn("worker"),
        fleet.spawn("scheduler"),
        fleet.spawn("api"),
    ];
    let api = Api::of(&procs[5]).await;
    let updater = format!("http://{}", procs[2].listen_addr().await);
    let ids = create_and_wait(&api, &fleet, sites(&target, MONITORS)).await;
    let first = ids[0];
    eventually("the first monitor up", || async {
        (api.status(first).await["status"] == "up").then_some(())
    })
    .await;

    redis.stop();
    let gone = Instant::now();
    let (code, body) = eventually("the API's /readyz to name the cache", || async {
        let (code, body) = readyz(&api.client, &api.base).await?;
        (code == 503).then_some((code, body))
    })
    .await;
    assert_eq!(code, 503);
    assert!(body.contains("status cache is unreachable"), "{body}");
    let (_, body) = eventually("the cache updater's /readyz to name the cache", || async {
        let (code, body) = readyz(&api.client, &updater).await?;
        (code == 503).then_some((code, body))
    })
    .await;
    assert!(body.contains("cache is unreachable"), "{body}");
    // Live status from PostgreSQL, still moving.
    let before = rows(&fleet).await;
    let seen = last_checked(&api.status(first).await).expect("a check time");
    eventually("live status from PostgreSQL with a newer check", || async {
        let status = api.status(first).await;
        (status["status"] == "up" && last_checked(&status)? > seen).then_some(())
    })
    .await;
    eventually("results stored while Redis is away", || async {
        (rows(&fleet).await >= before + MONITORS as i64).then_some(())
    })
    .await;
    let left = OUTAGE.saturating_sub(gone.elapsed());
    tokio::time::sleep(left).await; // the outage lasts its 30 s, whatever the checks above took

    redis.restart();
    let back = Utc::now();
    let cache = upwatch_cache_redis::RedisCache::connect(&redis.url(), &fleet.redis_prefix)
        .await
        .unwrap();
    let resumed = Instant::now();
    // The monitors whose entry is missing or not checked since Redis' return, and the oldest
    // check time among those entries.
    let behind = || async {
        let entries = cache.get_many(&ids).await.ok()?;
        let late: Vec<_> = ids
            .iter()
            .map(|id| entries.get(id).and_then(|e| e.state.last_checked))
            .filter(|checked| checked.is_none_or(|at| at < back))
            .collect();
        Some((late.len(), late.into_iter().flatten().min()))
    };
    let fresh = upwatch_testkit::wait::within(DEADLINE, Duration::from_millis(100), || async {
        (behind().await? == (0, None)).then_some(())
    })
    .await;
    if fresh.is_none() {
        let what = format!(
            "every monitor in Redis again, checked after its return at {back} (monitors \
             behind, oldest check among them: {:?})",
            behind().await
        );
        timed_out(&what, &mut procs);
    }
    eprintln!(
        "every entry fresh {:?} after Redis' return",
        resumed.elapsed()
    );
    assert!(
        resumed.elapsed() < Duration::from_secs(30),
        "the pipeline resumed within 30 s of Redis' return ({:?})",
        resumed.elapsed()
    );
    eventually("every /readyz ready again", || async {
        let a = readyz(&api.client, &api.base).await?.0;
        let u = readyz(&api.client, &updater).await?.0;
        (a == 200 && u == 200).then_some(())
    })
    .await;
    assert_eq!(api.status(first).await["status"], "up");
    assert_alive(&mut procs);
    assert!(
        discord.messages().is_empty(),
        "nothing alerts: {:?}",
        discord.messages()
    );

    stop_and_count(&mut procs, &fleet).await;
    fleet.cleanup().await;
}

/// A PostgreSQL cluster this test owns (`initdb` in a temporary directory, trust
/// authentication), on a free loopback port, so that it may be stopped and started again.
struct OwnPostgres {
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    running: bool,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (deploy/test.sh installs them)")
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").exists())
            .max()
            .expect("pg_ctl under /usr/lib/postgresql/*/bin");
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        // PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        assert!(
            !is_root() || status.is_ok_and(|s| s.success()),
            "chown the cluster's directory to postgres"
        );
        let mut pg = OwnPostgres {
            port,
            bin,
            dir,
            running: false,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.restart();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of PostgreSQL's programs, as `postgres` when this is root.
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&program);
            cmd
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).output().expect("PostgreSQL's programs run");
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts (again) on the same port, with what it stored, and waits until it answers.
    fn restart(&mut self) {
        let data = self.data();
        let log = self.dir.path().join("postgres.log").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        );
        self.running = true;
    }

    /// Stops at once, closing every connection (`pg_ctl stop -m fast`).
    fn stop(&mut self) {
        if self.running {
            let data = self.data();
            self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
            self.running = false;
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = Command::new(self.bin.join("pg_ctl"))
                .args(["-D", &data, "-m", "immediate", "stop"])
                .status();
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", &data, "-m", "immediate", "stop"])
                .status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// The bodies of the Discord messages received so far.
fn alert_texts(discord: &DiscordReceiver) -> Vec<String> {
    discord
        .messages()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_away_for_30_s_loses_no_result_and_no_alert() {
    let target = TargetServer::start().await;
    // Two sites that go down while PostgreSQL is away: their alerts must come once it is back,
    // once each.
    let flaky = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let mut pg = OwnPostgres::start();
    let mut fleet = Fleet::on_postgres(&pg.admin_url(), Some(&discord.url())).await;
    let mut procs = [
        fleet.spawn_listening("alerter"),
        fleet.spawn_listening("logger"),
        fleet.spawn_listening("cache-updater"),
        fleet.spawn("worker"),
        fleet.spawn_listening("scheduler"),
        fleet.spawn("api"),
    ];
    let api = Api::of(&procs[5]).await;
    let mut bases = vec![api.base.clone()];
    for i in [0, 1, 4] {
        bases.push(format!("http://{}", procs[i].listen_addr().await));
    }
    let mut items = sites(&target, MONITORS - 2);
    for i in 0..2 {
        items.push(json!({"name": format!("Flaky {i}"),
                          "url": flaky.url(&format!("/switch?{i}")), "interval_seconds": 2}));
    }
    let ids = create_and_wait(&api, &fleet, items).await;
    let first = ids[0];
    let flaky_ids = &ids[MONITORS - 2..];
    for id in [first, flaky_ids[0], flaky_ids[1]] {
        eventually("the monitors up", || async {
            (api.status(id).await["status"] == "up").then_some(())
        })
        .await;
    }

    // The flaky sites fail from just before the outage: their results meet the alerter as
    // the database goes.
    flaky.set_status(500);
    pg.stop();
    let gone = Instant::now();
    for base in &bases {
        let (_, body) = eventually("every role's /readyz to name the database", || async {
            let (code, body) = readyz(&api.client, base).await?;
            (code == 503).then_some((code, body))
        })
        .await;
        assert!(body.contains("database"), "{base}: {body}");
    }
    // Live status still answers, from Redis. (The scheduler pauses while it cannot hold its
    // election in the database, so that two schedulers never both emit: no check runs.)
    for _ in 0..3 {
        let status = api.status(first).await;
        assert_eq!(status["status"], "up", "{status}");
    }
    // So does the listing, without the uptime; after the reads above found the database
    // gone, at most one read at a time waits for its pool's timeout (5 s) to try it again.
    let listing = || async {
        let asked = Instant::now();
        let page = api.get("/api/v1/status?limit=10").await;
        (asked.elapsed(), page)
    };
    let (a, b, c) = tokio::join!(listing(), listing(), listing());
    let listings = [a, b, c];
    for (_, page) in &listings {
        assert_eq!(page["items"].as_array().map(Vec::len), Some(10), "{page}");
    }
    let quick = listings
        .iter()
        .filter(|(took, _)| *took < Duration::from_secs(2))
        .count();
    assert!(quick >= 2, "listings waited for the database: {listings:?}");
    let left = OUTAGE.saturating_sub(gone.elapsed());
    tokio::time::sleep(left).await; // the outage lasts its 30 s, whatever the checks above took
    assert!(
        discord.messages().is_empty(),
        "no alert goes out without the database: {:?}",
        alert_texts(&discord)
    );

    pg.restart();
    let resumed = Instant::now();
    let before = rows(&fleet).await;
    eventually_in("results stored again", &mut procs, || async {
        (rows(&fleet).await >= before + MONITORS as i64).then_some(())
    })
    .await;
    all_ready(&api.client, &bases).await;
    assert!(
        resumed.elapsed() < Duration::from_secs(30),
        "the pipeline resumed within 30 s of PostgreSQL's return ({:?})",
        resumed.elapsed()
    );
    let alerts = discord.wait_for_messages(2, DEADLINE).await;
    assert_eq!(alerts.len(), 2, "one down alert per flaky site");
    // A few more rounds of results through the alerter: still exactly those two.
    let now = rows(&fleet).await;
    eventually_in("two more rounds stored", &mut procs, || async {
        (rows(&fleet).await >= now + 2 * MONITORS as i64).then_some(())
    })
    .await;
    let texts = alert_texts(&discord);
    assert_eq!(texts.len(), 2, "no alert twice: {texts:?}");
    for i in 0..2 {
        assert_eq!(
            texts
                .iter()
                .filter(|t| t.contains("Down") && t.contains(&format!("Flaky {i}")))
                .count(),
            1,
            "{texts:?}"
        );
    }
    assert_alive(&mut procs);

    stop_and_count(&mut procs, &fleet).await;
    fleet.cleanup().await;
    drop(pg);
}

/// A nisshi broker this test owns, on a free loopback port, so that it may be paused.
struct OwnBroker {
    port: u16,
    child: Child,
}

impl OwnBroker {
    fn start() -> OwnBroker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new("nisshi")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://nisshi/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nisshi on the PATH (deploy/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nisshi did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnBroker { port, child }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} nisshi");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_gone_for_30_s_loses_nothing_and_the_workers_memory_stays_bounded() {
    let target = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let broker = OwnBroker::start();
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    fleet.set_env("KAFKA_BROKERS", &broker.address());
    let mut procs = [
        fleet.spawn_listening("alerter"),
        fleet.spawn_listening("logger"),
        fleet.spawn_listening("cache-updater"),
        fleet.spawn_listening("worker"),
        fleet.spawn_listening("scheduler"),
        fleet.spawn("api"),
    ];
    let api = Api::of(&procs[5]).await;
    let mut roles = Vec::new();
    for proc in &procs[..5] {
        roles.push(format!("http://{}", proc.listen_addr().await));
    }
    let ids = create_and_wait(&api, &fleet, sites(&target, MONITORS)).await;
    let first = ids[0];
    let rss_before = procs[3].rss_kib();

    // SIGSTOP: the broker's port still accepts connections but nothing answers, as a broker
    // that hangs or a network that drops packets. (Its storage is in memory, so a killed
    // broker would come back without its topics.)
    broker.signal("STOP");
    let gone = Instant::now();
    for base in &roles {
        let (_, body) = eventually("every role's /readyz to name the broker", || async {
            let (code, body) = readyz(&api.client, base).await?;
            (code == 503).then_some((code, body))
        })
        .await;
        assert!(body.contains("broker"), "{base}: {body}");
    }
    assert_eq!(
        api.status(first).await["status"],
        "up",
        "live status answers"
    );
    // The workers cannot publish: they stop taking jobs rather than buffer results.
    let mut rss_max = 0;
    while gone.elapsed() < OUTAGE {
        rss_max = rss_max.max(procs[3].rss_kib());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("worker RSS: {rss_before} KiB before the outage, {rss_max} KiB at most during it");
    assert!(
        rss_max <= rss_before + 32 * 1024,
        "the worker's memory stays bounded over the outage: {rss_before} KiB before, \
         {rss_max} KiB at most during it"
    );

    broker.signal("CONT");
    let resumed = Instant::now();
    let before = rows(&fleet).await;
    eventually_in("results stored again", &mut procs, || async {
        (rows(&fleet).await >= before + MONITORS as i64).then_some(())
    })
    .await;
    all_ready(&api.client, &roles).await;
    assert!(
        resumed.elapsed() < Duration::from_secs(30),
        "the pipeline resumed within 30 s of the broker's return ({:?})",
        resumed.elapsed()
    );
    assert_alive(&mut procs);
    // No monitor alerts; the watchdog says once that the monitors went unchecked, and once
    // that they are checked again.
    discord.wait_for_messages(2, DEADLINE).await;
    let texts = alert_texts(&discord);
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("Down") || t.contains("Recovery")),
        "no monitor alerts: {texts:?}"
    );
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("not checking"), "{texts:?}");
    assert!(texts[1].contains("checks every monitor again"), "{texts:?}");

    stop_and_count(&mut procs, &fleet).await;
    fleet.cleanup().await;
}
