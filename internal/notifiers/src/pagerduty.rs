//! PagerDuty, through the Events API v2: alert events (`trigger`, `resolve`) and change
//! events.
//!
//! Docs: <https://developer.pagerduty.com/docs/events-api-v2/trigger-events/> (alert events,
//! limits), <https://developer.pagerduty.com/docs/events-api-v2/send-change-events/> (change
//! events), <https://developer.pagerduty.com/docs/events-api-v2/overview/> (answers, retries),
//! <https://developer.pagerduty.com/docs/events-api-v2/rate-limits/> (429).
//!
//! | Setting       | Required | Secret | Default                        |
//! |---------------|----------|--------|--------------------------------|
//! | `routing_key` | yes      | yes    |                                |
//! | `severity`    | no       | no     | `critical`                     |
//! | `api_url`     | no       | no     | `https://events.pagerduty.com` |
//!
//! `routing_key` is the 32-character Integration Key of an "Events API V2" integration on a
//! service (or of an event ruleset). `severity` (`critical`, `error`, `warning` or `info`) is
//! that of down alerts; a certificate about to expire is always `warning`. EU accounts may set
//! `api_url` to `https://events.eu.pagerduty.com`.
//!
//! PagerDuty deduplicates incidents itself, so this kind gets one event per monitor unless a
//! channel asks for storms to be grouped ([`Provider::groups_storms`] is false). What each
//! message becomes ([`payload`]), `POST {api_url}/v2/enqueue` unless said otherwise:
//!
//! | Message              | Event                                                                  |
//! |----------------------|------------------------------------------------------------------------|
//! | down                 | `trigger`, `dedup_key` = [`incident_key`]: `upwatch-{monitor id}-{incident start, Unix ms}`, the start being the alert's `at`; summary (the headline, at most 1024 characters), source (the monitor's target, never a push token), severity, timestamp, component (the monitor's name), `custom_details` ([`details`]), `client: "upwatch"` |
//! | recovery             | `resolve` with the same `dedup_key` (the incident start is its `down_since`) |
//! | reminder             | another `trigger` with the same `dedup_key` and the reminder's summary: PagerDuty adds it to the open alert's log without paging again, and opens a new alert if someone resolved it by hand while the monitor is still down |
//! | certificate expiry   | `trigger`, severity `warning`, `dedup_key` = `upwatch-cert-{monitor id}-{expiry, Unix s}` ([`certificate_key`]): one alert per certificate |
//! | storm, down          | one `trigger` summarising it (names in `custom_details`, the dashboard as `client_url`), `dedup_key` = `upwatch-storm-{first alert id}` |
//! | storm, recovery      | a change event (`POST {api_url}/v2/change/enqueue`): grouped recoveries cannot name the grouped down alert, so they are recorded on the service's timeline without paging; the storm's alert is resolved by a person |
//! | test                 | a change event: it reaches the service and shows the key works, without paging anyone or leaving an alert open |
//! | notice: unchecked    | `trigger`, severity `warning`, `dedup_key` = [`WATCHDOG_KEY`]          |
//! | notice: checked again| `resolve` of [`WATCHDOG_KEY`]                                          |
//!
//! Answers ([`classify`]) are `202 {"status": "success", "message": "Event processed",
//! "dedup_key": ...}`, or `{"status": ..., "message": ..., "errors": [...]}`:
//!
//! | Answer                                                                     | [`SendError`] |
//! |----------------------------------------------------------------------------|---------------|
//! | 400 whose `message` or `errors` name the routing key ("Invalid routing key", "Length of 'routing_key' is incorrect") | `Disabled` |
//! | any other 400 (an invalid event)                                           | `Rejected`    |
//! | 429                                                                        | `RateLimited`: the `Retry-After` header when there is one; PagerDuty documents none and suggests retrying 30 s apart, so [`RATE_LIMIT_WAIT`] otherwise |
//! | 401, 403, 404                                                              | `Disabled`    |
//! | 408, 5xx, network failure, timeout                                         | `Retryable`   |
//!
//! The routing key travels in the body; it is scrubbed out of every error text all the same.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use upwatch_core::watchdog::Notice;
use upwatch_core::{Alert, AlertKind};
use upwatch_notify::message::{target, time};
use upwatch_notify::{Message, Provider, SendError, Settings, SettingsError, Storm};

use crate::http::{self, Answer};

/// The kind's name.
pub const KIND: &str = "pagerduty";
/// The Events API's address.
pub const API_URL: &str = "https://events.pagerduty.com";
/// Longest summary, in characters.
pub const MAX_SUMMARY: usize = 1024;
/// Longest `dedup_key`, in characters.
pub const MAX_DEDUP_KEY: usize = 255;
/// Wait after a 429 without `Retry-After`: PagerDuty suggests retrying 30 seconds apart.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// The `dedup_key` of the watchdog's notices: "not checking" triggers it, "checking again"
/// resolves it.
pub const WATCHDOG_KEY: &str = "upwatch-watchdog";
/// The severities PagerDuty knows.
pub const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];
/// Who sends the events, as PagerDuty shows it.
pub const CLIENT: &str = "upwatch";

/// The settings that are secrets.
const SECRETS: &[&str] = &["routing_key"];
/// Every setting.
const SETTINGS: &[&str] = &["routing_key", "severity", "api_url"];

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Alert events: `/v2/enqueue`.
    Alerts,
    /// Change events: `/v2/change/enqueue`.
    Changes,
}

impl Endpoint {
    /// The path below `api_url`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Alerts => "/v2/enqueue",
            Endpoint::Changes => "/v2/change/enqueue",
        }
    }
}

/// One event: where it goes and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub endpoint: Endpoint,
    pub body: Value,
}

/// The key of the incident `alert` belongs to: `upwatch-{monitor id}-{start}`, the start
/// (Unix milliseconds) being a down alert's `at` and a recovery's or reminder's
/// `down_since` (its own `at` when that is unknown), so that a recovery resolves the alert
/// its down alert opened. Opsgenie's alias is the same.
pub fn incident_key(alert: &Alert) -> String {
    let start = match alert.kind {
        AlertKind::Down | AlertKind::CertificateExpiry => alert.at,
        AlertKind::Recovery | AlertKind::Reminder => alert.down_since.unwrap_or(alert.at),
    };
    format!("upwatch-{}-{}", alert.monitor_id, start.timestamp_millis())
}

/// The key of a certificate alert: `upwatch-cert-{monitor id}-{expiry, Unix seconds}`, one
/// per certificate.
pub fn certificate_key(alert: &Alert) -> String {
    let expires = alert.certificate_expires_at.unwrap_or(alert.at);
    format!("upwatch-cert-{}-{}", alert.monitor_id, expires.timestamp())
}

/// The key of a grouped storm: `upwatch-storm-{first alert id}`.
pub fn storm_key(storm: &Storm) -> String {
    match storm.alerts.first() {
        Some(a) => format!("upwatch-storm-{}", a.id),
        None => "upwatch-storm".to_string(),
    }
}

/// The key of `alert`'s event: [`certificate_key`] for a certificate alert,
/// [`incident_key`] otherwise.
pub fn dedup_key(alert: &Alert) -> String {
    match alert.kind {
        AlertKind::CertificateExpiry => certificate_key(alert),
        _ => incident_key(alert),
    }
}

/// The details of `message` as labelled text values (the same for Opsgenie): an alert's
/// lines (`Site`, `Status`, `Time`, `Error`, `Downtime`...) with its status code and
/// response time; a storm's start, names (`Monitors`, joined by `, `) and dashboard; the text
/// of a test or a notice.
pub fn details(message: &Message) -> Map<String, Value> {
    let mut map = Map::new();
    let mut put = |k: &str, v: String| {
        map.insert(k.to_string(), Value::String(v));
    };
    match message {
        Message::Alert(a) => {
            for line in message.lines() {
                if let Some((label, value)) = line.split_once(": ") {
                    put(label, value.to_string());
                }
            }
            if let Some(code) = a.status_code {
                put("Status code", code.to_string());
            }
            put("Response time", format!("{} ms", a.response_time_ms));
        }
        Message::Storm(s) => {
            put("Since", time(s.at()));
            put("Monitors", s.names().join(", "));
            if let Some(url) = &s.dashboard_url {
                put("Dashboard", url.clone());
            }
        }
        Message::Test | Message::Notice(_) => put("Text", message.lines().join("\n")),
    }
    map
}

/// `at` as PagerDuty's timestamp: RFC 3339 in UTC, with milliseconds.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The event announcing `message` with the channel's (validated) `settings`; see the
/// module's table.
pub fn payload(settings: &Value, message: &Message) -> Event {
    let s = Settings::lenient(settings);
    let key = s.text("routing_key");
    let severity = s
        .opt_choice("severity", SEVERITIES)
        .ok()
        .flatten()
        .unwrap_or("critical");
    let summary = || http::cut(&message.headline(), MAX_SUMMARY);
    let trigger = |dedup_key: String, severity: &str, source: &str, at: Option<DateTime<Utc>>| {
        let mut payload = json!({
            "summary": summary(),
            "source": source,
            "severity": severity,
        });
        if let Some(at) = at {
            payload["timestamp"] = json!(timestamp(at));
        }
        if let Message::Alert(a) = message {
            payload["component"] = json!(a.monitor_name);
        }
        payload["custom_details"] = Value::Object(details(message));
        json!({
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": http::cut(&dedup_key, MAX_DEDUP_KEY),
            "payload": payload,
            "client": CLIENT,
        })
    };
    let resolve = |dedup_key: String| {
        json!({
            "routing_key": key,
            "event_action": "resolve",
            "dedup_key": http::cut(&dedup_key, MAX_DEDUP_KEY),
        })
    };
    let change = |at: Option<DateTime<Utc>>, dashboard: Option<&str>| {
        let mut payload = json!({"summary": summary(), "source": CLIENT});
        if let Some(at) = at {
            payload["timestamp"] = json!(timestamp(at));
        }
        payload["custom_details"] = Value::Object(details(message));
        let mut body = json!({"routing_key": key, "payload": payload});
        if let Some(url) = dashboard {
            body["links"] = json!([{"href": url, "text": "upwatch dashboard"}]);
        }
        Event {
            endpoint: Endpoint::Changes,
            body,
        }
    };
    let alerts = |body| Event {
        endpoint: Endpoint::Alerts,
        body,
    };
    match message {
        Message::Alert(a) => alerts(match a.kind {
            AlertKind::Down | AlertKind::Reminder => {
                trigger(incident_key(a), severity, target(a), Some(a.at))
            }
            AlertKind::Recovery => resolve(incident_key(a)),
            AlertKind::CertificateExpiry => {
                trigger(certificate_key(a), "warning", target(a), Some(a.at))
            }
        }),
        Message::Storm(storm) if storm.kind == AlertKind::Recovery => {
            change(Some(storm.at()), storm.dashboard_url.as_deref())
        }
        Message::Storm(storm) => {
            let mut body = trigger(storm_key(storm), severity, CLIENT, Some(storm.at()));
            if let Some(url) = &storm.dashboard_url {
                body["client_url"] = json!(url);
            }
            alerts(body)
        }
        Message::Test => change(None, None),
        Message::Notice(notice) if notice.opens() => {
            alerts(trigger(notice_key(notice), "warning", CLIENT, None))
        }
        Message::Notice(notice) => alerts(resolve(notice_key(notice))),
    }
}

/// The dedup key of a notice about upwatch itself: [`WATCHDOG_KEY`] for the watchdog's, one
/// per region for a region's connectivity.
pub fn notice_key(notice: &Notice) -> String {
    match notice.topic().as_str() {
        "watchdog" => WATCHDOG_KEY.to_string(),
        topic => format!("upwatch-{topic}"),
    }
}

/// Whether an error answer names the routing key: the key is wrong for good.
fn names_the_routing_key(answer: &Answer) -> bool {
    let Some(json) = answer.json() else {
        return false;
    };
    let mut texts: Vec<String> = json
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(message) = json.get("message").and_then(Value::as_str) {
        texts.push(message.to_string());
    }
    texts.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("routing key") || t.contains("routing_key") || t.contains("integration key")
    })
}

/// Sorts PagerDuty's answer into a [`SendError`] (see the module's table); `secrets` are
/// scrubbed out of the texts.
pub fn classify(answer: &Answer, secrets: &[&str]) -> Result<(), SendError> {
    if answer.is_success() {
        return Ok(());
    }
    match answer.status {
        429 => Err(SendError::RateLimited {
            retry_after: match answer.retry_after_header.as_deref() {
                Some(h) if is_retry_after(h) => http::retry_after(b"", Some(h)),
                _ => RATE_LIMIT_WAIT,
            },
        }),
        400 if names_the_routing_key(answer) => Err(SendError::Disabled(answer.describe(secrets))),
        400 => Err(SendError::Rejected(answer.describe(secrets))),
        _ => answer.classify(secrets),
    }
}

/// Whether a `Retry-After` value reads: seconds or an HTTP date.
pub(crate) fn is_retry_after(header: &str) -> bool {
    let h = header.trim();
    h.parse::<f64>().is_ok_and(|s| s.is_finite() && s >= 0.0)
        || chrono::DateTime::parse_from_rfc2822(h).is_ok()
}

/// Sends events to PagerDuty (see the module's documentation).
#[derive(Debug, Clone)]
pub struct PagerDutyNotifier {
    client: reqwest::Client,
}

impl PagerDutyNotifier {
    /// Time allowed for one delivery, connection included.
    pub const TIMEOUT: Duration = http::TIMEOUT;

    /// A notifier with the default [`PagerDutyNotifier::TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(Self::TIMEOUT)
    }

    /// A notifier whose requests give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        PagerDutyNotifier {
            client: http::client(timeout),
        }
    }
}

impl Default for PagerDutyNotifier {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for PagerDutyNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn secrets(&self) -> &'static [&'static str] {
        SECRETS
    }

    fn validate(&self, settings: &Value) -> Result<(), SettingsError> {
        let s = Settings::of(settings)?;
        s.only(SETTINGS)?;
        let key = s.str("routing_key")?.trim();
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SettingsError::setting(
                "routing_key",
                "must be the 32-character Integration Key of an Events API V2 integration",
            ));
        }
        s.opt_choice("severity", SEVERITIES)?;
        s.opt_url("api_url")?;
        Ok(())
    }

    fn groups_storms(&self) -> bool {
        false
    }

    async fn send(&self, settings: &Value, message: &Message) -> Result<(), SendError> {
        let s = Settings::lenient(settings);
        let key = s.text("routing_key");
        let api = s.base_url("api_url", API_URL);
        let secrets = [key];
        let event = payload(settings, message);
        let request = self
            .client
            .post(format!("{api}{}", event.endpoint.path()))
            .json(&event.body);
        let answer = http::send(request, &secrets).await?;
        classify(&answer, &secrets)
    }
}
