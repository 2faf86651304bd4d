//! Turning a failed request into one of the fixed [`ErrorKind`]s with a short message.
//!
//! reqwest reports most failures as one opaque error whose cause sits somewhere down its
//! `source()` chain (reqwest, then hyper-util, then an `io::Error`, sometimes wrapping a
//! rustls error). The decision is made in a fixed order, first match wins:
//!
//! 1. a timeout anywhere (reqwest's flag, or an `io::ErrorKind::TimedOut`) is [`ErrorKind::Timeout`];
//! 2. reqwest's redirect error is [`ErrorKind::TooManyRedirects`] (the only redirect error our
//!    policies raise);
//! 3. an `io::Error` of a connection kind (refused, reset, aborted, unreachable) is
//!    [`ErrorKind::Connect`], even under a TLS or DNS layer, because the socket is what failed;
//! 4. a link that speaks of DNS or a failed name lookup is [`ErrorKind::Dns`];
//! 5. a rustls error, or a link that speaks of certificates, TLS or handshakes, is
//!    [`ErrorKind::Tls`];
//! 6. any other failure to connect is [`ErrorKind::Connect`];
//! 7. the rest is [`ErrorKind::Other`], with the deepest cause as its message.
//!
//! The top-level reqwest error is never searched for words nor quoted, because its text
//! includes the full URL, whose host or query could contain anything.
//!
//! Through a proxy, a failure to reach the proxy itself (refused, unreachable, its name not
//! found, a SOCKS or CONNECT handshake that never got a connection) is checked for after the
//! timeout and before everything else, and is [`ErrorKind::Connect`] with a message that says
//! the proxy could not be reached. Such messages name the proxy by scheme, host and port only,
//! and every message made through a proxy is scrubbed of its credentials.

use std::error::Error as StdError;
use std::io;

use reqwest::Url;
use upwatch_core::check::{CheckError, ErrorKind};

use crate::proxy::ProxyUrl;

/// What the check knew when the error arose, for the messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The job's timeout.
    pub timeout_ms: u64,
    /// The redirect limit of the client that was used.
    pub max_redirects: usize,
    /// The URL requested, used when the error does not carry one.
    pub url: Option<&'a Url>,
    /// The proxy the request went through, if any.
    pub proxy: Option<&'a ProxyUrl>,
}

/// The facts reqwest knows about an error that its source chain does not show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub timeout: bool,
    pub redirect: bool,
    pub connect: bool,
}

/// Classifies a reqwest failure.
pub(crate) fn classify(err: &reqwest::Error, ctx: &Context<'_>) -> CheckError {
    let flags = Flags {
        timeout: err.is_timeout(),
        redirect: err.is_redirect(),
        connect: err.is_connect(),
    };
    // The URL of the error is the last one tried, which after redirects is the one that failed.
    let url = err.url().or(ctx.url);
    decide(flags, err.source(), url, ctx)
}

/// The error for a check that ran out of time.
pub(crate) fn timeout_error(timeout_ms: u64) -> CheckError {
    CheckError::new(
        ErrorKind::Timeout,
        format!("no answer within {timeout_ms} ms"),
    )
}

/// The pure decision, over reqwest's flags and the chain below the reqwest error.
pub(crate) fn decide(
    flags: Flags,
    chain: Option<&(dyn StdError + 'static)>,
    url: Option<&Url>,
    ctx: &Context<'_>,
) -> CheckError {
    let error = decide_kind(flags, chain, url, ctx);
    match ctx.proxy {
        Some(proxy) => CheckError::new(error.kind, proxy.scrub(&error.message)),
        None => error,
    }
}

fn decide_kind(
    flags: Flags,
    chain: Option<&(dyn StdError + 'static)>,
    url: Option<&Url>,
    ctx: &Context<'_>,
) -> CheckError {
    let links = links(chain);
    let endpoint = Endpoint::of(url);

    let timed_out = links
        .iter()
        .any(|e| io_kind(*e) == Some(io::ErrorKind::TimedOut));
    if flags.timeout || timed_out {
        return timeout_error(ctx.timeout_ms);
    }
    if flags.redirect {
        return CheckError::new(
            ErrorKind::TooManyRedirects,
            format!("more than {} redirects", ctx.max_redirects),
        );
    }
    if let Some(proxy) = ctx.proxy {
        if let Some(error) = proxy_failure(&links, proxy, &endpoint) {
            return error;
        }
    }
    if let Some(message) = links
        .iter()
        .find_map(|e| io_kind(*e).and_then(|kind| connect_message(kind, &endpoint.host_port)))
    {
        return CheckError::new(ErrorKind::Connect, message);
    }
    let messages: Vec<String> = links.iter().map(|e| e.to_string().to_lowercase()).collect();
    if messages.iter().any(|m| mentions_dns(m)) {
        return CheckError::new(
            ErrorKind::Dns,
            format!("dns lookup failed for {}", endpoint.host),
        );
    }
    let tls_cause = links
        .iter()
        .find(|e| e.is::<rustls::Error>())
        .map(|e| e.to_string());
    if tls_cause.is_some() || messages.iter().any(|m| mentions_tls(m)) {
        let cause = tls_cause.unwrap_or_else(|| root_cause(&links, url));
        return CheckError::new(
            ErrorKind::Tls,
            format!("tls handshake with {} failed: {cause}", endpoint.host_port),
        );
    }
    if flags.connect {
        return CheckError::new(
            ErrorKind::Connect,
            format!(
                "could not connect to {}: {}",
                endpoint.host_port,
                root_cause(&links, url)
            ),
        );
    }
    CheckError::new(
        ErrorKind::Other,
        format!(
            "request to {} failed: {}",
            endpoint.host_port,
            root_cause(&links, url)
        ),
    )
}

/// The failure of a request through `proxy` that is the proxy's, if it is one.
///
/// - A connection-kind `io::Error` is the proxy's: the client's only own connection is the
///   one to the proxy (the proxy connects to the target, and reports that failing in its
///   own way: a status for a plain request, a refused tunnel or a SOCKS reply).
/// - hyper-util's "failed to create underlying connection" (a CONNECT tunnel or a SOCKS
///   handshake whose TCP connection to the proxy failed; its SOCKS error hides the cause).
/// - A failed name lookup is the proxy's name, except through `socks5://`, where the
///   target's name is also looked up here.
/// - A tunnel the proxy would not open, or a SOCKS reply, is the proxy's answer about the
///   target: still a failure to connect, said as such.
fn proxy_failure(
    links: &[&(dyn StdError + 'static)],
    proxy: &ProxyUrl,
    endpoint: &Endpoint,
) -> Option<CheckError> {
    let shown = proxy.shown();
    let unreachable = |why: &str| {
        CheckError::new(
            ErrorKind::Connect,
            format!("the proxy {shown} could not be reached: {why}"),
        )
    };
    if let Some(kind) = links.iter().find_map(|e| io_kind(*e)) {
        if let Some(why) = connect_reason(kind) {
            return Some(unreachable(why));
        }
    }
    let messages: Vec<String> = links.iter().map(|e| e.to_string().to_lowercase()).collect();
    if messages
        .iter()
        .any(|m| m.contains("failed to create underlying connection"))
    {
        return Some(unreachable("no connection could be made"));
    }
    if !proxy.local_dns() && messages.iter().any(|m| mentions_dns(m)) {
        return Some(unreachable("its name did not resolve"));
    }
    if messages
        .iter()
        .any(|m| m.contains("proxy authorization required"))
    {
        return Some(CheckError::new(
            ErrorKind::Connect,
            format!("the proxy {shown} refused the credentials it was given (407)"),
        ));
    }
    if messages.iter().any(|m| m.contains("tunnel error")) {
        return Some(CheckError::new(
            ErrorKind::Connect,
            format!(
                "the proxy {shown} would not open a tunnel to {}",
                endpoint.host_port
            ),
        ));
    }
    if let Some(socks) = messages.iter().find(|m| m.starts_with("socks error")) {
        return Some(CheckError::new(
            ErrorKind::Connect,
            format!(
                "the proxy {shown} could not connect to {}: {socks}",
                endpoint.host_port
            ),
        ));
    }
    None
}

/// The words for an `io::Error` kind that means a connection failed, if it is one.
fn connect_reason(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::NotConnected => "not connected",
        K::AddrNotAvailable => "no local address available",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        _ => return None,
    })
}

/// The host (and port) of the URL, which is all that messages name of it.
struct Endpoint {
    host: String,
    host_port: String,
}

impl Endpoint {
    fn of(url: Option<&Url>) -> Endpoint {
        match url.and_then(|u| u.host_str().map(|h| (h, u.port_or_known_default()))) {
            Some((host, Some(port))) => Endpoint {
                host: host.to_string(),
                host_port: format!("{host}:{port}"),
            },
            Some((host, None)) => Endpoint {
                host: host.to_string(),
                host_port: host.to_string(),
            },
            None => Endpoint {
                host: "the server".to_string(),
                host_port: "the server".to_string(),
            },
        }
    }
}

/// Every error below the top one, in order.
///
/// An `io::Error` that wraps another error reports that error's *source* as its own, skipping
/// the wrapped error itself (where rustls errors hide), so the wrapped error is listed too.
fn links<'a>(first: Option<&'a (dyn StdError + 'static)>) -> Vec<&'a (dyn StdError + 'static)> {
    // A bound, in case some error type ever reports itself as its own source.
    const MAX_LINKS: usize = 32;
    let mut out: Vec<&'a (dyn StdError + 'static)> = Vec::new();
    let mut next = first;
    while let Some(err) = next {
        if out.len() >= MAX_LINKS {
            break;
        }
        out.push(err);
        // The wrapped error comes next; its own source is what the `io::Error` would report.
        next = match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &'a (dyn StdError + 'static)),
            None => err.source(),
        };
    }
    out
}

fn io_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    err.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// The message for an `io::Error` kind that means the connection failed, if it is one.
pub(crate) fn connect_message(kind: io::ErrorKind, host_port: &str) -> Option<String> {
    use io::ErrorKind as K;
    let message = match kind {
        K::ConnectionRefused => format!("connection refused by {host_port}"),
        K::ConnectionReset => format!("connection reset by {host_port}"),
        K::ConnectionAborted => format!("connection to {host_port} aborted"),
        K::NotConnected => format!("not connected to {host_port}"),
        K::AddrNotAvailable => format!("no local address available to reach {host_port}"),
        K::HostUnreachable => format!("host {host_port} is unreachable"),
        K::NetworkUnreachable => format!("network unreachable for {host_port}"),
        _ => return None,
    };
    Some(message)
}

/// Whether a lower-cased message speaks of a failed name lookup.
fn mentions_dns(message: &str) -> bool {
    const WORDS: &[&str] = &[
        "dns",
        "failed to lookup address",
        "name or service not known",
        "no record found",
        "nodename nor servname",
        "temporary failure in name resolution",
        "no such host",
    ];
    WORDS.iter().any(|w| message.contains(w))
}

/// Whether a lower-cased message speaks of TLS.
fn mentions_tls(message: &str) -> bool {
    const WORDS: &[&str] = &["certificate", "tls", "ssl", "handshake"];
    WORDS.iter().any(|w| message.contains(w))
}

/// The deepest cause's text, with the URL cut down to its origin should it appear.
fn root_cause(links: &[&(dyn StdError + 'static)], url: Option<&Url>) -> String {
    let Some(last) = links.last() else {
        return "unknown error".to_string();
    };
    let mut text = last.to_string();
    if let Some(url) = url {
        let origin = url.origin().ascii_serialization();
        text = text.replace(url.as_str(), &origin);
    }
    if text.is_empty() {
        "unknown error".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    /// A layer of an error chain with a fixed message, like hyper-util's `ConnectError`.
    #[derive(Debug)]
    struct Layer {
        message: &'static str,
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.source.as_ref().map(|e| &**e as _)
        }
    }

    fn layer(message: &'static str, source: impl StdError + Send + Sync + 'static) -> Layer {
        Layer {
            message,
            source: Some(Box::new(source)),
        }
    }

    fn leaf(message: &'static str) -> Layer {
        Layer {
            message,
            source: None,
        }
    }

    fn run(flags: Flags, chain: &(dyn StdError + 'static), url: &str) -> CheckError {
        let url = Url::parse(url).unwrap();
        let ctx = Context {
            timeout_ms: 1500,
            max_redirects: 7,
            url: Some(&url),
            proxy: None,
        };
        decide(flags, Some(chain), Some(&url), &ctx)
    }

    const LOCAL: &str = "http://127.0.0.1:4567/health?token=s3cret";

    #[test]
    fn refused_connection_names_the_host_and_port() {
        let chain = layer(
            "tcp connect error",
            io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        let err = run(
            Flags {
                connect: true,
                ..Flags::default()
            },
            &chain,
            LOCAL,
        );
        assert_eq!(err.kind, ErrorKind::Connect);
        assert_eq!(err.message, "connection refused by 127.0.0.1:4567");
    }

    #[test]
    fn every_connection_io_kind_is_connect() {
        use io::ErrorKind as K;
        for kind in [
            K::ConnectionRefused,
            K::ConnectionReset,
            K::ConnectionAborted,
            K::NotConnected,
            K::AddrNotAvailable,
            K::HostUnreachable,
            K::NetworkUnreachable,
        ] {
            let err = run(Flags::default(), &io::Error::from(kind), LOCAL);
            assert_eq!(err.kind, ErrorKind::Connect, "{kind:?}");
            assert!(
                err.message.contains("127.0.0.1:4567"),
                "{kind:?}: {}",
                err.message
            );
        }
    }

    #[test]
    fn failed_lookup_is_dns_and_names_the_host_only() {
        let chain = layer(
            "dns error",
            io::Error::other("failed to lookup address information: Name or service not known"),
        );
        let err = run(
            Flags {
                connect: true,
                ..Flags::default()
            },
            &chain,
            "https://example.invalid/x?q=1",
        );
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(err.message, "dns lookup failed for example.invalid");

        // A resolver's wording alone, without the "dns error" layer, is enough.
        let err = run(Flags::default(), &leaf("no record found for Query"), LOCAL);
        assert_eq!(err.kind, ErrorKind::Dns);
    }

    #[test]
    fn rustls_error_hidden_inside_an_io_error_is_tls() {
        // tokio-rustls wraps rustls errors this way; `io::Error::source` skips the wrapped error.
        let rustls_err = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let chain = layer(
            "client error (Connect)",
            io::Error::new(io::ErrorKind::InvalidData, rustls_err),
        );
        let err = run(
            Flags {
                connect: true,
                ..Flags::default()
            },
            &chain,
            "https://127.0.0.1:8443/",
        );
        assert_eq!(err.kind, ErrorKind::Tls);
        assert!(
            err.message
                .starts_with("tls handshake with 127.0.0.1:8443 failed: "),
            "{}",
            err.message
        );
        assert!(err.message.contains("certificate"), "{}", err.message);
    }

    #[test]
    fn rustls_error_under_nested_io_errors_is_tls() {
        // hyper-rustls wraps tokio-rustls's `io::Error` in another one, as seen from reqwest.
        let rustls_err = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let chain = layer(
            "client error (Connect)",
            io::Error::other(io::Error::new(io::ErrorKind::InvalidData, rustls_err)),
        );
        let err = run(
            Flags {
                connect: true,
                ..Flags::default()
            },
            &chain,
            "https://127.0.0.1:8443/",
        );
        assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
        assert_eq!(
            err.message,
            "tls handshake with 127.0.0.1:8443 failed: received corrupt message of type InvalidContentType"
        );
    }

    #[test]
    fn tls_wording_without_a_rustls_error_is_tls() {
        let chain = layer(
            "client error (Connect)",
            leaf("received fatal alert: HandshakeFailure"),
        );
        let err = run(
            Flags {
                connect: true,
                ..Flags::default()
            },
            &chain,
            "https://127.0.0.1/",
        );
        assert_eq!(err.kind, ErrorKind::Tls);
        assert_eq!(
            err.message,
            "tls handshake with 127.0.0.1:443 failed: received fatal alert: HandshakeFailure"
        );
    }

    #[test]
    fn a_reset_socket_under_a_tls_layer_is_connect() {
        let chain = layer(
            "tls handshake eof",
            io::Error::from(io::ErrorKind::ConnectionReset),
        );
        let err = run(
            Flags {
                connect: true,
                ..Flags::default()
            },
            &chain,
            LOCAL,
        );
        assert_eq!(err.kind, ErrorKind::Connect);
        assert_eq!(err.message, "connection reset by 127.0.0.1:4567");
    }

    #[test]
    fn timeouts_win_over_everything_else() {
        let chain = layer(
            "dns error",
            io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        let flags = Flags {
            timeout: true,
            redirect: true,
            connect: true,
        };
        let err = run(flags, &chain, LOCAL);
        assert_eq!(err.kind, ErrorKind::Timeout);
        assert_eq!(err.message, "no answer within 1500 ms");

        // An operating-system timeout reqwest did not flag is a timeout too.
        let chain = layer(
            "tcp connect error",
            io::Error::from(io::ErrorKind::TimedOut),
        );
        assert_eq!(
            run(Flags::default(), &chain, LOCAL).kind,
            ErrorKind::Timeout
        );
    }

    #[test]
    fn redirect_errors_name_the_limit() {
        let err = run(
            Flags {
                redirect: true,
                ..Flags::default()
            },
            &leaf("too many redirects"),
            LOCAL,
        );
        assert_eq!(err.kind, ErrorKind::TooManyRedirects);
        assert_eq!(err.message, "more than 7 redirects");
    }

    #[test]
    fn other_connect_failures_quote_the_deepest_cause() {
        let chain = layer("tcp connect error", leaf("something odd happened"));
        let err = run(
            Flags {
                connect: true,
                ..Flags::default()
            },
            &chain,
            LOCAL,
        );
        assert_eq!(err.kind, ErrorKind::Connect);
        assert_eq!(
            err.message,
            "could not connect to 127.0.0.1:4567: something odd happened"
        );
    }

    #[test]
    fn the_rest_is_other_without_the_query_string() {
        let chain = layer(
            "error reading a body from connection",
            leaf("connection closed before message completed"),
        );
        let err = run(Flags::default(), &chain, LOCAL);
        assert_eq!(err.kind, ErrorKind::Other);
        assert_eq!(
            err.message,
            "request to 127.0.0.1:4567 failed: connection closed before message completed"
        );

        // Should a cause quote the URL, only its origin is kept.
        let chain = Layer {
            message: "bad answer from http://127.0.0.1:4567/health?token=s3cret",
            source: None,
        };
        let err = run(Flags::default(), &chain, LOCAL);
        assert_eq!(err.kind, ErrorKind::Other);
        assert!(!err.message.contains("s3cret"), "{}", err.message);
        assert!(
            err.message.contains("http://127.0.0.1:4567"),
            "{}",
            err.message
        );
    }

    #[test]
    fn no_chain_and_no_url_still_give_a_message() {
        let ctx = Context {
            timeout_ms: 10,
            max_redirects: 10,
            url: None,
            proxy: None,
        };
        let err = decide(Flags::default(), None, None, &ctx);
        assert_eq!(err.kind, ErrorKind::Other);
        assert_eq!(err.message, "request to the server failed: unknown error");
    }

    fn via(proxy: &str, flags: Flags, chain: &(dyn StdError + 'static)) -> CheckError {
        let proxy = ProxyUrl::parse(proxy).unwrap();
        let url = Url::parse(LOCAL).unwrap();
        let ctx = Context {
            timeout_ms: 1500,
            max_redirects: 7,
            url: Some(&url),
            proxy: Some(&proxy),
        };
        decide(flags, Some(chain), Some(&url), &ctx)
    }

    const CONNECT: Flags = Flags {
        timeout: false,
        redirect: false,
        connect: true,
    };

    #[test]
    fn a_refused_proxy_is_a_connect_error_naming_the_proxy_without_its_password() {
        let chain = layer(
            "tcp connect error",
            io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        let err = via("http://bob:secretpw@10.1.2.3:3128", CONNECT, &chain);
        assert_eq!(err.kind, ErrorKind::Connect);
        assert_eq!(
            err.message,
            "the proxy http://10.1.2.3:3128 could not be reached: connection refused"
        );
    }

    #[test]
    fn socks_and_tunnel_failures_are_connect_errors() {
        let hidden = leaf("SOCKS error: failed to create underlying connection");
        let err = via("socks5h://127.0.0.1:1080", CONNECT, &hidden);
        assert_eq!(err.kind, ErrorKind::Connect);
        assert!(
            err.message.contains("could not be reached"),
            "{}",
            err.message
        );

        let refused_tunnel = leaf("tunnel error: unsuccessful");
        let err = via("http://127.0.0.1:3128", CONNECT, &refused_tunnel);
        assert_eq!(
            err.message,
            "the proxy http://127.0.0.1:3128 would not open a tunnel to 127.0.0.1:4567"
        );
    }

    #[test]
    fn a_failed_lookup_is_the_proxys_unless_socks5_looks_names_up_here() {
        let chain = leaf("failed to lookup address information: Name or service not known");
        let err = via("http://proxy.invalid:3128", CONNECT, &chain);
        assert_eq!(err.kind, ErrorKind::Connect);
        assert!(
            err.message.contains("its name did not resolve"),
            "{}",
            err.message
        );
        let err = via("socks5://proxy.invalid:1080", CONNECT, &chain);
        assert_eq!(err.kind, ErrorKind::Dns);
    }

    #[test]
    fn messages_through_a_proxy_are_scrubbed_of_its_credentials() {
        let chain = leaf("odd failure mentioning http://bob:secretpw@10.1.2.3:3128 and secretpw");
        let err = via(
            "http://bob:secretpw@10.1.2.3:3128",
            Flags::default(),
            &chain,
        );
        assert!(!err.message.contains("secretpw"), "{}", err.message);
        assert!(
            err.message.contains("http://10.1.2.3:3128"),
            "{}",
            err.message
        );
    }
}
