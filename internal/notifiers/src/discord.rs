//! Discord webhooks.
//!
//! As in Gatus, building the body is a pure function of the alert ([`message`]), tested on its
//! own; [`DiscordNotifier`] only does the HTTP request and sorts the answer into a
//! [`SendError`].
//!
//! Discord's limits are respected by construction: the content is at most 2000 characters, the
//! embed title at most 256, a field name at most 256 and a field value at most 1024, so the
//! whole embed stays far below its 6000-character total. Anything longer is cut at a
//! character boundary and ends with `…`. Mentions are never parsed, so a monitor named
//! `@everyone` cannot ping a channel.

use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use serde_json::{json, Value};
use upwatch_core::alert::human_duration;
use upwatch_core::watchdog::Notice;
use upwatch_core::{redact_url, Alert, AlertKind, Webhook};

use upwatch_notify::{Notifier, SendError};

/// Longest message content Discord accepts, in characters.
pub const MAX_CONTENT: usize = 2000;
/// Longest embed title, in characters.
pub const MAX_TITLE: usize = 256;
/// Longest embed field name, in characters.
pub const MAX_FIELD_NAME: usize = 256;
/// Longest embed field value, in characters.
pub const MAX_FIELD_VALUE: usize = 1024;
/// Most characters in all the text of one embed together.
pub const MAX_EMBED_TOTAL: usize = 6000;
/// Embed color of a down alert (red).
pub const COLOR_DOWN: u32 = 0xE74C3C;
/// Embed color of a recovery alert (green).
pub const COLOR_UP: u32 = 0x2ECC71;
/// Embed colour of certificate expiry alerts (orange).
pub const COLOR_WARNING: u32 = 0xE67E22;
/// Longest wait a 429 answer can impose; longer requests are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Wait after a 429 answer that says nothing about how long to wait.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How much of a site's name and URL the `Site:` line keeps, so that the lines after it
/// always fit in the content.
const MAX_SITE_NAME: usize = 256;
const MAX_SITE_URL: usize = 512;
/// How much of an error response body is kept in a [`SendError`].
const MAX_ERROR_BODY: usize = 200;
/// How much of an answer's body is read at most.
const MAX_BODY_READ: usize = 64 * 1024;

/// The Discord webhook body announcing `alert`: a plain-text `content` and one embed.
///
/// The content reads, for a down alert (the `Error:` line only when the check had an error):
///
/// ```text
/// 🔴 Website Down Alert
/// Site: My Website (https://example.com)
/// Status: DOWN
/// Time: 2024-01-16 20:00:00 UTC
/// Error: status_mismatch: got HTTP 500, expected 200
/// ```
///
/// and for a recovery (the `Downtime:` line only when it is known):
///
/// ```text
/// 🟢 Website Recovery Alert
/// Site: My Website (https://example.com)
/// Status: UP
/// Time: 2024-01-16 20:05:00 UTC
/// Downtime: 5m 0s
/// ```
pub fn message(alert: &Alert) -> Value {
    let name = cut(&alert.monitor_name, MAX_SITE_NAME);
    // A push monitor's URL holds its token: it is named by its type instead.
    let target = if alert.monitor_url.starts_with("push://") {
        "push monitor"
    } else {
        alert.monitor_url.as_str()
    };
    let site_url = cut(target, MAX_SITE_URL);
    let expiry = alert.expiry_words().unwrap_or_default();
    let expiry_suffix = format!("'s certificate {expiry}");
    let (header, status, title_suffix, color) = match alert.kind {
        AlertKind::Down => ("🔴 Website Down Alert", "DOWN", " is down", COLOR_DOWN),
        AlertKind::Recovery => ("🟢 Website Recovery Alert", "UP", " is up again", COLOR_UP),
        AlertKind::CertificateExpiry => (
            "🟠 Certificate Expiry Alert",
            "UP",
            expiry_suffix.as_str(),
            COLOR_WARNING,
        ),
    };
    let mut lines = vec![
        header.to_string(),
        format!("Site: {name} ({site_url})"),
        format!("Status: {status}"),
        format!("Time: {}", alert.at.format("%Y-%m-%d %H:%M:%S UTC")),
    ];

    let mut fields = vec![
        field(
            "Status code",
            &alert
                .status_code
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
        ),
        field("Response time", &format!("{} ms", alert.response_time_ms)),
    ];
    match alert.kind {
        AlertKind::Down => {
            if let Some(error) = &alert.error {
                let error = error.to_string();
                lines.push(format!("Error: {}", cut(&error, MAX_FIELD_VALUE)));
                fields.push(field("Error", &error));
            }
        }
        AlertKind::Recovery => {
            if let Some(downtime) = alert.downtime() {
                let downtime = human_duration(downtime);
                lines.push(format!("Downtime: {downtime}"));
                fields.push(field("Downtime", &downtime));
            }
        }
        AlertKind::CertificateExpiry => {
            if let Some(expires_at) = alert.certificate_expires_at {
                let when = expires_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
                lines.push(format!("Certificate: {expiry} ({when})"));
                fields.push(field("Certificate expires", &when));
            }
        }
    }

    let title_room = MAX_TITLE - title_suffix.chars().count();
    let title = format!("{}{title_suffix}", cut(&alert.monitor_name, title_room));
    let mut embed = json!({
        "title": title,
        "color": color,
        "timestamp": alert.at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "fields": fields,
    });
    // Discord links embeds to web pages only: a tcp:// or icmp:// target gets no link.
    if alert.monitor_url.starts_with("http://") || alert.monitor_url.starts_with("https://") {
        embed["url"] = json!(alert.monitor_url);
    }
    json!({
        "content": cut(&lines.join("\n"), MAX_CONTENT),
        "embeds": [embed],
        "allowed_mentions": { "parse": [] },
    })
}

/// An inline embed field, both parts cut to Discord's limits.
fn field(name: &str, value: &str) -> Value {
    json!({
        "name": cut(name, MAX_FIELD_NAME),
        "value": cut(value, MAX_FIELD_VALUE),
        "inline": true,
    })
}

/// `text` cut to at most `max` characters, the cut marked with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Posts alerts to Discord (or Discord-compatible) webhooks.
///
/// Requests time out after [`DiscordNotifier::TIMEOUT`], redirects are not followed, and TLS
/// is rustls with the bundled web roots.
#[derive(Debug, Clone)]
pub struct DiscordNotifier {
    client: reqwest::Client,
}

impl DiscordNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = Duration::from_secs(10);

    /// A notifier with the default [`DiscordNotifier::TIMEOUT`].
    pub fn new() -> Result<Self, reqwest::Error> {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("upwatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(DiscordNotifier { client })
    }
}

/// The body of a test message: plain content, no embed.
pub fn test_message() -> Value {
    serde_json::json!({
        "content": "✅ upwatch test message: this webhook receives upwatch's down and recovery alerts."
    })
}

/// The body of a message about upwatch itself (the watchdog's): its title in bold and its
/// text, plain content, no embed.
pub fn notice_message(notice: &Notice) -> Value {
    serde_json::json!({
        "content": format!("**{}**\n{}", notice.title(), notice.text())
    })
}

#[async_trait]
impl Notifier for DiscordNotifier {
    async fn send(&self, webhook: &Webhook, alert: &Alert) -> Result<(), SendError> {
        self.post(webhook, &message(alert)).await
    }

    async fn send_test(&self, webhook: &Webhook) -> Result<(), SendError> {
        self.post(webhook, &test_message()).await
    }

    async fn send_notice(&self, webhook: &Webhook, notice: &Notice) -> Result<(), SendError> {
        self.post(webhook, &notice_message(notice)).await
    }
}

impl DiscordNotifier {
    /// Posts `body` to the webhook once and sorts a failure by what to do next.
    async fn post(&self, webhook: &Webhook, body: &Value) -> Result<(), SendError> {
        let response = self
            .client
            .post(&webhook.url)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                let text = describe(&e, &webhook.url);
                if e.is_builder() {
                    SendError::Rejected(text)
                } else {
                    SendError::Retryable(text)
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after_header = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_bounded(response, MAX_BODY_READ).await;
        Err(match status.as_u16() {
            429 => SendError::RateLimited {
                retry_after: retry_after(&body, retry_after_header.as_deref()),
            },
            404 => SendError::Gone,
            500..=599 => SendError::Retryable(status_text(status, &body, &webhook.url)),
            _ => SendError::Rejected(status_text(status, &body, &webhook.url)),
        })
    }
}

/// How long a 429 answer asks to wait: the JSON body's `retry_after` (seconds, fractional)
/// or else the `Retry-After` header (seconds), [`DEFAULT_RETRY_AFTER`] when neither says,
/// at most [`MAX_RETRY_AFTER`].
pub fn retry_after(body: &[u8], header: Option<&str>) -> Duration {
    let valid = |s: &f64| s.is_finite() && *s >= 0.0;
    let from_body = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("retry_after")?.as_f64())
        .filter(valid);
    let from_header = header
        .and_then(|h| h.trim().parse::<f64>().ok())
        .filter(valid);
    match from_body.or(from_header) {
        Some(secs) => Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())),
        None => DEFAULT_RETRY_AFTER,
    }
}

/// `HTTP 400 Bad Request: <the start of the body>`, with the webhook URL hidden.
fn status_text(status: reqwest::StatusCode, body: &[u8], url: &str) -> String {
    let body = String::from_utf8_lossy(body);
    let body = cut(body.trim(), MAX_ERROR_BODY);
    let text = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    scrub(text, url)
}

/// A request failure in words, with its causes and without the webhook URL.
fn describe(e: &reqwest::Error, url: &str) -> String {
    let what = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_builder() {
        "invalid webhook url"
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
    scrub(text, url)
}

/// `text` with the webhook URL, and its path (which holds the token), replaced.
fn scrub(text: String, url: &str) -> String {
    let mut text = text.replace(url, &redact_url(url));
    if let Some((_, rest)) = url.split_once("://") {
        if let Some(slash) = rest.find('/') {
            let path = &rest[slash..];
            if path.len() > 1 {
                text = text.replace(path, "/…");
            }
        }
    }
    text
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
    use chrono::{DateTime, TimeZone, Utc};
    use upwatch_core::{CheckError, ErrorKind};
    use uuid::Uuid;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 16, h, m, 0).unwrap()
    }

    #[test]
    fn a_notice_is_its_bold_title_and_its_text() {
        let notice = Notice::Unchecked {
            count: 2,
            intervals: 3,
            names: vec!["api".into(), "shop".into()],
        };
        assert_eq!(
            notice_message(&notice),
            json!({"content": "**⚠️ upwatch is not checking some monitors**\nupwatch has not checked 2 monitors for 3 intervals: api, shop. Their status is unknown and shown as stale until they are checked again."})
        );
    }

    fn down(error: Option<CheckError>) -> Alert {
        Alert {
            id: Uuid::nil(),
            kind: AlertKind::Down,
            monitor_id: Uuid::nil(),
            monitor_name: "My Website".into(),
            monitor_url: "https://example.com".into(),
            at: at(20, 0),
            status_code: Some(500),
            response_time_ms: 123,
            error,
            down_since: None,
            certificate_expires_at: None,
            days_left: None,
        }
    }

    #[test]
    fn a_certificate_alert_says_when_it_expires_and_that_the_site_is_up() {
        let alert = Alert {
            kind: AlertKind::CertificateExpiry,
            status_code: Some(200),
            certificate_expires_at: Some(at(20, 0) + chrono::Duration::days(5)),
            days_left: Some(5),
            ..down(None)
        };
        let msg = message(&alert);
        assert_eq!(
            msg["content"],
            "🟠 Certificate Expiry Alert\nSite: My Website (https://example.com)\nStatus: UP\n\
             Time: 2024-01-16 20:00:00 UTC\nCertificate: expires in 5 days (2024-01-21 20:00:00 UTC)"
        );
        let e = embed(&msg);
        assert_eq!(e["title"], "My Website's certificate expires in 5 days");
        assert_eq!(e["color"], COLOR_WARNING);
        assert_eq!(
            fields(&msg)[2],
            (
                "Certificate expires".to_string(),
                "2024-01-21 20:00:00 UTC".to_string()
            )
        );
    }

    #[test]
    fn non_web_targets_get_no_embed_link_and_push_tokens_stay_out() {
        let mut alert = down(None);
        alert.monitor_url = "tcp://db.example.com:5432".into();
        let msg = message(&alert);
        assert!(embed(&msg).get("url").is_none(), "{msg}");
        assert!(msg["content"]
            .as_str()
            .unwrap()
            .contains("(tcp://db.example.com:5432)"));
        alert.monitor_url = "push://0123456789abcdef0123456789abcdef".into();
        let text = message(&alert).to_string();
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains("(push monitor)"), "{text}");
    }

    fn recovery() -> Alert {
        Alert {
            kind: AlertKind::Recovery,
            at: at(20, 5),
            status_code: Some(200),
            response_time_ms: 45,
            down_since: Some(at(20, 0)),
            ..down(None)
        }
    }

    fn mismatch() -> CheckError {
        CheckError::new(ErrorKind::StatusMismatch, "got HTTP 500, expected 200")
    }

    fn embed(msg: &Value) -> &Value {
        let embeds = msg["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), 1);
        &embeds[0]
    }

    fn fields(msg: &Value) -> Vec<(String, String)> {
        embed(msg)["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                assert_eq!(f["inline"], true);
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap().chars().count()
    }

    #[test]
    fn down_content_is_exact() {
        let msg = message(&down(Some(mismatch())));
        assert_eq!(
            msg["content"],
            "🔴 Website Down Alert\n\
             Site: My Website (https://example.com)\n\
             Status: DOWN\n\
             Time: 2024-01-16 20:00:00 UTC\n\
             Error: status_mismatch: got HTTP 500, expected 200"
        );
    }

    #[test]
    fn down_without_error_has_no_error_line() {
        let msg = message(&down(None));
        assert_eq!(
            msg["content"],
            "🔴 Website Down Alert\n\
             Site: My Website (https://example.com)\n\
             Status: DOWN\n\
             Time: 2024-01-16 20:00:00 UTC"
        );
        assert!(fields(&msg).iter().all(|(name, _)| name != "Error"));
    }

    #[test]
    fn recovery_content_is_exact() {
        let msg = message(&recovery());
        assert_eq!(
            msg["content"],
            "🟢 Website Recovery Alert\n\
             Site: My Website (https://example.com)\n\
             Status: UP\n\
             Time: 2024-01-16 20:05:00 UTC\n\
             Downtime: 5m 0s"
        );
        let unknown = Alert {
            down_since: None,
            ..recovery()
        };
        assert!(!message(&unknown)["content"]
            .as_str()
            .unwrap()
            .contains("Downtime"));
    }

    #[test]
    fn down_embed_is_red_with_error_field() {
        let msg = message(&down(Some(mismatch())));
        let e = embed(&msg);
        assert_eq!(e["title"], "My Website is down");
        assert_eq!(e["url"], "https://example.com");
        assert_eq!(e["color"], 0xE74C3C);
        assert_eq!(e["timestamp"], "2024-01-16T20:00:00Z");
        assert_eq!(
            fields(&msg),
            vec![
                ("Status code".to_string(), "500".to_string()),
                ("Response time".to_string(), "123 ms".to_string()),
                (
                    "Error".to_string(),
                    "status_mismatch: got HTTP 500, expected 200".to_string()
                ),
            ]
        );
    }

    #[test]
    fn recovery_embed_is_green_with_downtime_field() {
        let msg = message(&recovery());
        let e = embed(&msg);
        assert_eq!(e["title"], "My Website is up again");
        assert_eq!(e["color"], 0x2ECC71);
        assert_eq!(e["timestamp"], "2024-01-16T20:05:00Z");
        assert_eq!(
            fields(&msg),
            vec![
                ("Status code".to_string(), "200".to_string()),
                ("Response time".to_string(), "45 ms".to_string()),
                ("Downtime".to_string(), "5m 0s".to_string()),
            ]
        );
    }

    #[test]
    fn a_check_without_status_code_says_none() {
        let alert = Alert {
            status_code: None,
            ..down(Some(CheckError::new(
                ErrorKind::Timeout,
                "no answer within 10s",
            )))
        };
        assert_eq!(fields(&message(&alert))[0].1, "none");
    }

    #[test]
    fn huge_name_and_error_stay_within_every_limit() {
        let mut alert = down(None);
        alert.monitor_name = "é".repeat(5000);
        // CheckError::new bounds messages, but a stored alert may carry anything.
        alert.error = Some(CheckError {
            kind: ErrorKind::Other,
            message: "x".repeat(5000),
        });
        for alert in [
            alert.clone(),
            Alert {
                kind: AlertKind::Recovery,
                down_since: Some(at(1, 0)),
                ..alert
            },
        ] {
            let msg = message(&alert);
            let content = msg["content"].as_str().unwrap();
            assert!(chars(&msg["content"]) <= MAX_CONTENT);
            assert!(content.starts_with(match alert.kind {
                AlertKind::Down => "🔴 Website Down Alert\nSite: éé",
                AlertKind::Recovery => "🟢 Website Recovery Alert\nSite: éé",
                AlertKind::CertificateExpiry => "🟠 Certificate Expiry Alert\nSite: éé",
            }));
            // The lines after the name are kept.
            assert!(content.contains("\nStatus: "), "{content}");
            let e = embed(&msg);
            assert!(chars(&e["title"]) <= MAX_TITLE);
            assert!(e["title"].as_str().unwrap().contains('…'));
            assert!(
                e["title"].as_str().unwrap().ends_with(" is down")
                    || alert.kind == AlertKind::Recovery
            );
            let mut total = chars(&e["title"]);
            for f in e["fields"].as_array().unwrap() {
                assert!(chars(&f["name"]) <= MAX_FIELD_NAME);
                assert!(chars(&f["value"]) <= MAX_FIELD_VALUE);
                total += chars(&f["name"]) + chars(&f["value"]);
            }
            assert!(total <= MAX_EMBED_TOTAL);
        }
        let msg = message(&down(Some(CheckError {
            kind: ErrorKind::Other,
            message: "y".repeat(5000),
        })));
        let error_field = &fields(&msg)[2].1;
        assert_eq!(error_field.chars().count(), MAX_FIELD_VALUE);
        assert!(error_field.ends_with('…'));
    }

    #[test]
    fn mentions_are_never_parsed() {
        let mut alert = down(None);
        alert.monitor_name = "@everyone".into();
        let msg = message(&alert);
        assert_eq!(msg["allowed_mentions"], json!({ "parse": [] }));
        assert!(msg["content"].as_str().unwrap().contains("@everyone"));
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("ééééé", 3), "éé…");
        assert_eq!(cut("abcdef", 6), "abcdef");
    }

    #[test]
    fn retry_after_prefers_the_body_then_the_header() {
        let body =
            br#"{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}"#;
        assert_eq!(retry_after(body, Some("7")), Duration::from_millis(500));
        assert_eq!(retry_after(b"", Some("7")), Duration::from_secs(7));
        assert_eq!(
            retry_after(b"not json", Some(" 2.5 ")),
            Duration::from_millis(2500)
        );
        assert_eq!(retry_after(b"{}", None), DEFAULT_RETRY_AFTER);
        assert_eq!(
            retry_after(br#"{"retry_after": -3}"#, None),
            DEFAULT_RETRY_AFTER
        );
        assert_eq!(
            retry_after(br#"{"retry_after": 86400}"#, None),
            MAX_RETRY_AFTER
        );
        assert_eq!(
            retry_after(b"", Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            DEFAULT_RETRY_AFTER
        );
    }

    #[test]
    fn scrub_hides_url_and_token() {
        let url = "https://discord.com/api/webhooks/123/secret-token";
        let text = scrub(
            format!("failed for {url} and /api/webhooks/123/secret-token"),
            url,
        );
        assert!(!text.contains("secret-token"), "{text}");
        assert!(text.contains("https://discord.com/…oken"), "{text}");
    }
}
