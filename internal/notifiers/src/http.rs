//! What every HTTP provider shares: one client, one request sent and its answer read (at
//! most [`MAX_BODY_READ`] bytes), the answer sorted into a [`SendError`] the way most
//! services document theirs, and secrets scrubbed out of every error text.
//!
//! Providers whose service says otherwise (Telegram's `parameters.retry_after`, Pushover's
//! `status: 0`) look at the [`Answer`] themselves before calling [`Answer::classify`].

use std::time::Duration;

use serde_json::Value;
use upwatch_core::redact_url;
use upwatch_notify::SendError;

/// Time allowed for one delivery, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait a 429 answer can impose; longer requests are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Wait after a 429 answer that says nothing about how long to wait.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How much of an answer's body is read at most.
pub const MAX_BODY_READ: usize = 64 * 1024;
/// How much of an error answer's body is kept in a [`SendError`].
const MAX_ERROR_BODY: usize = 200;

/// The HTTP client of the providers: rustls with the bundled web roots, no redirects
/// followed, `User-Agent: upwatch/<version>`, requests given up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("upwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        // Only fails when the TLS backend cannot start, which rustls with bundled roots
        // does not do.
        .expect("the HTTP client of the notifiers builds")
}

/// An answer, read.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The `Retry-After` header, when there is one.
    pub retry_after_header: Option<String>,
    /// At most [`MAX_BODY_READ`] bytes of the body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, when it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `HTTP 400 Bad Request: <the start of the body>`, secrets scrubbed.
    pub fn describe(&self, secrets: &[&str]) -> String {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        // Scrubbed before it is cut: a secret cut in half would no longer be recognised.
        let body = scrub(String::from_utf8_lossy(&self.body).into_owned(), secrets);
        let body = cut(body.trim(), MAX_ERROR_BODY);
        let head = format!("HTTP {} {reason}", self.status);
        let head = head.trim_end();
        if body.is_empty() {
            head.to_string()
        } else {
            format!("{head}: {body}")
        }
    }

    /// The common reading of an answer: 2xx is success; 429 waits for `Retry-After` (or the
    /// body's `retry_after`); 401, 403, 404 and 410 disable the channel; 408 and 5xx are
    /// tried again; any other status rejects this one message.
    pub fn classify(&self, secrets: &[&str]) -> Result<(), SendError> {
        if self.is_success() {
            return Ok(());
        }
        Err(match self.status {
            429 => SendError::RateLimited {
                retry_after: retry_after(&self.body, self.retry_after_header.as_deref()),
            },
            401 | 403 | 404 | 410 => SendError::Disabled(self.describe(secrets)),
            408 | 500..=599 => SendError::Retryable(self.describe(secrets)),
            _ => SendError::Rejected(self.describe(secrets)),
        })
    }
}

/// Sends `request` once and reads its answer, whatever its status. A request that could not
/// be made at all (a bad URL) is `Rejected`; a network failure or timeout is `Retryable`.
/// Error texts have `secrets` scrubbed out.
pub async fn send(request: reqwest::RequestBuilder, secrets: &[&str]) -> Result<Answer, SendError> {
    let response = request.send().await.map_err(|e| {
        let text = scrub(describe_error(&e), secrets);
        if e.is_builder() {
            SendError::Rejected(text)
        } else {
            SendError::Retryable(text)
        }
    })?;
    let status = response.status().as_u16();
    let retry_after_header = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_bounded(response, MAX_BODY_READ).await;
    Ok(Answer {
        status,
        retry_after_header,
        body,
    })
}

/// Sends `request` once and sorts the answer with [`Answer::classify`].
pub async fn send_and_classify(
    request: reqwest::RequestBuilder,
    secrets: &[&str],
) -> Result<(), SendError> {
    send(request, secrets).await?.classify(secrets)
}

/// How long a 429 answer asks to wait: the JSON body's `retry_after` (seconds, fractional;
/// Discord) or `parameters.retry_after` (Telegram), else the `Retry-After` header (seconds
/// or an HTTP date), [`DEFAULT_RETRY_AFTER`] when none says, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(body: &[u8], header: Option<&str>) -> Duration {
    let valid = |s: &f64| s.is_finite() && *s >= 0.0;
    let json = serde_json::from_slice::<Value>(body).ok();
    let from_body = json
        .as_ref()
        .and_then(|v| {
            v.get("retry_after")
                .or_else(|| v.get("parameters")?.get("retry_after"))?
                .as_f64()
        })
        .filter(valid);
    let from_header = header.and_then(|h| {
        let h = h.trim();
        h.parse::<f64>().ok().filter(valid).or_else(|| {
            let at = chrono::DateTime::parse_from_rfc2822(h).ok()?;
            let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
            Some((secs.max(0) as f64) / 1000.0)
        })
    });
    match from_body.or(from_header) {
        Some(secs) => Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())),
        None => DEFAULT_RETRY_AFTER,
    }
}

/// A request failure in words, with its causes.
pub fn describe_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_builder() {
        "invalid URL"
    } else {
        "the request failed"
    };
    let mut text = what.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `text` with every secret replaced: a URL by its redacted form (and its path, which holds
/// the token, by `/…`), anything else by `********`.
pub fn scrub(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if secret.contains("://") {
            text = text.replace(secret, &redact_url(secret));
            if let Some((_, rest)) = secret.split_once("://") {
                if let Some(slash) = rest.find('/') {
                    let path = &rest[slash..];
                    if path.len() > 1 {
                        text = text.replace(path, "/…");
                    }
                }
            }
        } else {
            text = text.replace(secret, "********");
        }
    }
    text
}

/// `text` cut to at most `max` characters, the cut marked with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` bytes of the response body; whatever could not be read is left out.
async fn read_bounded(mut response: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let take = chunk.len().min(max - body.len());
        body.extend_from_slice(&chunk[..take]);
        if body.len() >= max {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, header: Option<&str>) -> Answer {
        Answer {
            status,
            retry_after_header: header.map(str::to_owned),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_sort_by_what_to_do_next() {
        assert_eq!(answer(204, "", None).classify(&[]), Ok(()));
        assert_eq!(
            answer(429, "", Some("7")).classify(&[]),
            Err(SendError::RateLimited {
                retry_after: Duration::from_secs(7)
            })
        );
        for status in [401, 403, 404, 410] {
            assert!(matches!(
                answer(status, "", None).classify(&[]),
                Err(SendError::Disabled(_))
            ));
        }
        assert!(matches!(
            answer(503, "", None).classify(&[]),
            Err(SendError::Retryable(_))
        ));
        assert!(matches!(
            answer(400, "bad", None).classify(&[]),
            Err(SendError::Rejected(t)) if t == "HTTP 400 Bad Request: bad"
        ));
    }

    #[test]
    fn retry_after_reads_bodies_then_headers() {
        assert_eq!(
            retry_after(br#"{"retry_after": 2.5}"#, Some("9")),
            Duration::from_millis(2500)
        );
        assert_eq!(
            retry_after(br#"{"ok":false,"parameters":{"retry_after":3}}"#, None),
            Duration::from_secs(3)
        );
        assert_eq!(retry_after(b"", Some("4")), Duration::from_secs(4));
        assert_eq!(retry_after(b"", None), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(b"", Some("99999")), MAX_RETRY_AFTER);
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = retry_after(b"", Some(&soon));
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }

    #[test]
    fn a_secret_at_the_cut_is_scrubbed_whole() {
        let url = "https://hooks.example.com/services/T0/B0/tokentoken";
        let body = format!("{}{url}", "x".repeat(180));
        let a = Answer {
            status: 400,
            retry_after_header: None,
            body: body.into_bytes(),
        };
        let text = a.describe(&[url]);
        assert!(!text.contains("/services/T0"), "{text}");
    }

    #[test]
    fn secrets_are_scrubbed() {
        let url = "https://hooks.example.com/services/T0/B0/tokentoken";
        let text = format!("could not post to {url} with key abcd1234secret");
        let out = scrub(text, &[url, "abcd1234secret"]);
        assert!(!out.contains("tokentoken"), "{out}");
        assert!(!out.contains("abcd1234secret"), "{out}");
    }
}
