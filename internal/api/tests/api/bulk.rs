//! Bulk creation: `POST /api/v1/sites/bulk`, all or nothing.

use axum::http::StatusCode;
use serde_json::{json, Value};
use upwatch_core::MonitorStatus;

use crate::helpers::{id_of, spawn_app, TestApp};

/// The URLs of every listed monitor, in creation order.
async fn listed_urls(app: &TestApp) -> Vec<String> {
    let listing = app.get("/api/v1/sites?limit=1000").await;
    assert_eq!(listing.status, StatusCode::OK, "{}", listing.text());
    listing.json()["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|m| m["url"].as_str().expect("a url").to_string())
        .collect()
}

#[tokio::test]
async fn valid_items_are_all_created_and_listed() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/sites/bulk",
            &json!([
                {"url": "https://a.test/"},
                {"url": "https://b.test/", "name": "bee", "interval_seconds": 60},
                {"url": "https://c.test/", "enabled": false},
            ]),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let body = response.json();
    let items = body["items"].as_array().expect("items is an array");
    assert_eq!(items.len(), 3, "{body}");
    assert_eq!(items[1]["name"], "bee");
    assert_eq!(items[1]["interval_seconds"], 60);
    assert_eq!(items[2]["enabled"], false);
    for item in items {
        let stored = app.store_monitor(id_of(item)).await;
        assert_eq!(&stored, item);
    }
    assert_eq!(
        listed_urls(&app).await,
        ["https://a.test/", "https://b.test/", "https://c.test/"]
    );
    assert!(
        app.was_notified().await,
        "the scheduler is told about the new monitors"
    );
    let paused = app
        .cache
        .get(id_of(&items[2]))
        .await
        .expect("the cache answers")
        .expect("the disabled monitor is cached");
    assert_eq!(paused.state.status, MonitorStatus::Paused);
}

#[tokio::test]
async fn one_invalid_item_refuses_all_and_names_its_index_and_field() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/sites/bulk",
            &json!([
                {"url": "https://a.test/"},
                {"url": "https://b.test/"},
                {"url": "https://c.test/"},
                {"url": "ftp://d.test/"},
            ]),
        )
        .await;
    let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["detail"], "Item 3: `url` must use http, https, tcp, tls, icmp or dns, not `ftp`.",
        "{problem}"
    );
    assert_eq!(problem["field"], "[3].url", "{problem}");
    assert!(listed_urls(&app).await.is_empty(), "nothing is created");
    assert!(!app.was_notified().await, "nothing changed");
}

#[tokio::test]
async fn a_misshapen_item_is_named_too() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/sites/bulk",
            &json!([{"url": "https://a.test/"}, {"url": "https://b.test/", "intervall": 5}]),
        )
        .await;
    let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("Item 1: ") && detail.contains("intervall"),
        "{problem}"
    );
    assert_eq!(problem["field"], "[1].intervall", "{problem}");
    assert!(listed_urls(&app).await.is_empty(), "nothing is created");
}

#[tokio::test]
async fn a_body_that_is_not_an_array_is_a_problem() {
    let app = spawn_app().await;
    let response = app
        .post_json("/api/v1/sites/bulk", &json!({"url": "https://a.test/"}))
        .await;
    let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("array"),
        "{problem}"
    );
    assert!(listed_urls(&app).await.is_empty(), "nothing is created");
}

#[tokio::test]
async fn more_items_than_the_limit_is_a_problem_saying_the_limit() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..10_001)
        .map(|n| json!({"url": format!("http://s{n}.test/")}))
        .collect();
    let response = app
        .post_json("/api/v1/sites/bulk", &Value::Array(items))
        .await;
    let problem = response.assert_problem(StatusCode::PAYLOAD_TOO_LARGE);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("10000") && detail.contains("10001"),
        "{problem}"
    );
    assert!(listed_urls(&app).await.is_empty(), "nothing is created");
}

#[tokio::test]
async fn an_empty_array_creates_nothing() {
    let app = spawn_app().await;
    let response = app.post_json("/api/v1/sites/bulk", &json!([])).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(response.json(), json!({"items": []}));
    assert!(listed_urls(&app).await.is_empty());
}

#[tokio::test]
async fn a_bulk_body_may_exceed_the_limit_of_other_requests() {
    let app = spawn_app().await;
    let name = "n".repeat(200);
    let items: Vec<Value> = (0..5_000)
        .map(|i| json!({"url": format!("https://site-{i}.test/"), "name": name}))
        .collect();
    let body = Value::Array(items);
    assert!(
        body.to_string().len() > upwatch_api::DEFAULT_MAX_BODY_BYTES,
        "the body is above the default limit"
    );
    let response = app.post_json("/api/v1/sites/bulk", &body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(response.json()["items"].as_array().unwrap().len(), 5_000);
    // Other requests keep the default limit.
    let big = json!({"url": "https://one.test/", "name": "x".repeat(2 * 1024 * 1024)});
    let response = app.post_json("/api/v1/sites", &big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}
