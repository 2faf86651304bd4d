//! Uptime over windows, read from rollups, and the 24-hour uptime of the status endpoints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};
use upwatch_store::intercept::Intercepted;
use upwatch_store::Store;
use uuid::Uuid;

use crate::helpers::{id_of, insert_results, result_at, spawn_app, spawn_app_with, Options};

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .to_utc()
}

/// The counts of one window, without its times.
fn counts(window: &Value) -> Value {
    json!({
        "window": window["window"],
        "uptime_percent": window["uptime_percent"],
        "checks": window["checks"],
        "up": window["up"],
        "down": window["down"],
    })
}

#[tokio::test]
async fn uptime_counts_each_window_ending_now() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let other = id_of(&app.create_site(json!({"url": "http://b.test/"})).await);
    let now = Utc::now();
    let mut results = Vec::new();
    // The last day: 9 up, 1 down.
    for i in 0..10 {
        results.push(result_at(id, now - TimeDelta::minutes(60 + i), i != 4, 100));
    }
    // Three days ago: 5 down. Twenty days ago: 4 up. Sixty days ago: 2 down.
    for (days_ago, checks, up) in [(3, 5, false), (20, 4, true), (60, 2, false)] {
        for i in 0..checks {
            results.push(result_at(
                id,
                now - TimeDelta::days(days_ago) + TimeDelta::minutes(i),
                up,
                100,
            ));
        }
    }
    // Another monitor's results must not count.
    results.push(result_at(other, now - TimeDelta::hours(2), false, 100));
    insert_results(&app, &results).await;

    let response = app.get(&format!("/api/v1/sites/{id}/uptime")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let body = response.json();
    assert_eq!(body["monitor_id"], id.to_string());
    let windows = body["windows"].as_array().expect("windows");
    assert_eq!(
        windows.iter().map(counts).collect::<Vec<_>>(),
        [
            json!({"window": "24h", "uptime_percent": 90.0, "checks": 10, "up": 9, "down": 1}),
            json!({"window": "7d", "uptime_percent": 60.0, "checks": 15, "up": 9, "down": 6}),
            // 13 of 19 is 68.421...%, rounded down.
            json!({"window": "30d", "uptime_percent": 68.42, "checks": 19, "up": 13, "down": 6}),
            // 13 of 21 is 61.904...%.
            json!({"window": "90d", "uptime_percent": 61.9, "checks": 21, "up": 13, "down": 8}),
        ]
    );
    let (from, to) = (time(&windows[0]["from"]), time(&windows[0]["to"]));
    assert!(
        to >= now && to - now < TimeDelta::minutes(1),
        "{to} vs {now}"
    );
    assert_eq!(
        to - from,
        TimeDelta::hours(24),
        "minute rollups of a day are kept"
    );
    let (from, to) = (time(&windows[3]["from"]), time(&windows[3]["to"]));
    assert!(to - from >= TimeDelta::days(90), "{from}..{to}");
}

#[tokio::test]
async fn time_without_checks_counts_neither_as_up_nor_as_down() {
    let app = spawn_app().await;
    let half = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let idle = id_of(&app.create_site(json!({"url": "http://b.test/"})).await);
    let now = Utc::now();
    // Checked every 10 minutes during the last 12 hours only, as if paused before that.
    let results: Vec<_> = (1..=72)
        .map(|i| result_at(half, now - TimeDelta::minutes(10 * i), true, 120))
        .collect();
    insert_results(&app, &results).await;

    let day = &app
        .get(&format!("/api/v1/sites/{half}/uptime"))
        .await
        .json()["windows"][0];
    assert_eq!(
        counts(day),
        json!({"window": "24h", "uptime_percent": 100.0, "checks": 72, "up": 72, "down": 0})
    );
    let idle_day = &app
        .get(&format!("/api/v1/sites/{idle}/uptime"))
        .await
        .json()["windows"][0];
    assert_eq!(
        counts(idle_day),
        json!({"window": "24h", "uptime_percent": null, "checks": 0, "up": 0, "down": 0})
    );
}

#[tokio::test]
async fn a_range_of_ones_own_is_one_window() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let now = Utc::now();
    let mut results: Vec<_> = (0..3)
        .map(|i| {
            result_at(
                id,
                now - TimeDelta::hours(5) + TimeDelta::minutes(i),
                true,
                100,
            )
        })
        .collect();
    results.push(result_at(id, now - TimeDelta::hours(3), false, 100));
    insert_results(&app, &results).await;

    let (from, to) = (now - TimeDelta::hours(4), now - TimeDelta::hours(2));
    let response = app
        .get(&format!(
            "/api/v1/sites/{id}/uptime?from={}&to={}",
            rfc3339(from),
            rfc3339(to)
        ))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let windows = response.json()["windows"].clone();
    assert_eq!(windows.as_array().unwrap().len(), 1, "{windows}");
    assert_eq!(
        counts(&windows[0]),
        json!({"window": null, "uptime_percent": 0.0, "checks": 1, "up": 0, "down": 1})
    );
    assert_eq!(rfc3339(time(&windows[0]["from"])), rfc3339(from));
    assert_eq!(rfc3339(time(&windows[0]["to"])), rfc3339(to));
}

#[tokio::test]
async fn uptime_refuses_bad_ranges_and_unknown_monitors() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let uri = format!("/api/v1/sites/{id}/uptime");
    let now = Utc::now();
    let (earlier, later) = (rfc3339(now - TimeDelta::hours(2)), rfc3339(now));

    for (query, names) in [
        (format!("from={earlier}"), "`to`"),
        (format!("to={later}"), "`from`"),
        (format!("from=yesterday&to={later}"), "`from`"),
        (format!("from={earlier}&to=2024-13-01"), "`to`"),
        (format!("from={later}&to={earlier}"), "earlier"),
        (format!("from={later}&to={later}"), "earlier"),
        (
            "from=1900-01-01T00:00:00Z&to=2100-01-01T00:00:00Z".to_string(),
            "days",
        ),
    ] {
        let problem = app
            .get(&format!("{uri}?{query}"))
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(names), "{query}: {detail}");
        assert!(detail.ends_with('.'), "a sentence: {detail}");
    }
    app.get(&format!("/api/v1/sites/{}/uptime", Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    app.get("/api/v1/sites/not-an-id/uptime")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_shows_the_uptime_of_the_last_day_memoized_for_a_minute() {
    let app = spawn_app().await;
    let checked = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let idle = id_of(&app.create_site(json!({"url": "http://b.test/"})).await);
    let now = Utc::now();
    let mut results: Vec<_> = (1..=3)
        .map(|i| result_at(checked, now - TimeDelta::hours(i), true, 100))
        .collect();
    results.push(result_at(checked, now - TimeDelta::hours(4), false, 100));
    // Older than a day: not counted.
    results.push(result_at(checked, now - TimeDelta::hours(30), false, 100));
    insert_results(&app, &results).await;

    let all = app.get("/api/v1/status").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let all = all.json();
    let uptime_of = |page: &Value, id: Uuid| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| id_of(s) == id)
            .expect("listed")["uptime_24h"]
            .clone()
    };
    assert_eq!(uptime_of(&all, checked), json!(75.0));
    assert_eq!(uptime_of(&all, idle), Value::Null);
    let one = app
        .get(&format!("/api/v1/sites/{checked}/status"))
        .await
        .json();
    assert_eq!(one["uptime_24h"], json!(75.0));

    // A minute's memo: new results show in the uptime endpoint at once, in status later.
    let more: Vec<_> = (1..=4)
        .map(|i| result_at(checked, now - TimeDelta::minutes(10 * i), false, 100))
        .collect();
    insert_results(&app, &more).await;
    let all = app.get("/api/v1/status").await.json();
    assert_eq!(uptime_of(&all, checked), json!(75.0));
    let day = &app
        .get(&format!("/api/v1/sites/{checked}/uptime"))
        .await
        .json()["windows"][0];
    assert_eq!(day["uptime_percent"], json!(37.5));
}

#[tokio::test]
async fn the_status_page_reads_rollups_once_for_all_its_monitors_and_no_raw_results() {
    let rollup_reads = Arc::new(Mutex::new(Vec::new()));
    let history_reads = Arc::new(AtomicUsize::new(0));
    let (r, h) = (rollup_reads.clone(), history_reads.clone());
    let app = spawn_app_with(Options {
        wrap_store: Some(Box::new(move |inner| {
            Arc::new(Intercepted::new(inner, move |call| {
                match call.method {
                    "rollups" => r.lock().unwrap().push(call.monitors),
                    "history" => {
                        h.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
                Ok(())
            })) as Arc<dyn Store>
        })),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(id_of(
            &app.create_site(json!({"url": format!("http://s{n}.test/")}))
                .await,
        ));
    }
    let now = Utc::now();
    let results: Vec<_> = ids
        .iter()
        .enumerate()
        .flat_map(|(n, &id)| {
            (0..=n as i64).map(move |i| result_at(id, now - TimeDelta::minutes(5 + i), i != 1, 100))
        })
        .collect();
    insert_results(&app, &results).await;

    let page = app.get("/api/v1/status?limit=2").await.json();
    let uptimes: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["uptime_24h"].clone())
        .collect();
    assert_eq!(uptimes, [json!(100.0), json!(50.0)]);
    assert_eq!(
        *rollup_reads.lock().unwrap(),
        [2],
        "one read for the page's two monitors"
    );

    let all = app.get("/api/v1/status").await.json();
    assert_eq!(all["items"][2]["uptime_24h"], json!(66.66));
    assert_eq!(
        *rollup_reads.lock().unwrap(),
        [2, 1],
        "only the monitor not read a minute ago is read"
    );
    assert_eq!(
        history_reads.load(Ordering::SeqCst),
        0,
        "no raw results are read"
    );
}
