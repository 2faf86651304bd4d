//! The OpenAPI document: served without a token, equal to the committed `docs/openapi.json`,
//! and covering every route of the router with the problem responses it can give.

use axum::http::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app_with, Options};

fn committed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    let generated = upwatch_api::openapi::pretty();
    assert!(
        committed() == generated,
        "docs/openapi.json differs from the document the code generates; refresh it with \
         `cargo run -p upwatch -- openapi > docs/openapi.json`"
    );
}

#[tokio::test]
async fn the_document_is_served_without_a_token_even_when_the_api_has_one() {
    let app = spawn_app_with(Options {
        api_token: Some("secret-token-for-the-test"),
        ..Options::default()
    })
    .await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let served = response.json();
    let committed: Value = serde_json::from_str(&committed()).unwrap();
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");
    // The rest of the API still needs the token.
    assert_eq!(
        app.get("/api/v1/sites").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn every_operation_documents_its_errors_as_problems() {
    let doc: Value = serde_json::from_str(&upwatch_api::openapi::pretty()).unwrap();
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            let open = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().all(|r| r.as_object().unwrap().is_empty()));
            let api = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
            let mut wanted = Vec::new();
            if api {
                wanted.extend(["400", "503"]);
                if !open {
                    wanted.push("401");
                }
                if path.contains("{id}") {
                    wanted.push("404");
                }
            }
            if op.get("requestBody").is_some() {
                wanted.extend(["413", "415", "422"]);
            }
            for status in wanted {
                let problem = &responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} lacks {status}"))["content"]
                    ["application/problem+json"]["schema"]["$ref"];
                assert_eq!(
                    problem, "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // Every route of the router: 37 operations (the push by GET and POST among them, six of
    // notifiers) and the document itself.
    assert_eq!(operations, 38);
}
