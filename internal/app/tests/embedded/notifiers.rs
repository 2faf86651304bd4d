//! Channels from `UPWATCH_NOTIFIERS_FILE` in `upwatch serve`: kept in the store at start,
//! their `${ENV_VAR}` secrets filled from the environment, alerted like any other; and a
//! file that names an unset variable stops the start naming it.

use serde_json::json;
use upwatch_app::Application;
use upwatch_testkit::receiver::{Answer, HttpReceiver};
use upwatch_testkit::target::TargetServer;

use crate::helpers::{eventually, settings, spawn_app_in};

#[tokio::test]
async fn a_notifiers_file_configures_the_fleets_channels() {
    let dir = tempfile::tempdir().unwrap();
    let slack = HttpReceiver::start(Answer::text(200, "ok")).await;
    let target = TargetServer::start().await;
    // SAFETY (edition 2021: safe): nextest runs each test in its own process.
    std::env::set_var(
        "TEAM_SLACK_WEBHOOK_URL",
        format!("{}/services/T0/B0/file-secret", slack.url()),
    );
    let file = dir.path().join("notifiers.yaml");
    std::fs::write(
        &file,
        "notifiers:\n  - id: 0192f0c4-1d2e-7a01-9c3b-5d6e7f809112\n    name: team slack\n    kind: slack\n    default: true\n    settings:\n      webhook_url: ${TEAM_SLACK_WEBHOOK_URL}\n",
    )
    .unwrap();
    let file_var = file.display().to_string();
    let app = spawn_app_in(dir.path(), &[("UPWATCH_NOTIFIERS_FILE", file_var.as_str())]).await;
    let listed = app.get_json("/api/v1/notifiers").await;
    let item = &listed["items"][0];
    assert_eq!(item["id"], "0192f0c4-1d2e-7a01-9c3b-5d6e7f809112");
    assert_eq!(item["source"], "config");
    assert!(!listed.to_string().contains("file-secret"), "{listed}");

    target.set_status(500);
    app.create_site(json!({"name": "shop", "url": target.url("/switch"), "interval_seconds": 10}))
        .await;
    let got = slack.wait_for(1, std::time::Duration::from_secs(30)).await;
    assert_eq!(got[0].path, "/services/T0/B0/file-secret");
    let text = got[0].json()["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("🔴 shop is down"), "{text}");
    // A configured channel is changed in its file, not through the API.
    let response = app
        .client
        .patch(app.url("/api/v1/notifiers/0192f0c4-1d2e-7a01-9c3b-5d6e7f809112"))
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    eventually("the incident counts the alert", || async {
        let incidents = app.get_json("/api/v1/incidents").await;
        (incidents["items"][0]["alerts_sent"] == 1).then_some(())
    })
    .await;
    app.stop().await.unwrap();

    // A file naming an unset variable stops the start, naming the variable and the file's
    // variable, never a secret.
    std::fs::write(
        &file,
        "notifiers:\n  - id: 0192f0c4-1d2e-7a01-9c3b-5d6e7f809113\n    name: pager\n    kind: pagerduty\n    settings:\n      routing_key: ${UNSET_ROUTING_KEY_FOR_TEST}\n",
    )
    .unwrap();
    let error = match Application::build(settings(
        dir.path(),
        &[("UPWATCH_NOTIFIERS_FILE", file_var.as_str())],
    ))
    .await
    {
        Ok(_) => panic!("the start is refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("UPWATCH_NOTIFIERS_FILE"), "{error}");
    assert!(error.contains("${UNSET_ROUTING_KEY_FOR_TEST}"), "{error}");
}
