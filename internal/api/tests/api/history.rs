//! History: stored results, newest first, paged with opaque cursors.

use axum::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{id_of, insert_results, result, spawn_app, t};

fn times(page: &Value) -> Vec<chrono::DateTime<chrono::Utc>> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            chrono::DateTime::parse_from_rfc3339(item["checked_at"].as_str().unwrap())
                .expect("RFC 3339")
                .to_utc()
        })
        .collect()
}

#[tokio::test]
async fn history_is_newest_first_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let other = id_of(&app.create_site(json!({"url": "http://b.test/"})).await);
    let results: Vec<_> = (0..5).map(|s| result(id, s, s != 3)).collect();
    insert_results(&app, &results).await;
    insert_results(&app, &[result(other, 2, true)]).await;
    let uri = format!("/api/v1/sites/{id}/history");

    let all = app.get(&uri).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let all = all.json();
    assert_eq!(times(&all), [t(4), t(3), t(2), t(1), t(0)]);
    assert!(all["next_cursor"].is_null());
    let down = &all["items"][1];
    assert_eq!(down["status"], "down");
    assert_eq!(down["status_code"], 503);
    assert_eq!(down["response_time_ms"], 103);
    assert_eq!(down["error"]["kind"], "status_mismatch");
    assert_eq!(all["items"][0]["status"], "up");
    assert!(all["items"][0]["error"].is_null());

    let first = app.get(&format!("{uri}?limit=2")).await.json();
    assert_eq!(times(&first), [t(4), t(3)]);
    let cursor = first["next_cursor"].as_str().expect("a next cursor");
    let second = app
        .get(&format!("{uri}?limit=2&cursor={cursor}"))
        .await
        .json();
    assert_eq!(times(&second), [t(2), t(1)]);
    let cursor = second["next_cursor"].as_str().expect("a next cursor");
    let third = app
        .get(&format!("{uri}?limit=2&cursor={cursor}"))
        .await
        .json();
    assert_eq!(times(&third), [t(0)]);
    assert!(third["next_cursor"].is_null());
}

#[tokio::test]
async fn history_is_bounded_by_since_and_until() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    insert_results(
        &app,
        &(0..5).map(|s| result(id, s, true)).collect::<Vec<_>>(),
    )
    .await;
    let since = t(1).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let until = t(3).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let page = app
        .get(&format!(
            "/api/v1/sites/{id}/history?since={since}&until={until}"
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_eq!(
        times(&page.json()),
        [t(2), t(1)],
        "since is inclusive, until exclusive"
    );
}

#[tokio::test]
async fn history_of_a_new_monitor_is_empty() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let page = app.get(&format!("/api/v1/sites/{id}/history")).await.json();
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn history_refuses_bad_parameters_and_unknown_monitors() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let uri = format!("/api/v1/sites/{id}/history");

    let problem = app
        .get(&format!("{uri}?since=yesterday"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"].as_str().unwrap().contains("since"),
        "{problem}"
    );
    app.get(&format!("{uri}?until=2024-13-01"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    for cursor in [
        "garbage",
        "12_notauuid",
        "x_0190f5a46a477c1e9a8b3c2d1e0f9a7b",
    ] {
        let problem = app
            .get(&format!("{uri}?cursor={cursor}"))
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
        assert!(
            problem["detail"].as_str().unwrap().contains("cursor"),
            "{problem}"
        );
    }
    for limit in ["0", "1001", "-5", "many"] {
        app.get(&format!("{uri}?limit={limit}"))
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
    }
    app.get(&format!("/api/v1/sites/{}/history", Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}
