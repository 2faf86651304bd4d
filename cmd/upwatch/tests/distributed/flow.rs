//! A monitor added through the API role flows through Kafka into PostgreSQL and Redis, and
//! the alerter sends messages on down and recovery to two kinds of channel at once: Discord
//! (from `DISCORD_WEBHOOK_URL`) and Slack (made through the API).

use std::time::Duration;

use serde_json::json;
use upwatch_cache::StatusCache;
use upwatch_core::MonitorStatus;
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use upwatch_testkit::target::TargetServer;

use crate::fleet::{eventually, stored, Api, Fleet};

/// Waits until `id` has results in PostgreSQL and an up status in Redis.
async fn wait_stored_and_cached_up(
    fleet: &Fleet,
    store: &dyn upwatch_store::Store,
    id: uuid::Uuid,
) {
    eventually("results in PostgreSQL", || async {
        (stored(store, id).await >= 2).then_some(())
    })
    .await;
    let cache = fleet.cache().await;
    eventually("an up status in Redis", || async {
        let entry = cache.get(id).await.ok()??;
        (entry.state.status == MonitorStatus::Up).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_flows_through_every_role_with_alerts() {
    let target = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    let mut procs = fleet.spawn_every_role(&[]);
    let api = Api::of(procs.last().unwrap()).await;
    let slack = HttpReceiver::start(Answer::text(200, "ok")).await;
    let created = api
        .client
        .post(format!("{}/api/v1/notifiers", api.base))
        .json(&json!({"name": "ops", "kind": "slack", "default": true,
                      "settings": {"webhook_url": format!("{}/services/T0/B0/x", slack.url())}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = api
        .create_site(
            json!({"name": "My Website", "url": target.url("/switch"), "interval_seconds": 1}),
        )
        .await;

    let store = fleet.store().await;
    wait_stored_and_cached_up(&fleet, &store, id).await;
    eventually("the API to show up", || async {
        (api.status(id).await["status"] == "up").then_some(())
    })
    .await;

    target.set_status(500);
    let down = discord.wait_for_messages(1, Duration::from_secs(90)).await;
    let content = down[0]["content"].as_str().unwrap();
    assert!(
        content.starts_with("🔴 Website Down Alert\nSite: My Website ("),
        "{content}"
    );
    assert!(content.contains("\nStatus: DOWN\n"), "{content}");
    let slack_down = slack.wait_for(1, Duration::from_secs(90)).await;
    let text = slack_down[0].json()["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("🔴 My Website is down"), "{text}");
    eventually("the API to show down", || async {
        (api.status(id).await["status"] == "down").then_some(())
    })
    .await;

    target.set_status(200);
    let both = discord.wait_for_messages(2, Duration::from_secs(90)).await;
    assert!(both[1]["content"]
        .as_str()
        .unwrap()
        .starts_with("🟢 Website Recovery Alert\n"));
    let seen = stored(&store, id).await;
    eventually("three more results", || async {
        (stored(&store, id).await >= seen + 3).then_some(())
    })
    .await;
    assert_eq!(
        discord.messages().len(),
        2,
        "one down and one recovery message"
    );
    let slack_both = slack.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(
        slack_both.len(),
        2,
        "one down and one recovery message on Slack too"
    );
    let text = slack_both[1].json()["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("🟢 My Website is up again"), "{text}");

    // Redis loses the entry: the cache updater rebuilds it from PostgreSQL at the next check,
    // and the status listing shows the monitor again.
    let cache = fleet.cache().await;
    cache.remove(id).await.unwrap();
    assert!(cache.get(id).await.unwrap().is_none());
    eventually("the status listing to show the monitor again", || async {
        let listed: serde_json::Value = api
            .client
            .get(format!("{}/api/v1/status", api.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let items = listed["items"].as_array()?;
        items
            .iter()
            .any(|item| item["id"] == id.to_string() && item["status"] == "up")
            .then_some(())
    })
    .await;

    for p in procs.iter_mut().rev() {
        p.stop();
    }
    fleet.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_every_role_on_the_distributed_backends() {
    let target = TargetServer::start().await;
    let mut fleet = Fleet::new(None).await;
    let mut serve = fleet.spawn("serve");
    let api = Api::of(&serve).await;
    let id = api
        .create_site(json!({"url": target.url("/ok"), "interval_seconds": 1}))
        .await;
    let store = fleet.store().await;
    wait_stored_and_cached_up(&fleet, &store, id).await;
    serve.stop();
    fleet.cleanup().await;
}
