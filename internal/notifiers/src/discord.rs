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
use upwatch_core::{Alert, AlertKind};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError};

use crate::http::{self, cut};

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

/// How much of a site's name and URL the `Site:` line keeps, so that the lines after it
/// always fit in the content.
const MAX_SITE_NAME: usize = 256;
const MAX_SITE_URL: usize = 512;

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
        AlertKind::Reminder => (
            "🔴 Website Still Down",
            "DOWN",
            " is still down",
            COLOR_DOWN,
        ),
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
    if let Some(regions) = &alert.regions {
        fields.push(field("Regions", regions));
    }
    match alert.kind {
        AlertKind::Down | AlertKind::Reminder => {
            if let Some(downtime) = alert
                .downtime()
                .filter(|_| alert.kind == AlertKind::Reminder)
            {
                let downtime = human_duration(downtime);
                lines.push(format!("Down for: {downtime}"));
                fields.push(field("Down for", &downtime));
            }
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

/// The body of a test message: plain content, no embed.
pub fn test_message() -> Value {
    json!({
        "content": "✅ upwatch test message: this webhook receives upwatch's down and recovery alerts."
    })
}

/// The body of a message about upwatch itself (the watchdog's): its title in bold and its
/// text, plain content, no embed.
pub fn notice_message(notice: &Notice) -> Value {
    json!({
        "content": format!("**{}**\n{}", notice.title(), notice.text())
    })
}

/// The body of any other message (a storm, a reminder): its headline in bold and its
/// lines, plain content cut to Discord's limit, mentions never parsed.
pub fn text_message(message: &Message) -> Value {
    let text = format!("**{}**\n{}", message.headline(), message.lines().join("\n"));
    json!({
        "content": cut(&text, MAX_CONTENT),
        "allowed_mentions": { "parse": [] },
    })
}

/// The body `message` is posted as.
pub fn body(message: &Message) -> Value {
    match message {
        Message::Alert(alert) => self::message(alert),
        Message::Test => test_message(),
        Message::Notice(notice) => notice_message(notice),
        other => text_message(other),
    }
}

/// Posts to Discord (or Discord-compatible) webhooks: settings `webhook_url`.
///
/// A 404 (the webhook was deleted) disables the channel; a 429 waits for Discord's
/// `retry_after`.
#[derive(Debug, Clone)]
pub struct DiscordNotifier {
    client: reqwest::Client,
}

impl DiscordNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`DiscordNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        DiscordNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for DiscordNotifier {
    fn default() -> Self {
        Self::new()
    }
}

/// The settings that are secrets.
const SECRETS: &[&str] = &["webhook_url"];

#[async_trait]
impl Provider for DiscordNotifier {
    fn kind(&self) -> &'static str {
        upwatch_core::webhook::DISCORD
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SECRETS)?;
        s.url("webhook_url")?;
        Ok(())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let url = Settings::lenient(settings).text("webhook_url");
        let answer = http::send(self.client.post(url).json(&body(message)), &[url]).await?;
        if answer.status == 404 {
            return Err(SendError::Disabled(GONE_REASON.to_string()));
        }
        answer.classify(&[url])
    }
}

/// Why a Discord channel is disabled when its webhook answers 404.
pub const GONE_REASON: &str = "the webhook answered 404 Not Found; it was probably deleted";

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
            regions: None,
        }
    }

    #[test]
    fn a_certificate_alert_says_when_it_expires_and_that_the_site_is_up() {
        let alert = Alert {
            kind: AlertKind::CertificateExpiry,
            status_code: Some(200),
            certificate_expires_at: Some(at(20, 0) + chrono::Duration::days(5)),
            days_left: Some(5),
            regions: None,
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
                AlertKind::Reminder => "🔴 Website Still Down\nSite: éé",
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
}
