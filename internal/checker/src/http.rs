//! `http://` and `https://` checks: one request, judged by status, keyword and conditions.
//!
//! The prober holds four reqwest clients: following a bounded number of redirects or none,
//! each verifying certificates or (for monitors with `tls_skip_verify`) not. All of them
//! report the peer's certificate, so that every HTTPS check knows when it expires.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::tls::TlsInfo;
use reqwest::{redirect, Client, Method, Url};
use tokio::time::Instant;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};
use upwatch_core::observation::Observation;

use crate::classify::{classify, timeout_error, Context};
use crate::{cert, CheckerConfig, CheckerError, Probe, POOL_IDLE_TIMEOUT};

/// The HTTP prober: its clients and limits.
#[derive(Debug)]
pub(crate) struct HttpProber {
    following: Client,
    direct: Client,
    following_unverified: Client,
    direct_unverified: Client,
    max_body_bytes: usize,
    max_redirects: usize,
}

impl HttpProber {
    pub fn new(config: &CheckerConfig) -> Result<HttpProber, CheckerError> {
        let roots = config
            .extra_roots
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        let build = |policy: redirect::Policy, verify: bool| {
            let mut builder = Client::builder()
                .user_agent(config.user_agent.as_str())
                .redirect(policy)
                // A redirect target need not learn which page pointed to it.
                .referer(false)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .tcp_nodelay(true)
                .tls_info(true)
                .danger_accept_invalid_certs(!verify);
            for root in &roots {
                builder = builder.add_root_certificate(root.clone());
            }
            builder.build()
        };
        let limited = || redirect::Policy::limited(config.max_redirects);
        Ok(HttpProber {
            following: build(limited(), true)?,
            direct: build(redirect::Policy::none(), true)?,
            following_unverified: build(limited(), false)?,
            direct_unverified: build(redirect::Policy::none(), false)?,
            max_body_bytes: config.max_body_bytes,
            max_redirects: config.max_redirects,
        })
    }

    /// Sends the request and reports the answer: status, headers, the body's prefix when a
    /// keyword or a condition (`needs_body`) needs it, the peer's address and certificate.
    pub async fn probe(
        &self,
        request: &CheckRequest,
        needs_body: bool,
        deadline: Instant,
    ) -> Probe {
        let url = match Url::parse(&request.url) {
            Ok(url) => url,
            Err(e) => {
                return Probe::failed(CheckError::new(
                    ErrorKind::Other,
                    format!("invalid url: {e}"),
                ))
            }
        };
        let method = match Method::from_bytes(request.method.as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                return Probe::failed(CheckError::new(
                    ErrorKind::Other,
                    format!("invalid http method `{}`", request.method),
                ))
            }
        };
        let headers = match header_map(request) {
            Ok(headers) => headers,
            Err(e) => return Probe::failed(e),
        };
        let client = match (request.follow_redirects, request.tls_skip_verify) {
            (true, false) => &self.following,
            (false, false) => &self.direct,
            (true, true) => &self.following_unverified,
            (false, true) => &self.direct_unverified,
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
            .timeout(Duration::from_millis(request.timeout_ms));
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        // reqwest's own timeout covers connecting, headers and body; the outer one also covers
        // anything reqwest does before it arms its timer.
        let response = match tokio::time::timeout_at(deadline, builder.send()).await {
            Err(_) => return Probe::failed(timeout_error(request.timeout_ms)),
            Ok(Err(e)) => return Probe::failed(classify(&e, &ctx)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let mut observation = Observation {
            connected: true,
            status_code: Some(status),
            headers: response
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
                })
                .collect(),
            ..Observation::default()
        };
        observation.details.ip = response.remote_addr().map(|a| a.ip());
        observation.details.certificate = response
            .extensions()
            .get::<TlsInfo>()
            .and_then(TlsInfo::peer_certificate)
            .and_then(|der| cert::facts(der).ok());

        // The body matters only for a keyword or a condition on it, and for a keyword only
        // when the status is right: the status is judged first.
        let wants_body = (request.keyword.is_some()
            && request.expected_status_codes.matches(status))
            || needs_body;
        if wants_body {
            match tokio::time::timeout_at(deadline, read_prefix(response, self.max_body_bytes))
                .await
            {
                Err(_) => {
                    return Probe {
                        observation,
                        outcome: Err(timeout_error(request.timeout_ms)),
                    }
                }
                Ok(Err(e)) => {
                    return Probe {
                        observation,
                        outcome: Err(classify(&e, &ctx)),
                    }
                }
                Ok(Ok(body)) => observation.body = Some(body),
            }
        } else {
            // Dropping an unread response closes its connection rather than draining it.
            drop(response);
        }
        Probe {
            observation,
            outcome: Ok(()),
        }
    }
}

/// The request's headers as reqwest wants them, or an `Other` error naming the bad one.
fn header_map(request: &CheckRequest) -> Result<HeaderMap, CheckError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
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
