//! The fast path of live reads: a fresh answer of `GET /api/v1/sites/{id}/status` (see
//! [`crate::answers`]) is served before the router, without its nesting, layers and second
//! route match; every other request, and a live read without a fresh answer, goes through the
//! router as usual. A configured token is checked here too: a request without it goes to the
//! router, whose token layer answers the 401.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::response::Response;
use axum::Router;
use tower::Service;
use uuid::Uuid;

use crate::answers::LiveAnswers;

/// A router with the fast path of live reads in front of it.
#[derive(Clone)]
pub struct FastReads {
    answers: Option<Arc<LiveAnswers>>,
    token: Option<secrecy::SecretString>,
    router: Router,
}

impl FastReads {
    /// `router` with fresh answers of `answers` served first (none without `answers`), to
    /// requests that carry `token` when one is set.
    pub fn new(
        router: Router,
        answers: Option<Arc<LiveAnswers>>,
        token: Option<secrecy::SecretString>,
    ) -> Self {
        FastReads {
            answers,
            token,
            router,
        }
    }

    /// The fresh answer to `request`, when it is a live read that has one.
    fn answer(&self, request: &Request<Body>) -> Option<Response> {
        let answers = self.answers.as_ref()?;
        if request.method() != Method::GET || request.uri().query().is_some() {
            return None;
        }
        let id = live_read_id(request.uri().path())?;
        if !crate::auth::admitted(self.token.as_ref(), request.headers()) {
            return None;
        }
        answers
            .get(id, Instant::now())
            .map(crate::status::json_response)
    }
}

/// The monitor id of a `/api/v1/sites/{id}/status` path.
fn live_read_id(path: &str) -> Option<Uuid> {
    let id = path
        .strip_prefix("/api/v1/sites/")?
        .strip_suffix("/status")?;
    Uuid::try_parse(id).ok()
}

impl Service<Request<Body>> for FastReads {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if let Some(response) = self.answer(&request) {
            return Box::pin(std::future::ready(Ok(response)));
        }
        let mut router = self.router.clone();
        Box::pin(async move { router.call(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_read_paths_have_an_id() {
        let id = Uuid::new_v4();
        assert_eq!(
            live_read_id(&format!("/api/v1/sites/{id}/status")),
            Some(id)
        );
        assert_eq!(live_read_id(&format!("/api/v1/sites/{id}/status/")), None);
        assert_eq!(live_read_id(&format!("/api/v1/sites/{id}/history")), None);
        assert_eq!(live_read_id(&format!("/api/v2/sites/{id}/status")), None);
        assert_eq!(live_read_id("/api/v1/sites/nope/status"), None);
        assert_eq!(live_read_id(&format!("/api/v1/sites/{id}/x/status")), None);
    }
}
