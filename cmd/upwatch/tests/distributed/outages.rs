//! A dependency that goes away for a while (issue 16's outage suite, Redis first): a fleet
//! with 500 monitors at 2 s loses its Redis for 30 s. The API answers live status from
//! PostgreSQL meanwhile and says in `/readyz` that the status cache is missing, as does the
//! cache updater; nothing exits, nothing alerts, the pipeline goes on storing, and once Redis
//! is back (empty, as a restarted Redis without persistence is) every monitor is in it again
//! with a fresh check within 30 s. At the end every result published is stored exactly once.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use upwatch_cache::StatusCache;
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::target::TargetServer;

use crate::fleet::{eventually, Api, Fleet, Proc};

const MONITORS: usize = 500;
const OUTAGE: Duration = Duration::from_secs(30);

/// A Redis server this test owns, on a free loopback port, keeping nothing on disk.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
    let items: Vec<Value> = (0..MONITORS)
        .map(|i| {
            json!({"name": format!("Site {i}"), "url": target.url(&format!("/ok?{i}")),
                        "interval_seconds": 2})
        })
        .collect();
    let created = api
        .client
        .post(format!("{}/api/v1/sites/bulk", api.base))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let first: uuid::Uuid = created["items"][0]["id"].as_str().unwrap().parse().unwrap();
    eventually("two results of every monitor stored", || async {
        (rows(&fleet).await >= 2 * MONITORS as i64).then_some(())
    })
    .await;
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
    let ids: Vec<uuid::Uuid> = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let resumed = Instant::now();
    eventually(
        "every monitor in Redis again, checked after its return",
        || async {
            for id in &ids {
                let entry = cache.get(*id).await.ok()??;
                if entry.state.last_checked? < back {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
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
    for p in procs.iter_mut() {
        assert!(p.running(), "{} exited during the outage", p.name);
        assert!(!p.log().contains("panicked"), "{} panicked", p.name);
    }
    assert!(
        discord.messages().is_empty(),
        "nothing alerts: {:?}",
        discord.messages()
    );

    for p in procs.iter_mut().rev() {
        p.stop();
    }
    let published = published(&[&procs[3]]);
    assert!(published > 0);
    assert_eq!(
        rows(&fleet).await as u64,
        published,
        "every result published is stored exactly once"
    );
    fleet.cleanup().await;
}
