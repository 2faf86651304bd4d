//! Bearer-token authentication of `/api/v1`.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::Shared;

/// Lets a request through when no token is configured or it carries the right one.
pub async fn require_token(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.api_token {
        let given = given_token(request.headers());
        let Some(given) = given else {
            return ApiError::Unauthorized(
                "This API needs a token; send it as `Authorization: Bearer <token>`.",
            )
            .into_response();
        };
        if !tokens_match(expected.expose_secret(), given) {
            tracing::debug!("api request refused: wrong bearer token");
            return ApiError::Unauthorized("The bearer token is not valid.").into_response();
        }
    }
    next.run(request).await
}

/// The bearer token a request carries, if any.
fn given_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
}

/// Whether a request may pass the token layer: no token is configured, or it carries it.
pub(crate) fn admitted(
    expected: Option<&secrecy::SecretString>,
    headers: &axum::http::HeaderMap,
) -> bool {
    match expected {
        None => true,
        Some(expected) => {
            given_token(headers).is_some_and(|given| tokens_match(expected.expose_secret(), given))
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares in time that depends only on the expected token's length: neither where the
/// tokens differ nor the given token's length shows in the timing.
fn tokens_match(expected: &str, given: &str) -> bool {
    let (expected, given) = (expected.as_bytes(), given.as_bytes());
    let same_length = (expected.len() as u64).ct_eq(&(given.len() as u64));
    let aligned: Vec<u8> = (0..expected.len())
        .map(|i| given.get(i).copied().unwrap_or(0))
        .collect();
    (expected.ct_eq(&aligned) & same_length).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        let token = "0123456789abcdef";
        assert!(tokens_match(token, token));
        for other in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789abcdeF",
            "x",
        ] {
            assert!(!tokens_match(token, other), "{other}");
        }
    }

    #[test]
    fn bearer_values_are_parsed() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(tokens_match("s3cret", "s3cret"));
        assert!(!tokens_match("s3cret", "s3cres"));
        assert!(!tokens_match("s3cret", "s3cret2"));
        assert!(!tokens_match("s3cret", ""));
    }
}
