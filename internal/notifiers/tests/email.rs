//! The email notifier: its exact subject and parts, and real SMTP deliveries to a loopback
//! receiver (plain, STARTTLS with AUTH, implicit TLS), with the server's refusals sorted into
//! `SendError`s. This is email's part of the contract `contract.rs` holds over the HTTP
//! kinds: a test message arrives; a transient refusal is `Retryable`; refused credentials
//! are `Disabled` without the password.

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{json, Value};
use upwatch_core::{Alert, AlertKind, Webhook};
use upwatch_notifiers::email::{self, EmailNotifier, REFUSED_CREDENTIALS};
use upwatch_notifiers::Channels;
use upwatch_notify::{Message, Notifier, Provider, SendError, Storm};
use upwatch_testkit::alerts::{down, recovery, reminder, storm_alerts};
use upwatch_testkit::smtp::{Mail, Security, SmtpReceiver, Stage};
use upwatch_testkit::tls::closed_port;

const WAIT: Duration = Duration::from_secs(10);
const USER: &str = "upwatch";
const PASSWORD: &str = "sm7p-pa55w0rd-s3cret";

/// A channel's settings for `rx` with `security`, without AUTH.
fn settings(rx: &SmtpReceiver, security: &str) -> Value {
    json!({
        "smtp_host": rx.host(),
        "smtp_port": rx.port(),
        "security": security,
        "from": "upwatch <alerts@example.com>",
        "to": ["ops@example.com", "Dev Team <dev@example.com>"],
    })
}

/// The same, with the receiver's credentials.
fn with_auth(mut settings: Value, password: &str) -> Value {
    settings["username"] = json!(USER);
    settings["password"] = json!(password);
    settings
}

fn storm() -> Message {
    Message::Storm(Storm {
        kind: AlertKind::Down,
        alerts: storm_alerts(30),
        dashboard_url: Some("https://status.example.com/?a=1&b=2".into()),
    })
}

/// A notifier that trusts the receiver's CA.
fn notifier() -> EmailNotifier {
    EmailNotifier::with_timeout(WAIT)
        .with_root_certificates(&SmtpReceiver::ca_pem())
        .expect("the receiver's CA is a PEM certificate")
}

/// CRLF line ends as LF, to compare decoded parts with the wording.
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[test]
fn subject_text_and_html_are_exact() {
    let m = Message::Alert(down());
    assert_eq!(email::subject(&m), "🔴 My Website is down");
    assert_eq!(
        email::text(&m),
        "🔴 My Website is down\nSite: My Website (https://example.com)\nStatus: DOWN\n\
         Time: 2024-01-16 20:00:00 UTC\nError: status_mismatch: got HTTP 500, expected 200"
    );
    assert_eq!(
        email::html(&m),
        "<!DOCTYPE html>\n<html>\n<body>\n<h2>🔴 My Website is down</h2>\n<ul>\n\
         <li>Site: My Website (https://example.com)</li>\n<li>Status: DOWN</li>\n\
         <li>Time: 2024-01-16 20:00:00 UTC</li>\n\
         <li>Error: status_mismatch: got HTTP 500, expected 200</li>\n</ul>\n</body>\n</html>\n"
    );

    let r = Message::Alert(recovery());
    assert_eq!(email::subject(&r), "🟢 My Website is up again");
    assert!(email::html(&r).contains("<li>Downtime: 5m 0s</li>\n"));

    let reminder = Message::Alert(reminder());
    assert_eq!(
        email::subject(&reminder),
        "🔴 My Website is still down for 1h 0m"
    );
    assert!(email::text(&reminder).ends_with("\nDown for: 1h 0m"));

    assert_eq!(email::subject(&Message::Test), "✅ upwatch test message");
    assert_eq!(
        email::html(&Message::Test),
        "<!DOCTYPE html>\n<html>\n<body>\n<h2>✅ upwatch test message</h2>\n<ul>\n\
         <li>This channel receives upwatch&#39;s down and recovery alerts.</li>\n</ul>\n\
         </body>\n</html>\n"
    );
}

#[test]
fn a_storm_lists_its_names_and_links_the_dashboard() {
    let m = storm();
    assert_eq!(email::subject(&m), "🔴 30 monitors are down");
    let html = email::html(&m);
    let mut expected = String::from(
        "<!DOCTYPE html>\n<html>\n<body>\n<h2>🔴 30 monitors are down</h2>\n\
         <p>Since: 2024-01-16 20:00:00 UTC</p>\n<ul>\n",
    );
    for i in 0..25 {
        expected.push_str(&format!("<li>site-{i:02}</li>\n"));
    }
    expected.push_str(
        "<li>and 5 more</li>\n</ul>\n\
         <p><a href=\"https://status.example.com/?a=1&amp;b=2\">Open the dashboard</a></p>\n\
         </body>\n</html>\n",
    );
    assert_eq!(html, expected);
    let text = email::text(&m);
    assert!(text.contains("\n• site-24\n• and 5 more\n"), "{text}");
    assert!(text.ends_with("Dashboard: https://status.example.com/?a=1&b=2"));
}

#[test]
fn a_subject_stays_on_one_line() {
    let m = Message::Alert(Alert {
        monitor_name: "evil\r\nBcc: victim@example.com".into(),
        ..down()
    });
    assert_eq!(
        email::subject(&m),
        "🔴 evil  Bcc: victim@example.com is down"
    );
}

/// The one mail `rx` got, parsed, checked against `message` the way every delivery must
/// look: envelope, headers, both parts.
fn check_mail(mail: &Mail, message: &Message) {
    assert_eq!(mail.from, "alerts@example.com");
    assert_eq!(mail.to, ["ops@example.com", "dev@example.com"]);
    let parsed = MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("the mail parses");
    assert_eq!(parsed.subject(), Some(email::subject(message).as_str()));
    let from = parsed.from().and_then(|a| a.first()).unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("upwatch"), Some("alerts@example.com"))
    );
    let to: Vec<(Option<&str>, Option<&str>)> = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| (a.name(), a.address()))
        .collect();
    assert_eq!(
        to,
        [
            (None, Some("ops@example.com")),
            (Some("Dev Team"), Some("dev@example.com"))
        ]
    );
    assert!(parsed.date().is_some(), "a Date header");
    assert!(parsed
        .message_id()
        .is_some_and(|id| id.ends_with("@example.com")));
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    let top = parsed.content_type().unwrap();
    assert_eq!(
        (top.ctype(), top.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!((parsed.text_body_count(), parsed.html_body_count()), (1, 1));
    let text_part = parsed.text_part(0).unwrap().content_type().unwrap();
    assert_eq!(text_part.subtype(), Some("plain"));
    let html_part = parsed.html_part(0).unwrap().content_type().unwrap();
    assert_eq!(html_part.subtype(), Some("html"));
    assert_eq!(lf(&parsed.body_text(0).unwrap()), email::text(message));
    assert_eq!(lf(&parsed.body_html(0).unwrap()), email::html(message));
}

#[tokio::test]
async fn a_down_alert_arrives_in_plain_text_with_both_parts_escaped() {
    let rx = SmtpReceiver::start(Security::Plain).await;
    let alert = Alert {
        monitor_name: "<b>x</b>".into(),
        ..down()
    };
    let message = Message::Alert(alert.clone());
    let settings = settings(&rx, "none");
    let provider = notifier();
    provider.validate(&settings).unwrap();
    assert_eq!(provider.send(&settings, &message).await, Ok(()));

    let mails = rx.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(!mail.tls);
    assert_eq!(mail.authenticated_as, None);
    check_mail(mail, &message);

    let parsed = MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    assert_eq!(parsed.subject(), Some("🔴 <b>x</b> is down"));
    assert_eq!(
        parsed.message_id(),
        Some(format!("upwatch.{}@example.com", alert.id).as_str())
    );
    let text = lf(&parsed.body_text(0).unwrap());
    assert!(
        text.starts_with("🔴 <b>x</b> is down\nSite: <b>x</b> (https://example.com)\n"),
        "{text}"
    );
    let html = parsed.body_html(0).unwrap();
    assert!(
        html.contains("<h2>🔴 &lt;b&gt;x&lt;/b&gt; is down</h2>"),
        "{html}"
    );
    assert!(!html.contains("<b>x</b>"), "{html}");
    assert_eq!(
        rx.commands(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    );
}

#[tokio::test]
async fn starttls_with_auth_upgrades_before_authenticating() {
    let rx = SmtpReceiver::start_with_credentials(Security::StartTls, USER, PASSWORD).await;
    let settings = with_auth(settings(&rx, "starttls"), PASSWORD);
    let message = Message::Alert(recovery());
    assert_eq!(notifier().send(&settings, &message).await, Ok(()));

    let mails = rx.wait_for(1, WAIT).await;
    assert!(mails[0].tls, "the mail came over TLS");
    assert_eq!(mails[0].authenticated_as.as_deref(), Some(USER));
    check_mail(&mails[0], &message);
    assert_eq!(
        rx.commands()[..7],
        [
            "EHLO",
            "STARTTLS",
            "EHLO",
            "AUTH PLAIN",
            "MAIL",
            "RCPT",
            "RCPT"
        ]
    );
}

#[tokio::test]
async fn implicit_tls_speaks_tls_from_the_first_byte() {
    let rx = SmtpReceiver::start(Security::Tls).await;
    let message = storm();
    assert_eq!(
        notifier().send(&settings(&rx, "tls"), &message).await,
        Ok(())
    );
    let mails = rx.wait_for(1, WAIT).await;
    assert!(mails[0].tls);
    check_mail(&mails[0], &message);
    assert_eq!(rx.commands()[0], "EHLO", "no STARTTLS: TLS from the start");
}

#[tokio::test]
async fn an_untrusted_certificate_is_retryable_with_the_reason() {
    let rx = SmtpReceiver::start(Security::StartTls).await;
    // The bundled web roots only: the receiver's CA is unknown.
    let outcome = EmailNotifier::with_timeout(WAIT)
        .send(&settings(&rx, "starttls"), &Message::Test)
        .await;
    match outcome {
        Err(SendError::Retryable(text)) => {
            assert!(
                text.starts_with("TLS with the SMTP server failed"),
                "{text}"
            );
            assert!(text.contains("certificate"), "{text}");
        }
        other => panic!("expected a retryable TLS failure, got {other:?}"),
    }
    assert!(rx.mails().is_empty());
}

#[tokio::test]
async fn a_server_without_starttls_is_never_used_in_plain_text() {
    let rx = SmtpReceiver::start(Security::Plain).await;
    let outcome = notifier()
        .send(&settings(&rx, "starttls"), &Message::Test)
        .await;
    assert!(
        matches!(&outcome, Err(SendError::Retryable(t)) if t.contains("STARTTLS")),
        "{outcome:?}"
    );
    assert!(!rx.commands().contains(&"MAIL".to_string()));
}

#[tokio::test]
async fn transient_replies_are_retryable() {
    let rx = SmtpReceiver::start(Security::Plain).await;
    let settings = settings(&rx, "none");
    rx.reply(Stage::Mail, "451 4.3.0 try again");
    match notifier().send(&settings, &Message::Test).await {
        Err(SendError::Retryable(text)) => {
            assert_eq!(text, "the SMTP server answered 451 4.3.0 try again")
        }
        other => panic!("a 451 is Retryable, got {other:?}"),
    }
    rx.reply(Stage::Mail, "421 4.7.0 too many connections, closing");
    assert!(matches!(
        notifier().send(&settings, &Message::Test).await,
        Err(SendError::Retryable(t)) if t.contains("421")
    ));
    assert!(rx.mails().is_empty());
    // The next attempt goes through.
    assert_eq!(notifier().send(&settings, &Message::Test).await, Ok(()));
    assert_eq!(rx.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn an_unknown_recipient_rejects_the_message() {
    let rx = SmtpReceiver::start(Security::Plain).await;
    rx.reply(Stage::Rcpt, "550 5.1.1 no such user");
    match notifier()
        .send(&settings(&rx, "none"), &Message::Test)
        .await
    {
        Err(SendError::Rejected(text)) => {
            assert_eq!(
                text,
                "the SMTP server refused the mail: 550 5.1.1 no such user"
            )
        }
        other => panic!("a 550 on a recipient is Rejected, got {other:?}"),
    }
    assert!(rx.mails().is_empty());
}

#[tokio::test]
async fn refused_credentials_disable_the_channel_without_the_password() {
    let rx = SmtpReceiver::start_with_credentials(Security::StartTls, USER, PASSWORD).await;
    let wrong = "wr0ng-pa55w0rd-s3cret";
    let settings = with_auth(settings(&rx, "starttls"), wrong);
    match notifier().send(&settings, &Message::Test).await {
        Err(SendError::Disabled(reason)) => {
            assert!(reason.starts_with(REFUSED_CREDENTIALS), "{reason}");
            assert!(reason.contains("535"), "{reason}");
            assert!(!reason.contains(wrong), "{reason}");
            assert!(!reason.contains(PASSWORD), "{reason}");
        }
        other => panic!("a 535 is Disabled, got {other:?}"),
    }
    // A scripted 535 to the right password says the same.
    rx.reply(Stage::Auth, "535 5.7.8 Authentication credentials invalid");
    let right = with_auth(self::settings(&rx, "starttls"), PASSWORD);
    assert!(matches!(
        notifier().send(&right, &Message::Test).await,
        Err(SendError::Disabled(r)) if r.starts_with(REFUSED_CREDENTIALS) && !r.contains(PASSWORD)
    ));
    assert!(rx.mails().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let settings = json!({
        "smtp_host": "127.0.0.1", "smtp_port": closed_port(), "security": "none",
        "from": "alerts@example.com", "to": "ops@example.com",
        "username": USER, "password": PASSWORD,
    });
    match notifier().send(&settings, &Message::Test).await {
        Err(SendError::Retryable(text)) => {
            assert!(text.starts_with("could not deliver over SMTP"), "{text}");
            assert!(!text.contains(PASSWORD), "{text}");
        }
        other => panic!("a refused connection is Retryable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_test_message_arrives_through_the_channels() {
    let rx = SmtpReceiver::start(Security::Plain).await;
    let channels = Channels::all(WAIT);
    let settings = settings(&rx, "none");
    channels.validate("email", &settings).unwrap();
    let channel = Webhook {
        name: "mail".into(),
        enabled: true,
        kind: "email".into(),
        settings,
        ..Webhook::default()
    };
    assert_eq!(channels.send(&channel, &Message::Test).await, Ok(()));
    let mails = rx.wait_for(1, WAIT).await;
    check_mail(&mails[0], &Message::Test);
    // The password is a secret: redacted in responses.
    let redacted = channels.redact(
        "email",
        &json!({"password": PASSWORD, "username": USER, "smtp_host": "smtp.example.com"}),
    );
    assert_eq!(redacted["username"], USER);
    assert_ne!(redacted["password"], PASSWORD);
}

#[test]
fn validate_names_the_bad_setting() {
    let p = EmailNotifier::new();
    let valid = json!({
        "smtp_host": "smtp.example.com", "smtp_port": 587, "security": "starttls",
        "username": "upwatch", "password": PASSWORD,
        "from": "upwatch <alerts@example.com>", "to": ["ops@example.com", "Dev <dev@example.com>"],
    });
    p.validate(&valid).unwrap();
    p.validate(&json!({"smtp_host": "10.0.0.5", "from": "a@example.com", "to": "b@example.com"}))
        .unwrap();
    let field = |v: Value| p.validate(&v).unwrap_err().field;
    let with = |name: &str, value: Value| {
        let mut v = valid.clone();
        v[name] = value;
        v
    };
    let without = |name: &str| {
        let mut v = valid.clone();
        v.as_object_mut().unwrap().remove(name);
        v
    };
    assert_eq!(
        field(with("to", json!(["ops@example.com", "not an address"]))),
        "settings.to[1]"
    );
    assert_eq!(field(with("to", json!([]))), "settings.to");
    assert_eq!(field(without("to")), "settings.to");
    assert_eq!(field(with("security", json!("ssl"))), "settings.security");
    assert_eq!(field(without("password")), "settings.password");
    assert_eq!(field(without("username")), "settings.username");
    assert_eq!(field(without("smtp_host")), "settings.smtp_host");
    assert_eq!(
        field(with("smtp_host", json!("smtp://example.com"))),
        "settings.smtp_host"
    );
    assert_eq!(field(with("smtp_port", json!(0))), "settings.smtp_port");
    assert_eq!(field(with("smtp_port", json!(65536))), "settings.smtp_port");
    assert_eq!(
        field(with("from", json!("alerts at example"))),
        "settings.from"
    );
    assert_eq!(field(without("from")), "settings.from");
    assert_eq!(field(with("cc", json!("x@example.com"))), "settings.cc");
    // Errors never repeat a value.
    let e = p
        .validate(&with("to", json!(["ops@example.com", PASSWORD])))
        .unwrap_err();
    assert!(!e.to_string().contains(PASSWORD), "{e}");
    assert_eq!(p.secrets(), ["password"]);
}

#[test]
fn the_port_follows_the_security() {
    let port = |security: &str| {
        email::parse(
            &json!({"smtp_host": "smtp.example.com", "security": security,
            "from": "a@example.com", "to": "b@example.com"}),
        )
        .unwrap()
        .smtp_port
    };
    assert_eq!(
        (port("none"), port("starttls"), port("tls")),
        (25, 587, 465)
    );
    let default = email::parse(&json!({"smtp_host": "smtp.example.com",
        "from": "a@example.com", "to": "b@example.com"}))
    .unwrap();
    assert_eq!(
        (default.security, default.smtp_port),
        (email::Security::StartTls, 587)
    );
}
