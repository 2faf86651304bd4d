//! Regions: a monitor's `regions`, `quorum` and `proxy` checked against the regions there
//! are, the proxy's password never shown, each region's live status, and history and
//! response times of one region.

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use upwatch_cache::LiveStatus;
use upwatch_core::state::{RegionState, RegionStatus};
use upwatch_core::{CheckError, CheckResult, ErrorKind};
use upwatch_store::prelude::*;

use crate::helpers::{
    id_of, insert_results, result, result_at, spawn_app_with, t, Options, TestApp,
};

/// An app whose regions are `a`, `b` and `c`.
async fn three_regions() -> TestApp {
    spawn_app_with(Options {
        regions: Some(vec!["a".into(), "b".into(), "c".into()]),
        ..Options::default()
    })
    .await
}

#[track_caller]
fn assert_names(problem: &Value, field: &str) {
    assert_eq!(problem["field"], field, "{problem}");
}

fn in_region(mut result: CheckResult, region: &str) -> CheckResult {
    result.region = region.to_string();
    result
}

#[tokio::test]
async fn a_monitor_names_only_regions_that_exist() {
    let app = three_regions().await;
    let unknown = app
        .post_json(
            "/api/v1/sites",
            &json!({"url": "http://a.test/", "regions": ["a", "mars"]}),
        )
        .await;
    let problem = unknown.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_names(&problem, "regions");
    assert!(
        problem["detail"].as_str().unwrap().contains("mars"),
        "{problem}"
    );

    let bulk = app
        .post_json(
            "/api/v1/sites/bulk",
            &json!([{"url": "http://a.test/"}, {"url": "http://b.test/", "regions": ["x"]}]),
        )
        .await;
    assert_names(
        &bulk.assert_problem(StatusCode::UNPROCESSABLE_ENTITY),
        "[1].regions",
    );
    assert!(app.store.all_monitors().await.unwrap().is_empty());

    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let patched = app
        .patch_json(&format!("/api/v1/sites/{id}"), &json!({"regions": ["zz"]}))
        .await;
    assert_names(
        &patched.assert_problem(StatusCode::UNPROCESSABLE_ENTITY),
        "regions",
    );
    assert!(app.store_monitor(id).await.get("regions").is_none());
}

#[tokio::test]
async fn the_quorum_is_at_least_one_and_at_most_the_regions() {
    let app = three_regions().await;
    for body in [
        json!({"url": "http://a.test/", "quorum": 0}),
        // More than the regions it names.
        json!({"url": "http://a.test/", "regions": ["a", "b"], "quorum": 3}),
        // More than the regions there are, when it names none (all of them check it).
        json!({"url": "http://a.test/", "quorum": 4}),
    ] {
        let response = app.post_json("/api/v1/sites", &body).await;
        assert_names(
            &response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY),
            "quorum",
        );
    }
    let id = id_of(
        &app.create_site(json!({"url": "http://a.test/", "quorum": 3}))
            .await,
    );
    let patched = app
        .patch_json(&format!("/api/v1/sites/{id}"), &json!({"regions": ["a"]}))
        .await;
    assert_names(
        &patched.assert_problem(StatusCode::UNPROCESSABLE_ENTITY),
        "quorum",
    );
    let bulk = app
        .post_json(
            "/api/v1/sites/bulk",
            &json!([{"url": "http://b.test/", "quorum": 9}]),
        )
        .await;
    assert_names(
        &bulk.assert_problem(StatusCode::UNPROCESSABLE_ENTITY),
        "[0].quorum",
    );
}

#[tokio::test]
async fn with_one_region_a_monitor_may_name_only_the_default() {
    let app = spawn_app_with(Options::default()).await;
    app.create_site(json!({"url": "http://a.test/", "regions": ["default"], "quorum": 1}))
        .await;
    let response = app
        .post_json(
            "/api/v1/sites",
            &json!({"url": "http://a.test/", "regions": ["eu-west"]}),
        )
        .await;
    assert_names(
        &response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY),
        "regions",
    );
}

#[tokio::test]
async fn regions_quorum_and_proxy_round_trip_with_the_password_hidden() {
    let app = three_regions().await;
    let proxy = "http://user:s3cret@proxy.internal:3128";
    let hidden = "http://user:********@proxy.internal:3128";
    let created = app
        .create_site(json!({
            "url": "http://a.test/", "regions": ["b", "a"], "quorum": 2, "proxy": proxy
        }))
        .await;
    let id = id_of(&created);
    assert_eq!(created["regions"], json!(["b", "a"]));
    assert_eq!(created["quorum"], 2);
    assert_eq!(created["proxy"], hidden);
    // The store keeps it whole: the workers need the password.
    assert_eq!(app.store_monitor(id).await["proxy"], proxy);

    let uri = format!("/api/v1/sites/{id}");
    let read = app.get(&uri).await.json();
    assert_eq!(
        (&read["regions"], &read["quorum"], &read["proxy"]),
        (&json!(["b", "a"]), &json!(2), &json!(hidden))
    );
    let listed = app.get("/api/v1/sites").await.json();
    assert_eq!(listed["items"][0]["proxy"], hidden);
    assert!(!app.get("/api/v1/sites").await.text().contains("s3cret"));

    // A patch without `proxy` keeps it; one that sends back what the API showed keeps it too.
    let patched = app.patch_json(&uri, &json!({"name": "renamed"})).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    assert_eq!(patched.json()["proxy"], hidden);
    assert_eq!(app.store_monitor(id).await["proxy"], proxy);
    let sent_back = app
        .patch_json(&uri, &json!({"proxy": hidden, "quorum": 1}))
        .await;
    assert_eq!(sent_back.status, StatusCode::OK, "{}", sent_back.text());
    assert_eq!(app.store_monitor(id).await["proxy"], proxy);
    assert_eq!(app.store_monitor(id).await["quorum"], 1);

    // A new password replaces it; `null` removes the proxy.
    let other = "socks5://user:other@127.0.0.1:1080";
    let changed = app.patch_json(&uri, &json!({"proxy": other})).await.json();
    assert_eq!(changed["proxy"], "socks5://user:********@127.0.0.1:1080");
    assert_eq!(app.store_monitor(id).await["proxy"], other);
    let removed = app.patch_json(&uri, &json!({"proxy": null})).await.json();
    assert!(removed.get("proxy").is_none(), "{removed}");

    let bulk = app
        .post_json(
            "/api/v1/sites/bulk",
            &json!([{"url": "http://b.test/", "proxy": proxy, "regions": ["c"]}]),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::CREATED, "{}", bulk.text());
    let item = &bulk.json()["items"][0];
    assert_eq!(item["proxy"], hidden);
    assert_eq!(item["regions"], json!(["c"]));
    assert_eq!(app.store_monitor(id_of(item)).await["proxy"], proxy);
}

#[tokio::test]
async fn the_status_of_a_monitor_shows_each_region_that_checks_it() {
    let app = three_regions().await;
    let id = id_of(
        &app.create_site(
            json!({"url": "http://a.test/", "regions": ["b", "a"], "interval_seconds": 30}),
        )
        .await,
    );
    let monitor = app.store.get_monitor(id).await.unwrap().unwrap();
    let now = Utc::now();
    let mut state = monitor.initial_state();
    state.regions.insert(
        "a".into(),
        RegionState {
            status: RegionStatus::Down,
            last_checked: now - TimeDelta::seconds(5),
            consecutive_failures: 3,
            consecutive_successes: 0,
            response_time_ms: Some(812),
            status_code: None,
            error: Some(CheckError::new(ErrorKind::Timeout, "no answer within 10 s")),
            settled: None,
        },
    );
    // A region that no longer checks it is not listed.
    state.regions.insert(
        "c".into(),
        RegionState {
            status: RegionStatus::Up,
            last_checked: now,
            consecutive_failures: 0,
            consecutive_successes: 1,
            response_time_ms: Some(10),
            status_code: Some(200),
            error: None,
            settled: None,
        },
    );
    app.cache
        .put(&LiveStatus::new(&monitor, state.clone()))
        .await
        .unwrap();

    let status = app.get(&format!("/api/v1/sites/{id}/status")).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text());
    let regions = status.json()["regions"].clone();
    assert_eq!(regions.as_array().map(Vec::len), Some(2), "{regions}");
    assert_eq!(regions[0]["region"], "b");
    assert_eq!(regions[0]["status"], "pending");
    assert!(regions[0]["last_checked"].is_null());
    assert_eq!(regions[1]["region"], "a");
    assert_eq!(regions[1]["status"], "down");
    assert_eq!(regions[1]["response_time_ms"], 812);
    assert_eq!(regions[1]["error"]["kind"], "timeout");
    assert!(regions[1]["last_checked"].is_string());

    // Silent for more than two intervals: unknown.
    state.regions.get_mut("a").unwrap().last_checked = now - TimeDelta::seconds(61);
    state.last_checked = Some(now);
    app.cache.remove(id).await.unwrap();
    app.cache
        .put(&LiveStatus::new(&monitor, state))
        .await
        .unwrap();
    let regions = app.get(&format!("/api/v1/sites/{id}/status")).await.json()["regions"].clone();
    assert_eq!(regions[1]["status"], "unknown", "{regions}");

    // The listing shows the monitors' overall status only.
    let listing = app.get("/api/v1/status").await.json();
    assert!(listing["items"][0].get("regions").is_none(), "{listing}");
}

#[tokio::test]
async fn without_regions_of_its_own_every_region_is_listed() {
    let app = three_regions().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let regions = app.get(&format!("/api/v1/sites/{id}/status")).await.json()["regions"].clone();
    let names: Vec<&str> = regions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(regions
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "pending"));
}

#[tokio::test]
async fn history_is_filtered_by_region_and_names_it() {
    let app = three_regions().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    insert_results(
        &app,
        &[
            in_region(result(id, 0, true), "a"),
            in_region(result(id, 1, false), "b"),
            in_region(result(id, 2, true), "a"),
            in_region(result(id, 3, true), "b"),
        ],
    )
    .await;
    let uri = format!("/api/v1/sites/{id}/history");
    let all = app.get(&uri).await.json();
    let regions: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["b", "a", "b", "a"]);

    let b = app.get(&format!("{uri}?region=b")).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    let b = b.json();
    let times: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["region"], "b");
            i["checked_at"].as_str().unwrap()
        })
        .collect();
    assert_eq!(times.len(), 2, "{b}");
    assert_eq!(
        DateTime::parse_from_rfc3339(times[0]).unwrap().to_utc(),
        t(3)
    );
    // Pages of one region continue in that region.
    let first = app.get(&format!("{uri}?region=a&limit=1")).await.json();
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let second = app
        .get(&format!("{uri}?region=a&limit=1&cursor={cursor}"))
        .await
        .json();
    assert_eq!(second["items"][0]["region"], "a");
    assert_eq!(
        DateTime::parse_from_rfc3339(second["items"][0]["checked_at"].as_str().unwrap())
            .unwrap()
            .to_utc(),
        t(0)
    );
    assert!(second["next_cursor"].is_null());

    for bad in ["EU", "a%20b", "", "x/y"] {
        let response = app.get(&format!("{uri}?region={bad}")).await;
        assert_names(&response.assert_problem(StatusCode::BAD_REQUEST), "region");
    }
}

#[tokio::test]
async fn response_times_of_one_region_come_from_its_results() {
    let app = three_regions().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let hour = {
        let s = Utc::now().timestamp();
        DateTime::from_timestamp(s - s.rem_euclid(3600), 0).unwrap()
    };
    let busy = hour - TimeDelta::hours(2);
    let mut results = Vec::new();
    for i in 0..4 {
        let at = busy + TimeDelta::minutes(5 * i + 1);
        results.push(in_region(result_at(id, at, true, 100), "a"));
        results.push(in_region(result_at(id, at, i != 3, 1000), "b"));
    }
    insert_results(&app, &results).await;
    let uri = format!("/api/v1/sites/{id}/response-times?window=6h&bucket=1h");

    let all = app.get(&uri).await.json();
    assert!(all.get("region").is_none());
    let at = |body: &Value| -> Value {
        body["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| {
                b["start"]
                    .as_str()
                    .map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_utc())
                    == Some(busy)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no bucket at {busy}: {body}"))
    };
    assert_eq!(at(&all)["checks"], 8);

    let b = app.get(&format!("{uri}&region=b")).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    let b = b.json();
    assert_eq!(b["region"], "b");
    let bucket = at(&b);
    assert_eq!(bucket["checks"], 4, "{bucket}");
    assert_eq!(
        (&bucket["min_ms"], &bucket["max_ms"]),
        (&json!(1000), &json!(1000))
    );
    assert_eq!(
        b["buckets"].as_array().unwrap().len(),
        all["buckets"].as_array().unwrap().len()
    );

    let a = app.get(&format!("{uri}&region=a")).await.json();
    let bucket = at(&a);
    assert_eq!(bucket["checks"], 4, "{bucket}");
    assert_eq!(bucket["max_ms"], 100);
    let nobody = app.get(&format!("{uri}&region=c")).await.json();
    assert_eq!(at(&nobody)["checks"], 0);

    let bad = app.get(&format!("{uri}&region=Nope")).await;
    assert_names(&bad.assert_problem(StatusCode::BAD_REQUEST), "region");
}
