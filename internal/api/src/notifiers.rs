//! Notification channels of every kind ("notifiers"): `/api/v1/notifiers`.
//!
//! A notifier is `{"name", "kind", "settings": {...}}` plus its routing and reminder options.
//! Settings are checked by the kind's provider when a notifier is created or changed (a 422
//! names the field: `settings.chat_id`). Settings hold secrets (tokens, passwords, keys,
//! webhook URLs): responses show them redacted, logs never show them, and a PATCH merges its
//! `settings` into the stored ones, so that a client changes one setting without sending
//! the secrets back. Discord webhooks made through `/api/v1/webhooks` are notifiers of kind
//! `discord` with the same ids.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use upwatch_core::monitor::validate_reminder_interval;
use upwatch_core::webhook::validate_name;
use upwatch_core::{Webhook, WebhookSource};
use upwatch_notify::{Message, SettingsError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{from_object, IdPath, Json};
use crate::{ApiState, Shared};

/// Why a notifier is disabled when a person disables it.
const DISABLED_THROUGH_API: &str = "disabled through the API";

/// What a client sends to add a notifier, and (every field optional) to change one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifierInput {
    /// At most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "ops on Slack")]
    pub name: Option<String>,
    /// `discord`, `slack`, `teams`, `mattermost`, `telegram`, `matrix`, `email`, `webhook`,
    /// `pagerduty`, `opsgenie`, `ntfy`, `gotify` or `pushover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "slack")]
    pub kind: Option<String>,
    /// The kind's settings (see the README's table); secrets among them are never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX"}))]
    pub settings: Option<Value>,
    /// Receives the alerts of monitors that name no notifier (default false; true for
    /// Discord webhooks made through `/api/v1/webhooks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// Receives the alerts of the monitors of these groups that name no notifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// While a monitor stays down, a reminder every this many seconds (60 to 604800; 0 or
    /// absent: none). A monitor's own `reminder_interval_seconds` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 604800)]
    pub reminder_interval_seconds: Option<u32>,
    /// Whether alert storms reach this notifier as one message (default: true, except for
    /// `pagerduty` and `opsgenie`, which get one incident per monitor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_alerts: Option<bool>,
    /// Whether it gets upwatch's messages about itself: the watchdog's and a region's lost or
    /// regained connectivity (default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<bool>,
    /// Only in a PATCH: `true` uses a disabled notifier again, `false` disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl NotifierInput {
    /// Whether it changes anything but `enabled`.
    fn changes_settings(&self) -> bool {
        self.name.is_some()
            || self.kind.is_some()
            || self.settings.is_some()
            || self.default.is_some()
            || self.groups.is_some()
            || self.reminder_interval_seconds.is_some()
            || self.group_alerts.is_some()
            || self.system.is_some()
    }
}

/// A notifier as responses show it: its secrets redacted.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifierView {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    /// The settings, each secret shown as `********` and its last four characters (URLs:
    /// their scheme and host).
    #[schema(value_type = Object)]
    pub settings: Value,
    pub default: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_interval_seconds: Option<u32>,
    /// Whether alert storms reach it as one message.
    pub group_alerts: bool,
    /// Whether it gets upwatch's messages about itself.
    pub system: bool,
    /// False once the service refused it for good (a revoked token, a deleted webhook), or
    /// when switched off.
    pub enabled: bool,
    /// Why it is disabled, in the service's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub source: WebhookSource,
    pub created_at: DateTime<Utc>,
}

/// The notifier listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotifierList {
    pub items: Vec<NotifierView>,
}

/// What `POST /api/v1/notifiers/{id}/test` answers: whether the test message went out, and
/// why not (never with a secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    pub delivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The view of `channel` with its secrets redacted by its kind's provider.
pub fn view(state: &ApiState, channel: &Webhook) -> NotifierView {
    NotifierView {
        id: channel.id,
        name: channel.name.clone(),
        kind: channel.kind.clone(),
        settings: state.notifier.redact(&channel.kind, &channel.settings),
        default: channel.options.default,
        groups: channel.options.groups.clone(),
        reminder_interval_seconds: channel.options.reminder_interval_seconds,
        group_alerts: channel
            .options
            .group_alerts
            .unwrap_or_else(|| state.notifier.groups_storms(&channel.kind)),
        system: channel.options.system,
        enabled: channel.enabled,
        disabled_reason: channel.disabled_reason.clone(),
        source: channel.source,
        created_at: channel.created_at,
    }
}

/// The channel `input` describes, checked whole: `base` is the stored one for a change.
/// Errors name the field (`name`, `kind`, `settings.chat_id`, `reminder_interval_seconds`).
pub fn build(
    state: &ApiState,
    input: &NotifierInput,
    base: Option<&Webhook>,
) -> Result<Webhook, ApiError> {
    let name = match (&input.name, base) {
        (Some(name), _) => validate_name(name)?,
        (None, Some(b)) => b.name.clone(),
        (None, None) => {
            return Err(ApiError::validation(
                "name",
                "`name` is required: a name of at most 100 characters.",
            ))
        }
    };
    let kind = match (&input.kind, base) {
        (Some(kind), _) => kind.trim().to_string(),
        (None, Some(b)) => b.kind.clone(),
        (None, None) => {
            return Err(ApiError::validation(
                "kind",
                format!(
                    "`kind` is required: one of {}.",
                    state.notifier.kinds().join(", ")
                ),
            ))
        }
    };
    let mut settings = base.map(|b| b.settings.clone()).unwrap_or(Value::Null);
    if let Some(changes) = &input.settings {
        if !changes.is_object() {
            return Err(ApiError::validation(
                "settings",
                "`settings` must be an object of the kind's settings.",
            ));
        }
        if base.is_some_and(|b| b.kind != kind) {
            // A new kind starts from its own settings only.
            settings = Value::Null;
        }
        upwatch_core::monitor::merge_patch(&mut settings, changes);
    }
    if settings.is_null() {
        settings = Value::Object(Default::default());
    }
    state
        .notifier
        .validate(&kind, &settings)
        .map_err(settings_error)?;
    let mut options = base.map(|b| b.options.clone()).unwrap_or_default();
    if let Some(default) = input.default {
        options.default = default;
    }
    if let Some(groups) = &input.groups {
        options.groups = validate_groups(groups)?;
    }
    if let Some(seconds) = input.reminder_interval_seconds {
        options.reminder_interval_seconds =
            Some(validate_reminder_interval(seconds)?).filter(|s| *s > 0);
    }
    if let Some(group) = input.group_alerts {
        options.group_alerts = Some(group);
    }
    if let Some(system) = input.system {
        options.system = system;
    }
    Ok(Webhook {
        id: base.map_or_else(Uuid::now_v7, |b| b.id),
        name,
        // A Discord channel's `url` is its `webhook_url` (filled in by `normalized`).
        url: String::new(),
        enabled: base.is_none_or(|b| b.enabled),
        disabled_reason: base.and_then(|b| b.disabled_reason.clone()),
        source: base.map_or(WebhookSource::Api, |b| b.source),
        created_at: base.map_or_else(Utc::now, |b| b.created_at),
        kind,
        settings,
        options,
    }
    .normalized())
}

/// A provider's settings error as a 422 naming the field.
fn settings_error(e: SettingsError) -> ApiError {
    let message = format!("`{}` {}.", e.field, e.message.trim_end_matches('.'));
    ApiError::validation(e.field, message)
}

/// `POST /api/v1/notifiers`.
#[utoipa::path(post, path = "/api/v1/notifiers", tag = "notifiers", operation_id = "create_notifier", request_body(content = NotifierInput), responses((status = 201, description = "The notifier was created; its secrets are shown redacted.", body = NotifierView, headers(("Location" = String, description = "The path of the new notifier.")))))]
pub async fn create(
    State(state): State<Shared>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let input: NotifierInput = from_object(&body, "the notifier's `name`, `kind` and `settings`")?;
    if input.enabled.is_some() {
        return Err(ApiError::validation(
            "enabled",
            "`enabled` is only for changing a notifier; a new one is enabled.",
        ));
    }
    let channel = build(&state, &input, None)?;
    state.store.upsert_webhook(&channel).await?;
    tracing::info!(notifier_id = %channel.id, kind = %channel.kind, "notifier created");
    let location = format!("/api/v1/notifiers/{}", channel.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(view(&state, &channel)),
    )
        .into_response())
}

/// `GET /api/v1/notifiers`.
#[utoipa::path(get, path = "/api/v1/notifiers", tag = "notifiers", operation_id = "list_notifiers", responses((status = 200, description = "Every notifier, secrets redacted.", body = NotifierList)))]
pub async fn list(State(state): State<Shared>) -> Result<axum::Json<NotifierList>, ApiError> {
    let items = state
        .store
        .list_webhooks()
        .await?
        .iter()
        .map(|c| view(&state, c))
        .collect();
    Ok(axum::Json(NotifierList { items }))
}

/// `GET /api/v1/notifiers/{id}`.
#[utoipa::path(get, path = "/api/v1/notifiers/{id}", tag = "notifiers", operation_id = "get_notifier", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "The notifier, secrets redacted.", body = NotifierView)))]
pub async fn get(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<axum::Json<NotifierView>, ApiError> {
    let channel = found(&state, id).await?;
    Ok(axum::Json(view(&state, &channel)))
}

/// `PATCH /api/v1/notifiers/{id}`: changes what it names; `settings` are merged into the
/// stored ones (a setting set to `null` is removed). `"enabled": true` is how a notifier
/// disabled after a permanent refusal is used again.
#[utoipa::path(patch, path = "/api/v1/notifiers/{id}", tag = "notifiers", operation_id = "update_notifier", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), request_body(content((NotifierInput = "application/merge-patch+json"), (NotifierInput = "application/json"))), responses((status = 200, description = "The notifier as changed.", body = NotifierView)))]
pub async fn update(
    State(state): State<Shared>,
    IdPath(id): IdPath,
    Json(body): Json<Value>,
) -> Result<axum::Json<NotifierView>, ApiError> {
    let input: NotifierInput = from_object(&body, "the notifier's fields to change")?;
    let stored = found(&state, id).await?;
    let changes_more = input.changes_settings();
    if stored.source == WebhookSource::Config && changes_more {
        return Err(ApiError::Conflict(
            "This notifier comes from the configuration (DISCORD_WEBHOOK_URL or UPWATCH_NOTIFIERS_FILE), which sets it at every start; change the configuration instead, or send only `enabled`.".to_string(),
        ));
    }
    if changes_more {
        let channel = build(&state, &input, Some(&stored))?;
        state.store.upsert_webhook(&channel).await?;
    }
    set_enabled(&state, &stored, input.enabled).await?;
    let channel = found(&state, id).await?;
    tracing::info!(notifier_id = %id, kind = %channel.kind, "notifier updated");
    Ok(axum::Json(view(&state, &channel)))
}

/// Enables or disables `channel` as `enabled` says (nothing when it already is).
pub async fn set_enabled(
    state: &ApiState,
    channel: &Webhook,
    enabled: Option<bool>,
) -> Result<(), ApiError> {
    match enabled {
        Some(true) if !channel.enabled => {
            state.store.enable_webhook(channel.id).await?;
            tracing::info!(notifier_id = %channel.id, "notifier enabled");
        }
        Some(false) if channel.enabled => {
            state
                .store
                .disable_webhook(channel.id, DISABLED_THROUGH_API)
                .await?;
            tracing::info!(notifier_id = %channel.id, "notifier disabled");
        }
        _ => {}
    }
    Ok(())
}

/// `DELETE /api/v1/notifiers/{id}`.
#[utoipa::path(delete, path = "/api/v1/notifiers/{id}", tag = "notifiers", operation_id = "delete_notifier", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 204, description = "The notifier and its pending deliveries were deleted.")))]
pub async fn delete(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_webhook(id).await? {
        return Err(no_notifier(id));
    }
    tracing::info!(notifier_id = %id, "notifier deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/notifiers/{id}/test`: sends a test message, once, whether or not the
/// notifier is enabled, and says how it went. A failed test is an answer, not an API error:
/// a 200 with `"delivered": false` and the service's reason (secrets removed); it changes
/// nothing.
#[utoipa::path(post, path = "/api/v1/notifiers/{id}/test", tag = "notifiers", operation_id = "test_notifier", params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "Whether the test message was delivered.", body = TestOutcome)))]
pub async fn test(
    State(state): State<Shared>,
    IdPath(id): IdPath,
) -> Result<axum::Json<TestOutcome>, ApiError> {
    let channel = found(&state, id).await?;
    Ok(axum::Json(send_test(&state, &channel).await))
}

/// Sends `channel` a test message and says how it went.
pub async fn send_test(state: &ApiState, channel: &Webhook) -> TestOutcome {
    let outcome = match state.notifier.send(channel, &Message::Test).await {
        Ok(()) => TestOutcome {
            delivered: true,
            error: None,
        },
        Err(error) => TestOutcome {
            delivered: false,
            error: Some(error.to_string()),
        },
    };
    tracing::info!(notifier_id = %channel.id, kind = %channel.kind, delivered = outcome.delivered, error = outcome.error.as_deref(), "notifier test message");
    outcome
}

/// The notifier with `id`, or a 404 that says so.
async fn found(state: &ApiState, id: Uuid) -> Result<Webhook, ApiError> {
    state
        .store
        .get_webhook(id)
        .await?
        .ok_or_else(|| no_notifier(id))
}

fn no_notifier(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("There is no notifier with id {id}."))
}

fn validate_groups(groups: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let g = g.trim();
        if g.is_empty() || g.chars().count() > upwatch_core::monitor::MAX_GROUP_CHARS {
            return Err(ApiError::validation(
                format!("groups[{i}]"),
                format!(
                    "`groups[{i}]` must be a group name of 1 to {} characters.",
                    upwatch_core::monitor::MAX_GROUP_CHARS
                ),
            ));
        }
        if !out.iter().any(|o: &String| o == g) {
            out.push(g.to_string());
        }
    }
    Ok(out)
}
