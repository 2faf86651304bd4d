//! Performs one HTTP check and turns whatever happens into a [`CheckResult`].
//!
//! A [`Checker`] holds two reqwest clients, one that follows a bounded number of redirects and
//! one that follows none, and picks one per job. A check never fails as a Rust error: a
//! refused connection, a timeout or an unexpected status are all results with status down and
//! an [`ErrorKind`](upwatch_core::ErrorKind) (see the `classify` module for how reqwest's
//! errors are sorted).
//!
//! Bounds that hold for every check:
//! - the whole check, body reading included, ends within the job's `timeout_ms`;
//! - the body is read only when the job has a keyword, and then at most
//!   [`CheckerConfig::max_body_bytes`] of it;
//! - at most [`CheckerConfig::max_redirects`] redirects are followed.

mod classify;

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{redirect, Client, Method, Url};
use upwatch_core::check::{evaluate, CheckError, CheckJob, CheckResult, ErrorKind};
use upwatch_core::{Monitor, MonitorInput, ValidationError};

use crate::classify::{classify, timeout_error, Context};

/// How long an idle pooled connection is kept before it is closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits and identity of a [`Checker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerConfig {
    /// The most body bytes read to look for a keyword (default 64 KiB).
    pub max_body_bytes: usize,
    /// The most redirects followed when a job follows redirects (default 10).
    pub max_redirects: usize,
    /// The `User-Agent` sent unless a job sets its own (default `upwatch/<version>`).
    pub user_agent: String,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        CheckerConfig {
            max_body_bytes: 64 * 1024,
            max_redirects: 10,
            user_agent: format!("upwatch/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Performs HTTP checks; cheap to clone, as the clients it wraps share their connection pools.
#[derive(Debug, Clone)]
pub struct Checker {
    following: Client,
    direct: Client,
    max_body_bytes: usize,
    max_redirects: usize,
}

impl Checker {
    /// Builds the two clients (rustls, pooled connections, no global timeout).
    ///
    /// Fails only when reqwest cannot set up TLS or the user agent is not a valid header value.
    pub fn new(config: CheckerConfig) -> Result<Checker, reqwest::Error> {
        let build = |policy: redirect::Policy| {
            Client::builder()
                .user_agent(config.user_agent.as_str())
                .redirect(policy)
                // A redirect target need not learn which page pointed to it.
                .referer(false)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .tcp_nodelay(true)
                .build()
        };
        Ok(Checker {
            following: build(redirect::Policy::limited(config.max_redirects))?,
            direct: build(redirect::Policy::none())?,
            max_body_bytes: config.max_body_bytes,
            max_redirects: config.max_redirects,
        })
    }

    /// Performs `job`'s check and reports how it went; never panics and never fails.
    ///
    /// `checked_at` is when the check started. `response_time_ms` is the time to the response
    /// headers, plus the body read when the job has a keyword; for a failed check it is the
    /// time until the failure.
    pub async fn check(&self, job: &CheckJob) -> CheckResult {
        let checked_at = Utc::now();
        let started = Instant::now();
        let (status_code, outcome) = self.perform(job).await;
        let elapsed_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        if let Err(error) = &outcome {
            tracing::debug!(
                monitor_id = %job.monitor_id,
                job_id = %job.id,
                kind = %error.kind,
                message = %error.message,
                "check failed"
            );
        }
        CheckResult::for_job(job, checked_at, elapsed_ms, status_code, outcome)
    }

    /// Checks `url` with every other setting at the monitor defaults, as `upwatch check URL`
    /// does; fails only when the URL is not one a monitor accepts.
    pub async fn check_url(&self, url: &str) -> Result<CheckResult, ValidationError> {
        let now = Utc::now();
        let monitor = Monitor::create(MonitorInput::for_url(url), now)?;
        let job = CheckJob::for_monitor(&monitor, now);
        Ok(self.check(&job).await)
    }

    /// Sends the request and judges the answer, giving the status code when one arrived.
    async fn perform(&self, job: &CheckJob) -> (Option<u16>, Result<(), CheckError>) {
        let request = &job.request;
        let timeout = Duration::from_millis(request.timeout_ms);
        let deadline = tokio::time::Instant::now() + timeout;

        let url = match Url::parse(&request.url) {
            Ok(url) => url,
            Err(e) => {
                return (
                    None,
                    Err(CheckError::new(
                        ErrorKind::Other,
                        format!("invalid url: {e}"),
                    )),
                )
            }
        };
        let method = match Method::from_bytes(request.method.as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                return (
                    None,
                    Err(CheckError::new(
                        ErrorKind::Other,
                        format!("invalid http method `{}`", request.method),
                    )),
                )
            }
        };
        let headers = match header_map(job) {
            Ok(headers) => headers,
            Err(e) => return (None, Err(e)),
        };
        let client = if request.follow_redirects {
            &self.following
        } else {
            &self.direct
        };
        let ctx = Context {
            timeout_ms: request.timeout_ms,
            max_redirects: if request.follow_redirects {
                self.max_redirects
            } else {
                0
            },
            url: Some(&url),
        };

        let mut builder = client
            .request(method, url.clone())
            .headers(headers)
            .timeout(timeout);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        // reqwest's own timeout covers connecting, headers and body; the outer one also covers
        // anything reqwest does before it arms its timer.
        let response = match tokio::time::timeout_at(deadline, builder.send()).await {
            Err(_) => return (None, Err(timeout_error(request.timeout_ms))),
            Ok(Err(e)) => return (None, Err(classify(&e, &ctx))),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();

        // The body matters only for a keyword, and only when the status is right: `evaluate`
        // judges the status first.
        let wants_body = request.keyword.is_some() && request.expected_status_codes.matches(status);
        let body = if wants_body {
            match tokio::time::timeout_at(deadline, read_prefix(response, self.max_body_bytes))
                .await
            {
                Err(_) => return (Some(status), Err(timeout_error(request.timeout_ms))),
                Ok(Err(e)) => return (Some(status), Err(classify(&e, &ctx))),
                Ok(Ok(body)) => Some(body),
            }
        } else {
            // Dropping an unread response closes its connection rather than draining it.
            drop(response);
            None
        };
        (Some(status), evaluate(request, status, body.as_deref()))
    }
}

/// The job's headers as reqwest wants them, or an `Other` error naming the bad one.
fn header_map(job: &CheckJob) -> Result<HeaderMap, CheckError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &job.request.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            CheckError::new(ErrorKind::Other, format!("invalid header name `{name}`"))
        })?;
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            CheckError::new(
                ErrorKind::Other,
                format!("invalid value for header `{name}`"),
            )
        })?;
        headers.append(header_name, header_value);
    }
    Ok(headers)
}

/// Reads at most `max` bytes of the body, then stops and drops the rest unread.
async fn read_prefix(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::with_capacity(max.min(16 * 1024));
    while body.len() < max {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        let take = chunk.len().min(max - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(method: &str, headers: &[(&str, &str)]) -> CheckJob {
        let monitor =
            Monitor::create(MonitorInput::for_url("http://127.0.0.1:9/"), Utc::now()).unwrap();
        let mut job = CheckJob::for_monitor(&monitor, Utc::now());
        job.request.method = method.to_string();
        job.request.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        job
    }

    #[test]
    fn defaults_are_bounded_and_name_the_version() {
        let config = CheckerConfig::default();
        assert_eq!(config.max_body_bytes, 65_536);
        assert_eq!(config.max_redirects, 10);
        assert_eq!(
            config.user_agent,
            format!("upwatch/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[tokio::test]
    async fn invalid_methods_and_headers_are_other_errors_without_a_request() {
        let checker = Checker::new(CheckerConfig::default()).unwrap();

        let result = checker.check(&job("GE T", &[])).await;
        let error = result.error.expect("a bad method fails");
        assert_eq!(error.kind, ErrorKind::Other);
        assert_eq!(error.message, "invalid http method `GE T`");
        assert_eq!(result.status_code, None);

        let result = checker.check(&job("GET", &[("bad name", "x")])).await;
        assert_eq!(
            result.error.unwrap().message,
            "invalid header name `bad name`"
        );

        let result = checker.check(&job("GET", &[("x-ok", "line\nbreak")])).await;
        assert_eq!(
            result.error.unwrap().message,
            "invalid value for header `x-ok`"
        );
    }

    #[tokio::test]
    async fn an_unparsable_url_is_an_other_error() {
        let checker = Checker::new(CheckerConfig::default()).unwrap();
        let mut job = job("GET", &[]);
        job.request.url = "not a url".to_string();
        let result = checker.check(&job).await;
        let error = result.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Other);
        assert!(
            error.message.starts_with("invalid url: "),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn check_url_refuses_what_a_monitor_refuses() {
        let checker = Checker::new(CheckerConfig::default()).unwrap();
        let err = checker.check_url("ftp://127.0.0.1/").await.unwrap_err();
        assert_eq!(err.field, "url");
    }
}
