//! Live status, from the cache and, when the cache fails, from the store.

use std::sync::Arc;
use upwatch_store::prelude::*;

use async_trait::async_trait;
use axum::http::StatusCode;
use serde_json::json;
use upwatch_cache::{CacheError, CacheResult, LiveStatus, StaleMark, StatusCache};
use uuid::Uuid;

use crate::helpers::{id_of, result, spawn_app, spawn_app_with, t, Options};

/// A cache whose every call fails, as an unreachable cache server would.
pub struct BrokenCache;

#[async_trait]
impl StatusCache for BrokenCache {
    async fn ping(&self) -> CacheResult<()> {
        Err(CacheError::Unavailable("connection refused".into()))
    }
    async fn get(&self, _id: Uuid) -> CacheResult<Option<LiveStatus>> {
        Err(CacheError::Unavailable("connection refused".into()))
    }
    async fn list(&self) -> CacheResult<Vec<LiveStatus>> {
        Err(CacheError::Unavailable("connection refused".into()))
    }
    async fn put(&self, _entry: &LiveStatus) -> CacheResult<bool> {
        Err(CacheError::Unavailable("connection refused".into()))
    }
    async fn remove(&self, _id: Uuid) -> CacheResult<()> {
        Err(CacheError::Unavailable("connection refused".into()))
    }
    async fn check_times(
        &self,
    ) -> CacheResult<std::collections::HashMap<Uuid, Option<chrono::DateTime<chrono::Utc>>>> {
        Err(CacheError::Unavailable("connection refused".into()))
    }
    async fn set_stale(&self, _marks: &[StaleMark], _cleared: &[Uuid]) -> CacheResult<()> {
        Err(CacheError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_new_monitor_is_pending_with_nulls() {
    let app = spawn_app().await;
    let site = app
        .create_site(json!({"url": "http://a.test/", "name": "A"}))
        .await;
    let id = id_of(&site);
    let response = app.get(&format!("/api/v1/sites/{id}/status")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({
            "id": id.to_string(),
            "name": "A",
            "url": "http://a.test/",
            "status": "pending",
            "response_time_ms": null,
            "last_checked": null,
            "last_status_change": null,
            "status_code": null,
            "error": null,
            "uptime_24h": null,
            "regions": [{
                "region": "default",
                "status": "pending",
                "response_time_ms": null,
                "last_checked": null,
                "error": null,
            }],
        })
    );
}

#[tokio::test]
async fn status_shows_the_latest_result_from_the_cache() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    // What the cache updater does with each result.
    app.cache_result(&result(id, 10, false)).await;

    let status = app.get(&format!("/api/v1/sites/{id}/status")).await.json();
    assert_eq!(status["status"], "down");
    assert_eq!(status["status_code"], 503);
    assert_eq!(status["response_time_ms"], 110);
    assert_eq!(status["error"]["kind"], "status_mismatch");
    assert_eq!(status["error"]["message"], "got HTTP 503, expected 2xx");
    let checked = chrono::DateTime::parse_from_rfc3339(status["last_checked"].as_str().unwrap())
        .expect("RFC 3339");
    assert_eq!(checked, t(10));
}

#[tokio::test]
async fn a_monitor_the_watchdog_marked_reads_stale_with_its_last_result_until_checked_again() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let other = id_of(&app.create_site(json!({"url": "http://b.test/"})).await);
    app.cache_result(&result(id, 10, true)).await;
    app.cache
        .set_stale(
            &[StaleMark {
                monitor_id: id,
                seen: Some(t(10)),
                since: t(50),
            }],
            &[],
        )
        .await
        .unwrap();

    let status = app.get(&format!("/api/v1/sites/{id}/status")).await.json();
    assert_eq!(status["status"], "stale");
    let at =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(
        at(&status["last_checked"]),
        t(10),
        "the time of its last result"
    );
    assert_eq!(at(&status["stale_since"]), t(50));
    assert_eq!(status["response_time_ms"], 110);
    let all = app.get("/api/v1/status").await.json();
    let statuses: Vec<(&str, Option<&str>)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["status"].as_str().unwrap(), s["id"].as_str()))
        .collect();
    assert!(statuses.contains(&("stale", Some(id.to_string().as_str()))));
    assert!(statuses.contains(&("pending", Some(other.to_string().as_str()))));
    let pending = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == other.to_string())
        .unwrap();
    assert!(
        pending.get("stale_since").is_none(),
        "only marked monitors say so"
    );
    let badge = app
        .get(&format!("/api/v1/sites/{id}/badge/status.svg"))
        .await
        .text();
    assert!(badge.contains(">stale<"), "{badge}");

    // The next result clears it.
    app.cache_result(&result(id, 20, true)).await;
    let status = app.get(&format!("/api/v1/sites/{id}/status")).await.json();
    assert_eq!(status["status"], "up");
    assert!(status.get("stale_since").is_none());
}

#[tokio::test]
async fn status_lists_every_monitor_in_id_order_with_paging() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(id_of(
            &app.create_site(json!({"url": format!("http://s{n}.test/")}))
                .await,
        ));
    }
    let all = app.get("/api/v1/status").await.json();
    let listed: Vec<Uuid> = all["items"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(listed, ids);
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "pending"));
    assert!(all["next_cursor"].is_null());

    let first = app.get("/api/v1/status?limit=2").await.json();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a next cursor");
    let second = app
        .get(&format!("/api/v1/status?limit=2&cursor={cursor}"))
        .await
        .json();
    let rest: Vec<Uuid> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(rest, [ids[2]]);
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn a_failing_cache_falls_back_to_the_store() {
    let app = spawn_app_with(Options {
        cache: Some(Arc::new(BrokenCache)),
        ..Options::default()
    })
    .await;
    let down = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let paused = id_of(
        &app.create_site(json!({"url": "http://b.test/", "enabled": false}))
            .await,
    );
    app.store
        .apply_result(&result(down, 5, false))
        .await
        .unwrap();

    let status = app.get(&format!("/api/v1/sites/{down}/status")).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text());
    assert_eq!(status.json()["status"], "down");
    assert_eq!(status.json()["status_code"], 503);

    let all = app.get("/api/v1/status").await.json();
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let by_id = |id: Uuid| items.iter().find(|s| id_of(s) == id).unwrap()["status"].clone();
    assert_eq!(by_id(down), "down");
    assert_eq!(by_id(paused), "paused");

    // Editing still works: the store holds the truth.
    let response = app
        .patch_json(&format!("/api/v1/sites/{down}"), &json!({"enabled": false}))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let status = app
        .get(&format!("/api/v1/sites/{down}/status"))
        .await
        .json();
    assert_eq!(status["status"], "paused");
}

#[tokio::test]
async fn status_of_an_unknown_monitor_is_404() {
    let app = spawn_app().await;
    let problem = app
        .get(&format!("/api/v1/sites/{}/status", Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    assert!(
        problem["detail"].as_str().unwrap().contains("no site"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_status_answer_is_served_again_until_its_monitor_changes() {
    // A window far longer than the test, so that what is asserted does not depend on timing.
    let app = spawn_app_with(Options {
        status_max_age: Some(std::time::Duration::from_secs(60)),
        ..Options::default()
    })
    .await;
    let id = id_of(
        &app.create_site(json!({"url": "http://a.test/", "name": "A"}))
            .await,
    );
    let uri = format!("/api/v1/sites/{id}/status");
    let first = app.get(&uri).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.header(axum::http::header::CONTENT_TYPE),
        Some("application/json")
    );
    assert_eq!(first.json()["status"], "pending");

    // A result reaches the cache: within the window the answer already built is served.
    app.cache_result(&result(id, 10, false)).await;
    let again = app.get(&uri).await;
    assert_eq!(again.body, first.body, "the same answer, byte for byte");

    // Changing the monitor forgets its answer: the next read shows the change and the result.
    let patched = app
        .patch_json(&format!("/api/v1/sites/{id}"), &json!({"name": "B"}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let after = app.get(&uri).await.json();
    assert_eq!(after["name"], "B");
    assert_eq!(after["status"], "down");

    // And deleting it too: no answer outlives its monitor.
    assert_eq!(
        app.delete(&format!("/api/v1/sites/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&uri).await.assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_fast_path_serves_fresh_answers_to_the_token_only() {
    const TOKEN: &str = "a-token-of-sixteen-chars";
    let mut app = spawn_app_with(Options {
        api_token: Some(TOKEN),
        status_max_age: Some(std::time::Duration::from_secs(60)),
        fast_reads: true,
        ..Options::default()
    })
    .await;
    app.token = Some(TOKEN.to_string());
    let id = id_of(
        &app.create_site(json!({"url": "http://a.test/", "name": "A"}))
            .await,
    );
    let uri = format!("/api/v1/sites/{id}/status");
    let first = app.get(&uri).await;
    assert_eq!(first.status, StatusCode::OK);
    // A result reaches the cache; within the window the fast path answers what it has.
    app.cache_result(&result(id, 10, false)).await;
    let again = app.get(&uri).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first.body);
    assert_eq!(
        again.header(axum::http::header::CONTENT_TYPE),
        Some("application/json")
    );

    // Without the token, or with another, a fresh answer is still refused.
    app.token = None;
    app.get(&uri).await.assert_problem(StatusCode::UNAUTHORIZED);
    app.token = Some("not-the-token-at-all".to_string());
    app.get(&uri).await.assert_problem(StatusCode::UNAUTHORIZED);

    // Everything else goes through the router: a query, other paths, other methods.
    app.token = Some(TOKEN.to_string());
    let with_query = app.get(&format!("{uri}?fresh=1")).await;
    assert_eq!(with_query.status, StatusCode::OK);
    assert_eq!(
        with_query.body, first.body,
        "the router reads the same memo"
    );
    let patched = app
        .patch_json(&format!("/api/v1/sites/{id}"), &json!({"name": "B"}))
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let after = app.get(&uri).await.json();
    assert_eq!(after["name"], "B");
    assert_eq!(after["status"], "down");
    app.get("/api/v1/sites/not-an-id/status")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}
