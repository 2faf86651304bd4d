//! Extractors whose rejections are [`ApiError`]s, so that a refused request is answered with
//! a problem document like every other error instead of axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{quote, sentence, unknown_field, ApiError};

/// A JSON body (`application/json` or any `+json` type such as `application/merge-patch+json`).
///
/// Malformed JSON is a 400, JSON of the wrong shape a 422 naming the field, a missing or
/// different content type a 415, and a body over the limit a 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!(
            "The body is not valid JSON: {}",
            sentence(&without_position(
                &serde_message(&e).unwrap_or_else(|| "it could not be parsed".to_string())
            ))
        )),
        JsonRejection::JsonDataError(e) => match path_error(&e) {
            Some(e) => shape_error(e),
            None => ApiError::validation("", sentence(&e.body_text())),
        },
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        JsonRejection::BytesRejection(e) => ApiError::Other {
            status: e.status(),
            detail: "The request body could not be read completely.".to_string(),
        },
        other => ApiError::Other {
            status: other.status(),
            detail: sentence(&other.body_text()),
        },
    }
}

/// The serde error inside a JSON rejection, found through its chain of sources.
fn path_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a serde_path_to_error::Error<serde_json::Error>> {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// The serde_json message inside a JSON rejection, with or without a path around it.
fn serde_message(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = path_error(error) {
        return Some(e.inner().to_string());
    }
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<serde_json::Error>() {
            return Some(found.to_string());
        }
        source = e.source();
    }
    None
}

/// A 422 for JSON of the wrong shape, naming the field from the error's path.
pub fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let message = without_position(&error.inner().to_string());
    let path = error.path().to_string();
    let field = unknown_field(&message).or_else(|| (path != ".").then_some(path));
    let message = match &field {
        Some(field)
            if !message.starts_with("unknown field") && !message.starts_with("missing field") =>
        {
            format!("`{field}` is not valid: {message}")
        }
        _ => message,
    };
    ApiError::Validation {
        field,
        message: sentence(&message),
    }
}

/// Reads a JSON object into `T`, naming the field at fault when it does not fit.
///
/// Serde would also read a struct from an array of its fields in order; an API body must be
/// an object, so anything else is refused first.
pub fn from_object<T: DeserializeOwned>(
    value: &serde_json::Value,
    what: &str,
) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation(
            "",
            format!("The body must be a JSON object of {what}."),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| shape_error(&e))
}

/// A serde_json message without its " at line 1 column 5" suffix.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// Query parameters; a query string that cannot be decoded is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let message = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                Err(ApiError::BadRequest(sentence(&format!(
                    "the query string is not valid: {message}"
                ))))
            }
            Err(other) => Err(ApiError::BadRequest(sentence(&other.body_text()))),
        }
    }
}

/// The `{id}` segment of a path, which must be a UUID.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Uuid);

impl<S> FromRequestParts<S> for IdPath
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::BadRequest(sentence(&e.body_text())))?;
        raw.parse::<Uuid>()
            .map(IdPath)
            .map_err(|_| ApiError::InvalidId(raw))
    }
}

/// Parses an optional page size: `default` when absent, else a whole number in `1..=max`.
pub fn parse_limit(raw: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "`limit` must be a whole number between 1 and {max}, not `{}`.",
            quote(raw)
        ))),
    }
}

/// Parses an optional id cursor, the last id of the previous page.
pub fn parse_id_cursor(raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|raw| {
        raw.trim().parse::<Uuid>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`cursor` must be the `next_cursor` of a previous page (a UUID), not `{}`.",
                quote(raw)
            ))
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(None, 100, 1000).unwrap(), 100);
        assert_eq!(parse_limit(Some("7"), 100, 1000).unwrap(), 7);
        for bad in ["0", "1001", "-1", "abc", ""] {
            assert!(parse_limit(Some(bad), 100, 1000).is_err(), "{bad}");
        }
    }

    #[test]
    fn positions_are_dropped() {
        assert_eq!(
            without_position("expected value at line 1 column 2"),
            "expected value"
        );
        assert_eq!(without_position("EOF"), "EOF");
    }
}
