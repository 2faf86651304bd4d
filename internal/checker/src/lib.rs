//! Performs one check of any type and turns whatever happens into a [`CheckResult`].
//!
//! One module per check type, each behind the same small signature (the request, a deadline,
//! and what it observed), as Prometheus' blackbox_exporter keeps one prober per module:
//! [`http`], [`tcp`], [`tls`], [`icmp`] and [`dns`]. Adding a type is one module and one line
//! in [`Checker::probe`]. Push monitors are not probed: the API records their pushes and the
//! scheduler their missed heartbeats.
//!
//! A check never fails as a Rust error: a refused connection, a timeout or an unexpected
//! status are all results with status down and an [`ErrorKind`](upwatch_core::ErrorKind). What
//! a prober observed is then judged by the monitor's conditions ([`upwatch_core::condition`]).
//!
//! Bounds that hold for every check:
//! - the whole check, body reading included, ends within the job's `timeout_ms`;
//! - the body is read only when the job has a keyword or a condition on the body, and then at
//!   most [`CheckerConfig::max_body_bytes`] of it;
//! - at most [`CheckerConfig::max_redirects`] redirects are followed;
//! - at most [`CheckerConfig::max_per_host`] checks are in flight against one host.
//!
//! Regions and proxies:
//! - every HTTP check sends `User-Agent: <CheckerConfig::user_agent> (region <job's region>)`,
//!   such as `upwatch/1.4.0 (region eu-west)`, unless the monitor's headers set a
//!   `User-Agent` (in any case), which then wins;
//! - HTTP checks go through the worker's proxy ([`CheckerConfig::proxy`],
//!   `UPWATCH_CHECK_PROXY`: `http`, `https`, `socks5` or `socks5h`), or through the monitor's
//!   own `request.proxy`, which replaces it. A proxy that cannot be reached makes a `connect`
//!   result that says so; no message or log ever shows a proxy's credentials
//!   ([`redact_proxy_url`]). TCP, TLS, DNS and ICMP checks never use a proxy: they connect
//!   directly from the worker;
//! - [`connectivity::Connectivity`] watches the worker's own network, so that a check that
//!   failed because the worker lost its network is inconclusive rather than down.

pub mod cert;
mod classify;
pub mod connectivity;
mod dns;
mod http;
mod icmp;
mod limit;
mod proxy;
mod tcp;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rustls::pki_types::CertificateDer;
use upwatch_core::check::{judge, CheckError, CheckJob, CheckResult, ErrorKind};
use upwatch_core::condition::Condition;
use upwatch_core::observation::{CheckType, Observation};
use upwatch_core::{Monitor, MonitorInput, ValidationError};

pub use crate::icmp::IcmpSupport;
pub use crate::proxy::redact_proxy_url;

/// How long an idle pooled connection is kept before it is closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits and identity of a [`Checker`]. Its `Debug` shows the proxy without credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckerConfig {
    /// The most body bytes read to look for a keyword (default 64 KiB).
    pub max_body_bytes: usize,
    /// The most redirects followed when a job follows redirects (default 10).
    pub max_redirects: usize,
    /// The `User-Agent` sent unless a job sets its own (default `upwatch/<version>`), followed
    /// by ` (region <the job's region>)`.
    pub user_agent: String,
    /// The most checks in flight against one host (default 16).
    pub max_per_host: usize,
    /// Roots trusted besides the public ones (`UPWATCH_CHECK_CA_FILE`), for internal CAs.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The proxy of HTTP checks (`UPWATCH_CHECK_PROXY`: `http://`, `https://`, `socks5://` or
    /// `socks5h://`, credentials allowed), unless a monitor names its own; `None` (the
    /// default) connects directly (or as the environment's `HTTP_PROXY` says).
    pub proxy: Option<String>,
}

impl std::fmt::Debug for CheckerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckerConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_redirects", &self.max_redirects)
            .field("user_agent", &self.user_agent)
            .field("max_per_host", &self.max_per_host)
            .field("extra_roots", &self.extra_roots.len())
            .field("proxy", &self.proxy.as_deref().map(redact_proxy_url))
            .finish()
    }
}

impl Default for CheckerConfig {
    fn default() -> Self {
        CheckerConfig {
            max_body_bytes: 64 * 1024,
            max_redirects: 10,
            user_agent: format!("upwatch/{}", env!("CARGO_PKG_VERSION")),
            max_per_host: 16,
            extra_roots: Vec::new(),
            proxy: None,
        }
    }
}

/// Reads the CA certificates of a PEM file (`UPWATCH_CHECK_CA_FILE`); the error says what is
/// wrong with the file in words for a person.
pub fn load_roots(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM file of certificates: {e}", path.display()))?;
    if roots.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM blocks of BEGIN CERTIFICATE)",
            path.display()
        ));
    }
    Ok(roots)
}

/// Why a [`Checker`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CheckerError {
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The worker's proxy is not usable; the text never repeats its URL.
    #[error("the check proxy {0}")]
    Proxy(String),
}

/// What a prober reports: what it saw, and the failure that ended the check, if any.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub observation: Observation,
    pub outcome: Result<(), CheckError>,
}

impl Probe {
    /// A probe that failed before it observed anything.
    pub fn failed(error: CheckError) -> Probe {
        Probe {
            observation: Observation::default(),
            outcome: Err(error),
        }
    }
}

/// Performs checks; cheap to clone, as the clients and sockets it wraps are shared.
#[derive(Debug, Clone)]
pub struct Checker {
    http: Arc<http::HttpProber>,
    tls: Arc<tls::TlsProber>,
    icmp: Arc<icmp::Pinger>,
    hosts: limit::HostLimiter,
}

impl Checker {
    /// Builds the probers (rustls, pooled connections, no global timeout) and finds out once
    /// which ICMP sockets this process may open.
    ///
    /// Fails only when TLS cannot be set up, the user agent is not a valid header value or the
    /// proxy is not a proxy URL.
    pub fn new(config: CheckerConfig) -> Result<Checker, CheckerError> {
        Ok(Checker {
            http: Arc::new(http::HttpProber::new(&config)?),
            tls: Arc::new(tls::TlsProber::new(&config.extra_roots).map_err(CheckerError::Tls)?),
            icmp: Arc::new(icmp::Pinger::new()),
            hosts: limit::HostLimiter::new(config.max_per_host),
        })
    }

    /// The worker's proxy of HTTP checks as it may be shown (`scheme://host:port`, no
    /// credentials), if it has one.
    pub fn proxy(&self) -> Option<&str> {
        self.http.worker_proxy()
    }

    /// Which ICMP sockets checks use, or why they cannot run.
    pub fn icmp_support(&self) -> &IcmpSupport {
        self.icmp.support()
    }

    /// Performs `job`'s check and reports how it went; never panics and never fails.
    ///
    /// `checked_at` is when the check started. `response_time_ms` is the time the probe
    /// measures (to the response headers, plus the body read when needed, for HTTP; the
    /// connect time for TCP; the handshake for TLS; the mean round trip for ICMP; the answer
    /// for DNS); for a failed check it is the time until the failure.
    pub async fn check(&self, job: &CheckJob) -> CheckResult {
        let checked_at = Utc::now();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(job.request.timeout_ms);
        // Parsed once: the HTTP prober asks whether they read the body, the judge uses them.
        let conditions = job.request.parse_conditions();
        let probe = {
            // Waiting for a turn against a busy host counts against the check's time.
            let _turn =
                match tokio::time::timeout_at(deadline, self.hosts.acquire(&job.request.url)).await
                {
                    Ok(turn) => turn,
                    Err(_) => {
                        return self.finish(
                            job,
                            &conditions,
                            checked_at,
                            started,
                            Probe::failed(classify::timeout_error(job.request.timeout_ms)),
                        )
                    }
                };
            let needs_body = conditions
                .as_ref()
                .is_ok_and(|c| c.iter().any(Condition::needs_body));
            self.probe(job, needs_body, deadline).await
        };
        self.finish(job, &conditions, checked_at, started, probe)
    }

    /// Runs the prober of the job's type; `needs_body` when a condition reads the body.
    async fn probe(
        &self,
        job: &CheckJob,
        needs_body: bool,
        deadline: tokio::time::Instant,
    ) -> Probe {
        let request = &job.request;
        match request.check_type {
            CheckType::Http => {
                self.http
                    .probe(request, &job.region, needs_body, deadline)
                    .await
            }
            CheckType::Tcp => tcp::probe(request, deadline).await,
            CheckType::Tls => self.tls.probe(request, deadline).await,
            CheckType::Icmp => self.icmp.probe(request, deadline).await,
            CheckType::Dns => dns::probe(request, deadline).await,
            CheckType::Push => Probe::failed(CheckError::new(
                ErrorKind::Other,
                "push monitors are not probed; they report in themselves",
            )),
        }
    }

    /// Judges the probe's observation and makes the result.
    fn finish(
        &self,
        job: &CheckJob,
        conditions: &Result<Vec<Condition>, CheckError>,
        checked_at: chrono::DateTime<Utc>,
        started: Instant,
        probe: Probe,
    ) -> CheckResult {
        let elapsed_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        let Probe {
            mut observation,
            outcome,
        } = probe;
        if observation.response_time_ms == 0 {
            observation.response_time_ms = elapsed_ms;
        }
        observation.now = Some(checked_at);
        let outcome = outcome.and_then(|()| match conditions {
            Ok(conditions) => judge(&job.request, conditions, &observation),
            Err(invalid) => Err(invalid.clone()),
        });
        if let Err(error) = &outcome {
            tracing::debug!(
                monitor_id = %job.monitor_id,
                job_id = %job.id,
                kind = %error.kind,
                message = %error.message,
                "check failed"
            );
        }
        let response_time_ms = if outcome.is_ok() {
            observation.response_time_ms
        } else {
            elapsed_ms
        };
        let mut result = CheckResult::for_job(
            job,
            checked_at,
            response_time_ms,
            observation.status_code,
            outcome,
        );
        result.details = observation.details;
        result
    }

    /// Checks `url` with every other setting at the monitor defaults, as `upwatch check URL`
    /// does; fails only when the URL is not one a monitor accepts.
    pub async fn check_url(&self, url: &str) -> Result<CheckResult, ValidationError> {
        let now = Utc::now();
        let monitor = Monitor::create(MonitorInput::for_url(url), now)?;
        let job = CheckJob::for_monitor(&monitor, now);
        Ok(self.check(&job).await)
    }
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
