//! Faults: processes killed or restarted mid-stream lose nothing and duplicate nothing.

use std::time::Duration;

use serde_json::json;
use upwatch_testkit::discord::{DiscordReceiver, Reply};
use upwatch_testkit::target::TargetServer;
use uuid::Uuid;

use crate::fleet::{eventually, replace_after_eviction, stored, Api, Fleet};

async fn total_stored(store: &dyn upwatch_store::Store, ids: &[Uuid]) -> usize {
    let mut n = 0;
    for id in ids {
        n += stored(store, *id).await;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_go_on_when_one_of_two_workers_is_killed() {
    let target = TargetServer::start().await;
    let mut fleet = Fleet::new(None).await;
    let mut logger = fleet.spawn("logger");
    let mut first = fleet.spawn("worker");
    let mut second = fleet.spawn("worker");
    let mut scheduler = fleet.spawn("scheduler");
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(
            api.create_site(json!({"url": target.url("/slow/100"), "interval_seconds": 1}))
                .await,
        );
    }
    eventually("both workers to check", || async {
        (first.log().contains("kafka partitions assigned")
            && second.log().contains("kafka partitions assigned")
            && target.hits("/slow/100") >= 12)
            .then_some(())
    })
    .await;
    let revocations = second.revocations();
    first.kill9();
    // Once the broker has noticed, a replacement joins (as systemd's `Restart=` would) and
    // every monitor is checked again, whichever worker's partitions it was on. (How many
    // monitors the survivor alone keeps checking depends on how their keys hash to
    // partitions, so it is not asserted.)
    let mut replacement = replace_after_eviction(&mut fleet, &second, revocations, "worker").await;
    let store = fleet.store().await;
    for id in &ids {
        let before = stored(&store, *id).await;
        eventually("each monitor to keep getting results", || async {
            (stored(&store, *id).await > before).then_some(())
        })
        .await;
    }
    for p in [
        &mut scheduler,
        &mut second,
        &mut replacement,
        &mut logger,
        &mut api_proc,
    ] {
        p.stop();
    }
    fleet.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_replaced_logger_stores_every_result_exactly_once() {
    let target = TargetServer::start().await;
    let mut fleet = Fleet::new(None).await;
    let mut doomed = fleet.spawn("logger");
    let mut survivor = fleet.spawn("logger");
    let mut worker = fleet.spawn("worker");
    let mut scheduler = fleet.spawn("scheduler");
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            api.create_site(json!({"url": target.url("/ok"), "interval_seconds": 1}))
                .await,
        );
    }
    let store = fleet.store().await;
    eventually("both loggers to store results", || async {
        (doomed.log().contains("kafka partitions assigned")
            && survivor.log().contains("kafka partitions assigned")
            && total_stored(&store, &ids).await >= 10)
            .then_some(())
    })
    .await;
    let revocations = survivor.revocations();
    // Killed mid-stream: whatever it had received but not committed is delivered again.
    doomed.kill9();
    let mut replacement =
        replace_after_eviction(&mut fleet, &survivor, revocations, "logger").await;
    let at_restart = target.hits("/ok");
    eventually("more checks after the restart", || async {
        (target.hits("/ok") >= at_restart + 10).then_some(())
    })
    .await;
    // Stop producing: the scheduler first, then the worker drains and publishes what it has.
    scheduler.stop();
    worker.stop();
    let produced = target.hits("/ok") as usize;
    eventually("every result the workers produced to be stored", || async {
        (total_stored(&store, &ids).await == produced).then_some(())
    })
    .await;
    survivor.stop();
    replacement.stop();
    assert_eq!(
        total_stored(&store, &ids).await,
        produced,
        "exactly once: no loss, no duplicate"
    );
    api_proc.stop();
    fleet.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_scheduler_takes_over_when_the_leader_dies() {
    let target = TargetServer::start().await;
    let mut fleet = Fleet::new(None).await;
    let mut worker = fleet.spawn("worker");
    let mut a = fleet.spawn("scheduler");
    eventually("the first scheduler to lead", || async {
        a.log()
            .contains("this scheduler is the leader")
            .then_some(())
    })
    .await;
    let mut b = fleet.spawn("scheduler");
    eventually("the second scheduler to stand by", || async {
        b.log().contains("standing by").then_some(())
    })
    .await;
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    api.create_site(json!({"url": target.url("/ok"), "interval_seconds": 1}))
        .await;
    eventually("checks to flow", || async {
        (target.hits("/ok") >= 3).then_some(())
    })
    .await;
    a.kill9();
    let killed_at = std::time::Instant::now();
    eventually("the standby to lead", || async {
        b.log()
            .contains("this scheduler is the leader")
            .then_some(())
    })
    .await;
    assert!(
        killed_at.elapsed() < Duration::from_secs(30),
        "took over in {:?}",
        killed_at.elapsed()
    );
    let at_takeover = target.hits("/ok");
    eventually("checks to go on", || async {
        (target.hits("/ok") >= at_takeover + 3).then_some(())
    })
    .await;
    // No burst of duplicates: over the next seconds, about one check per second.
    let start = target.hits("/ok");
    let t0 = std::time::Instant::now();
    eventually("five more checks", || async {
        (target.hits("/ok") >= start + 5).then_some(())
    })
    .await;
    let rate = (target.hits("/ok") - start) as f64 / t0.elapsed().as_secs_f64();
    assert!(rate < 2.5, "{rate} checks/s of a 1 s monitor");
    for p in [&mut b, &mut worker, &mut api_proc] {
        p.stop();
    }
    fleet.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_pending_when_the_alerter_dies_arrives_exactly_once() {
    let target = TargetServer::start().await;
    target.set_status(500);
    let discord = DiscordReceiver::start().await;
    // The first attempts fail, so the down alert sits in the outbox, not yet delivered.
    for _ in 0..2 {
        discord.push_response(Reply::Status(503));
    }
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    // Two alerters: both consume results, one delivers the outbox.
    let alerters = [fleet.spawn("alerter"), fleet.spawn("alerter")];
    let mut logger = fleet.spawn("logger");
    let mut worker = fleet.spawn("worker");
    let mut scheduler = fleet.spawn("scheduler");
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    api.create_site(
        json!({"name": "Down Site", "url": target.url("/switch"), "interval_seconds": 1}),
    )
    .await;
    discord.wait_for_attempts(1, Duration::from_secs(90)).await;
    let [a, b] = alerters;
    let a_leads = a.log().contains("this alert dispatcher is the leader");
    let (mut leader, mut other) = if a_leads { (a, b) } else { (b, a) };
    assert!(
        leader.log().contains("this alert dispatcher is the leader"),
        "one alerter delivers"
    );
    leader.kill9();
    assert!(
        discord.messages().is_empty(),
        "not delivered before the kill"
    );
    let messages = discord.wait_for_messages(1, Duration::from_secs(90)).await;
    assert!(messages[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("🔴 Website Down Alert"));
    assert!(
        other.log().contains("this alert dispatcher is the leader"),
        "the other alerter took over"
    );
    // Later results of the still-down site change nothing: still one alert.
    let at = target.hits("/switch");
    eventually("five more checks", || async {
        (target.hits("/switch") >= at + 5).then_some(())
    })
    .await;
    assert_eq!(discord.messages().len(), 1, "exactly once");
    for p in [
        &mut scheduler,
        &mut worker,
        &mut logger,
        &mut other,
        &mut api_proc,
    ] {
        p.stop();
    }
    drop(leader);
    fleet.cleanup().await;
}
