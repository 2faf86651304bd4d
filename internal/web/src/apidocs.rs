//! `/api/docs`: a readable reference of the API's OpenAPI document, rendered on the server
//! from the document itself (given by the wiring, which takes it from `upwatch-api`), so that
//! the reference cannot drift from the contract, needs no script, and loads nothing from
//! another origin: the pages' Content-Security-Policy applies unchanged.
//!
//! Written here rather than vendoring a JavaScript renderer (Redoc, Scalar, RapiDoc): those
//! need inline styles or workers that the policy refuses, and megabytes of script for what a
//! few tables say.

use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use crate::html::head_start;

/// The reference page of `doc`, an OpenAPI 3.1 document.
pub fn render(doc: &Value) -> Markup {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let tags: Vec<(&str, &str)> = doc["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    Some((t["name"].as_str()?, t["description"].as_str().unwrap_or("")))
                })
                .collect()
        })
        .unwrap_or_default();
    let operations = operations(doc);
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head_start(&format!("API reference · {title}"))) }
            body data-page="api-docs" {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a href="/" { "Dashboard" }
                        a href="/status" { "Status page" }
                        a href="/api/docs" aria-current="page" { "API" }
                    }
                }
                main #main .api-docs {
                    h1 { "API reference" }
                    p { (doc["info"]["description"].as_str().unwrap_or("")) }
                    p {
                        "The machine-readable contract: "
                        a href="/api/v1/openapi.json" { code { "/api/v1/openapi.json" } }
                        " (OpenAPI " (doc["openapi"].as_str().unwrap_or("3.1")) ", "
                        (operations.len()) " operations)."
                    }
                    nav aria-label="Operations" {
                        ul {
                            @for op in &operations {
                                li { a href={ "#" (op.id) } { code { (op.method.to_uppercase()) " " (op.path) } } }
                            }
                        }
                    }
                    @for (tag, description) in &tags {
                        section aria-labelledby={ "tag-" (tag) } {
                            h2 id={ "tag-" (tag) } { (tag) }
                            p.muted { (description) }
                            @for op in operations.iter().filter(|o| o.tag == *tag) {
                                (operation(op))
                            }
                        }
                    }
                    section aria-labelledby="schemas" {
                        h2 #schemas { "Schemas" }
                        @if let Some(schemas) = doc["components"]["schemas"].as_object() {
                            @for (name, schema) in schemas {
                                (schema_section(name, schema))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One operation of the document.
struct Op<'a> {
    id: String,
    method: &'a str,
    path: &'a str,
    tag: &'a str,
    body: &'a Value,
}

fn operations(doc: &Value) -> Vec<Op<'_>> {
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "patch", "put", "delete"] {
                let body = &item[method];
                if body.is_object() {
                    out.push(Op {
                        id: body["operationId"]
                            .as_str()
                            .map_or_else(|| format!("{method}-{path}"), str::to_string),
                        method,
                        path,
                        tag: body["tags"][0].as_str().unwrap_or(""),
                        body,
                    });
                }
            }
        }
    }
    out
}

fn operation(op: &Op<'_>) -> Markup {
    let body = op.body;
    let open = body["security"].as_array().is_some_and(|s| {
        s.iter()
            .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
    });
    html! {
        article.operation id=(op.id) {
            h3 { code { (op.method.to_uppercase()) " " (op.path) } }
            @if let Some(summary) = body["summary"].as_str() { p { (summary) } }
            @if let Some(description) = body["description"].as_str() { p { (description) } }
            @if open { p.muted { "No token needed." } }
            @if let Some(params) = body["parameters"].as_array() {
                table {
                    caption { "Parameters" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "In" } th scope="col" { "Type" } th scope="col" { "Description" } } }
                    tbody {
                        @for p in params {
                            tr {
                                td { code { (p["name"].as_str().unwrap_or("")) } @if p["required"].as_bool() == Some(true) { " (required)" } }
                                td { (p["in"].as_str().unwrap_or("")) }
                                td { (type_of(&p["schema"])) }
                                td { (p["description"].as_str().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            @if let Some(content) = body["requestBody"]["content"].as_object() {
                h4 { "Request body" }
                @if let Some(d) = body["requestBody"]["description"].as_str() { p { (d) } }
                ul {
                    @for (media, c) in content {
                        li { code { (media) } ": " (type_of(&c["schema"])) }
                    }
                }
            }
            @if let Some(responses) = body["responses"].as_object() {
                table {
                    caption { "Responses" }
                    thead { tr { th scope="col" { "Status" } th scope="col" { "Description" } th scope="col" { "Body" } } }
                    tbody {
                        @for (status, r) in responses {
                            tr {
                                td { (status) }
                                td { (r["description"].as_str().unwrap_or("")) }
                                td {
                                    @if let Some(content) = r["content"].as_object() {
                                        @for (media, c) in content {
                                            code { (media) } ": " (type_of(&c["schema"])) br;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a schema is, in a few words, linking named schemas to their section.
fn type_of(schema: &Value) -> Markup {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return html! { a href={ "#schema-" (name) } { (name) } };
    }
    if let Some(items) = schema.get("items") {
        return html! { "array of " (type_of(items)) };
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[key].as_array() {
            return html! {
                @for (i, option) in options.iter().enumerate() {
                    @if i > 0 { " or " }
                    (type_of(option))
                }
            };
        }
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    };
    match schema["format"].as_str() {
        Some(format) => html! { (kind) " (" (format) ")" },
        None => html! { (kind) },
    }
}

fn schema_section(name: &str, schema: &Value) -> Markup {
    html! {
        section.schema id={ "schema-" (name) } {
            h3 { code { (name) } }
            @if let Some(d) = schema["description"].as_str() { p { (d) } }
            @if let Some(properties) = schema["properties"].as_object() {
                @let required: Vec<&str> = schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                table {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Type" } th scope="col" { "Description" } } }
                    tbody {
                        @for (field, p) in properties {
                            tr {
                                td { code { (field) } @if required.contains(&field.as_str()) { " (required)" } }
                                td { (type_of(p)) }
                                td { (p["description"].as_str().unwrap_or("")) }
                            }
                        }
                    }
                }
            } @else if let Some(values) = schema["enum"].as_array() {
                p { "One of: " @for (i, v) in values.iter().enumerate() { @if i > 0 { ", " } code { (v.as_str().unwrap_or("")) } } }
            } @else {
                p { (type_of(schema)) }
            }
        }
    }
}
