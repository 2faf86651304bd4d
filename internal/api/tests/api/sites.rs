//! Monitors: create, read, list, patch, delete.

use axum::http::{header, StatusCode};
use serde_json::json;

use crate::helpers::{id_of, spawn_app};

#[tokio::test]
async fn create_answers_201_with_location_and_defaults() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/sites",
            &json!({"url": "https://example.com/health"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let site = response.json();
    let id = id_of(&site);
    assert_eq!(
        response.header(header::LOCATION),
        Some(format!("/api/v1/sites/{id}").as_str())
    );
    assert_eq!(site["url"], "https://example.com/health");
    assert_eq!(site["name"], "example.com");
    assert_eq!(site["method"], "GET");
    assert_eq!(site["interval_seconds"], 300);
    assert_eq!(site["timeout_seconds"], 10);
    assert_eq!(site["enabled"], true);
    assert_eq!(site["follow_redirects"], true);
    assert_eq!(site["failure_threshold"], 1);
    assert!(
        app.was_notified().await,
        "the scheduler is told about the new monitor"
    );

    let stored = app.store_monitor(id).await;
    assert_eq!(stored["url"], "https://example.com/health");
    let fetched = app.get(&format!("/api/v1/sites/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json(), site);
}

#[tokio::test]
async fn seed_shorthand_for_one_expected_code_is_accepted() {
    let app = spawn_app().await;
    let site = app
        .create_site(json!({"url": "http://a.test/", "expected_status_code": 204}))
        .await;
    assert_eq!(site["expected_status_codes"], json!([204]));
}

#[tokio::test]
async fn listing_pages_through_monitors_in_creation_order() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let site = app
            .create_site(json!({"url": format!("http://site{n}.test/")}))
            .await;
        ids.push(site["id"].as_str().unwrap().to_string());
    }

    let first = app.get("/api/v1/sites?limit=2").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let first = first.json();
    let first_ids: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(first_ids, [ids[0].as_str(), ids[1].as_str()]);
    let cursor = first["next_cursor"].as_str().expect("a next cursor");
    assert_eq!(cursor, ids[1]);

    let second = app
        .get(&format!("/api/v1/sites?limit=2&cursor={cursor}"))
        .await
        .json();
    let items = second["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ids[2].as_str());
    assert!(second["next_cursor"].is_null());

    let all = app.get("/api/v1/sites").await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert!(all["next_cursor"].is_null());
}

#[tokio::test]
async fn patch_changes_only_the_named_fields() {
    let app = spawn_app().await;
    let site = app
        .create_site(
            json!({"url": "http://a.test/", "name": "A", "keyword": "ok", "interval_seconds": 60}),
        )
        .await;
    let id = id_of(&site);
    assert!(app.was_notified().await);

    let response = app
        .patch_json(
            &format!("/api/v1/sites/{id}"),
            &json!({"interval_seconds": 30, "keyword": null}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let patched = response.json();
    assert_eq!(patched["interval_seconds"], 30);
    assert!(patched["keyword"].is_null());
    for unchanged in [
        "id",
        "name",
        "url",
        "method",
        "timeout_seconds",
        "created_at",
        "enabled",
    ] {
        assert_eq!(patched[unchanged], site[unchanged], "{unchanged}");
    }
    assert!(
        app.was_notified().await,
        "the scheduler is told about the change"
    );
    assert_eq!(app.store_monitor(id).await["interval_seconds"], 30);

    // A plain application/json patch is accepted too.
    let response = app
        .raw(
            axum::http::Method::PATCH,
            &format!("/api/v1/sites/{id}"),
            "application/json",
            json!({"name": "Renamed"}).to_string(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["name"], "Renamed");
    let status = app.get(&format!("/api/v1/sites/{id}/status")).await.json();
    assert_eq!(
        status["name"], "Renamed",
        "the cached status shows the new name"
    );
}

#[tokio::test]
async fn disabling_pauses_and_enabling_restores_the_status() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let uri = format!("/api/v1/sites/{id}");
    let status_uri = format!("/api/v1/sites/{id}/status");
    assert_eq!(app.get(&status_uri).await.json()["status"], "pending");

    let response = app.patch_json(&uri, &json!({"enabled": false})).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["enabled"], false);
    let status = app.get(&status_uri).await.json();
    assert_eq!(status["status"], "paused");
    assert!(status["last_status_change"].is_string());
    let listed = app.get("/api/v1/status").await.json();
    assert_eq!(listed["items"][0]["status"], "paused");

    app.patch_json(&uri, &json!({"enabled": true})).await;
    assert_eq!(app.get(&status_uri).await.json()["status"], "pending");
}

#[tokio::test]
async fn creating_a_disabled_monitor_shows_it_paused() {
    let app = spawn_app().await;
    let id = id_of(
        &app.create_site(json!({"url": "http://a.test/", "enabled": false}))
            .await,
    );
    let status = app.get(&format!("/api/v1/sites/{id}/status")).await.json();
    assert_eq!(status["status"], "paused");
}

#[tokio::test]
async fn delete_answers_204_then_the_monitor_is_gone() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let keep = id_of(&app.create_site(json!({"url": "http://b.test/"})).await);
    assert!(app.was_notified().await);
    let uri = format!("/api/v1/sites/{id}");

    let response = app.delete(&uri).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    assert!(
        app.was_notified().await,
        "the scheduler is told about the deletion"
    );

    app.get(&uri).await.assert_problem(StatusCode::NOT_FOUND);
    app.delete(&uri).await.assert_problem(StatusCode::NOT_FOUND);
    app.get(&format!("{uri}/status"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    let listed = app.get("/api/v1/status").await.json();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [keep.to_string().as_str()]);
}
