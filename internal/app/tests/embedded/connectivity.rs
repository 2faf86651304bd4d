//! `upwatch serve` on a laptop whose network drops: while none of its connectivity targets
//! answers, every check's result is inconclusive, nothing alerts, and `/readyz` says why;
//! when the network is back the monitors carry on, with no false recovery.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use upwatch_testkit::target::TargetServer;

use crate::helpers::{eventually, spawn_app_in};

/// How many of `id`'s stored results have `status`.
async fn count(app: &crate::helpers::TestApp, id: &str, status: &str) -> usize {
    app.history(id)
        .await
        .iter()
        .filter(|r| r["status"] == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_network_is_inconclusive_and_alerts_nothing() {
    // The sites and the connectivity target: when the "network" drops, neither answers
    // within the timeouts (each answers only after 5 s).
    let sites = TargetServer::start().await;
    let beacon = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(
        dir.path(),
        &[
            ("DISCORD_WEBHOOK_URL", &discord.url()),
            ("UPWATCH_CONNECTIVITY_TARGETS", &beacon.url("/switch")),
            ("UPWATCH_CONNECTIVITY_INTERVAL", "1s"),
        ],
    )
    .await;
    // The channel for messages about upwatch itself; Discord (from DISCORD_WEBHOOK_URL) is not.
    let ops = HttpReceiver::start(Answer::text(200, "ok")).await;
    let created = app
        .post(
            "/api/v1/notifiers",
            json!({"name": "ops", "kind": "slack", "system": true,
                   "settings": {"webhook_url": format!("{}/services/T0/B0/x", ops.url())}}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let urls: Vec<String> = (0..3)
        .map(|i| sites.url(&format!("/switch?site={i}")))
        .collect();
    let ids = app.create_sites_up(&urls).await;
    assert_eq!(app.readyz().await.0, 200);

    sites.set_delay(Duration::from_secs(5));
    beacon.set_delay(Duration::from_secs(5));
    let (code, body) = eventually("/readyz to say the network is lost", || async {
        let (code, body) = app.readyz().await;
        (code == 503).then_some((code, body))
    })
    .await;
    assert_eq!(code, 503);
    assert!(
        body.contains("connectivity targets") && body.contains("default"),
        "{body}"
    );
    for id in &ids {
        eventually("three inconclusive results", || async {
            (count(&app, id, "inconclusive").await >= 3).then_some(())
        })
        .await;
        assert_eq!(count(&app, id, "down").await, 0, "no result counts as down");
        let status: Value = app.get_json(&format!("/api/v1/sites/{id}/status")).await;
        assert_eq!(
            status["status"], "up",
            "the monitor keeps its status: {status}"
        );
        assert_eq!(
            status["regions"][0]["status"], "inconclusive",
            "the region says why: {status}"
        );
        let entry = app
            .history(id)
            .await
            .into_iter()
            .find(|r| r["status"] == "inconclusive");
        assert_eq!(entry.unwrap()["error"]["kind"], "local_network");
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("outcome=\"local_network\""),
        "inconclusive checks are counted apart"
    );
    assert!(
        metrics.contains("upwatch_connectivity_lost{region=\"default\"} 1"),
        "the metric says the network is lost"
    );
    assert!(
        discord.messages().is_empty(),
        "nothing alerts: {:?}",
        discord.messages()
    );

    sites.set_delay(Duration::ZERO);
    beacon.set_delay(Duration::ZERO);
    eventually("/readyz to be ready again", || async {
        (app.readyz().await.0 == 200).then_some(())
    })
    .await;
    for id in &ids {
        let before = count(&app, id, "up").await;
        eventually("two more up results", || async {
            (count(&app, id, "up").await >= before + 2).then_some(())
        })
        .await;
        assert_eq!(app.status_of(id).await, "up");
    }
    assert!(
        discord.messages().is_empty(),
        "no false recovery either: {:?}",
        discord.messages()
    );
    let both = ops.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(both.len(), 2, "one message when lost, one when back");
    let text = both[1].json()["text"].as_str().unwrap().to_string();
    assert!(text.contains("connected again"), "{text}");
    app.stop().await.unwrap();
}
