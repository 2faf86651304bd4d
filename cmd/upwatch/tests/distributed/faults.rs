//! Faults: processes killed or restarted mid-stream lose nothing and duplicate nothing.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use upwatch_testkit::discord::{DiscordReceiver, Reply};
use upwatch_testkit::target::TargetServer;
use uuid::Uuid;

use crate::fleet::{
    eventually, first_checked_since, partition_of, replace_after_eviction, stored, Api, Fleet,
    Proc, DEADLINE, GROUP_DEBUG_ENV, PARTITIONS,
};

async fn total_stored(store: &dyn upwatch_store::Store, ids: &[Uuid]) -> usize {
    let mut n = 0;
    for id in ids {
        n += stored(store, *id).await;
    }
    n
}

/// `session.timeout.ms` of the Kafka bus's group members (`internal/bus/src/kafka.rs`): a
/// member killed without leaving keeps its partitions this long before the broker expires it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// What failover may take beyond the session timeout: the survivor's next heartbeat (every
/// second), the rebalance, skipping the jobs that went stale meanwhile, a check (100 ms) and
/// the logger's batch.
const FAILOVER_SLACK: Duration = Duration::from_secs(10);

/// Monitors checked every second against a 100 ms target (so that a worker killed at any
/// moment has no check it could still finish): twelve, and more when needed until every
/// partition carries at least two, so that whichever worker dies, monitors were on its
/// partitions.
async fn monitors_on_every_partition(api: &Api, target: &TargetServer) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = Vec::new();
    loop {
        let fewest = (0..PARTITIONS)
            .map(|p| ids.iter().filter(|id| partition_of(**id) == p).count())
            .min()
            .unwrap_or(0);
        if ids.len() >= 12 && fewest >= 2 {
            return ids;
        }
        assert!(ids.len() < 100, "the partitioner spreads monitors");
        ids.push(
            api.create_site(json!({"url": target.url("/slow/100"), "interval_seconds": 1}))
                .await,
        );
    }
}

/// Waits, at most `deadline`, until every monitor of `ids` has a stored result of a check made
/// at or after `since`; returns when the first such check of each was made.
async fn every_monitor_checked_since(
    store: &dyn upwatch_store::Store,
    ids: &[Uuid],
    since: DateTime<Utc>,
    deadline: Duration,
) -> Vec<DateTime<Utc>> {
    upwatch_testkit::wait::until(
        &format!("every monitor to have a result checked after the kill, within {deadline:?}"),
        deadline,
        Duration::from_millis(100),
        || async {
            let mut firsts = Vec::with_capacity(ids.len());
            for id in ids {
                firsts.push(first_checked_since(store, *id, since).await?);
            }
            Some(firsts)
        },
    )
    .await
}

/// Prints one failover measurement for BENCHMARKS.md: the time from the kill until every
/// monitor had a stored result of a check made after it (`secs`, as the test saw it, polling
/// every 100 ms), and until the last of those checks was made (`last_check_secs`).
fn report_failover(
    tag: &str,
    killed: Instant,
    killed_at: DateTime<Utc>,
    firsts: &[DateTime<Utc>],
    orphaned: usize,
) {
    let last = firsts.iter().max().expect("monitors");
    eprintln!(
        "FAILOVER {tag}_secs={:.1} last_check_secs={:.1} monitors={} orphaned_monitors={orphaned} partitions={PARTITIONS}",
        killed.elapsed().as_secs_f64(),
        (*last - killed_at).num_milliseconds() as f64 / 1000.0,
        firsts.len(),
    );
}

/// Starts two workers and waits until they share every partition in one generation of their
/// consumer group. Returns `(leader, follower)`.
///
/// librdkafka lets the broker choose the group's leader: Kafka's coordinator makes the first
/// member that joins the leader and keeps it while it stays. So the first worker starts alone
/// and is waited on until it holds every partition (it leads a group of one); then the second
/// joins. Which one leads is not assumed but read from their logs: with [`GROUP_DEBUG_ENV`]
/// each logs librdkafka's "JoinGroup response: GenerationId G, ..., LeaderId L (me), ...",
/// "(me)" only in the leader's.
async fn two_workers(fleet: &mut Fleet) -> (Proc, Proc) {
    let first = fleet.spawn_with("worker", GROUP_DEBUG_ENV);
    eventually("the first worker to hold every partition", || async {
        (first.assigned_partitions()?.len() == PARTITIONS as usize).then_some(())
    })
    .await;
    let second = fleet.spawn_with("worker", GROUP_DEBUG_ENV);
    let first_leads = eventually("both workers to share the partitions", || async {
        let (generation, first_leads) = first.group_join()?;
        let (other_generation, second_leads) = second.group_join()?;
        let shares = [first.assigned_partitions()?, second.assigned_partitions()?];
        if generation != other_generation
            || first_leads == second_leads
            || shares.iter().any(Vec::is_empty)
        {
            return None;
        }
        let mut all = shares.concat();
        all.sort_unstable();
        (all == (0..PARTITIONS).collect::<Vec<_>>()).then_some(first_leads)
    })
    .await;
    eprintln!(
        "group leader: the {} worker",
        if first_leads {
            "first (started alone, before the second)"
        } else {
            "second"
        }
    );
    if first_leads {
        (first, second)
    } else {
        (second, first)
    }
}

/// One of two workers is killed and not replaced: the survivor takes over its partitions once
/// the broker expires the dead member's session, and every monitor is checked again within
/// the session timeout plus [`FAILOVER_SLACK`].
async fn survivor_takes_over(kill_leader: bool, tag: &str) {
    let target = TargetServer::start().await;
    let mut fleet = Fleet::new(None).await;
    let mut logger = fleet.spawn("logger");
    let (leader, follower) = two_workers(&mut fleet).await;
    let (mut victim, mut survivor) = if kill_leader {
        (leader, follower)
    } else {
        (follower, leader)
    };
    let mut scheduler = fleet.spawn("scheduler");
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    let ids = monitors_on_every_partition(&api, &target).await;
    let store = fleet.store().await;
    eventually("every monitor to be checked by the two workers", || async {
        for id in &ids {
            if stored(&store, *id).await == 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    let held = victim
        .assigned_partitions()
        .expect("the victim's partitions");
    let orphaned = ids
        .iter()
        .filter(|id| held.contains(&partition_of(**id)))
        .count();
    assert!(
        orphaned > 0,
        "monitors are on the partitions {held:?} of the worker to kill"
    );
    let (generation, _) = survivor
        .group_join()
        .expect("the survivor's group generation");

    let killed_at = Utc::now();
    let killed = Instant::now();
    victim.kill9();
    let firsts =
        every_monitor_checked_since(&store, &ids, killed_at, SESSION_TIMEOUT + FAILOVER_SLACK)
            .await;
    report_failover(tag, killed, killed_at, &firsts, orphaned);
    let mut now_held = survivor
        .assigned_partitions()
        .expect("the survivor's partitions");
    now_held.sort_unstable();
    assert_eq!(
        now_held,
        (0..PARTITIONS).collect::<Vec<_>>(),
        "the survivor holds every partition"
    );
    let (new_generation, leads) = survivor
        .group_join()
        .expect("the survivor's group generation");
    assert!(
        new_generation > generation && leads,
        "the survivor leads a new generation of the group (it was {generation}, now \
         {new_generation}, leading: {leads})"
    );

    for p in [&mut scheduler, &mut survivor, &mut logger, &mut api_proc] {
        p.stop();
    }
    drop(victim);
    fleet.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_monitor_is_checked_again_soon_after_one_of_two_workers_is_killed() {
    // The follower: the group's leader stays and assigns the partitions anew.
    survivor_takes_over(false, "worker_kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_monitor_is_checked_again_soon_after_the_group_leader_is_killed() {
    // The leader: the survivor must become the leader and assign the partitions itself.
    survivor_takes_over(true, "leader_kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_go_on_when_a_killed_worker_is_replaced() {
    let target = TargetServer::start().await;
    let mut fleet = Fleet::new(None).await;
    let mut logger = fleet.spawn("logger");
    let mut first = fleet.spawn("worker");
    let mut second = fleet.spawn("worker");
    let mut scheduler = fleet.spawn("scheduler");
    let mut api_proc = fleet.spawn("api");
    let api = Api::of(&api_proc).await;
    let ids = monitors_on_every_partition(&api, &target).await;
    eventually("both workers to check", || async {
        (first.log().contains("kafka partitions assigned")
            && second.log().contains("kafka partitions assigned")
            && target.hits("/slow/100") >= 2 * ids.len() as u64)
            .then_some(())
    })
    .await;
    let revocations = second.revocations();
    let held = first
        .assigned_partitions()
        .expect("the killed worker's partitions");
    let orphaned = ids
        .iter()
        .filter(|id| held.contains(&partition_of(**id)))
        .count();
    let killed_at = Utc::now();
    let killed = Instant::now();
    first.kill9();
    // Once the broker has noticed, a replacement joins (as systemd's `Restart=` would) and
    // every monitor is checked again, whichever worker's partitions it was on.
    let mut replacement = replace_after_eviction(&mut fleet, &second, revocations, "worker").await;
    let store = fleet.store().await;
    let mut before = Vec::new();
    for id in &ids {
        before.push(stored(&store, *id).await);
    }
    let firsts = every_monitor_checked_since(&store, &ids, killed_at, DEADLINE).await;
    report_failover("worker_replaced", killed, killed_at, &firsts, orphaned);
    for (id, before) in ids.iter().zip(before) {
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
