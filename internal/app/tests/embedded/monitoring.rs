//! Sites going down and up, alerts, failure kinds and deletion, through the real API.

use std::time::{Duration, Instant};

use serde_json::json;
use upwatch_testkit::discord::{DiscordReceiver, Reply};
use upwatch_testkit::target::{refused_url, TargetServer};

use crate::helpers::{eventually, spawn_app_in};

#[tokio::test]
async fn a_site_going_down_and_back_sends_one_alert_each_way() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let app = spawn_app_in(dir.path(), &[("DISCORD_WEBHOOK_URL", &discord.url())]).await;
    let id = app
        .create_site(
            json!({"name": "My Website", "url": target.url("/switch"), "interval_seconds": 1}),
        )
        .await;

    eventually("the site to be up", || async {
        (app.status_of(&id).await == "up").then_some(())
    })
    .await;
    assert!(
        discord.messages().is_empty(),
        "no alert for a new site that is up"
    );

    target.set_status(500);
    let down = discord.wait_for_messages(1, Duration::from_secs(30)).await;
    let content = down[0]["content"].as_str().unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines[0], "🔴 Website Down Alert");
    assert_eq!(
        lines[1],
        format!("Site: My Website ({})", target.url("/switch"))
    );
    assert_eq!(lines[2], "Status: DOWN");
    assert!(
        lines[3].starts_with("Time: ") && lines[3].ends_with(" UTC"),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4],
        "Error: status_mismatch: got HTTP 500, expected 200"
    );
    assert_eq!(app.status_of(&id).await, "down");

    // Still down for a few more checks: nothing new is sent.
    let seen = app.history(&id).await.len();
    eventually("three more checks", || async {
        (app.history(&id).await.len() >= seen + 3).then_some(())
    })
    .await;
    assert_eq!(
        discord.messages().len(),
        1,
        "one down alert while the state holds"
    );

    target.set_status(200);
    let both = discord.wait_for_messages(2, Duration::from_secs(30)).await;
    let recovery = both[1]["content"].as_str().unwrap();
    assert!(
        recovery.starts_with("🟢 Website Recovery Alert\n"),
        "{recovery}"
    );
    assert!(recovery.contains("\nStatus: UP\n"), "{recovery}");
    assert!(recovery.contains("\nDowntime: "), "{recovery}");
    eventually("the site to be up again", || async {
        (app.status_of(&id).await == "up").then_some(())
    })
    .await;

    let seen = app.history(&id).await.len();
    eventually("three more checks", || async {
        (app.history(&id).await.len() >= seen + 3).then_some(())
    })
    .await;
    assert_eq!(
        discord.messages().len(),
        2,
        "exactly one down and one recovery message"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_rate_limited_alert_is_retried_after_retry_after_and_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    target.set_status(503);
    let discord = DiscordReceiver::start().await;
    discord.push_response(Reply::RateLimited {
        retry_after_secs: 1.0,
    });
    let app = spawn_app_in(dir.path(), &[("DISCORD_WEBHOOK_URL", &discord.url())]).await;
    let started = Instant::now();
    app.create_site(json!({"name": "Flaky", "url": target.url("/switch"), "interval_seconds": 1}))
        .await;
    let messages = discord.wait_for_messages(1, Duration::from_secs(30)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for retry_after"
    );
    assert_eq!(discord.attempts(), 2, "one refused attempt, one delivered");
    assert!(messages[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("🔴 Website Down Alert"));
    app.stop().await.unwrap();
    assert_eq!(discord.messages().len(), 1, "delivered exactly once");
}

#[tokio::test]
async fn every_kind_of_failure_is_named_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let app = spawn_app_in(dir.path(), &[]).await;
    let refused = refused_url().await;
    let cases = [
        (json!({"url": target.url("/ok")}), "up", None),
        (
            json!({"url": target.url("/status/500")}),
            "down",
            Some("status_mismatch"),
        ),
        (
            json!({"url": target.url("/slow/5000"), "timeout_seconds": 1}),
            "down",
            Some("timeout"),
        ),
        (json!({"url": refused}), "down", Some("connect")),
        (
            json!({"url": target.url("/redirect-loop")}),
            "down",
            Some("too_many_redirects"),
        ),
        (
            json!({"url": target.url("/huge"), "keyword": "not in there"}),
            "down",
            Some("keyword_missing"),
        ),
        (
            json!({"url": target.url("/keyword"), "keyword": "welcome to upwatch"}),
            "up",
            None,
        ),
        (
            json!({"url": target.url("/keyword"), "keyword": "absent text"}),
            "down",
            Some("keyword_missing"),
        ),
    ];
    let mut ids = Vec::new();
    for (mut body, _, _) in cases.clone() {
        body["interval_seconds"] = json!(2);
        ids.push(app.create_site(body).await);
    }
    for ((body, status, kind), id) in cases.iter().zip(&ids) {
        let entry = eventually(&format!("a result for {body}"), || async {
            app.history(id).await.into_iter().next()
        })
        .await;
        assert_eq!(entry["status"], *status, "{body}: {entry}");
        assert_eq!(entry["error"]["kind"].as_str(), *kind, "{body}: {entry}");
        if status == &"down" {
            assert!(!entry["error"]["message"].as_str().unwrap().is_empty());
        }
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn deleting_a_site_stops_its_checks_and_removes_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let app = spawn_app_in(dir.path(), &[]).await;
    let doomed = app
        .create_site(json!({"url": target.url("/status/200"), "interval_seconds": 1}))
        .await;
    app.create_site(json!({"url": target.url("/ok"), "interval_seconds": 1}))
        .await;
    eventually("the doomed site to be checked", || async {
        (target.hits("/status/200") > 0).then_some(())
    })
    .await;
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/sites/{doomed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    let hits_at_delete = target.hits("/status/200");
    let control = target.hits("/ok");
    eventually("three more checks of the other site", || async {
        (target.hits("/ok") >= control + 3).then_some(())
    })
    .await;
    // At most one check that was already in flight when the site was deleted.
    assert!(target.hits("/status/200") <= hits_at_delete + 1);
    let gone = app
        .client
        .get(app.url(&format!("/api/v1/sites/{doomed}/history")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn pausing_stops_checks_and_shows_paused() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let app = spawn_app_in(dir.path(), &[]).await;
    let id = app
        .create_site(json!({"url": target.url("/status/200"), "interval_seconds": 1}))
        .await;
    app.create_site(json!({"url": target.url("/ok"), "interval_seconds": 1}))
        .await;
    eventually("up", || async {
        (app.status_of(&id).await == "up").then_some(())
    })
    .await;
    let patched = app
        .client
        .patch(app.url(&format!("/api/v1/sites/{id}")))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(app.status_of(&id).await, "paused");
    let hits = target.hits("/status/200");
    let control = target.hits("/ok");
    eventually("three more checks of the other site", || async {
        (target.hits("/ok") >= control + 3).then_some(())
    })
    .await;
    assert!(
        target.hits("/status/200") <= hits + 1,
        "no checks while paused"
    );
    assert_eq!(app.status_of(&id).await, "paused");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_300s_monitor_is_up_within_3_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let app = spawn_app_in(dir.path(), &[]).await;
    // A monitor seen up shows the scheduler has made its first load (whose monitors keep
    // their slots).
    let warm_up = app
        .create_site(json!({"url": target.url("/ok"), "interval_seconds": 1}))
        .await;
    eventually("the warm-up site to be up", || async {
        (app.status_of(&warm_up).await == "up").then_some(())
    })
    .await;

    let id = app
        .create_site(json!({"url": target.url("/status/200"), "interval_seconds": 300}))
        .await;
    let created = Instant::now();
    upwatch_testkit::wait::until(
        "the new 300 s site to be up within 3 s",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || async {
            let status = app.get_json(&format!("/api/v1/sites/{id}/status")).await;
            (status["status"] == "up" && status["last_checked"].is_string()).then_some(())
        },
    )
    .await;
    eprintln!(
        "NEW_MONITOR mode=embedded up_secs={:.3}",
        created.elapsed().as_secs_f64()
    );
    assert_eq!(target.hits("/status/200"), 1, "one check, not a burst");
    app.stop().await.unwrap();
}
