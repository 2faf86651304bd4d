//! Every kind of bad input gets a problem document with the right status and a detail.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{id_of, spawn_app, spawn_app_with, Options};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for body in [
        "{\"url\": ",
        "{not json}",
        "",
        "{\"url\": \"http://a.test/\"} trailing",
    ] {
        let response = app
            .raw(Method::POST, "/api/v1/sites", "application/json", body)
            .await;
        let problem = response.assert_problem(StatusCode::BAD_REQUEST);
        assert!(
            problem["detail"].as_str().unwrap().contains("JSON"),
            "{body:?}: {problem}"
        );
        assert!(problem.get("field").is_none(), "{problem}");
    }
    assert!(app.get("/api/v1/sites").await.json()["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn invalid_monitors_are_422_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"url": "http://a.test/", "intervall_seconds": 5}),
            "intervall_seconds",
        ),
        (json!({"url": "ftp://a.test/"}), "url"),
        (
            json!({"url": "http://a.test/", "interval_seconds": 0}),
            "interval_seconds",
        ),
        (
            json!({"url": "http://a.test/", "interval_seconds": 10, "timeout_seconds": 11}),
            "timeout_seconds",
        ),
        (
            json!({"url": "http://a.test/", "interval_seconds": "often"}),
            "interval_seconds",
        ),
        (
            json!({"url": "http://a.test/", "interval_seconds": -1}),
            "interval_seconds",
        ),
        (json!({"name": "no url"}), "url"),
        (
            json!({"url": "http://a.test/", "method": "FETCH"}),
            "method",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/v1/sites", &body).await;
        let problem = response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["field"], field, "{body}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(field),
            "the detail names the field: {detail}"
        );
        assert!(!detail.contains("line 1"), "no parser positions: {detail}");
    }
    // JSON that is not an object at all.
    for body in [
        json!(["http://a.test/"]),
        json!(null),
        json!("http://a.test/"),
    ] {
        let problem = app
            .post_json("/api/v1/sites", &body)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(problem.get("field").is_none(), "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("JSON object"),
            "{problem}"
        );
    }
    assert!(app.get("/api/v1/sites").await.json()["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn invalid_patches_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let site = app
        .create_site(
            json!({"url": "http://a.test/", "interval_seconds": 60, "timeout_seconds": 30}),
        )
        .await;
    let uri = format!("/api/v1/sites/{}", id_of(&site));
    let cases = [
        (json!({"interval_seconds": 10}), Some("timeout_seconds")),
        (json!({"url": "ftp://a.test/"}), Some("url")),
        (json!({"id": Uuid::now_v7()}), Some("id")),
        (json!({"enabled": "yes"}), Some("enabled")),
        (json!([1]), None),
    ];
    for (patch, field) in cases {
        let problem = app
            .patch_json(&uri, &patch)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        match field {
            Some(field) => assert_eq!(problem["field"], field, "{patch}: {problem}"),
            None => assert!(problem.get("field").is_none(), "{problem}"),
        }
    }
    app.raw(Method::PATCH, &uri, "application/merge-patch+json", "{oops")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&uri).await.json(), site);
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_400() {
    let app = spawn_app().await;
    for uri in [
        "/api/v1/sites/abc",
        "/api/v1/sites/abc/status",
        "/api/v1/sites/abc/history",
        "/api/v1/webhooks/abc",
    ] {
        let method = if uri.starts_with("/api/v1/webhooks") {
            Method::DELETE
        } else {
            Method::GET
        };
        let problem = app
            .call(method, uri)
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("`abc` is not a valid id"),
            "{uri}: {detail}"
        );
        assert!(detail.contains("UUID"), "{detail}");
    }
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let uri = format!("/api/v1/sites/{id}");
    let problem = app.get(&uri).await.assert_problem(StatusCode::NOT_FOUND);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&id.to_string()),
        "{problem}"
    );
    app.patch_json(&uri, &json!({"name": "x"}))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    app.delete(&uri).await.assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bodies_not_sent_as_json_are_415() {
    let app = spawn_app().await;
    let body = json!({"url": "http://a.test/"}).to_string();
    let response = app
        .raw(Method::POST, "/api/v1/sites", "text/plain", body.clone())
        .await;
    let problem = response.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{problem}"
    );
    let no_type = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/sites")
        .body(Body::from(body))
        .unwrap();
    app.send(no_type)
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.raw(
        Method::POST,
        "/api/v1/webhooks",
        "application/x-www-form-urlencoded",
        "url=x",
    )
    .await
    .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app_with(Options {
        max_body_bytes: Some(1024),
        ..Options::default()
    })
    .await;
    let big = json!({"url": "http://a.test/", "body": "x".repeat(4096)}).to_string();
    app.raw(
        Method::POST,
        "/api/v1/sites",
        "application/json",
        big.clone(),
    )
    .await
    .assert_problem(StatusCode::PAYLOAD_TOO_LARGE);
    // A streamed body without a declared length is cut off at the limit too.
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(100)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let streamed = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/sites")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    app.send(streamed)
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE);
    // A body under the limit is fine.
    let small = app
        .post_json("/api/v1/sites", &json!({"url": "http://a.test/"}))
        .await;
    assert_eq!(small.status, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let app = spawn_app().await;
    for uri in [
        "/api/v1/sites?limit=0",
        "/api/v1/sites?limit=abc",
        "/api/v1/sites?limit=1001",
        "/api/v1/sites?cursor=nope",
        "/api/v1/status?limit=0",
        "/api/v1/status?cursor=nope",
        "/api/v1/sites?limit=1&limit=2",
    ] {
        app.get(uri).await.assert_problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = spawn_app().await;
    for uri in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/sites",
        "/api/v1/sites/a/b/c",
    ] {
        app.get(uri).await.assert_problem(StatusCode::NOT_FOUND);
    }
    let response = app.call(Method::PUT, "/api/v1/sites").await;
    response.assert_problem(StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.header(header::ALLOW).expect("an Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    app.call(Method::POST, "/api/v1/status")
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED);
    app.call(Method::PUT, &format!("/api/v1/webhooks/{}", Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED);
    app.call(Method::DELETE, "/healthz")
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_closed_database_is_503_with_an_opaque_detail() {
    let app = spawn_app().await;
    app.store.close().await;
    let problem = app
        .get("/api/v1/sites")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        problem["detail"],
        "The database is unavailable; try again shortly."
    );
    let problem = app
        .get("/readyz")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        problem["detail"].as_str().unwrap().contains("database"),
        "{problem}"
    );
}
