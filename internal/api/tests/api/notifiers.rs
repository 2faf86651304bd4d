//! Notifiers of every kind: settings checked per kind, secrets never returned, settings
//! merged on change, test messages, `/api/v1/webhooks` as the Discord notifiers.

use axum::http::StatusCode;
use serde_json::json;
use upwatch_store::prelude::*;
use upwatch_testkit::receiver::{Answer, HttpReceiver};

use crate::helpers::{id_of, spawn_app};

const BOT_TOKEN: &str = "123456789:AAH-very-secret-bot-token";

#[tokio::test]
async fn a_notifier_is_created_with_its_secrets_redacted() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/notifiers",
            &json!({"name": "on-call", "kind": "telegram",
                    "settings": {"bot_token": BOT_TOKEN, "chat_id": "-1001234"},
                    "reminder_interval_seconds": 3600}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert!(
        !response.text().contains("very-secret"),
        "{}",
        response.text()
    );
    let view = response.json();
    let id = id_of(&view);
    assert_eq!(view["kind"], "telegram");
    assert_eq!(view["settings"]["chat_id"], "-1001234");
    assert_eq!(view["settings"]["bot_token"], "********oken");
    assert_eq!(view["reminder_interval_seconds"], 3600);
    assert_eq!(view["default"], false);
    assert_eq!(view["group_alerts"], true);
    assert_eq!(view["enabled"], true);
    let stored = app.store.get_webhook(id).await.unwrap().unwrap();
    assert_eq!(stored.settings["bot_token"], BOT_TOKEN);
    let list = app.get("/api/v1/notifiers").await;
    assert!(!list.text().contains("very-secret"));
    assert_eq!(list.json()["items"][0]["id"], view["id"]);
    // PagerDuty gets one incident per monitor unless it says otherwise.
    let pd = app
        .post_json(
            "/api/v1/notifiers",
            &json!({"name": "pd", "kind": "pagerduty",
                    "settings": {"routing_key": "0123456789abcdef0123456789abcdef"}}),
        )
        .await;
    assert_eq!(pd.status, StatusCode::CREATED, "{}", pd.text());
    assert_eq!(pd.json()["group_alerts"], false);
}

#[tokio::test]
async fn bad_settings_are_refused_naming_the_field_and_not_the_secret() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "t", "kind": "telegram", "settings": {"bot_token": BOT_TOKEN}}),
            "settings.chat_id",
        ),
        (
            json!({"name": "t", "kind": "carrier-pigeon", "settings": {}}),
            "kind",
        ),
        (
            json!({"name": "s", "kind": "slack",
                   "settings": {"webhook_url": "ftp://hooks.example/very-secret"}}),
            "settings.webhook_url",
        ),
        (
            json!({"name": "t", "kind": "telegram",
                   "settings": {"bot_token": BOT_TOKEN, "chat_id": "1", "chatid": "2"}}),
            "settings.chatid",
        ),
        (json!({"kind": "slack", "settings": {}}), "name"),
        (
            json!({"name": "w", "kind": "webhook",
                   "settings": {"url": "https://ci.example/very-secret", "body_template": "{{ oops"}}),
            "settings.body_template",
        ),
        (
            json!({"name": "e", "kind": "email",
                   "settings": {"smtp_host": "smtp.example.com", "from": "upwatch@example.com",
                                "to": ["ops@example.com", "not an address"]}}),
            "settings.to[1]",
        ),
        (
            json!({"name": "s", "kind": "discord", "reminder_interval_seconds": 5,
                   "settings": {"webhook_url": "https://discord.com/api/webhooks/1/x"}}),
            "reminder_interval_seconds",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/v1/notifiers", &body).await;
        let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["field"], field, "{problem}");
        assert!(
            !response.text().contains("very-secret"),
            "{}",
            response.text()
        );
    }
    assert!(app.store.list_webhooks().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_change_merges_settings_without_sending_secrets_back() {
    let app = spawn_app().await;
    let id = id_of(
        &app.post_json(
            "/api/v1/notifiers",
            &json!({"name": "on-call", "kind": "telegram",
                    "settings": {"bot_token": BOT_TOKEN, "chat_id": "1"}}),
        )
        .await
        .json(),
    );
    let uri = format!("/api/v1/notifiers/{id}");
    let response = app
        .patch_json(
            &uri,
            &json!({"name": "on-call 2", "settings": {"chat_id": "2"}, "default": true}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["settings"]["chat_id"], "2");
    assert_eq!(response.json()["default"], true);
    let stored = app.store.get_webhook(id).await.unwrap().unwrap();
    assert_eq!(stored.name, "on-call 2");
    assert_eq!(stored.settings["bot_token"], BOT_TOKEN);
    // Disabled by the service, enabled again by a person.
    app.store
        .disable_webhook(id, "HTTP 401 Unauthorized")
        .await
        .unwrap();
    let view = app.get(&uri).await.json();
    assert_eq!(view["enabled"], false);
    assert_eq!(view["disabled_reason"], "HTTP 401 Unauthorized");
    let view = app.patch_json(&uri, &json!({"enabled": true})).await.json();
    assert_eq!(view["enabled"], true);
    assert!(view.get("disabled_reason").is_none(), "{view}");
    assert_eq!(app.delete(&uri).await.status, StatusCode::NO_CONTENT);
    app.get(&uri).await.assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_test_message_says_how_it_went() {
    let app = spawn_app().await;
    let slack = HttpReceiver::start(Answer::text(200, "ok")).await;
    let url = format!("{}/services/T000/B000/very-secret", slack.url());
    let id = id_of(
        &app.post_json(
            "/api/v1/notifiers",
            &json!({"name": "ops", "kind": "slack", "settings": {"webhook_url": url}}),
        )
        .await
        .json(),
    );
    let outcome = app
        .post_json(&format!("/api/v1/notifiers/{id}/test"), &json!({}))
        .await;
    assert_eq!(outcome.status, StatusCode::OK, "{}", outcome.text());
    assert_eq!(outcome.json()["delivered"], true);
    let received = slack.wait_for(1, std::time::Duration::from_secs(5)).await;
    assert_eq!(received[0].path, "/services/T000/B000/very-secret");
    assert!(
        received[0].text().contains("test"),
        "{}",
        received[0].text()
    );

    slack.push(Answer::text(404, "no_service"));
    let outcome = app
        .post_json(&format!("/api/v1/notifiers/{id}/test"), &json!({}))
        .await;
    assert_eq!(outcome.json()["delivered"], false);
    assert!(
        !outcome.text().contains("very-secret"),
        "{}",
        outcome.text()
    );
    // A test changes nothing.
    assert!(app.store.get_webhook(id).await.unwrap().unwrap().enabled);
}

#[tokio::test]
async fn webhooks_are_the_discord_notifiers() {
    let app = spawn_app().await;
    let hook = id_of(
        &app.post_json(
            "/api/v1/webhooks",
            &json!({"url": "https://discord.com/api/webhooks/1/very-secret-abcd", "name": "d"}),
        )
        .await
        .json(),
    );
    let slack = id_of(
        &app.post_json(
            "/api/v1/notifiers",
            &json!({"name": "s", "kind": "slack",
                    "settings": {"webhook_url": "https://hooks.slack.com/services/very-secret"}}),
        )
        .await
        .json(),
    );
    let view = app.get(&format!("/api/v1/notifiers/{hook}")).await.json();
    assert_eq!(view["kind"], "discord");
    assert_eq!(view["default"], true);
    assert_eq!(view["settings"]["webhook_url"], "https://discord.com/…abcd");
    let webhooks = app.get("/api/v1/webhooks").await.json();
    let ids: Vec<&str> = webhooks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![hook.to_string()]);
    app.get(&format!("/api/v1/webhooks/{slack}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    // A monitor names its channels as `notifier_ids`, or as `webhook_ids` as before.
    for field in ["notifier_ids", "webhook_ids"] {
        let site = app
            .create_site(json!({"url": "https://example.com/", field: [slack]}))
            .await;
        assert_eq!(site["notifier_ids"], json!([slack]), "{site}");
        let patched = app
            .patch_json(
                &format!("/api/v1/sites/{}", id_of(&site)),
                &json!({field: [hook]}),
            )
            .await;
        assert_eq!(
            patched.json()["notifier_ids"],
            json!([hook]),
            "{}",
            patched.text()
        );
        app.delete(&format!("/api/v1/sites/{}", id_of(&site))).await;
    }
}
