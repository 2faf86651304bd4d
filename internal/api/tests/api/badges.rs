//! Badges: SVG images of uptime and status, served without the API token.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use chrono::{TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    id_of, insert_results, result, result_at, spawn_app, spawn_app_with, Options, TestApp,
    TestResponse,
};

const TOKEN: &str = "correct-horse-battery-staple";

/// An app with a token, whose own requests send it.
async fn guarded_app() -> TestApp {
    let mut app = spawn_app_with(Options {
        api_token: Some(TOKEN),
        ..Options::default()
    })
    .await;
    app.token = Some(TOKEN.to_string());
    app
}

/// A GET without any token, as an image in a README is fetched.
async fn anonymous(app: &TestApp, uri: &str) -> TestResponse {
    let request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    app.send(request).await
}

/// Asserts an SVG badge: its headers, well-nested tags, and a title saying `title`.
#[track_caller]
fn assert_badge(response: &TestResponse, title: &str) -> String {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header(header::CONTENT_TYPE), Some("image/svg+xml"));
    assert_eq!(response.header(header::CACHE_CONTROL), Some("max-age=60"));
    let svg = response.text();
    assert_well_nested(&svg);
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(svg.contains(&format!("<title>{title}</title>")), "{svg}");
    assert!(svg.contains(&format!("aria-label=\"{title}\"")), "{svg}");
    svg
}

/// A small check that `svg` is XML-like: every tag is closed in order, one root element, and
/// every `&` starts an entity.
#[track_caller]
fn assert_well_nested(svg: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "a stray `>` in {svg}");
        let close = rest[open..].find('>').expect("an unclosed tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "misnested in {svg}");
        } else {
            let name = tag.split_whitespace().next().expect("a tag name");
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name.trim_end_matches('/'));
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(rest.trim().is_empty(), "text after the root in {svg}");
    assert!(stack.is_empty(), "unclosed {stack:?} in {svg}");
    assert_eq!(roots, 1, "{svg}");
    for (at, _) in svg.match_indices('&') {
        let entity = &svg[at..svg[at..].find(';').map_or(svg.len(), |end| at + end + 1)];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity),
            "a bare `&` in {svg}"
        );
    }
}

/// The width of a badge's root element.
fn width(svg: &str) -> u32 {
    svg.split("width=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn uptime_badges_need_no_token_but_other_routes_do() {
    let app = guarded_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let idle = id_of(&app.create_site(json!({"url": "http://b.test/"})).await);
    let now = Utc::now();
    let mut results: Vec<_> = (1..=3)
        .map(|i| result_at(id, now - TimeDelta::hours(i), true, 100))
        .collect();
    results.push(result_at(id, now - TimeDelta::hours(4), false, 100));
    // Ten days ago: counted in 30 days, not in 7.
    results.push(result_at(id, now - TimeDelta::days(10), false, 100));
    insert_results(&app, &results).await;

    let badge = |query: &str| format!("/api/v1/sites/{id}/badge/uptime.svg{query}");
    let svg = assert_badge(&anonymous(&app, &badge("")).await, "uptime 30d: 60%");
    assert!(svg.contains(">60%</text>"), "{svg}");
    assert!(svg.contains("#e05d44"), "60% is red: {svg}");
    let svg = assert_badge(
        &anonymous(&app, &badge("?window=7d")).await,
        "uptime 7d: 75%",
    );
    assert!(svg.contains(">uptime 7d</text>"), "{svg}");
    assert_badge(
        &anonymous(&app, &badge("?window=24h")).await,
        "uptime 24h: 75%",
    );
    assert_badge(
        &anonymous(&app, &badge("?window=90d")).await,
        "uptime 90d: 60%",
    );

    let none = assert_badge(
        &anonymous(&app, &format!("/api/v1/sites/{idle}/badge/uptime.svg")).await,
        "uptime 30d: no data",
    );
    assert!(none.contains("#9f9f9f"), "no data is grey: {none}");
    assert!(width(&none) > width(&svg), "longer text, wider badge");

    // Only the badges are open.
    for uri in [
        format!("/api/v1/sites/{id}/uptime"),
        format!("/api/v1/sites/{id}/status"),
        format!("/api/v1/sites/{id}/incidents"),
        "/api/v1/incidents".to_string(),
        format!("/api/v1/sites/{id}/badge/other.svg"),
    ] {
        anonymous(&app, &uri)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED);
    }
    // With the token everything still works, badges included.
    let svg = app.get(&badge("?window=7d")).await;
    assert_badge(&svg, "uptime 7d: 75%");
}

#[tokio::test]
async fn status_badges_show_the_live_status() {
    let app = guarded_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    let paused = id_of(
        &app.create_site(json!({"url": "http://b.test/", "enabled": false}))
            .await,
    );
    let uri = |id: Uuid| format!("/api/v1/sites/{id}/badge/status.svg");

    let svg = assert_badge(&anonymous(&app, &uri(id)).await, "status: pending");
    assert!(svg.contains("#9f9f9f"), "{svg}");
    assert_badge(&anonymous(&app, &uri(paused)).await, "status: paused");

    // What the cache updater does with each result.
    let mut entry = app.cache.get(id).await.unwrap().expect("cached");
    entry.state.apply(&result(id, 10, false));
    assert!(app.cache.put(&entry).await.unwrap());
    let svg = assert_badge(&anonymous(&app, &uri(id)).await, "status: down");
    assert!(
        svg.contains(">down</text>") && svg.contains("#e05d44"),
        "{svg}"
    );

    entry.state.apply(&result(id, 20, true));
    assert!(app.cache.put(&entry).await.unwrap());
    let svg = assert_badge(&anonymous(&app, &uri(id)).await, "status: up");
    assert!(svg.contains("#4c1"), "{svg}");
}

#[tokio::test]
async fn badges_of_unknown_monitors_and_bad_windows_are_problems() {
    let app = spawn_app().await;
    let id = id_of(&app.create_site(json!({"url": "http://a.test/"})).await);
    for kind in ["uptime", "status"] {
        anonymous(
            &app,
            &format!("/api/v1/sites/{}/badge/{kind}.svg", Uuid::now_v7()),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    }
    for window in ["1y", "48h", "30"] {
        let problem = anonymous(
            &app,
            &format!("/api/v1/sites/{id}/badge/uptime.svg?window={window}"),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("`window` must be one of 24h, 7d, 30d or 90d"),
            "{detail}"
        );
    }
    let post = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/sites/{id}/badge/status.svg"))
        .body(Body::empty())
        .unwrap();
    app.send(post)
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED);
}
