//! The one error type of the API and how it is answered: RFC 9457 problem details.
//!
//! Every failure a handler or extractor can meet is an [`ApiError`] variant, and every variant
//! becomes an `application/problem+json` response whose `detail` is a sentence a person
//! understands. Failures of the server's own dependencies (the database) are logged in full
//! and answered opaquely, so that internals never leak to clients.

use std::error::Error as StdError;
use std::fmt::Write as _;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use upwatch_core::ValidationError;
use upwatch_store::StoreError;

/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything that can make a request fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: unparsable JSON, a bad query parameter, a bad cursor.
    #[error("{0}")]
    BadRequest(String),
    /// A query parameter is not valid; `field` names it in the problem (a 400, as every
    /// other query parameter's error: 422 is for bodies).
    #[error("{message}")]
    InvalidParameter {
        /// The query parameter at fault.
        field: &'static str,
        /// A full sentence saying what is wrong.
        message: String,
    },
    /// A path segment that should be an id is not a UUID.
    #[error("`{0}` is not a valid id")]
    InvalidId(String),
    /// The body is well-formed JSON but not acceptable; `field` names the culprit when known.
    #[error("{message}")]
    Validation {
        /// The JSON field at fault, if one can be named.
        field: Option<String>,
        /// A full sentence saying what is wrong.
        message: String,
    },
    /// No bearer token, or the wrong one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The addressed resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The write conflicts with existing data.
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body was not sent as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A dependency needed to answer is unreachable; the detail says which.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed; logged in full, answered opaquely.
    #[error("database error")]
    Store(#[from] StoreError),
    /// Any other failure with a status of its own (a body that could not be read, a panic).
    #[error("{detail}")]
    Other {
        /// The status to answer with.
        status: StatusCode,
        /// A full sentence for the client.
        detail: String,
    },
}

impl ApiError {
    /// A 422 for a field the domain refused.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError::Validation {
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidId(_)
            | ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Other { status, .. } => *status,
        }
    }

    /// The `detail` member: a sentence for people.
    fn detail(&self) -> String {
        match self {
            ApiError::BadRequest(message)
            | ApiError::NotFound(message)
            | ApiError::Conflict(message)
            | ApiError::Unavailable(message) => message.clone(),
            ApiError::Other { detail, .. } => detail.clone(),
            ApiError::Validation { message, .. } | ApiError::InvalidParameter { message, .. } => {
                message.clone()
            }
            ApiError::Unauthorized(message) => (*message).to_string(),
            ApiError::InvalidId(raw) => format!(
                "`{}` is not a valid id; expected a UUID such as 0190f5a4-6a47-7c1e-9a8b-3c2d1e0f9a7b.",
                quote(raw)
            ),
            ApiError::MethodNotAllowed => {
                "This method is not allowed on this resource; the Allow header lists those that are."
                    .to_string()
            }
            ApiError::PayloadTooLarge => {
                "The request body is larger than this server accepts; send a smaller body."
                    .to_string()
            }
            ApiError::UnsupportedMediaType => {
                "Send the body as application/json, with a `Content-Type: application/json` header."
                    .to_string()
            }
            ApiError::Store(StoreError::Conflict(_)) => {
                "The request conflicts with data that already exists.".to_string()
            }
            ApiError::Store(_) => "The database is unavailable; try again shortly.".to_string(),
        }
    }
}

/// The body of an error response (RFC 9457 problem details), sent as
/// `application/problem+json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
    "detail": "`interval_seconds` must be at least 10.", "field": "interval_seconds"
}))]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: &'static str,
    /// The status's reason phrase.
    title: &'static str,
    /// The HTTP status.
    status: u16,
    /// A sentence for a person, saying what to fix.
    detail: String,
    /// The JSON field (or query parameter) at fault, when one can be named.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Store(error) = &self {
            tracing::error!(error = %chain(error), "store request failed");
        }
        let field = match &self {
            ApiError::Validation { field, .. } => field.clone(),
            ApiError::InvalidParameter { field, .. } => Some((*field).to_string()),
            _ => None,
        };
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            field,
        };
        let body = serde_json::to_vec(&problem).expect("a problem serializes");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, ApiError::Unauthorized(_)) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let message = sentence(&e.to_string());
        let field = if e.field.is_empty() {
            unknown_field(&e.message)
        } else {
            Some(e.field)
        };
        ApiError::Validation { field, message }
    }
}

/// An error and its sources, joined with `: `, for logs.
pub fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(text, ": {e}");
        source = e.source();
    }
    text
}

/// Makes a sentence of a message: a capital first letter and a final full stop.
pub fn sentence(message: &str) -> String {
    let message = message.trim();
    let mut chars = message.chars();
    let mut text = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => return "The request is not valid.".to_string(),
    };
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// The field named by a serde "unknown field `x`" or "missing field `x`" message.
pub fn unknown_field(message: &str) -> Option<String> {
    let rest = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.split(prefix).nth(1))?;
    let name = rest.split('`').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Client input, cut short so that an echo of it never makes a huge response.
pub fn quote(raw: &str) -> String {
    const MAX: usize = 80;
    if raw.chars().count() <= MAX {
        raw.to_string()
    } else {
        let mut cut: String = raw.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_get_a_capital_and_a_stop() {
        assert_eq!(sentence("`url` is required"), "`url` is required.");
        assert_eq!(sentence("must be small."), "Must be small.");
        assert_eq!(sentence(""), "The request is not valid.");
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(
            unknown_field("unknown field `intervall`, expected one of `a`, `b`").as_deref(),
            Some("intervall")
        );
        assert_eq!(unknown_field("missing field `url`").as_deref(), Some("url"));
        assert_eq!(unknown_field("invalid type: string"), None);
    }

    #[test]
    fn long_input_is_cut() {
        let long = "x".repeat(500);
        assert!(quote(&long).chars().count() <= 81);
        assert_eq!(quote("abc"), "abc");
    }

    #[test]
    fn store_conflicts_are_409_and_others_503() {
        let conflict = ApiError::Store(StoreError::Conflict("dup".into()));
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        let schema = ApiError::Store(StoreError::Schema("old".into()));
        assert_eq!(schema.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            schema.detail(),
            "The database is unavailable; try again shortly."
        );
    }
}
