//! Response-time percentiles per bucket, merged from rollups.

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{id_of, insert_results, result_at, spawn_app};

/// The sketch's relative error.
const ERROR: f64 = 1.0 / 32.0;

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .to_utc()
}

/// `at` rounded down to a whole `size` from the Unix epoch.
fn floor(at: DateTime<Utc>, size: TimeDelta) -> DateTime<Utc> {
    let (s, n) = (at.timestamp(), size.num_seconds());
    DateTime::from_timestamp(s - s.rem_euclid(n), 0).unwrap()
}

#[track_caller]
fn assert_near(value: &Value, exact: f64) {
    let got = value
        .as_f64()
        .unwrap_or_else(|| panic!("a number, not {value}"));
    assert!(
        (got - exact).abs() <= exact * ERROR,
        "{got} is not within 1/32 of {exact}"
    );
}

/// Asserts that the buckets are consecutive, `size` apart, from `from` to the one in progress
/// at `to`; returns them.
#[track_caller]
fn assert_every_bucket(body: &Value, size: TimeDelta) -> Vec<Value> {
    let (from, to) = (time(&body["from"]), time(&body["to"]));
    let buckets = body["buckets"].as_array().expect("buckets").clone();
    let expected = (floor(to - TimeDelta::milliseconds(1), size) - from).num_seconds()
        / size.num_seconds()
        + 1;
    assert_eq!(buckets.len() as i64, expected, "{body}");
    for (i, bucket) in buckets.iter().enumerate() {
        assert_eq!(time(&bucket["start"]), from + size * i as i32, "{bucket}");
    }
    buckets
}

fn bucket_at(buckets: &[Value], start: DateTime<Utc>) -> Value {
    buckets
        .iter()
        .find(|b| time(&b["start"]) == start)
        .unwrap_or_else(|| panic!("no bucket at {start}"))
        .clone()
}

#[tokio::test]
async fn hourly_buckets_hold_counts_and_percentiles() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let hour = floor(Utc::now(), TimeDelta::hours(1));
    let busy = hour - TimeDelta::hours(2);
    let quiet = hour - TimeDelta::hours(4);
    // Ten checks of 100, 200, ... 1000 ms, one down, in the hour two hours ago.
    let mut results: Vec<_> = (0..10)
        .map(|i| {
            result_at(
                id,
                busy + TimeDelta::minutes(3 * i + 1),
                i != 7,
                100 * (i as u32 + 1),
            )
        })
        .collect();
    results.push(result_at(id, quiet + TimeDelta::minutes(30), true, 40));
    insert_results(&app, &results).await;

    let response = app
        .get(&format!(
            "/api/v1/sites/{id}/response-times?window=6h&bucket=1h"
        ))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let body = response.json();
    assert_eq!(
        (body["window"].clone(), body["bucket"].clone()),
        (json!("6h"), json!("1h"))
    );
    let to = time(&body["to"]);
    assert_eq!(
        time(&body["from"]),
        floor(to - TimeDelta::hours(6), TimeDelta::hours(1))
    );
    let buckets = assert_every_bucket(&body, TimeDelta::hours(1));

    let b = bucket_at(&buckets, busy);
    assert_eq!(b["checks"], 10, "{b}");
    assert_near(&b["p50_ms"], 500.0);
    assert_near(&b["p95_ms"], 1000.0);
    assert_near(&b["p99_ms"], 1000.0);
    assert_eq!(
        (b["min_ms"].clone(), b["max_ms"].clone()),
        (json!(100), json!(1000))
    );
    assert_eq!(b["mean_ms"], json!(550.0));

    let q = bucket_at(&buckets, quiet);
    assert_eq!(q["checks"], 1, "{q}");
    assert_near(&q["p50_ms"], 40.0);
    assert_eq!(q["min_ms"], 40);

    let empty: Vec<_> = buckets.iter().filter(|b| b["checks"] == 0).collect();
    assert_eq!(empty.len(), buckets.len() - 2, "{body}");
    for b in empty {
        for key in ["p50_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "mean_ms"] {
            assert!(b[key].is_null(), "{key} of an empty bucket: {b}");
        }
    }
}

#[tokio::test]
async fn minute_buckets_and_the_defaults() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let quarter = floor(Utc::now(), TimeDelta::minutes(15)) - TimeDelta::minutes(15);
    insert_results(
        &app,
        &[
            result_at(id, quarter + TimeDelta::minutes(1), true, 200),
            result_at(id, quarter + TimeDelta::minutes(14), true, 400),
        ],
    )
    .await;

    let body = app
        .get(&format!(
            "/api/v1/sites/{id}/response-times?window=2h&bucket=15m"
        ))
        .await
        .json();
    let buckets = assert_every_bucket(&body, TimeDelta::minutes(15));
    let b = bucket_at(&buckets, quarter);
    assert_eq!(b["checks"], 2, "{b}");
    assert_near(&b["p50_ms"], 200.0);
    assert_near(&b["p99_ms"], 400.0);
    assert_eq!(b["mean_ms"], json!(300.0));

    let defaults = app
        .get(&format!("/api/v1/sites/{id}/response-times"))
        .await
        .json();
    assert_eq!(
        (defaults["window"].clone(), defaults["bucket"].clone()),
        (json!("24h"), json!("1h"))
    );
    let hourly = assert_every_bucket(&defaults, TimeDelta::hours(1));
    let total: u64 = hourly.iter().map(|b| b["checks"].as_u64().unwrap()).sum();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn response_times_refuse_bad_windows_and_buckets() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let uri = format!("/api/v1/sites/{id}/response-times");
    for (query, expect) in [
        ("bucket=90s", "whole number of minutes"),
        ("bucket=1.5h", "`bucket`"),
        ("window=soon", "`window`"),
        ("window=1h&bucket=2h", "shorter"),
        ("window=401d&bucket=1d", "400d"),
        ("window=2000m&bucket=1m", "1500"),
        ("window=7d&bucket=5m", "2016 buckets"),
    ] {
        let problem = app
            .get(&format!("{uri}?{query}"))
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(expect), "{query}: {detail}");
        assert!(detail.ends_with('.'), "a sentence: {detail}");
    }
    // The largest request allowed.
    let ok = app.get(&format!("{uri}?window=1500m&bucket=1m")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    app.get(&format!("/api/v1/sites/{}/response-times", Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}
