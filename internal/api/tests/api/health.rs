//! Liveness, readiness and metrics.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Options};
use crate::status::BrokenCache;

#[tokio::test]
async fn healthz_is_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_ready_when_store_and_cache_answer() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json(), json!({"status": "ready"}));
}

#[tokio::test]
async fn readyz_names_an_unreachable_cache() {
    let app = spawn_app_with(Options {
        cache: Some(Arc::new(BrokenCache)),
        ..Options::default()
    })
    .await;
    let problem = app
        .get("/readyz")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("cache") && !detail.contains("database"),
        "{detail}"
    );
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let app = spawn_app().await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header(header::CONTENT_TYPE),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = response.text();
    assert!(
        text.contains("upwatch_checks_total") || text.contains("upwatch_jobs_emitted"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}
