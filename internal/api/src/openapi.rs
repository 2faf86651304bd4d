//! The OpenAPI 3.1 document of the API, generated from the handlers' `#[utoipa::path]`
//! attributes and the types' `ToSchema` derives, so that it cannot drift from the code. It is
//! served at `GET /api/v1/openapi.json`, rendered at `/api/docs`, and written to
//! `docs/openapi.json` by `upwatch openapi` (a test fails when the committed file differs).
//!
//! The error responses every operation can give are added here, once, by [`Problems`]: each
//! is `application/problem+json` with the [`Problem`] schema.

use std::sync::OnceLock;

use axum::extract::State;
use serde_json::{json, Value};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{Problem, PROBLEM_JSON};
use crate::{
    badge, bulk, health, history, incidents, maintenances, notifiers, push, response_times, sites,
    status, uptime, webhooks, Shared,
};

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "upwatch",
        description = "The REST API of upwatch, a distributed uptime monitor: monitors (\"sites\"), their live status, history, uptime, response times and incidents, the notifiers (channels) alerts go to, and maintenance windows.\n\nEvery error is `application/problem+json` (RFC 9457) with a sentence saying what to fix. When the server has an API token (`UPWATCH_API_TOKEN`), every `/api/v1` request but the badges, the pushes and this document needs `Authorization: Bearer <token>`.\n\nBodies are JSON (`Content-Type: application/json`, or `application/merge-patch+json` for PATCH; anything else is a 415) of at most 1 MiB (32 MiB for bulk creation; larger is a 413). Unknown fields in a body are refused with a 422 naming the field, so that a typo is never a silently ignored setting; unknown query parameters are ignored.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        sites::create, sites::list, bulk::create, sites::get, sites::patch, sites::delete,
        status::one, status::all,
        history::list, uptime::get, response_times::get,
        incidents::of_site, incidents::all,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::test,
        notifiers::create, notifiers::list, notifiers::get, notifiers::update,
        notifiers::delete, notifiers::test,
        maintenances::create, maintenances::list, maintenances::get, maintenances::patch,
        maintenances::delete,
        badge::uptime, badge::status,
        push::get, push::post,
        health::healthz, health::readyz, health::metrics,
        document,
    ),
    components(schemas(Problem)),
    modifiers(&Problems),
    security(("bearer" = [])),
    tags(
        (name = "sites", description = "Monitors: what to check and how."),
        (name = "status", description = "Live status, from the status cache."),
        (name = "history", description = "Results, uptime and response times, from rollups."),
        (name = "incidents", description = "Down periods, opened by a down alert and closed by the recovery."),
        (name = "webhooks", description = "Discord webhooks, as before notifiers had kinds: the notifiers of kind `discord`, same ids (URLs are secrets: always shown redacted)."),
        (name = "notifiers", description = "Where alerts go: Discord, Slack, Teams, Mattermost, Telegram, Matrix, email, generic webhooks, PagerDuty, Opsgenie, ntfy, Gotify, Pushover. Settings are checked per kind; secrets are always shown redacted."),
        (name = "maintenances", description = "Maintenance windows, one-off or recurring (RFC 5545): checks go on, their results are stored marked, count neither up nor down, and alert nobody."),
        (name = "badges", description = "SVG badges for READMEs: no token needed."),
        (name = "push", description = "Heartbeats of push monitors: a cron job or backup reports in. No API token: the push token in the path is the credential."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    ),
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`: this document (no token needed), as it applies to this
/// server: without the bearer scheme's requirement and its 401s when the server has no
/// token.
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "operations", operation_id = "openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object))
)]
pub async fn document(State(state): State<Shared>) -> axum::Json<&'static Value> {
    // The two forms are built once per process, not on every request.
    static DOCUMENTS: OnceLock<[Value; 2]> = OnceLock::new();
    let [open, secured] = DOCUMENTS.get_or_init(|| [for_server(false), for_server(true)]);
    axum::Json(if state.api_token.is_some() {
        secured
    } else {
        open
    })
}

/// The document as a JSON value: what `docs/openapi.json` holds and `/api/docs` shows (the
/// bearer token required, as on a server that has one).
pub fn json() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    add_links(&mut doc);
    doc
}

/// The document as pretty JSON with a final newline, as `docs/openapi.json` holds it.
pub fn pretty() -> String {
    let mut text = serde_json::to_string_pretty(&json()).unwrap_or_default();
    text.push('\n');
    text
}

/// The document for a server with (`secured`) or without an API token: without one, nothing
/// needs the bearer scheme and no operation answers 401.
pub fn for_server(secured: bool) -> Value {
    let mut doc = json();
    if !secured {
        if let Some(root) = doc.as_object_mut() {
            root.remove("security");
        }
        if let Some(paths) = doc["paths"].as_object_mut() {
            for item in paths.values_mut() {
                if let Some(item) = item.as_object_mut() {
                    for op in item.values_mut() {
                        if let Some(responses) = op["responses"].as_object_mut() {
                            responses.remove("401");
                        }
                    }
                }
            }
        }
    }
    doc
}

/// Links from what creates a resource to what reads, changes and deletes it, so that clients
/// (and the stateful fuzzing of the test command) can follow them with the id created.
fn add_links(doc: &mut Value) {
    let by_id = |operations: &[&str]| -> Value {
        let mut links = serde_json::Map::new();
        for id in operations {
            links.insert(
                (*id).to_string(),
                json!({"operationId": id, "parameters": {"id": "$response.body#/id"}}),
            );
        }
        Value::Object(links)
    };
    let site = by_id(&[
        "get_site",
        "update_site",
        "delete_site",
        "get_site_status",
        "get_site_history",
        "get_site_uptime",
        "get_site_response_times",
        "list_site_incidents",
        "get_uptime_badge",
        "get_status_badge",
    ]);
    let webhook = by_id(&[
        "get_webhook",
        "update_webhook",
        "delete_webhook",
        "test_webhook",
    ]);
    let maintenance = by_id(&[
        "get_maintenance",
        "update_maintenance",
        "delete_maintenance",
    ]);
    for (path, status, links) in [
        ("/api/v1/sites", "201", site),
        ("/api/v1/webhooks", "201", webhook),
        ("/api/v1/maintenances", "201", maintenance),
    ] {
        let response = &mut doc["paths"][path]["post"]["responses"][status];
        if response.is_object() {
            response["links"] = links;
        }
    }
}

/// Adds the bearer security scheme and, to every operation, the problem responses it can
/// give: 400 (a bad parameter), 401 (no or a wrong token, where the token applies), 404 (an
/// unknown id), 413, 415 and 422 (a body too large, not JSON, or not acceptable), 409 (a
/// conflict on create), 503 (the database is unavailable).
struct Problems;

impl Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The server's `UPWATCH_API_TOKEN`, when it has one.".to_string(),
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
            let has_id = path.contains("{id}") || path.contains("{token}");
            let limited = path.starts_with("/api/v1/push/");
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                add_problems(operation, api, has_id, limited);
            }
        }
    }
}

fn add_problems(operation: &mut Operation, api: bool, has_id: bool, limited: bool) {
    let secured = operation
        .security
        .as_ref()
        .is_none_or(|requirements| !requirements.is_empty());
    let body = operation.request_body.is_some();
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if api {
        wanted.push((
            "400",
            "A parameter is not valid; `detail` says which and why.",
        ));
        if secured {
            wanted.push((
                "401",
                "The API token is missing or wrong (only when the server has one).",
            ));
        }
        if has_id {
            wanted.push(("404", "There is no such resource."));
        }
        if limited {
            wanted.push((
                "429",
                "Too many requests; `Retry-After` says when to send again.",
            ));
        }
        wanted.push(("503", "The database is unavailable; try again shortly."));
    } else if operation.operation_id.as_deref() == Some("readyz") {
        wanted.push((
            "503",
            "The process cannot serve yet, or something is unhealthy.",
        ));
    }
    if body {
        wanted.push((
            "409",
            "The request conflicts with data that already exists.",
        ));
        wanted.push(("413", "The body is larger than the server accepts."));
        wanted.push(("415", "The body was not sent as JSON."));
        wanted.push((
            "422",
            "The body is JSON but not acceptable; `field` names the culprit when it can.",
        ));
    }
    for (status, description) in wanted {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_string(), RefOr::T(response));
    }
}
