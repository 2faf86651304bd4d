//! Start-up, shutdown and restarts.

use std::time::Duration;

use serde_json::json;
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::target::TargetServer;

use crate::helpers::{eventually, spawn_app_in};

#[tokio::test]
async fn shutdown_stores_every_result_it_produced() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let app = spawn_app_in(dir.path(), &[]).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            app.create_site(json!({"url": target.url("/slow/300"), "interval_seconds": 1}))
                .await,
        );
    }
    eventually("checks to run", || async {
        (target.hits("/slow/300") >= 40).then_some(())
    })
    .await;
    let store = app.store.clone();
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("upwatch_checks_total"), "{metrics}");
    app.stop().await.expect("a clean exit");
    // Every request the target answered became a stored result: nothing in flight was lost.
    let mut stored = 0;
    for id in &ids {
        let query = upwatch_store::HistoryQuery {
            limit: 10_000,
            ..Default::default()
        };
        stored += store
            .history(id.parse().unwrap(), &query)
            .await
            .unwrap()
            .len() as u64;
    }
    assert_eq!(stored, target.hits("/slow/300"));
}

#[tokio::test]
async fn a_site_still_down_after_a_restart_alerts_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    target.set_status(500);
    let discord = DiscordReceiver::start().await;
    let env = [("DISCORD_WEBHOOK_URL", discord.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let app = spawn_app_in(dir.path(), &env).await;
    let id = app
        .create_site(json!({"url": target.url("/switch"), "interval_seconds": 1}))
        .await;
    discord.wait_for_messages(1, Duration::from_secs(30)).await;
    app.stop().await.unwrap();

    let app = spawn_app_in(dir.path(), &env).await;
    assert_eq!(
        app.status_of(&id).await,
        "down",
        "state survives the restart"
    );
    let seen = app.history(&id).await.len();
    eventually("three checks after the restart", || async {
        (app.history(&id).await.len() >= seen + 3).then_some(())
    })
    .await;
    assert_eq!(discord.messages().len(), 1, "still down: nothing new");
    target.set_status(200);
    let messages = discord.wait_for_messages(2, Duration::from_secs(30)).await;
    assert!(messages[1]["content"]
        .as_str()
        .unwrap()
        .starts_with("🟢 Website Recovery Alert"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn sites_to_monitor_are_added_once() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let sites = format!("{},{}", target.url("/ok"), target.url("/keyword"));
    let env = [("SITES_TO_MONITOR", sites.as_str())];
    let app = spawn_app_in(dir.path(), &env).await;
    let listed = app.get_json("/api/v1/sites").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    app.stop().await.unwrap();
    let app = spawn_app_in(dir.path(), &env).await;
    let listed = app.get_json("/api/v1/sites").await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "not added again on restart"
    );
    assert_eq!(
        listed["items"][0]["interval_seconds"], 300,
        "seeded with the defaults"
    );
    // Both are scheduled (their first checks fall somewhere in their 300 s interval).
    eventually("the seeded sites to be scheduled", || async {
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .contains("upwatch_monitors_scheduled 2")
            .then_some(())
    })
    .await;
    app.stop().await.unwrap();
}
