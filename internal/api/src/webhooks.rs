//! Alert webhooks. Their URLs are secrets: responses and logs only show them redacted.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use upwatch_core::{Webhook, WebhookSource, WebhookView};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{from_object, IdPath, Json};
use crate::ApiState;

/// Longest webhook name accepted, in characters.
const MAX_NAME: usize = 100;

/// What a client sends to add a webhook.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// The webhook listing.
#[derive(Debug, Serialize)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// `POST /api/v1/webhooks`.
pub async fn create(
    State(state): State<ApiState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let input: WebhookInput = from_object(&body, "the webhook's `url` and `name`")?;
    let url = validate_url(&input.url)?;
    let name = match input.name {
        None => "webhook".to_string(),
        Some(name) => {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(ApiError::validation("name", "`name` must not be empty."));
            }
            if name.chars().count() > MAX_NAME {
                return Err(ApiError::validation(
                    "name",
                    format!("`name` must be at most {MAX_NAME} characters."),
                ));
            }
            name
        }
    };
    let webhook = Webhook {
        id: Uuid::now_v7(),
        name,
        url,
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Api,
        created_at: Utc::now(),
    };
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
pub async fn list(State(state): State<ApiState>) -> Result<axum::Json<WebhookList>, ApiError> {
    let items = state
        .store
        .list_webhooks()
        .await?
        .iter()
        .map(WebhookView::from)
        .collect();
    Ok(axum::Json(WebhookList { items }))
}

/// `DELETE /api/v1/webhooks/{id}`.
pub async fn delete(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_webhook(id).await? {
        return Err(ApiError::NotFound(format!(
            "There is no webhook with id {id}."
        )));
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
