//! The proxy an HTTP check goes through: the worker's (`UPWATCH_CHECK_PROXY`) or the
//! monitor's own (`request.proxy`), which replaces it.
//!
//! A proxy URL may hold credentials (`http://user:password@proxy:3128`). Only
//! [`ProxyUrl::full`] has them, and it is handed to reqwest and nowhere else: messages, logs
//! and `Debug` show [`ProxyUrl::shown`] (scheme, host and port), and every message made while
//! a proxy was in use is scrubbed of its userinfo by [`ProxyUrl::scrub`].

use std::fmt;

use reqwest::Url;

/// A proxy's URL, checked, with what may be shown of it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    /// The URL as given, credentials included: for reqwest only.
    full: String,
    /// `scheme://host:port`, without userinfo, path or query.
    shown: String,
    /// The texts that must never appear in a message: the password and the username, raw
    /// and percent-decoded.
    secrets: Vec<String>,
    /// Whether the target's name is resolved here rather than by the proxy (`socks5://`).
    local_dns: bool,
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyUrl").field(&self.shown).finish()
    }
}

impl ProxyUrl {
    /// Checks `url` as a monitor's proxy is checked; the error never repeats the URL.
    pub fn parse(url: &str) -> Result<ProxyUrl, String> {
        let url = url.trim();
        upwatch_core::monitor::check_proxy_url(url)?;
        let parsed = Url::parse(url).map_err(|_| "is not a URL".to_string())?;
        let mut secrets = Vec::new();
        // A one- or two-letter user name would blot out half a message if scrubbed; the
        // password always is, however short.
        let user = Some(parsed.username()).filter(|u| u.len() >= 3);
        for part in [parsed.password(), user].into_iter().flatten() {
            if part.is_empty() {
                continue;
            }
            secrets.push(part.to_string());
            if let Ok(decoded) = percent_decode(part) {
                if decoded != part {
                    secrets.push(decoded);
                }
            }
        }
        Ok(ProxyUrl {
            full: url.to_string(),
            shown: redact_proxy_url(url),
            secrets,
            local_dns: parsed.scheme() == "socks5",
        })
    }

    /// The URL with its credentials, for reqwest.
    pub fn full(&self) -> &str {
        &self.full
    }

    /// `scheme://host:port`, safe to show.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether the target's name is looked up locally (socks5) rather than by the proxy.
    pub fn local_dns(&self) -> bool {
        self.local_dns
    }

    /// `text` with the full URL replaced by the shown one and any credential by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(&self.full, &self.shown);
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

/// A proxy URL as it may be shown or logged: `scheme://host:port`, without the userinfo (and
/// so without any password), path or query. Something that is not a URL shows as
/// `(invalid proxy URL)`.
pub fn redact_proxy_url(url: &str) -> String {
    let Ok(parsed) = Url::parse(url.trim()) else {
        return "(invalid proxy URL)".to_string();
    };
    let host = match parsed.host_str() {
        Some(host) => host,
        None => return format!("{}://", parsed.scheme()),
    };
    match parsed.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    }
}

/// Decodes `%XX` escapes; fails on a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_has_no_credentials() {
        let proxy = ProxyUrl::parse("http://bob:s%40cret@proxy.internal:3128/x?y=z").unwrap();
        assert_eq!(proxy.shown(), "http://proxy.internal:3128");
        assert_eq!(
            format!("{proxy:?}"),
            "ProxyUrl(\"http://proxy.internal:3128\")"
        );
        assert_eq!(
            proxy.scrub("failed: http://bob:s%40cret@proxy.internal:3128/x?y=z said s@cret"),
            "failed: http://proxy.internal:3128 said ***"
        );
        assert!(!proxy.local_dns());
        assert!(ProxyUrl::parse("socks5://127.0.0.1:1080")
            .unwrap()
            .local_dns());
        assert!(!ProxyUrl::parse("socks5h://127.0.0.1:1080")
            .unwrap()
            .local_dns());
    }

    #[test]
    fn known_ports_are_shown() {
        assert_eq!(redact_proxy_url("https://u:p@proxy"), "https://proxy:443");
        assert_eq!(
            redact_proxy_url("socks5://u:p@10.0.0.1:1080"),
            "socks5://10.0.0.1:1080"
        );
        assert_eq!(redact_proxy_url("not a url"), "(invalid proxy URL)");
    }

    #[test]
    fn invalid_proxies_are_refused_without_repeating_them() {
        let err = ProxyUrl::parse("ftp://user:hunter2@proxy").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let err = ProxyUrl::parse("user:hunter2@proxy").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
