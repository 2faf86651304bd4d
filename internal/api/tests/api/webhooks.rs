//! Webhooks: their secret URLs never come back whole.

use axum::http::{header, StatusCode};
use serde_json::json;
use upwatch_store::Store;
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
