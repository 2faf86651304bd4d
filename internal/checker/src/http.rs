//! `http://` and `https://` checks: one request, judged by status, keyword and conditions.
//!
//! Each set of clients holds four reqwest clients: following a bounded number of redirects or
//! none, each verifying certificates or (for monitors with `tls_skip_verify`) not. All of them
//! report the peer's certificate, so that every HTTPS check knows when it expires.
//!
//! Every request names upwatch and the worker's region in its `User-Agent`
//! (`upwatch/<version> (region <name>)`), unless the monitor's headers set their own.
//!
//! Proxies: reqwest sets a proxy per client, so the prober keeps one set of clients for the
//! worker's proxy (`UPWATCH_CHECK_PROXY`, or none: then the environment's `HTTP_PROXY` and
//! friends apply, as they always did), and makes one set per distinct monitor proxy on first
//! use, keeping at most [`MAX_PROXIED`] of them (the least recently used goes first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::tls::TlsInfo;
use reqwest::{redirect, Client, Method, Url};
use tokio::time::Instant;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};
use upwatch_core::observation::Observation;

use crate::classify::{classify, timeout_error, Context};
use crate::proxy::ProxyUrl;
use crate::{cert, CheckerConfig, CheckerError, Probe, POOL_IDLE_TIMEOUT};

/// The most sets of clients kept for monitors' own proxies.
pub(crate) const MAX_PROXIED: usize = 64;

/// The four clients of one proxy (or of none). Not `Debug`-printed in full: reqwest's clients
/// would print their proxy's URL, credentials and all.
struct Clients {
    following: Client,
    direct: Client,
    following_unverified: Client,
    direct_unverified: Client,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clients")
    }
}

impl Clients {
    fn pick(&self, follow_redirects: bool, tls_skip_verify: bool) -> &Client {
        match (follow_redirects, tls_skip_verify) {
            (true, false) => &self.following,
            (false, false) => &self.direct,
            (true, true) => &self.following_unverified,
            (false, true) => &self.direct_unverified,
        }
    }
}

/// What building a set of clients needs.
#[derive(Debug)]
struct Recipe {
    roots: Vec<reqwest::Certificate>,
    user_agent: String,
    max_redirects: usize,
}

impl Recipe {
    fn build(&self, proxy: Option<&ProxyUrl>) -> Result<Clients, reqwest::Error> {
        let proxy = proxy.map(|p| reqwest::Proxy::all(p.full())).transpose()?;
        let build = |policy: redirect::Policy, verify: bool| {
            let mut builder = Client::builder()
                .user_agent(self.user_agent.as_str())
                .redirect(policy)
                // A redirect target need not learn which page pointed to it.
                .referer(false)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .tcp_nodelay(true)
                .tls_info(true)
                .danger_accept_invalid_certs(!verify);
            for root in &self.roots {
                builder = builder.add_root_certificate(root.clone());
            }
            if let Some(proxy) = &proxy {
                // An explicit proxy also turns off the environment's.
                builder = builder.proxy(proxy.clone());
            }
            builder.build()
        };
        let limited = || redirect::Policy::limited(self.max_redirects);
        Ok(Clients {
            following: build(limited(), true)?,
            direct: build(redirect::Policy::none(), true)?,
            following_unverified: build(limited(), false)?,
            direct_unverified: build(redirect::Policy::none(), false)?,
        })
    }
}

/// The clients made for monitors' own proxies, by full proxy URL, with when each was last
/// used (a counter), so that the least recently used can go.
#[derive(Default)]
struct Proxied {
    clients: HashMap<String, (Arc<Clients>, u64)>,
    uses: u64,
}

impl std::fmt::Debug for Proxied {
    /// How many are kept, never their URLs (which hold the credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxied")
            .field("kept", &self.clients.len())
            .finish()
    }
}

/// The HTTP prober: its clients and limits.
#[derive(Debug)]
pub(crate) struct HttpProber {
    recipe: Recipe,
    /// The clients of the worker's proxy, or of none.
    clients: Clients,
    worker_proxy: Option<ProxyUrl>,
    proxied: Mutex<Proxied>,
    user_agent: String,
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
        let worker_proxy = config
            .proxy
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(ProxyUrl::parse)
            .transpose()
            .map_err(CheckerError::Proxy)?;
        let recipe = Recipe {
            roots,
            user_agent: config.user_agent.clone(),
            max_redirects: config.max_redirects,
        };
        let clients = recipe.build(worker_proxy.as_ref()).map_err(|_| {
            // reqwest's error could quote the URL, credentials and all.
            CheckerError::Proxy("is not a proxy reqwest can use".to_string())
        })?;
        Ok(HttpProber {
            recipe,
            clients,
            worker_proxy,
            proxied: Mutex::default(),
            user_agent: config.user_agent.clone(),
            max_body_bytes: config.max_body_bytes,
            max_redirects: config.max_redirects,
        })
    }

    /// The worker's proxy, as it may be shown (`scheme://host:port`).
    pub fn worker_proxy(&self) -> Option<&str> {
        self.worker_proxy.as_ref().map(ProxyUrl::shown)
    }

    /// The clients for a monitor's own proxy: kept ones, or new ones (forgetting the least
    /// recently used set when [`MAX_PROXIED`] are kept).
    fn clients_for(&self, proxy: &ProxyUrl) -> Result<Arc<Clients>, CheckError> {
        {
            let mut proxied = self.proxied.lock().unwrap_or_else(|e| e.into_inner());
            proxied.uses += 1;
            let now = proxied.uses;
            if let Some((clients, used)) = proxied.clients.get_mut(proxy.full()) {
                *used = now;
                return Ok(clients.clone());
            }
        }
        // Built outside the lock: it reads the roots and may take a few milliseconds. Two
        // checks racing here both build; the second one's set replaces the first.
        let clients = Arc::new(self.recipe.build(Some(proxy)).map_err(|_| {
            CheckError::new(
                ErrorKind::Other,
                format!("the proxy {} cannot be used", proxy.shown()),
            )
        })?);
        let mut proxied = self.proxied.lock().unwrap_or_else(|e| e.into_inner());
        if proxied.clients.len() >= MAX_PROXIED && !proxied.clients.contains_key(proxy.full()) {
            let oldest = proxied
                .clients
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(url, _)| url.clone());
            if let Some(oldest) = oldest {
                proxied.clients.remove(&oldest);
            }
        }
        proxied.uses += 1;
        let now = proxied.uses;
        proxied
            .clients
            .insert(proxy.full().to_string(), (clients.clone(), now));
        Ok(clients)
    }

    /// How many sets of clients are kept for monitors' own proxies (for tests).
    #[cfg(test)]
    fn proxied_kept(&self) -> usize {
        self.proxied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clients
            .len()
    }

    /// The `User-Agent` of the checks of `region`.
    fn user_agent_for(&self, region: &str) -> HeaderValue {
        let named = if region.is_empty() {
            self.user_agent.clone()
        } else {
            format!("{} (region {region})", self.user_agent)
        };
        HeaderValue::from_str(&named)
            .or_else(|_| HeaderValue::from_str(&self.user_agent))
            .unwrap_or_else(|_| HeaderValue::from_static("upwatch"))
    }

    /// Sends the request and reports the answer: status, headers, the body's prefix when a
    /// keyword or a condition (`needs_body`) needs it, the peer's address and certificate.
    ///
    /// `region` is the job's, named in the `User-Agent`.
    pub async fn probe(
        &self,
        request: &CheckRequest,
        region: &str,
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
        let mut headers = match header_map(request) {
            Ok(headers) => headers,
            Err(e) => return Probe::failed(e),
        };
        // Header names are case-insensitive: `user-agent` in any case is the monitor's own.
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.user_agent_for(region));
        }
        let own_proxy = match request
            .proxy
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(ProxyUrl::parse)
            .transpose()
        {
            Ok(proxy) => proxy.filter(|p| Some(p) != self.worker_proxy.as_ref()),
            Err(why) => {
                return Probe::failed(CheckError::new(
                    ErrorKind::Other,
                    format!("the monitor's proxy {why}"),
                ))
            }
        };
        let proxied;
        let (clients, proxy) = match &own_proxy {
            Some(proxy) => {
                proxied = match self.clients_for(proxy) {
                    Ok(clients) => clients,
                    Err(e) => return Probe::failed(e),
                };
                (&*proxied, Some(proxy))
            }
            None => (&self.clients, self.worker_proxy.as_ref()),
        };
        let client = clients.pick(request.follow_redirects, request.tls_skip_verify);
        let ctx = Context {
            timeout_ms: request.timeout_ms,
            max_redirects: if request.follow_redirects {
                self.max_redirects
            } else {
                0
            },
            url: Some(&url),
            proxy,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_proxies_keep_a_bounded_number_of_clients() {
        let prober = HttpProber::new(&CheckerConfig::default()).unwrap();
        for port in 0..(MAX_PROXIED as u16 + 5) {
            let proxy = ProxyUrl::parse(&format!("http://127.0.0.1:{}", 20000 + port)).unwrap();
            prober.clients_for(&proxy).unwrap();
        }
        assert_eq!(prober.proxied_kept(), MAX_PROXIED);
        // The most recent is kept, the first ones went.
        let last = format!("http://127.0.0.1:{}", 20000 + MAX_PROXIED as u16 + 4);
        let proxied = prober.proxied.lock().unwrap();
        assert!(proxied.clients.contains_key(&last));
        assert!(!proxied.clients.contains_key("http://127.0.0.1:20000"));
    }

    #[test]
    fn the_user_agent_names_the_region() {
        let prober = HttpProber::new(&CheckerConfig {
            user_agent: "upwatch/9.9.9".to_string(),
            ..CheckerConfig::default()
        })
        .unwrap();
        assert_eq!(
            prober.user_agent_for("eu-west"),
            "upwatch/9.9.9 (region eu-west)"
        );
        assert_eq!(prober.user_agent_for(""), "upwatch/9.9.9");
        assert_eq!(prober.user_agent_for("bad\nregion"), "upwatch/9.9.9");
    }

    #[test]
    fn an_unusable_worker_proxy_fails_without_naming_its_password() {
        let err = HttpProber::new(&CheckerConfig {
            proxy: Some("ftp://bob:secretpw@proxy".to_string()),
            ..CheckerConfig::default()
        })
        .unwrap_err();
        assert!(!err.to_string().contains("secretpw"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_proxy_credentials() {
        let prober = HttpProber::new(&CheckerConfig {
            proxy: Some("http://bob:secretpw@127.0.0.1:3128".to_string()),
            ..CheckerConfig::default()
        })
        .unwrap();
        let own = ProxyUrl::parse("socks5h://eve:othersecret@127.0.0.1:1080").unwrap();
        prober.clients_for(&own).unwrap();
        let shown = format!("{prober:?}");
        assert!(!shown.contains("secretpw"), "{shown}");
        assert!(!shown.contains("othersecret"), "{shown}");
        let config = CheckerConfig {
            proxy: Some("http://bob:secretpw@127.0.0.1:3128".to_string()),
            ..CheckerConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("secretpw"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:3128"), "{shown}");
    }
}
