//! The bearer token guards /api/v1 and nothing else.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app_with, Options, TestApp};

const TOKEN: &str = "correct-horse-battery-staple";

async fn guarded_app() -> TestApp {
    spawn_app_with(Options {
        api_token: Some(TOKEN),
        ..Options::default()
    })
    .await
}

async fn get_with(
    app: &TestApp,
    uri: &str,
    authorization: Option<&str>,
) -> crate::helpers::TestResponse {
    let mut request = Request::builder().method(Method::GET).uri(uri);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn requests_without_the_right_token_are_401() {
    let app = guarded_app().await;
    for authorization in [
        None,
        Some("Bearer wrong-token"),
        Some("Bearer correct-horse-battery-stapl"),
        Some("Basic Y29ycmVjdA=="),
        Some(TOKEN),
    ] {
        for uri in ["/api/v1/sites", "/api/v1/status", "/api/v1/nope"] {
            let response = get_with(&app, uri, authorization).await;
            response.assert_problem(StatusCode::UNAUTHORIZED);
            assert_eq!(
                response.header(header::WWW_AUTHENTICATE),
                Some("Bearer"),
                "{authorization:?}"
            );
        }
    }
    // Writes are refused before the body is looked at.
    let create = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/sites")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"url": "http://a.test/"}).to_string()))
        .unwrap();
    app.send(create)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_right_token_is_let_through() {
    let mut app = guarded_app().await;
    let response = get_with(&app, "/api/v1/sites", Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    app.token = Some(TOKEN.to_string());
    app.create_site(json!({"url": "http://a.test/"})).await;
    assert_eq!(
        app.get("/api/v1/status").await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.get("/api/v1/nope")
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_readiness_and_metrics_need_no_token() {
    let app = guarded_app().await;
    for uri in ["/healthz", "/readyz", "/metrics"] {
        let response = get_with(&app, uri, None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{uri}: {}",
            response.text()
        );
    }
}
