//! Webhooks: their secret URLs never come back whole.

use axum::http::{header, StatusCode};
use serde_json::json;
use upwatch_store::prelude::*;
use uuid::Uuid;

use crate::helpers::{id_of, spawn_app};

const SECRET_URL: &str = "https://discord.com/api/webhooks/123456/very-secret-token-wxyz";

#[tokio::test]
async fn create_shows_a_redacted_url_and_stores_the_real_one() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": SECRET_URL, "name": "ops"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert!(
        !response.text().contains("very-secret-token"),
        "{}",
        response.text()
    );
    assert!(
        !response.text().contains("/api/webhooks/123456"),
        "{}",
        response.text()
    );
    let view = response.json();
    let id = id_of(&view);
    assert_eq!(
        response.header(header::LOCATION),
        Some(format!("/api/v1/webhooks/{id}").as_str())
    );
    assert_eq!(view["url"], "https://discord.com/…wxyz");
    assert_eq!(view["name"], "ops");
    assert_eq!(view["enabled"], true);
    assert_eq!(view["source"], "api");

    let stored = app.store.get_webhook(id).await.unwrap().expect("stored");
    assert_eq!(stored.url, SECRET_URL);
}

#[tokio::test]
async fn list_and_delete_webhooks() {
    let app = spawn_app().await;
    let first = id_of(
        &app.post_json("/api/v1/webhooks", &json!({"url": SECRET_URL}))
            .await
            .json(),
    );
    let second = id_of(
        &app.post_json(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9000/hook/other-secret"}),
        )
        .await
        .json(),
    );

    let listed = app.get("/api/v1/webhooks").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(!listed.text().contains("very-secret-token"));
    assert!(!listed.text().contains("other-secret"));
    let listed = listed.json();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.iter().map(id_of).collect::<Vec<_>>(), [first, second]);
    assert_eq!(items[0]["name"], "webhook", "the default name");

    let response = app.delete(&format!("/api/v1/webhooks/{first}")).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    app.delete(&format!("/api/v1/webhooks/{first}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    let listed = app.get("/api/v1/webhooks").await.json();
    assert_eq!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect::<Vec<_>>(),
        [second]
    );
    app.delete(&format!("/api/v1/webhooks/{}", Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_webhooks_are_refused_without_echoing_the_url() {
    let app = spawn_app().await;
    let cases = [
        (json!({"url": "ftp://files.test/secret-path"}), "url"),
        (json!({"url": "not a url secret-path"}), "url"),
        (json!({"name": "no url"}), "url"),
        (json!({"url": SECRET_URL, "name": ""}), "name"),
        (json!({"url": SECRET_URL, "name": "x".repeat(101)}), "name"),
        (json!({"url": SECRET_URL, "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/v1/webhooks", &body).await;
        let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert!(!response.text().contains("secret"), "{body}: {problem}");
    }
    let listed = app.get("/api/v1/webhooks").await.json();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn a_webhook_disabled_after_a_404_is_enabled_again_with_patch() {
    let app = spawn_app().await;
    let id = id_of(
        &app.post_json(
            "/api/v1/webhooks",
            &json!({"url": SECRET_URL, "name": "ops"}),
        )
        .await
        .json(),
    );
    app.store.disable_webhook(id, "HTTP 404").await.unwrap();
    let shown = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    assert!(
        !shown.text().contains("very-secret-token"),
        "{}",
        shown.text()
    );
    let shown = shown.json();
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["disabled_reason"], "HTTP 404");

    let response = app
        .patch_json(&format!("/api/v1/webhooks/{id}"), &json!({"enabled": true}))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let view = response.json();
    assert_eq!(view["enabled"], true);
    assert!(view.get("disabled_reason").is_none(), "{view}");
    assert_eq!(view["name"], "ops");
    let stored = app.store.get_webhook(id).await.unwrap().unwrap();
    assert!(stored.enabled);
    assert_eq!(stored.url, SECRET_URL, "the URL is kept");

    let response = app
        .patch_json(
            &format!("/api/v1/webhooks/{id}"),
            &json!({"enabled": false, "name": " paging ", "url": "http://127.0.0.1:9/hook/new-secret"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(
        !response.text().contains("new-secret"),
        "{}",
        response.text()
    );
    let stored = app.store.get_webhook(id).await.unwrap().unwrap();
    assert!(!stored.enabled);
    assert_eq!(
        stored.disabled_reason.as_deref(),
        Some("disabled through the API")
    );
    assert_eq!(stored.name, "paging");
    assert_eq!(stored.url, "http://127.0.0.1:9/hook/new-secret");
}

#[tokio::test]
async fn patching_a_webhook_refuses_bad_input_and_unknown_ids() {
    let app = spawn_app().await;
    let id = id_of(
        &app.post_json("/api/v1/webhooks", &json!({"url": SECRET_URL}))
            .await
            .json(),
    );
    let uri = format!("/api/v1/webhooks/{id}");
    for (body, field) in [
        (json!({"url": "ftp://files.test/secret-path"}), "url"),
        (json!({"name": "  "}), "name"),
        (json!({"enabled": "yes"}), "enabled"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let response = app.patch_json(&uri, &body).await;
        let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert!(!response.text().contains("secret"), "{body}: {problem}");
    }
    assert_eq!(
        app.store.get_webhook(id).await.unwrap().unwrap().url,
        SECRET_URL,
        "nothing changed"
    );
    let unknown = format!("/api/v1/webhooks/{}", Uuid::now_v7());
    app.get(&unknown)
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    app.patch_json(&unknown, &json!({"enabled": true}))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_configured_webhook_is_only_enabled_or_disabled_through_the_api() {
    let app = spawn_app().await;
    let configured = upwatch_core::Webhook {
        id: Uuid::now_v7(),
        name: "DISCORD_WEBHOOK_URL #1".into(),
        url: SECRET_URL.into(),
        enabled: false,
        disabled_reason: Some("HTTP 404".into()),
        source: upwatch_core::WebhookSource::Config,
        created_at: chrono::Utc::now(),
        kind: "discord".into(),
        settings: Default::default(),
        options: upwatch_core::ChannelOptions {
            default: true,
            ..Default::default()
        },
    };
    app.store.upsert_webhook(&configured).await.unwrap();
    let uri = format!("/api/v1/webhooks/{}", configured.id);
    let problem = app
        .patch_json(&uri, &json!({"name": "renamed", "enabled": true}))
        .await
        .assert_problem(StatusCode::CONFLICT);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("DISCORD_WEBHOOK_URL"),
        "{problem}"
    );
    assert!(
        !app.store
            .get_webhook(configured.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let response = app.patch_json(&uri, &json!({"enabled": true})).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(
        app.store
            .get_webhook(configured.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
}

#[tokio::test]
async fn a_test_message_reaches_the_webhook_and_a_failure_is_reported() {
    use upwatch_testkit::discord::{DiscordReceiver, Reply};
    let app = spawn_app().await;
    let receiver = DiscordReceiver::start().await;
    let id = id_of(
        &app.post_json("/api/v1/webhooks", &json!({"url": receiver.url()}))
            .await
            .json(),
    );
    let uri = format!("/api/v1/webhooks/{id}/test");

    let response = app.post_json(&uri, &json!({})).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json(), json!({"delivered": true}));
    let messages = receiver
        .wait_for_messages(1, std::time::Duration::from_secs(10))
        .await;
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("✅ upwatch test message"),
        "{}",
        messages[0]
    );

    // A webhook Discord no longer knows: reported, and nothing changes.
    receiver.push_response(Reply::Status(404));
    let response = app.post_json(&uri, &json!({})).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let outcome = response.json();
    assert_eq!(outcome["delivered"], false, "{outcome}");
    assert!(
        outcome["error"].as_str().unwrap().contains("404"),
        "{outcome}"
    );
    assert!(!response.text().contains(&receiver.url()), "{outcome}");
    assert!(app.store.get_webhook(id).await.unwrap().unwrap().enabled);
    assert_eq!(receiver.messages().len(), 1);

    app.post_json(
        &format!("/api/v1/webhooks/{}/test", Uuid::now_v7()),
        &json!({}),
    )
    .await
    .assert_problem(StatusCode::NOT_FOUND);
}
