//! `GET` or `POST /api/v1/push/{token}`: a push monitor's job reports in.
//!
//! No API token is needed: the push token in the path is the credential, as a cron job's
//! `curl` cannot be expected to hold the API token. `?status=down&msg=...` reports a failure;
//! anything sent in a POST body is ignored. Pushes are limited per monitor
//! (`UPWATCH_PUSH_MAX_PER_MINUTE`); more are answered 429 with `Retry-After`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use upwatch_service::{Push, PushError};

use crate::error::{quote, ApiError};
use crate::extract::Query;
use crate::Shared;

/// The query of a push.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushParams {
    /// `up` (the default) or `down`.
    #[param(value_type = Option<String>, pattern = "^(up|down)$", example = "up")]
    pub status: Option<String>,
    /// What the job has to say; shown as the error of a down push (at most 300 bytes kept).
    pub msg: Option<String>,
}

/// The answer to a recorded push.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushAccepted {
    /// Always true.
    pub ok: bool,
    pub monitor_id: uuid::Uuid,
    /// The status recorded: `up` or `down`.
    pub status: String,
}

/// `GET /api/v1/push/{token}`.
#[utoipa::path(get, path = "/api/v1/push/{token}", tag = "push", operation_id = "push_get", security(()),
    params(("token" = String, Path, description = "The push token of a push monitor (32 hex digits).", pattern = "^[0-9a-f]{32}$"), PushParams),
    responses((status = 200, description = "The push was recorded.", body = PushAccepted)))]
pub async fn get(
    State(state): State<Shared>,
    Path(token): Path<String>,
    Query(params): Query<PushParams>,
) -> Result<Response, ApiError> {
    record(state, token, params).await
}

/// `POST /api/v1/push/{token}` (the body, if any, is ignored).
#[utoipa::path(post, path = "/api/v1/push/{token}", tag = "push", operation_id = "push_post", security(()),
    params(("token" = String, Path, description = "The push token of a push monitor (32 hex digits).", pattern = "^[0-9a-f]{32}$"), PushParams),
    responses((status = 200, description = "The push was recorded.", body = PushAccepted)))]
pub async fn post(
    State(state): State<Shared>,
    Path(token): Path<String>,
    Query(params): Query<PushParams>,
) -> Result<Response, ApiError> {
    record(state, token, params).await
}

async fn record(state: Shared, token: String, params: PushParams) -> Result<Response, ApiError> {
    let up = match params.status.as_deref().map(str::trim) {
        None | Some("") | Some("up") => true,
        Some("down") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`status` must be `up` or `down`, not `{}`.",
                quote(other)
            )))
        }
    };
    let push = Push {
        up,
        message: params.msg,
    };
    let Some(pushes) = &state.pushes else {
        return Err(ApiError::Unavailable(
            "This API process has no results stream (KAFKA_BROKERS is not set), so it cannot record pushes.".to_string(),
        ));
    };
    match pushes.record(&token, push, Utc::now()).await {
        Ok(recorded) => Ok(Json(PushAccepted {
            ok: true,
            monitor_id: recorded.monitor_id,
            status: if recorded.up { "up" } else { "down" }.to_string(),
        })
        .into_response()),
        Err(PushError::UnknownToken) => Err(ApiError::NotFound(
            "No push monitor has this token; copy the `push_url` of the monitor (GET /api/v1/sites/{id}).".to_string(),
        )),
        Err(PushError::RateLimited { retry_after }) => {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = ApiError::Other {
                status: StatusCode::TOO_MANY_REQUESTS,
                detail: format!(
                    "This monitor was pushed more often than the server allows (UPWATCH_PUSH_MAX_PER_MINUTE); push again in {seconds} s."
                ),
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
        Err(PushError::Unavailable(why)) => {
            tracing::warn!(error = %why, "cannot record a push");
            Err(ApiError::Unavailable(
                "The push could not be recorded now; send it again shortly.".to_string(),
            ))
        }
    }
}
