//! The watchdog in a real fleet: monitors nobody checks show `stale` (not down), the leader
//! scheduler says so in `/readyz`, `/metrics` and one Discord message per burst; and a new
//! monitor is checked at once rather than at its slot.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::target::TargetServer;
use uuid::Uuid;

use crate::fleet::{eventually, Api, Fleet, Proc, PARTITIONS};

/// The interval of the monitors of the stale test.
const INTERVAL_SECS: u64 = 10;
/// `UPWATCH_STALE_AFTER_INTERVALS`' default.
const STALE_AFTER_INTERVALS: u64 = 3;
/// Monitors of the stale test.
const MONITORS: usize = 6;
/// The title of the watchdog's message about unchecked monitors, as Discord shows it.
const UNCHECKED_TITLE: &str = "**⚠️ upwatch is not checking some monitors**";
/// The title of the watchdog's all-clear.
const CHECKED_AGAIN_TITLE: &str = "**✅ upwatch checks every monitor again**";

/// `/readyz`, `/metrics` of a process started with `--listen`.
struct Probe {
    base: String,
    client: reqwest::Client,
}

impl Probe {
    /// The status and body of `GET /readyz`.
    async fn readyz(&self) -> Option<(u16, String)> {
        let response = self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// The value of the gauge `upwatch_monitors_stale`.
    async fn monitors_stale(&self) -> Option<i64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("upwatch_monitors_stale "))
            .and_then(|v| v.trim().parse().ok())
    }
}

fn time_of(status: &Value, field: &str) -> Option<DateTime<Utc>> {
    status[field].as_str()?.parse().ok()
}

/// Each monitor's `GET /api/v1/sites/{id}/status`, in the order of `ids`.
async fn statuses(api: &Api, ids: &[Uuid]) -> Vec<Value> {
    let mut all = Vec::with_capacity(ids.len());
    for id in ids {
        all.push(api.status(*id).await);
    }
    all
}

async fn get_json(api: &Api, path: &str) -> Value {
    let response = api
        .client
        .get(format!("{}{path}", api.base))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// The items of a status listing that are not shown stale with both times, or the count if
/// it is not every monitor.
fn listing_not_stale(listing: &Value) -> Vec<String> {
    let items = listing["items"].as_array().cloned().unwrap_or_default();
    let mut wrong: Vec<String> = items
        .iter()
        .filter(|item| {
            item["status"] != "stale"
                || time_of(item, "stale_since").is_none()
                || time_of(item, "last_checked").is_none()
        })
        .map(Value::to_string)
        .collect();
    if items.len() != MONITORS {
        wrong.push(format!("{} items instead of {MONITORS}", items.len()));
    }
    wrong
}

fn contents(discord: &DiscordReceiver) -> Vec<String> {
    discord
        .messages()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// No message of the receiver is a monitor's down or recovery alert.
fn assert_no_monitor_alert(discord: &DiscordReceiver) {
    for content in contents(discord) {
        assert!(
            !content.contains("Website Down Alert") && !content.contains("Website Recovery Alert"),
            "an unchecked monitor is not down: {content}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_stopped_makes_monitors_stale_and_says_so_once() {
    let target = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    let mut alerter = fleet.spawn("alerter");
    let mut logger = fleet.spawn("logger");
    let mut cache_updater = fleet.spawn("cache-updater");
    let mut workers = [fleet.spawn("worker"), fleet.spawn("worker")];
    let mut scheduler = fleet.spawn_listening("scheduler");
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    let probe = Probe {
        base: format!("http://{}", scheduler.listen_addr().await),
        client: reqwest::Client::new(),
    };

    let mut ids = Vec::new();
    for i in 1..=MONITORS {
        ids.push(
            api.create_site(json!({
                "name": format!("watchdog-{i}"),
                "url": target.url("/ok"),
                "interval_seconds": INTERVAL_SECS,
            }))
            .await,
        );
    }
    eventually("every monitor to be up", || async {
        statuses(&api, &ids)
            .await
            .iter()
            .all(|s| s["status"] == "up")
            .then_some(())
    })
    .await;
    eventually("the scheduler to be ready", || async {
        (probe.readyz().await?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(probe.monitors_stale().await, Some(0));
    assert!(discord.messages().is_empty(), "{:?}", contents(&discord));

    // Nobody checks any more. A result already published still lands; none is made after.
    let before: Vec<DateTime<Utc>> = statuses(&api, &ids)
        .await
        .iter()
        .map(|s| time_of(s, "last_checked").expect("checked"))
        .collect();
    let stopped = Instant::now();
    for worker in &mut workers {
        worker.pause();
    }
    // No check starts from now until the workers are resumed.
    let stopped_at = Utc::now();
    let stale_within = Duration::from_secs(STALE_AFTER_INTERVALS * INTERVAL_SECS + 15);
    let stale = upwatch_testkit::wait::until(
        &format!("every monitor to show stale within {stale_within:?} of the stop"),
        stale_within.saturating_sub(stopped.elapsed()),
        Duration::from_millis(200),
        || async {
            let all = statuses(&api, &ids).await;
            all.iter().all(|s| s["status"] == "stale").then_some(all)
        },
    )
    .await;
    let time_to_stale = stopped.elapsed();
    eprintln!(
        "WATCHDOG time_to_stale_secs={:.1} monitors={MONITORS} interval_secs={INTERVAL_SECS}",
        time_to_stale.as_secs_f64()
    );
    let stale_after = chrono::Duration::seconds((STALE_AFTER_INTERVALS * INTERVAL_SECS) as i64);
    let mut last_checked = Vec::new();
    for ((status, before), id) in stale.iter().zip(&before).zip(&ids) {
        let checked = time_of(status, "last_checked").expect("last_checked is kept");
        let since = time_of(status, "stale_since").expect("stale_since is set");
        assert!(
            checked >= *before && checked <= stopped_at,
            "{id}: the last result ({checked}) is one from before the stop ({stopped_at})"
        );
        assert!(
            since - checked >= stale_after,
            "{id}: stale at {since}, only {} after its last result at {checked}",
            since - checked
        );
        last_checked.push(checked);
    }
    // The status listing shows the same, a page of it as well as the whole. The whole
    // listing's verdict is asserted at the end, so that the rest of the story runs anyway.
    let page = get_json(&api, "/api/v1/status?limit=100").await;
    assert_eq!(listing_not_stale(&page), Vec::<String>::new());
    let whole = listing_not_stale(&get_json(&api, "/api/v1/status").await);

    let count = format!(
        "{MONITORS} enabled monitors have had no result for {STALE_AFTER_INTERVALS} intervals"
    );
    let (code, body) = eventually("the scheduler to be not ready", || async {
        probe
            .readyz()
            .await
            .filter(|(code, body)| *code == 503 && body.contains(&count))
    })
    .await;
    eprintln!("readyz while stale: {code} {body}");
    eventually("upwatch_monitors_stale to count every monitor", || async {
        (probe.monitors_stale().await? == MONITORS as i64).then_some(())
    })
    .await;

    let messages = discord.wait_for_messages(1, Duration::from_secs(30)).await;
    let unchecked = messages[0]["content"].as_str().unwrap().to_string();
    let prefix = format!("{UNCHECKED_TITLE}\nupwatch has not checked ");
    assert!(unchecked.starts_with(&prefix), "{unchecked}");
    let (n, rest) = unchecked[prefix.len()..].split_once(' ').expect("a count");
    let n: usize = n.parse().expect("a count");
    assert!((1..=MONITORS).contains(&n), "{unchecked}");
    assert!(
        rest.starts_with(&format!(
            "{} for {STALE_AFTER_INTERVALS} intervals: watchdog-",
            if n == 1 { "monitor" } else { "monitors" }
        )),
        "{unchecked}"
    );
    eprintln!("WATCHDOG unchecked_message_counted={n}");
    // Nothing more while the burst lasts: a whole interval and more later, still one message,
    // every monitor still stale with the same last result.
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS + 2)).await;
    assert_eq!(
        contents(&discord),
        vec![unchecked.clone()],
        "one message for the burst"
    );
    let still = statuses(&api, &ids).await;
    for ((status, checked), id) in still.iter().zip(&last_checked).zip(&ids) {
        assert_eq!(status["status"], "stale", "{id}: {status}");
        assert_eq!(
            time_of(status, "last_checked"),
            Some(*checked),
            "{id}: last_checked unchanged"
        );
    }
    assert_no_monitor_alert(&discord);

    // Checks resume: up again, ready, nothing stale, one all-clear, no alert, no incident.
    let resumed_at = Utc::now();
    let resumed = Instant::now();
    for worker in &mut workers {
        worker.resume();
    }
    eventually("every monitor to be up again with a new result", || async {
        let all = statuses(&api, &ids).await;
        all.iter()
            .all(|s| {
                s["status"] == "up"
                    && s.get("stale_since").is_none()
                    && time_of(s, "last_checked").is_some_and(|at| at > stopped_at)
            })
            .then_some(())
    })
    .await;
    eprintln!(
        "WATCHDOG time_to_up_after_resume_secs={:.1}",
        resumed.elapsed().as_secs_f64()
    );
    eventually("the scheduler to be ready again", || async {
        (probe.readyz().await?.0 == 200).then_some(())
    })
    .await;
    eventually("upwatch_monitors_stale to be 0", || async {
        (probe.monitors_stale().await? == 0).then_some(())
    })
    .await;
    let messages = discord.wait_for_messages(2, Duration::from_secs(30)).await;
    let again = messages[1]["content"].as_str().unwrap().to_string();
    assert!(
        again.starts_with(&format!("{CHECKED_AGAIN_TITLE}\n")),
        "{again}"
    );
    // Each monitor checked once more after the all-clear: still two messages, no alert.
    eventually("a further check of every monitor", || async {
        let all = statuses(&api, &ids).await;
        all.iter()
            .all(|s| {
                s["status"] == "up"
                    && time_of(s, "last_checked").is_some_and(|at| {
                        at > resumed_at + chrono::Duration::seconds(INTERVAL_SECS as i64)
                    })
            })
            .then_some(())
    })
    .await;
    assert_eq!(
        contents(&discord),
        vec![unchecked, again],
        "one message when the burst began, one when it ended"
    );
    assert_no_monitor_alert(&discord);
    let incidents = get_json(&api, "/api/v1/incidents").await;
    assert_eq!(
        incidents["items"].as_array().map(Vec::len),
        Some(0),
        "no incident for monitors that were only unchecked: {incidents}"
    );

    assert_eq!(
        whole,
        Vec::<String>::new(),
        "GET /api/v1/status (no limit) while every monitor was stale: these items were not shown stale"
    );

    scheduler.stop();
    for worker in &mut workers {
        worker.stop();
    }
    for p in [&mut api_proc, &mut cache_updater, &mut logger, &mut alerter] {
        p.stop();
    }
    fleet.cleanup().await;
}

/// Waits until `proc`'s consumer holds every partition of its topic.
async fn holds_every_partition(proc: &Proc) {
    eventually(
        &format!("{} to hold every partition", proc.name),
        || async { (proc.assigned_partitions()?.len() == PARTITIONS as usize).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_300s_monitor_is_up_within_3_seconds() {
    let target = TargetServer::start().await;
    let mut fleet = Fleet::new(None).await;
    let mut logger = fleet.spawn("logger");
    let mut cache_updater = fleet.spawn("cache-updater");
    let mut worker = fleet.spawn("worker");
    let mut scheduler = fleet.spawn("scheduler");
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    holds_every_partition(&worker).await;
    holds_every_partition(&cache_updater).await;
    // A monitor seen up shows the scheduler has made its first load (whose monitors keep their
    // slots) and every role runs.
    let warm_up = api
        .create_site(json!({"url": target.url("/ok"), "interval_seconds": 1}))
        .await;
    eventually("the warm-up monitor to be up", || async {
        (api.status(warm_up).await["status"] == "up").then_some(())
    })
    .await;

    let id = api
        .create_site(json!({
            "name": "every five minutes",
            "url": target.url("/status/200"),
            "interval_seconds": 300,
        }))
        .await;
    let created = Instant::now();
    upwatch_testkit::wait::until(
        "the new 300 s monitor to be up within 3 s",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || async {
            let status = api.status(id).await;
            (status["status"] == "up" && status["last_checked"].is_string()).then_some(())
        },
    )
    .await;
    eprintln!(
        "NEW_MONITOR mode=distributed up_secs={:.3}",
        created.elapsed().as_secs_f64()
    );
    assert_eq!(target.hits("/status/200"), 1, "one check, not a burst");

    for p in [
        &mut scheduler,
        &mut worker,
        &mut api_proc,
        &mut cache_updater,
        &mut logger,
    ] {
        p.stop();
    }
    fleet.cleanup().await;
}
