//! Discord webhooks, as they were before notifiers had kinds: `/api/v1/webhooks` shows and
//! makes the notifiers of kind `discord` (same ids as `/api/v1/notifiers`), so that what
//! users built on it keeps working. Their URLs are secrets: responses and logs only show
//! them redacted.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use upwatch_core::webhook::validate_name;
use upwatch_core::{Webhook, WebhookSource, WebhookView};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{from_object, IdPath, Json};
use crate::{ApiState, Shared};

/// What a client sends to add a webhook.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// The webhook's http(s) URL, at most 2048 characters: a secret, only ever shown
    /// redacted.
    #[schema(example = "https://discord.com/api/webhooks/123/abc")]
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// The webhook listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// `POST /api/v1/webhooks`.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook", request_body(content = WebhookInput), responses((status = 201, description = "The webhook was created; its URL is shown redacted.", body = upwatch_core::WebhookView, headers(("Location" = String, description = "The path of the new webhook.")))))]
pub async fn create(
    State(state): State<Shared>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let input: WebhookInput = from_object(&body, "the webhook's `url` and `name`")?;
    let url = validate_url(&input.url)?;
    let name = match input.name {
        None => "webhook".to_string(),
        Some(name) => validate_name(&name)?,
    };
    let webhook = Webhook::discord(Uuid::now_v7(), name, url, WebhookSource::Api);
    state.store.upsert_webhook(&webhook).await?;
    let view = WebhookView::from(&webhook);
    tracing::info!(webhook_id = %view.id, url = %view.url, "webhook created");
    let location = format!("/api/v1/webhooks/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(view),
    )
        .into_response())
}

/// What a client may change of a webhook; what it leaves out stays as it is.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `GET /api/v1/webhooks/{id}`.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "The webhook, its URL redacted.", body = upwatch_core::WebhookView)))]
pub async fn get(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<axum::Json<WebhookView>, ApiError> {
    let webhook = found(&state, id).await?;
    Ok(axum::Json(WebhookView::from(&webhook)))
}

/// `PATCH /api/v1/webhooks/{id}`: renames, moves, or enables or disables a webhook.
/// `"enabled": true` is how a webhook disabled after answering 404 is used again.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "update_webhook", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), request_body(content((WebhookPatch = "application/merge-patch+json"), (WebhookPatch = "application/json"))), responses((status = 200, description = "The webhook as changed.", body = upwatch_core::WebhookView)))]
pub async fn update(
    State(state): State<Shared>,
    IdPath(id): IdPath,
    Json(body): Json<serde_json::Value>,
) -> Result<axum::Json<WebhookView>, ApiError> {
    let patch: WebhookPatch = from_object(&body, "the webhook's `url`, `name` and `enabled`")?;
    let mut webhook = found(&state, id).await?;
    if webhook.source == WebhookSource::Config && (patch.url.is_some() || patch.name.is_some()) {
        return Err(ApiError::Conflict(
            "This webhook comes from DISCORD_WEBHOOK_URL, which sets its URL and name at every start; change the variable instead, or send only `enabled`.".to_string(),
        ));
    }
    let url = patch.url.as_deref().map(validate_url).transpose()?;
    let name = patch.name.as_deref().map(validate_name).transpose()?;
    if url.is_some() || name.is_some() {
        if let Some(url) = url {
            webhook.settings = serde_json::json!({ "webhook_url": url });
            webhook.url = url;
        }
        webhook.name = name.unwrap_or(webhook.name);
        state.store.upsert_webhook(&webhook).await?;
    }
    crate::notifiers::set_enabled(&state, &webhook, patch.enabled).await?;
    let webhook = found(&state, id).await?;
    let view = WebhookView::from(&webhook);
    tracing::info!(webhook_id = %id, url = %view.url, "webhook updated");
    Ok(axum::Json(view))
}

/// `POST /api/v1/webhooks/{id}/test`: sends the webhook a test message, once, whether or not
/// it is enabled, and says how it went. A failed test is an answer, not an API error, so it
/// is a 200 with `"delivered": false` and the reason; it changes nothing.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", operation_id = "test_webhook", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "Whether the test message was delivered.", body = crate::notifiers::TestOutcome)))]
pub async fn test(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<axum::Json<crate::notifiers::TestOutcome>, ApiError> {
    let webhook = found(&state, id).await?;
    Ok(axum::Json(
        crate::notifiers::send_test(&state, &webhook).await,
    ))
}

/// The Discord webhook with `id`, or a 404 that says so (a notifier of another kind is
/// reached at `/api/v1/notifiers/{id}`).
async fn found(state: &ApiState, id: Uuid) -> Result<Webhook, ApiError> {
    match state.store.get_webhook(id).await? {
        Some(w) if w.is_discord() => Ok(w),
        Some(w) => Err(ApiError::NotFound(format!(
            "There is no Discord webhook with id {id}; it is a notifier of kind `{}`: use /api/v1/notifiers/{id}.",
            w.kind
        ))),
        None => Err(no_webhook(id)),
    }
}

/// The 404 of a webhook id that names none.
fn no_webhook(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("There is no webhook with id {id}."))
}

/// Checks a webhook URL without ever echoing it, since it is a secret.
fn validate_url(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    let parsed = url::Url::parse(raw).map_err(|_| {
        ApiError::validation(
            "url",
            "`url` is not a valid URL; expected a form such as https://discord.com/api/webhooks/….",
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::validation("url", "`url` must use http or https."));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::validation("url", "`url` must name a host."));
    }
    if raw.len() > 2048 {
        return Err(ApiError::validation(
            "url",
            "`url` must be at most 2048 characters.",
        ));
    }
    Ok(parsed.to_string())
}

/// `GET /api/v1/webhooks`.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks", responses((status = 200, description = "Every webhook, URLs redacted.", body = WebhookList)))]
pub async fn list(State(state): State<Shared>) -> Result<axum::Json<WebhookList>, ApiError> {
    let items = state
        .store
        .list_webhooks()
        .await?
        .iter()
        .filter(|w| w.is_discord())
        .map(WebhookView::from)
        .collect();
    Ok(axum::Json(WebhookList { items }))
}

/// `DELETE /api/v1/webhooks/{id}`.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 204, description = "The webhook and its pending deliveries were deleted.")))]
pub async fn delete(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    found(&state, id).await?;
    if !state.store.delete_webhook(id).await? {
        return Err(no_webhook(id));
    }
    tracing::info!(webhook_id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_never_echo_the_url() {
        for bad in [
            "ftp://h/secret-part",
            "not a url secret-part",
            "mailto:secret-part@x.test",
        ] {
            let err = validate_url(bad).unwrap_err();
            assert!(!err.to_string().contains("secret-part"), "{bad}: {err}");
        }
        assert!(validate_url("https://discord.com/api/webhooks/1/x").is_ok());
    }
}
