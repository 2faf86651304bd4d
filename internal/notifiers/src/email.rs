//! Email over SMTP, with the `lettre` crate (its async tokio transport, TLS by rustls).
//!
//! Docs: RFC 5321 (SMTP, reply codes: <https://www.rfc-editor.org/rfc/rfc5321#section-4.2>),
//! RFC 3207 (STARTTLS), RFC 8314 (implicit TLS on port 465), RFC 4954 (AUTH, `535`),
//! RFC 2046 (`multipart/alternative`), <https://docs.rs/lettre/0.11> (the client).
//!
//! | Setting     | Required | Secret | Default                                       |
//! |-------------|----------|--------|-----------------------------------------------|
//! | `smtp_host` | yes      | no     |                                               |
//! | `smtp_port` | no       | no     | 25 for `none`, 587 for `starttls`, 465 for `tls` |
//! | `security`  | no       | no     | `starttls`                                    |
//! | `username`  | no       | no     | (no AUTH)                                     |
//! | `password`  | no       | yes    | (no AUTH)                                     |
//! | `from`      | yes      | no     |                                               |
//! | `to`        | yes      | no     |                                               |
//!
//! `smtp_host` is a host name or IP address (no scheme, no port). `security` is `none`
//! (plain text: only for a relay on a trusted network), `starttls` (plain text upgraded with
//! `STARTTLS`, which must succeed: a server that does not offer it is an error, never a
//! silent fall back to plain text) or `tls` (TLS from the first byte). Certificates are
//! checked against the bundled Mozilla roots (`webpki-roots`), plus any CA given to
//! [`EmailNotifier::with_root_certificates`]. `username` and `password` go together; with
//! them the client authenticates with `AUTH PLAIN` (or `LOGIN`) after TLS. `from` is one
//! mailbox (`upwatch <alerts@example.com>` or `alerts@example.com`); `to` is a list of at
//! least one (a single string counts as a list of one); each is parsed as a mailbox and a bad
//! one is named (`settings.to[1]`).
//!
//! The mail ([`email`]): `Subject` is the headline, the body a `multipart/alternative` of a
//! `text/plain` part ([`Message::text`], the same words as every channel) and a `text/html`
//! part ([`html`]: the headline in `<h2>`, the lines as a list, a storm's names as a list and
//! its dashboard link; every text escaped, so a monitor named `<b>x</b>` shows as such), with
//! `Date`, a `Message-ID` ([`message_id`]) and `Auto-Submitted: auto-generated` (RFC 3834,
//! so that auto-responders do not answer). Non-ASCII text is sent quoted-printable (or
//! base64), so no server needs `8BITMIME`.
//!
//! Replies and failures ([`classify`]):
//!
//! | What happened                                                     | [`SendError`] |
//! |-------------------------------------------------------------------|---------------|
//! | no connection, a network failure, a timeout, a TLS failure (with its reason), a server that offers no `STARTTLS` or no usable `AUTH` | `Retryable` |
//! | a 4xx reply (`421`, `450`, `451`, `452`...): transient by RFC 5321 | `Retryable`   |
//! | `535` (credentials refused), `530`, `534`, `538` (AUTH needed or refused) | `Disabled` |
//! | any other 5xx (`550`/`553` on a recipient, `552`, `554`...)        | `Rejected`    |
//! | stored settings that no longer read (they are checked when saved)  | `Disabled`    |
//!
//! The password never appears in an error text (it is scrubbed out of every one).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;
use upwatch_notify::message::time;
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError};
use uuid::Uuid;

use crate::http;

/// The kind's name.
pub const KIND: &str = "email";
/// Longest subject kept, in characters.
pub const MAX_SUBJECT: usize = 200;
/// Why a channel is disabled when the server answers `535`.
pub const REFUSED_CREDENTIALS: &str = "the SMTP server refused the credentials";

/// The settings that are secrets.
const SECRETS: &[&str] = &["password"];
/// Every setting.
const SETTINGS: &[&str] = &[
    "smtp_host",
    "smtp_port",
    "security",
    "username",
    "password",
    "from",
    "to",
];

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text.
    None,
    /// Plain text upgraded with `STARTTLS`, which must succeed.
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS).
    Tls,
}

impl Security {
    /// The port a channel of this security uses unless it names one: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        }
    }
}

/// A channel's settings, read and checked.
#[derive(Clone)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub security: Security,
    /// The user name and password, when the server wants AUTH.
    pub credentials: Option<(String, String)>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("security", &self.security)
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Reads and checks a channel's settings; an error names the setting (`settings.to[1]`) and
/// never holds its value.
pub fn parse(settings: &Value) -> Result<EmailSettings, SettingsError> {
    let s = Settings::of(settings)?;
    s.only(SETTINGS)?;
    let host = s.str("smtp_host")?.trim();
    if !is_host(host) {
        return Err(SettingsError::setting(
            "smtp_host",
            "must be a host name or IP address, without scheme or port",
        ));
    }
    let security = match s.opt_choice("security", &["none", "starttls", "tls"])? {
        Some("none") => Security::None,
        Some("tls") => Security::Tls,
        _ => Security::StartTls,
    };
    let port = match s.opt_u64("smtp_port", 1..=65535)? {
        Some(port) => port as u16,
        None => security.default_port(),
    };
    let credentials = match (s.opt_str("username")?, s.opt_str("password")?) {
        (Some(user), Some(password)) => Some((user.trim().to_string(), password.to_string())),
        (None, None) => None,
        (Some(_), None) => {
            return Err(SettingsError::setting(
                "password",
                "is required with a username (give both or neither)",
            ))
        }
        (None, Some(_)) => {
            return Err(SettingsError::setting(
                "username",
                "is required with a password (give both or neither)",
            ))
        }
    };
    let from = mailbox(s.str("from")?).ok_or_else(|| {
        SettingsError::setting(
            "from",
            "must be one email address, as `alerts@example.com` or `upwatch <alerts@example.com>`",
        )
    })?;
    let list = s.str_list("to")?;
    if list.is_empty() {
        return Err(SettingsError::setting(
            "to",
            "is required: a list of at least one email address",
        ));
    }
    let to = list
        .iter()
        .enumerate()
        .map(|(i, text)| {
            mailbox(text).ok_or_else(|| SettingsError {
                field: format!("settings.to[{i}]"),
                message: "must be one email address, as `ops@example.com` or \
                          `Ops <ops@example.com>`"
                    .into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmailSettings {
        smtp_host: host.to_string(),
        smtp_port: port,
        security,
        credentials,
        from,
        to,
    })
}

/// `text` as one mailbox: exactly one, nothing left over.
fn mailbox(text: &str) -> Option<Mailbox> {
    let text = text.trim();
    let parsed: Mailbox = text.parse().ok()?;
    // lettre's parser stops at the first mailbox; a list (`a@x, b@x`) or trailing words
    // would be dropped without a word. What was read must account for the whole text.
    let list: lettre::message::Mailboxes = text.parse().ok()?;
    if list.iter().count() != 1 || !accounts_for(&parsed, text) {
        return None;
    }
    Some(parsed)
}

/// Whether `text` holds nothing but `mailbox`: its address, and its name when it has one.
fn accounts_for(mailbox: &Mailbox, text: &str) -> bool {
    let address = mailbox.email.to_string();
    let Some(at) = text.find(address.as_str()) else {
        return false;
    };
    let (before, after) = (&text[..at], &text[at + address.len()..]);
    match &mailbox.name {
        None => {
            before.trim_end_matches('<').trim().is_empty()
                && after.trim_start_matches('>').trim().is_empty()
        }
        Some(_) => before.trim_end().ends_with('<') && after.trim() == ">",
    }
}

/// A host name (letters, digits, `-` and `.`) or an IP address.
fn is_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The subject of `message`: its headline on one line, at most [`MAX_SUBJECT`] characters.
pub fn subject(message: &Message) -> String {
    http::cut(&one_line(&message.headline()), MAX_SUBJECT)
}

/// The `text/plain` part: the headline and the lines ([`Message::text`]).
pub fn text(message: &Message) -> String {
    message.text()
}

/// The `text/html` part: the headline in `<h2>`, the lines as a list (a storm: its start,
/// the names as a list and a link to the dashboard); every text escaped.
pub fn html(message: &Message) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html>\n<body>\n");
    out.push_str(&format!("<h2>{}</h2>\n", escape(&message.headline())));
    match message {
        Message::Storm(storm) => {
            out.push_str(&format!(
                "<p>Since: {}</p>\n<ul>\n",
                escape(&time(storm.at()))
            ));
            for name in storm.names() {
                out.push_str(&format!("<li>{}</li>\n", escape(&name)));
            }
            out.push_str("</ul>\n");
            if let Some(url) = storm
                .dashboard_url
                .as_deref()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            {
                out.push_str(&format!(
                    "<p><a href=\"{}\">Open the dashboard</a></p>\n",
                    escape(url)
                ));
            }
        }
        _ => {
            out.push_str("<ul>\n");
            for line in message.lines() {
                out.push_str(&format!("<li>{}</li>\n", escape(&line)));
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` with line breaks and other control characters turned into spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The `Message-ID` of `message` sent from `domain`: `<upwatch.{alert id}@{domain}>` for an
/// alert and `<upwatch.storm.{first alert id}@{domain}>` for a storm, so that a delivery
/// tried again keeps its ID (and servers that deduplicate on it do); a random one for a test
/// or a notice.
pub fn message_id(message: &Message, domain: &str) -> String {
    let id = match message {
        Message::Alert(a) => a.id.to_string(),
        Message::Storm(s) => match s.alerts.first() {
            Some(a) => format!("storm.{}", a.id),
            None => format!("storm.{}", Uuid::new_v4()),
        },
        Message::Test | Message::Notice(_) => Uuid::new_v4().to_string(),
    };
    format!("<upwatch.{id}@{domain}>")
}

/// The mail announcing `message` with the channel's settings, dated `now`.
pub fn email(
    settings: &EmailSettings,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<lettre::Message, SendError> {
    let mut builder = lettre::Message::builder()
        .from(settings.from.clone())
        .subject(subject(message))
        .date(SystemTime::from(now))
        .message_id(Some(message_id(message, settings.from.email.domain())))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ));
    for to in &settings.to {
        builder = builder.to(to.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            text(message),
            html(message),
        ))
        .map_err(|e| SendError::Rejected(format!("could not build the mail: {e}")))
}

/// Sorts an SMTP failure into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the text.
pub fn classify(error: &lettre::transport::smtp::Error, secrets: &[&str]) -> SendError {
    let text = |t: String| http::scrub(t, secrets);
    if let Some(code) = error.status() {
        let code = u16::from(code);
        let said = std::error::Error::source(error)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let reply = text(format!("{code} {said}").trim_end().to_string());
        return match code {
            400..=499 => SendError::Retryable(format!("the SMTP server answered {reply}")),
            535 => SendError::Disabled(format!("{REFUSED_CREDENTIALS} ({reply})")),
            530 | 534 | 538 => SendError::Disabled(format!(
                "the SMTP server refused to authenticate this channel ({reply})"
            )),
            _ => SendError::Rejected(format!("the SMTP server refused the mail: {reply}")),
        };
    }
    // lettre's text names the first cause; the deeper ones say more (an OS error...).
    let mut described = error.to_string();
    let mut tls_failure = None;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !described.contains(&said) {
            described.push_str(": ");
            described.push_str(&said);
        }
        tls_failure = tls_failure.or_else(|| rustls_error(cause));
        source = cause.source();
    }
    if let Some(tls) = tls_failure {
        // A failed handshake comes as a connection error that holds rustls' reason.
        SendError::Retryable(text(format!("TLS with the SMTP server failed: {tls}")))
    } else if error.is_tls() {
        SendError::Retryable(text(format!(
            "TLS with the SMTP server failed: {described}"
        )))
    } else if error.is_timeout() {
        SendError::Retryable(text(format!("the SMTP server timed out: {described}")))
    } else {
        SendError::Retryable(text(format!("could not deliver over SMTP: {described}")))
    }
}

/// The rustls error `cause` is (or wraps, as an I/O error), if any.
fn rustls_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    cause.downcast_ref::<rustls::Error>().or_else(|| {
        cause
            .downcast_ref::<std::io::Error>()?
            .get_ref()?
            .downcast_ref::<rustls::Error>()
    })
}

/// Sends mail over SMTP (see the module's documentation).
#[derive(Debug, Clone)]
pub struct EmailNotifier {
    timeout: Duration,
    roots: Vec<Certificate>,
}

impl EmailNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`EmailNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose deliveries give up after `timeout` (each SMTP command too).
    pub fn with_timeout(timeout: Duration) -> Self {
        EmailNotifier {
            timeout,
            roots: Vec::new(),
        }
    }

    /// The same notifier, trusting the CA certificates in `pem` besides the bundled roots
    /// (a company CA; the test receiver's). An error says the PEM holds no certificate.
    pub fn with_root_certificates(mut self, pem: &str) -> Result<Self, String> {
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err("no PEM certificate found".into());
        }
        let certificate = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| format!("invalid PEM certificates: {e}"))?;
        self.roots.push(certificate);
        Ok(self)
    }

    /// The transport for one delivery with `s`.
    fn transport(
        &self,
        s: &EmailSettings,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.smtp_host)
            .port(s.smtp_port)
            .timeout(Some(self.timeout));
        if s.security != Security::None {
            let mut tls = TlsParameters::builder(s.smtp_host.clone())
                .certificate_store(CertificateStore::WebpkiRoots);
            for root in &self.roots {
                tls = tls.add_root_certificate(root.clone());
            }
            let tls = tls
                .build_rustls()
                .map_err(|e| SendError::Retryable(format!("could not set up TLS: {e}")))?;
            builder = builder.tls(match s.security {
                Security::Tls => Tls::Wrapper(tls),
                _ => Tls::Required(tls),
            });
        }
        if let Some((user, password)) = &s.credentials {
            builder = builder
                .credentials(Credentials::new(user.clone(), password.clone()))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(builder.build())
    }
}

impl Default for EmailNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for EmailNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        parse(settings).map(|_| ())
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        // Settings were checked when the channel was saved; ones that no longer read are
        // the channel's fault, not this message's.
        let s = parse(settings).map_err(|e| SendError::Disabled(e.to_string()))?;
        let secrets: Vec<&str> = s
            .credentials
            .as_ref()
            .map(|(_, password)| vec![password.as_str()])
            .unwrap_or_default();
        let mail = email(&s, message, Utc::now())?;
        let transport = self.transport(&s)?;
        match tokio::time::timeout(self.timeout, transport.send(mail)).await {
            Err(_) => Err(SendError::Retryable(format!(
                "the SMTP delivery timed out after {:?}",
                self.timeout
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e, &secrets)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_are_one_address_and_nothing_else() {
        assert!(mailbox("ops@example.com").is_some());
        assert!(mailbox("<ops@example.com>").is_some());
        assert!(mailbox("Ops Team <ops@example.com>").is_some());
        assert!(mailbox("\"Ops, Team\" <ops@example.com>").is_some());
        assert!(mailbox("ops@example.com, dev@example.com").is_none());
        assert!(mailbox("ops@example.com trailing").is_none());
        assert!(mailbox("not an address").is_none());
        assert!(mailbox("ops@").is_none());
    }

    #[test]
    fn hosts_are_names_or_addresses() {
        assert!(is_host("smtp.example.com"));
        assert!(is_host("127.0.0.1"));
        assert!(is_host("::1"));
        assert!(!is_host("smtp://example.com"));
        assert!(!is_host("example.com:587"));
        assert!(!is_host("exa mple.com"));
        assert!(!is_host(""));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
