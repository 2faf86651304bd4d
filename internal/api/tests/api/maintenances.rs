//! Maintenance windows: one-off and recurring, shown with what they mean now, and every bad
//! input a 422 naming its field.

use axum::http::{header, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use upwatch_store::prelude::*;
use uuid::Uuid;

use crate::helpers::{id_of, spawn_app, TestApp};

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a time: {value}"))
        .parse()
        .expect("an RFC 3339 time")
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An app with a monitor in group `API`; returns its id.
async fn app_with_monitor() -> (TestApp, Uuid) {
    let app = spawn_app().await;
    let site = app
        .create_site(json!({"url": "http://127.0.0.1:9/", "group": "API"}))
        .await;
    (app, id_of(&site))
}

#[tokio::test]
async fn a_one_off_window_is_created_active_and_echoed() {
    let (app, monitor) = app_with_monitor().await;
    assert!(app.was_notified().await, "the monitor's creation");
    let now = Utc::now();
    let (start, end) = (now - TimeDelta::hours(1), now + TimeDelta::hours(1));
    let response = app
        .post_json(
            "/api/v1/maintenances",
            &json!({"title": " Database upgrade ", "description": "v17",
                    "monitor_ids": [monitor], "start": rfc3339(start), "end": rfc3339(end)}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert!(
        app.was_notified().await,
        "the scheduler is told of the window"
    );
    let window = response.json();
    let id = id_of(&window);
    assert_eq!(
        response.header(header::LOCATION),
        Some(format!("/api/v1/maintenances/{id}").as_str())
    );
    assert_eq!(window["title"], "Database upgrade");
    assert_eq!(window["description"], "v17");
    assert_eq!(window["monitor_ids"], json!([monitor]));
    assert_eq!(window["groups"], json!([]));
    assert_eq!(window["all"], false);
    assert_eq!(time(&window["start"]), time(&json!(rfc3339(start))));
    assert_eq!(time(&window["end"]), time(&json!(rfc3339(end))));
    assert_eq!(window["rrule"], Value::Null);
    assert_eq!(window["active"], true);
    assert_eq!(time(&window["current"]["start"]), time(&window["start"]));
    assert_eq!(time(&window["current"]["end"]), time(&window["end"]));
    assert_eq!(window["next"], Value::Null);

    let got = app.get(&format!("/api/v1/maintenances/{id}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(got.json()["title"], "Database upgrade");
    assert_eq!(got.json()["active"], true);
    assert!(app.store.get_maintenance(id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_future_window_is_inactive_with_its_next_occurrence() {
    let (app, _) = app_with_monitor().await;
    let start = Utc::now() + TimeDelta::days(1);
    let window = app
        .post_json(
            "/api/v1/maintenances",
            &json!({"title": "Later", "groups": ["API"],
                    "start": rfc3339(start), "end": rfc3339(start + TimeDelta::hours(2))}),
        )
        .await;
    assert_eq!(window.status, StatusCode::CREATED, "{}", window.text());
    let window = window.json();
    assert_eq!(window["groups"], json!(["API"]));
    assert_eq!(window["active"], false);
    assert_eq!(window["current"], Value::Null);
    assert_eq!(time(&window["next"]["start"]), time(&window["start"]));
}

#[tokio::test]
async fn a_recurring_window_shows_its_next_occurrence() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/maintenances",
            &json!({"title": "Sunday backups", "all": true,
                    "rrule": "RRULE:FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "duration": "120m",
                    "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let window = response.json();
    assert_eq!(window["all"], true);
    assert_eq!(window["rrule"], "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2");
    assert_eq!(window["duration"], "2h");
    assert_eq!(window["timezone"], "Europe/Berlin");
    assert_eq!(window["start"], Value::Null);
    assert_eq!(window["end"], Value::Null);
    assert_eq!(window["active"], !window["current"].is_null());
    let next_start = time(&window["next"]["start"]);
    assert!(next_start > time(&window["created_at"]));
    assert!(next_start <= Utc::now() + TimeDelta::days(7));
    assert_eq!(
        time(&window["next"]["end"]) - next_start,
        TimeDelta::hours(2)
    );
}

#[tokio::test]
async fn windows_are_listed_oldest_first_patched_and_deleted() {
    let (app, monitor) = app_with_monitor().await;
    let now = Utc::now();
    let first = id_of(
        &app.post_json(
            "/api/v1/maintenances",
            &json!({"title": "One", "monitor_ids": [monitor],
                    "start": rfc3339(now + TimeDelta::hours(1)),
                    "end": rfc3339(now + TimeDelta::hours(2))}),
        )
        .await
        .json(),
    );
    let second = id_of(
        &app.post_json(
            "/api/v1/maintenances",
            &json!({"title": "Two", "all": true,
                    "rrule": "FREQ=DAILY;BYHOUR=3", "duration": "1h", "timezone": "UTC"}),
        )
        .await
        .json(),
    );
    let listed = app.get("/api/v1/maintenances").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let listed = listed.json();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.iter().map(id_of).collect::<Vec<_>>(), [first, second]);
    assert_eq!(items[0]["active"], false);
    assert!(items[0]["next"].is_object());
    assert!(items[1]["next"].is_object());

    // A new title; the rest stays.
    let response = app
        .patch_json(
            &format!("/api/v1/maintenances/{first}"),
            &json!({"title": "One, renamed"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(app.was_notified().await);
    let patched = response.json();
    assert_eq!(patched["title"], "One, renamed");
    assert_eq!(patched["monitor_ids"], json!([monitor]));
    assert!(patched["start"].is_string());
    assert!(time(&patched["updated_at"]) >= time(&patched["created_at"]));

    // One-off to recurring: the one-off fields are cleared with null.
    let response = app
        .patch_json(
            &format!("/api/v1/maintenances/{first}"),
            &json!({"start": null, "end": null, "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=22",
                    "duration": "3h", "timezone": "America/New_York"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let patched = response.json();
    assert_eq!(patched["start"], Value::Null);
    assert_eq!(patched["end"], Value::Null);
    assert_eq!(patched["rrule"], "FREQ=WEEKLY;BYDAY=SA;BYHOUR=22");
    assert_eq!(patched["duration"], "3h");
    assert_eq!(patched["timezone"], "America/New_York");
    assert_eq!(patched["title"], "One, renamed");
    assert!(patched["next"].is_object());
    let stored = app.get(&format!("/api/v1/maintenances/{first}")).await;
    assert_eq!(stored.json()["rrule"], "FREQ=WEEKLY;BYDAY=SA;BYHOUR=22");

    // A patch that would leave the window invalid changes nothing.
    app.patch_json(
        &format!("/api/v1/maintenances/{first}"),
        &json!({"duration": "8d"}),
    )
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    let problem = app
        .patch_json(
            &format!("/api/v1/maintenances/{first}"),
            &json!({"groups": ["Nope"]}),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "groups");
    let problem = app
        .patch_json(
            &format!("/api/v1/maintenances/{first}"),
            &json!({"titel": "typo"}),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "titel");
    let stored = app.get(&format!("/api/v1/maintenances/{first}")).await;
    assert_eq!(stored.json()["duration"], "3h");

    let response = app.delete(&format!("/api/v1/maintenances/{first}")).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    assert!(app.was_notified().await);
    app.get(&format!("/api/v1/maintenances/{first}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    app.delete(&format!("/api/v1/maintenances/{first}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    let listed = app.get("/api/v1/maintenances").await.json();
    assert_eq!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect::<Vec<_>>(),
        [second]
    );
}

#[tokio::test]
async fn an_unknown_id_is_a_404_problem() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let problem = app
        .get(&format!("/api/v1/maintenances/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&id.to_string()),
        "{problem}"
    );
    app.patch_json(
        &format!("/api/v1/maintenances/{id}"),
        &json!({"title": "x"}),
    )
    .await
    .assert_problem(StatusCode::NOT_FOUND);
    app.delete(&format!("/api/v1/maintenances/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    app.get("/api/v1/maintenances/not-a-uuid")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_bad_window_is_a_422_naming_the_field() {
    let (app, monitor) = app_with_monitor().await;
    let unknown = Uuid::now_v7();
    let once = |extra: Value| {
        let mut body = json!({"title": "t", "monitor_ids": [monitor],
                              "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T12:00:00Z"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let recurring = |extra: Value| {
        let mut body = json!({"title": "t", "all": true, "rrule": "FREQ=DAILY;BYHOUR=2",
                              "duration": "1h", "timezone": "Europe/Berlin"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (once(json!({"end": "2030-01-01T09:00:00Z"})), "end", None),
        (recurring(json!({"rrule": "FREQ=SOMETIMES"})), "rrule", None),
        (recurring(json!({"rrule": "not a rule"})), "rrule", None),
        (
            recurring(json!({"timezone": "Mars/Olympus_Mons"})),
            "timezone",
            Some("Mars/Olympus_Mons"),
        ),
        (
            recurring(json!({"duration": "25h"})),
            "duration",
            Some("longer"),
        ),
        (
            once(json!({"monitor_ids": [monitor, unknown]})),
            "monitor_ids",
            Some("not the id"),
        ),
        (
            once(json!({"monitor_ids": [], "groups": ["Web"]})),
            "groups",
            Some("`Web`"),
        ),
        (once(json!({"monitor_ids": []})), "monitor_ids", None),
        (once(json!({"titel": "typo"})), "titel", None),
        (once(json!({"title": ""})), "title", None),
        (once(json!({"start": "yesterday"})), "start", None),
    ];
    for (body, field, words) in cases {
        let problem = app
            .post_json("/api/v1/maintenances", &body)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["field"], field, "{body}: {problem}");
        if let Some(words) = words {
            assert!(
                problem["detail"].as_str().unwrap().contains(words),
                "{body}: {problem}"
            );
        }
    }
    // The unknown monitor's id is named.
    let problem = app
        .post_json(
            "/api/v1/maintenances",
            &once(json!({"monitor_ids": [unknown]})),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&unknown.to_string()),
        "{problem}"
    );
    app.post_json("/api/v1/maintenances", &json!(["t"]))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.get("/api/v1/maintenances").await.json()["items"]
        .as_array()
        .unwrap()
        .is_empty());
}
