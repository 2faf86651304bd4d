//! Opsgenie, through the Alert API (v2): alerts created, closed and noted by alias.
//!
//! Docs: <https://docs.opsgenie.com/docs/alert-api> (create, close, add note; fields and
//! limits; `identifierType`), <https://docs.opsgenie.com/docs/api-overview> (authentication,
//! answers), <https://docs.opsgenie.com/docs/api-rate-limiting> (429).
//!
//! | Setting    | Required | Secret | Default                    |
//! |------------|----------|--------|----------------------------|
//! | `api_key`  | yes      | yes    |                            |
//! | `priority` | no       | no     | `P1`                       |
//! | `api_url`  | no       | no     | `https://api.opsgenie.com` |
//!
//! `api_key` is the key of an "API" integration (Settings → Integrations), sent as
//! `Authorization: GenieKey <key>`. `priority` (`P1` to `P5`) is that of down alerts; a
//! certificate about to expire is `P3`, a test `P5`. EU accounts set `api_url` to
//! `https://api.eu.opsgenie.com`.
//!
//! Opsgenie deduplicates alerts by alias itself, so this kind gets one request per monitor
//! unless a channel asks for storms to be grouped ([`Provider::groups_storms`] is false).
//! What each message becomes ([`request`]; every request is a `POST` with a JSON body, and an
//! alias in a path is percent-encoded):
//!
//! | Message              | Request                                                               |
//! |----------------------|-----------------------------------------------------------------------|
//! | down                 | `/v2/alerts`: `message` (the headline, at most 130 characters), `alias` (PagerDuty's dedup key: `upwatch-{monitor id}-{incident start, Unix ms}`, see [`crate::pagerduty::incident_key`]; at most 512), `description` (the lines, at most 15000), `priority`, `source: "upwatch"`, `tags: ["upwatch"]`, `entity` (the monitor's name), `details` ([`crate::pagerduty::details`]) |
//! | recovery             | `/v2/alerts/{alias}/close?identifierType=alias`: `source`, `note` (the whole text) |
//! | reminder             | `/v2/alerts/{alias}/notes?identifierType=alias`: `source`, `note` ("still down for 1h 0m" and the lines): the open alert gets the news without a second alert or page |
//! | certificate expiry   | a `P3` alert with its own alias, `upwatch-cert-{monitor id}-{expiry, Unix s}` |
//! | storm, down          | one alert summarising it (names in the description and `details`), alias `upwatch-storm-{first alert id}` |
//! | storm, recovery      | one `P5` alert summarising it, same alias rule: grouped recoveries cannot name the grouped down alert, which a person closes |
//! | test                 | one `P5` alert, alias `upwatch-test-{random uuid}` (one alert per test, never merged with an earlier one), for a person to see and close |
//! | notice: unchecked    | a `P3` alert, alias [`crate::pagerduty::WATCHDOG_KEY`]               |
//! | notice: checked again| closes that alias, with the text as note                              |
//!
//! Answers ([`classify`]): Opsgenie processes requests asynchronously and answers `202
//! {"result": "Request will be processed", "took": ..., "requestId": ...}`; errors are
//! `{"message": ..., "took": ..., "requestId": ...}`:
//!
//! | Answer                                                      | [`SendError`] |
//! |-------------------------------------------------------------|---------------|
//! | 401, 403 (a wrong or revoked key, an integration without the right) | `Disabled` |
//! | 422 (a request it cannot process), 404 (no such alert), other 4xx | `Rejected`  |
//! | 429                                                         | `RateLimited`: the `Retry-After` header when there is one, else [`RATE_LIMIT_WAIT`] (Opsgenie documents none; its limits are per minute) |
//! | 408, 5xx, network failure, timeout                          | `Retryable`   |
//!
//! The key travels in a header; it is scrubbed out of every error text all the same.

use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use upwatch_core::AlertKind;
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError};
use uuid::Uuid;

use crate::http::{self, Answer};
use crate::pagerduty::{self, details};

/// The kind's name.
pub const KIND: &str = "opsgenie";
/// The Alert API's address (EU accounts: `https://api.eu.opsgenie.com`).
pub const API_URL: &str = "https://api.opsgenie.com";
/// Longest alert message, in characters.
pub const MAX_MESSAGE: usize = 130;
/// Longest alias, in characters.
pub const MAX_ALIAS: usize = 512;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 15000;
/// Longest entity, in characters.
pub const MAX_ENTITY: usize = 512;
/// Longest note, in characters.
pub const MAX_NOTE: usize = 25000;
/// Longest detail value kept, in characters (Opsgenie bounds the details together).
pub const MAX_DETAIL: usize = 1000;
/// Wait after a 429 without `Retry-After`.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// The priorities Opsgenie knows.
pub const PRIORITIES: &[&str] = &["P1", "P2", "P3", "P4", "P5"];
/// The source of every request, as Opsgenie shows it.
pub const SOURCE: &str = "upwatch";

/// The settings that are secrets.
const SECRETS: &[&str] = &["api_key"];
/// Every setting.
const SETTINGS: &[&str] = &["api_key", "priority", "api_url"];
/// What is percent-encoded in a path segment: all but the unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One request: its path below `api_url` (with its query, if any) and its JSON body; always
/// a `POST`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub path: String,
    pub body: Value,
}

/// The path of `action` (`close`, `notes`) on the alert of `alias`.
fn by_alias(alias: &str, action: &str) -> String {
    format!(
        "/v2/alerts/{}/{action}?identifierType=alias",
        utf8_percent_encode(&http::cut(alias, MAX_ALIAS), SEGMENT)
    )
}

/// The request for `message` with the channel's (validated) `settings`; see the module's
/// table. A test's alias is random, everything else follows from the message.
pub fn request(settings: &Value, message: &Message) -> Call {
    let s = Settings::lenient(settings);
    let priority = s
        .opt_choice("priority", PRIORITIES)
        .ok()
        .flatten()
        .unwrap_or("P1");
    let create = |alias: String, priority: &str| {
        let mut details = details(message);
        for value in details.values_mut() {
            if let Value::String(text) = value {
                *text = http::cut(text, MAX_DETAIL);
            }
        }
        let mut body = json!({
            "message": http::cut(&message.headline(), MAX_MESSAGE),
            "alias": http::cut(&alias, MAX_ALIAS),
            "description": http::cut(&message.lines().join("\n"), MAX_DESCRIPTION),
            "priority": priority,
            "source": SOURCE,
            "tags": [SOURCE],
        });
        if let Message::Alert(a) = message {
            body["entity"] = json!(http::cut(&a.monitor_name, MAX_ENTITY));
        }
        body["details"] = Value::Object(details);
        Call {
            path: "/v2/alerts".into(),
            body,
        }
    };
    let note = |alias: String, action: &str| Call {
        path: by_alias(&alias, action),
        body: json!({"source": SOURCE, "note": http::cut(&message.text(), MAX_NOTE)}),
    };
    match message {
        Message::Alert(a) => match a.kind {
            AlertKind::Down => create(pagerduty::incident_key(a), priority),
            AlertKind::Recovery => note(pagerduty::incident_key(a), "close"),
            AlertKind::Reminder => note(pagerduty::incident_key(a), "notes"),
            AlertKind::CertificateExpiry => create(pagerduty::certificate_key(a), "P3"),
        },
        Message::Storm(storm) if storm.kind == AlertKind::Recovery => {
            create(pagerduty::storm_key(storm), "P5")
        }
        Message::Storm(storm) => create(pagerduty::storm_key(storm), priority),
        Message::Test => create(format!("upwatch-test-{}", Uuid::new_v4()), "P5"),
        Message::Notice(notice) if notice.opens() => create(pagerduty::notice_key(notice), "P3"),
        Message::Notice(notice) => note(pagerduty::notice_key(notice), "close"),
    }
}

/// Sorts Opsgenie's answer into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the texts.
pub fn classify(answer: &Answer, secrets: &[&str]) -> Result<(), SendError> {
    if answer.is_success() {
        return Ok(());
    }
    Err(match answer.status {
        429 => SendError::RateLimited {
            retry_after: match answer.retry_after_header.as_deref() {
                Some(h) if pagerduty::is_retry_after(h) => http::retry_after(b"", Some(h)),
                _ => RATE_LIMIT_WAIT,
            },
        },
        401 | 403 => SendError::Disabled(answer.describe(secrets)),
        408 | 500..=599 => SendError::Retryable(answer.describe(secrets)),
        _ => SendError::Rejected(answer.describe(secrets)),
    })
}

/// Sends alerts to Opsgenie (see the module's documentation).
#[derive(Debug, Clone)]
pub struct OpsgenieNotifier {
    client: reqwest::Client,
}

impl OpsgenieNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`OpsgenieNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        OpsgenieNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for OpsgenieNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for OpsgenieNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        let key = s.str("api_key")?.trim();
        if key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SettingsError::setting(
                "api_key",
                "must be the API key of an Opsgenie API integration (no spaces)",
            ));
        }
        s.opt_choice("priority", PRIORITIES)?;
        s.opt_url("api_url")?;
        Ok(())
    }

    fn groups_storms(&self) -> bool {
        false
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let key = s.text("api_key");
        let api = s.base_url("api_url", API_URL);
        let secrets = [key];
        let call = request(settings, message);
        let builder = self
            .client
            .post(format!("{api}{}", call.path))
            .header(reqwest::header::AUTHORIZATION, format!("GenieKey {key}"))
            .json(&call.body);
        let answer = http::send(builder, &secrets).await?;
        classify(&answer, &secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_is_percent_encoded_in_the_path() {
        assert_eq!(
            by_alias("upwatch-a/b c?d#é", "close"),
            "/v2/alerts/upwatch-a%2Fb%20c%3Fd%23%C3%A9/close?identifierType=alias"
        );
    }
}
