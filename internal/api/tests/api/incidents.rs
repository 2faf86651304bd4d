//! Incidents: opened when a monitor goes down, closed when it recovers, newest first.

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use upwatch_store::prelude::*;
use uuid::Uuid;

use crate::helpers::{id_of, result_at, spawn_app, TestApp};

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .to_utc()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("an id").to_string())
        .collect()
}

/// Applies results as the state updater does, in order.
async fn apply(app: &TestApp, results: &[(Uuid, DateTime<Utc>, bool)]) {
    for &(id, at, up) in results {
        app.store
            .apply_result(&result_at(id, at, up, 100))
            .await
            .expect("the result applies");
    }
}

/// Marks every pending delivery of `webhook` as sent.
async fn deliver_all(app: &TestApp, webhook: Uuid) -> u32 {
    let mut sent = 0;
    while let Some(delivery) = app.store.next_delivery(webhook).await.unwrap() {
        app.store.delivery_sent(delivery.id).await.unwrap();
        sent += 1;
    }
    sent
}

#[tokio::test]
async fn incidents_list_open_and_closed_ones_newest_first() {
    let app = spawn_app().await;
    let webhook = id_of(
        &app.post_json(
            "/api/v1/webhooks",
            &json!({"url": "https://discord.com/api/webhooks/1/secret", "name": "ops"}),
        )
        .await
        .json(),
    );
    let a = id_of(
        &app.create_site(json!({"url": "http://a.test/", "name": "Alpha"}))
            .await,
    );
    let b = id_of(
        &app.create_site(json!({"url": "http://b.test/", "name": "Beta"}))
            .await,
    );
    let now = Utc::now();
    let went_down = now - TimeDelta::hours(2);
    apply(
        &app,
        &[
            (a, now - TimeDelta::hours(3), true),
            (a, went_down, false),
            (a, now - TimeDelta::hours(1), true),
        ],
    )
    .await;
    // Down and recovery alerts of the first incident are delivered; later ones are not yet.
    assert_eq!(deliver_all(&app, webhook).await, 2);
    apply(
        &app,
        &[
            (a, now - TimeDelta::minutes(30), false),
            (b, now - TimeDelta::minutes(10), false),
        ],
    )
    .await;

    let response = app.get(&format!("/api/v1/sites/{a}/incidents")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let page = response.json();
    assert!(page["next_cursor"].is_null(), "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    let (open, closed) = (&items[0], &items[1]);

    assert_eq!(open["open"], true);
    assert!(open["ended_at"].is_null());
    assert_eq!(open["monitor_id"], a.to_string());
    let open_for = open["duration_seconds"].as_i64().unwrap();
    assert!((1800..1800 + 60).contains(&open_for), "{open}");
    assert_eq!(open["alerts_sent"], 0);
    assert!(open.get("monitor_name").is_none(), "{open}");

    assert_eq!(closed["open"], false);
    assert_eq!(
        time(&closed["started_at"]).timestamp_millis(),
        went_down.timestamp_millis()
    );
    assert_eq!(
        time(&closed["ended_at"]) - time(&closed["started_at"]),
        TimeDelta::hours(1)
    );
    assert_eq!(closed["duration_seconds"], 3600);
    assert_eq!(closed["status_code"], 503);
    assert_eq!(
        closed["first_error"],
        json!({"kind": "status_mismatch", "message": "got HTTP 503, expected 2xx"})
    );
    assert_eq!(closed["alerts_sent"], 2);

    // Pages of one.
    let uri = format!("/api/v1/sites/{a}/incidents");
    let first = app.get(&format!("{uri}?limit=1")).await.json();
    assert_eq!(ids(&first), [open["id"].as_str().unwrap()]);
    let cursor = first["next_cursor"].as_str().expect("a next cursor");
    let second = app
        .get(&format!("{uri}?limit=1&cursor={cursor}"))
        .await
        .json();
    assert_eq!(ids(&second), [closed["id"].as_str().unwrap()]);
    assert!(second["next_cursor"].is_null(), "{second}");
}

#[tokio::test]
async fn incidents_across_monitors_can_be_only_the_open_ones() {
    let app = spawn_app().await;
    let a = id_of(
        &app.create_site(json!({"url": "http://a.test/", "name": "Alpha"}))
            .await,
    );
    let b = id_of(
        &app.create_site(json!({"url": "http://b.test/", "name": "Beta"}))
            .await,
    );
    let now = Utc::now();
    apply(
        &app,
        &[
            (a, now - TimeDelta::hours(3), false),
            (a, now - TimeDelta::hours(2), true),
            (b, now - TimeDelta::minutes(20), false),
            (a, now - TimeDelta::minutes(10), false),
        ],
    )
    .await;

    let all = app.get("/api/v1/incidents").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let all = all.json();
    let summary: Vec<Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!([i["monitor_name"], i["open"]]))
        .collect();
    assert_eq!(
        summary,
        [
            json!(["Alpha", true]),
            json!(["Beta", true]),
            json!(["Alpha", false])
        ]
    );
    assert_eq!(app.get("/api/v1/incidents?open=false").await.json(), all);

    let open = app.get("/api/v1/incidents?open=true").await.json();
    assert_eq!(ids(&open), ids(&all)[..2]);
    assert!(open["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["open"] == true && i["ended_at"].is_null()));

    let first = app.get("/api/v1/incidents?open=true&limit=1").await.json();
    let cursor = first["next_cursor"].as_str().expect("a next cursor");
    let rest = app
        .get(&format!(
            "/api/v1/incidents?open=true&limit=1&cursor={cursor}"
        ))
        .await
        .json();
    assert_eq!(ids(&rest), ids(&all)[1..2]);
    assert!(rest["next_cursor"].is_null(), "{rest}");
}

#[tokio::test]
async fn incident_listings_refuse_bad_parameters() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    for uri in [
        "/api/v1/incidents".to_string(),
        format!("/api/v1/sites/{id}/incidents"),
    ] {
        for (query, names) in [
            ("open=yes", "`open`"),
            ("limit=0", "`limit`"),
            ("cursor=abc", "`cursor`"),
        ] {
            let problem = app
                .get(&format!("{uri}?{query}"))
                .await
                .assert_problem(StatusCode::BAD_REQUEST);
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains(names), "{uri}?{query}: {detail}");
        }
    }
    app.get(&format!("/api/v1/sites/{}/incidents", Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    let empty = app
        .get(&format!("/api/v1/sites/{id}/incidents"))
        .await
        .json();
    assert_eq!(empty, json!({"items": [], "next_cursor": null}));
}
