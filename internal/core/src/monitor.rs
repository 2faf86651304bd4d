//! A monitor: what to check, how often, and what counts as up.
//!
//! Validation and defaults live next to the type so that the API, the importer and the
//! `SITES_TO_MONITOR` seeding all accept and refuse exactly the same things, with errors that
//! name the field.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::condition::Condition;
use crate::expected::{ExpectedStatus, StatusMatcher};
use crate::observation::{CheckType, DnsQuery, DnsQueryType, Starttls};

/// Default check interval: five minutes, as most hosted monitors offer on their free tier.
pub const DEFAULT_INTERVAL_SECONDS: u32 = 300;
/// Default per-check timeout.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 10;
/// The longest interval accepted: one day.
pub const MAX_INTERVAL_SECONDS: u32 = 86_400;
/// The longest timeout accepted, whatever the interval.
pub const MAX_TIMEOUT_SECONDS: u32 = 300;
/// The most consecutive results a threshold may ask for.
pub const MAX_THRESHOLD: u32 = 100;
/// The shortest reminder interval accepted (one minute).
pub const MIN_REMINDER_SECONDS: u32 = 60;
/// The longest reminder interval accepted (a week).
pub const MAX_REMINDER_SECONDS: u32 = 7 * 86_400;
/// The longest group name accepted, in characters.
pub const MAX_GROUP_CHARS: usize = 100;
/// Echo requests an ICMP check sends unless told otherwise.
pub const DEFAULT_PACKETS: u32 = 3;
/// The most echo requests one ICMP check may send.
pub const MAX_PACKETS: u32 = 20;
/// Seconds a push monitor waits past its interval before it counts a heartbeat as missed.
pub const DEFAULT_PUSH_GRACE_SECONDS: u32 = 30;
/// The most conditions one monitor may have.
pub const MAX_CONDITIONS: usize = 32;
/// Where the API takes pushes: `{PUSH_PATH}/{token}`.
pub const PUSH_PATH: &str = "/api/v1/push";
/// HTTP methods a check may use.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A monitored URL with its check settings, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": "0190f5a4-6a47-7c1e-9a8b-3c2d1e0f9a7b", "name": "Example", "url": "https://example.com/",
    "method": "GET", "headers": {}, "body": null, "expected_status_codes": [200], "keyword": null,
    "interval_seconds": 60, "timeout_seconds": 10, "follow_redirects": true,
    "failure_threshold": 1, "success_threshold": 1, "enabled": true, "notifier_ids": [],
    "public": false, "group": null,
    "created_at": "2026-11-27T12:00:00Z", "updated_at": "2026-11-27T12:00:00Z"
}))]
pub struct Monitor {
    /// Stable identifier (UUIDv7, so ids sort by creation time).
    pub id: Uuid,
    /// Human name used in alerts and listings.
    pub name: String,
    /// What to check; its scheme selects the check type: `https://example.com/health`,
    /// `tcp://db.example.com:5432`, `tls://mail.example.com:465`, `icmp://example.com`,
    /// `dns://1.1.1.1:53` (with `dns`), or `push://<token>` for a push monitor (made by
    /// upwatch when a monitor is created with `"type": "push"` and no URL).
    pub url: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Request body, sent as is.
    pub body: Option<String>,
    /// Status codes that count as up.
    pub expected_status_codes: ExpectedStatus,
    /// Text the response body must contain (within the bounded prefix that is read).
    pub keyword: Option<String>,
    /// Seconds between the starts of two checks.
    pub interval_seconds: u32,
    /// Seconds a check may take before it fails as a timeout.
    pub timeout_seconds: u32,
    /// Whether redirects are followed (a bounded number of hops).
    pub follow_redirects: bool,
    /// Consecutive failures before the monitor is DOWN.
    pub failure_threshold: u32,
    /// Consecutive successes before a DOWN monitor is UP again.
    pub success_threshold: u32,
    /// False pauses the monitor: no checks, status `paused`.
    pub enabled: bool,
    /// The notifiers (channels) that receive this monitor's alerts; empty means its group's
    /// or else the default ones. Accepted as `webhook_ids` too (its earlier name).
    #[serde(alias = "webhook_ids")]
    pub notifier_ids: Vec<Uuid>,
    /// While down, a reminder every this many seconds on every channel, instead of the
    /// channels' own `reminder_interval_seconds`; 0 switches reminders off for this monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_interval_seconds: Option<u32>,
    /// Whether the public status page shows this monitor (its name, status and uptime only).
    /// Monitors stored before the field existed read as not public.
    #[serde(default)]
    pub public: bool,
    /// The group the dashboard and status page list this monitor under; ungrouped when
    /// `None`.
    #[serde(default)]
    pub group: Option<String>,
    /// The check type, selected by the URL's scheme (`push` for push monitors).
    #[serde(rename = "type", default)]
    pub check_type: CheckType,
    /// Conditions that must all hold for the check to be up, Gatus-style
    /// (`[BODY].status == UP`).
    #[serde(default)]
    pub conditions: Vec<String>,
    /// The query of a `dns://` monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsQuery>,
    /// Echo requests per check of an `icmp://` monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    /// Accept any certificate (unsafe: a TLS check then proves only that something answers).
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// For `tls://` monitors of servers that upgrade a plain connection: `smtp`, `imap` or
    /// `postgres`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<Starttls>,
    /// Days before the certificate's expiry at which an alert says so; the global setting
    /// (`UPWATCH_CERT_EXPIRY_ALERT_DAYS`, default 14, 7, 1) when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expiry_alert_days: Option<Vec<u32>>,
    /// Seconds past the interval that a push monitor waits for a push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_grace_seconds: Option<u32>,
    /// Where the monitored job reports in (`GET` or `POST`), for push monitors: a path on
    /// upwatch's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_url: Option<String>,
    /// The regions whose workers check this monitor; all of them (`UPWATCH_REGIONS`) when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// How many of its regions must see the monitor down for it to be down; a majority of
    /// them when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// A proxy for this monitor's HTTP checks (`http://`, `https://` or `socks5://`), in
    /// place of the worker's `UPWATCH_CHECK_PROXY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A field that failed validation, and why, in words for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The JSON field (or configuration key) at fault.
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}` {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}

/// What a client sends to create a monitor; every field but `url` has a default.
///
/// Unknown fields are refused so that a typo (`intervall_seconds`) is an error rather than a
/// silently ignored setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/health", "name": "Example", "interval_seconds": 60}))]
pub struct MonitorInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_status_codes: Option<ExpectedStatus>,
    /// The seeds' single-code shorthand for `expected_status_codes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_status_code: Option<StatusMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(
        default,
        alias = "webhook_ids",
        skip_serializing_if = "Option::is_none"
    )]
    pub notifier_ids: Option<Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_interval_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The check type; only needed for `push`, which has no URL (the URL's scheme says the
    /// others, and a type given with a URL must agree with it).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub check_type: Option<CheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsQuery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<Starttls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expiry_alert_days: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_grace_seconds: Option<u32>,
    /// The regions that check this monitor (default: all of `UPWATCH_REGIONS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// How many regions must see it down (default: a majority of its regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// A proxy for HTTP checks: `http://`, `https://` or `socks5://host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

impl MonitorInput {
    /// An input that only names a URL, as `SITES_TO_MONITOR` and `upwatch check` give.
    pub fn for_url(url: impl Into<String>) -> Self {
        MonitorInput {
            url: Some(url.into()),
            ..MonitorInput::default()
        }
    }

    /// Applies defaults and validation, giving a monitor with the given identity and times.
    pub fn into_monitor(
        self,
        id: Uuid,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Result<Monitor, ValidationError> {
        let (check_type, url) = validate_target(self.check_type, self.url.as_deref())?;
        let typed = TypedSettings::validate(check_type, &url, &self)?;
        let name = match self.name.clone() {
            Some(name) => {
                let name = name.trim().to_string();
                if name.is_empty() {
                    return Err(ValidationError::new("name", "must not be empty"));
                }
                if name.chars().count() > 200 {
                    return Err(ValidationError::new(
                        "name",
                        "must be at most 200 characters",
                    ));
                }
                name
            }
            None => default_name(&url),
        };
        let method = match self.method.clone() {
            Some(m) => {
                let upper = m.trim().to_ascii_uppercase();
                if !METHODS.contains(&upper.as_str()) {
                    return Err(ValidationError::new(
                        "method",
                        format!("must be one of {}, not `{m}`", METHODS.join(", ")),
                    ));
                }
                upper
            }
            None => "GET".to_string(),
        };
        let headers = self.headers.clone().unwrap_or_default();
        for (name, value) in &headers {
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                return Err(ValidationError::new(
                    "headers",
                    format!("`{name}` is not a valid HTTP header name"),
                ));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(ValidationError::new(
                    "headers",
                    format!("the value of `{name}` must not contain line breaks"),
                ));
            }
        }
        if self.body.as_ref().is_some_and(|b| b.len() > 65_536) {
            return Err(ValidationError::new("body", "must be at most 64 KiB"));
        }
        let expected_status_codes = match (
            self.expected_status_codes.clone(),
            self.expected_status_code,
        ) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "expected_status_code",
                    "cannot be given together with `expected_status_codes`",
                ))
            }
            (Some(list), None) => {
                if list.0.is_empty() {
                    return Err(ValidationError::new(
                        "expected_status_codes",
                        "must list at least one code or range",
                    ));
                }
                list
            }
            (None, Some(one)) => ExpectedStatus(vec![one]),
            (None, None) => ExpectedStatus::default(),
        };
        let keyword = self.keyword.clone().filter(|k| !k.is_empty());
        if keyword.as_ref().is_some_and(|k| k.len() > 1024) {
            return Err(ValidationError::new(
                "keyword",
                "must be at most 1024 bytes",
            ));
        }
        let interval_seconds = self.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS);
        if !(1..=MAX_INTERVAL_SECONDS).contains(&interval_seconds) {
            return Err(ValidationError::new(
                "interval_seconds",
                format!(
                    "must be between 1 and {MAX_INTERVAL_SECONDS} seconds, not {interval_seconds}"
                ),
            ));
        }
        let timeout_seconds = self
            .timeout_seconds
            .unwrap_or_else(|| DEFAULT_TIMEOUT_SECONDS.min(interval_seconds));
        if timeout_seconds == 0 || timeout_seconds > MAX_TIMEOUT_SECONDS {
            return Err(ValidationError::new(
                "timeout_seconds",
                format!(
                    "must be between 1 and {MAX_TIMEOUT_SECONDS} seconds, not {timeout_seconds}"
                ),
            ));
        }
        if timeout_seconds > interval_seconds {
            return Err(ValidationError::new(
                "timeout_seconds",
                format!(
                    "must not be above `interval_seconds` ({timeout_seconds} > {interval_seconds}), \
                     or two checks of one site would overlap"
                ),
            ));
        }
        let failure_threshold = threshold("failure_threshold", self.failure_threshold)?;
        let success_threshold = threshold("success_threshold", self.success_threshold)?;
        let group = validate_group(self.group.clone())?;
        let mut notifier_ids = self.notifier_ids.clone().unwrap_or_default();
        notifier_ids.sort();
        notifier_ids.dedup();
        let (regions, quorum) = validate_regions(
            check_type,
            self.regions.clone().unwrap_or_default(),
            self.quorum,
        )?;
        let proxy = validate_proxy(check_type, self.proxy.clone())?;
        Ok(Monitor {
            id,
            name,
            url,
            method,
            headers,
            body: self.body.clone(),
            expected_status_codes,
            keyword,
            interval_seconds,
            timeout_seconds,
            follow_redirects: self.follow_redirects.unwrap_or(true),
            failure_threshold,
            success_threshold,
            enabled: self.enabled.unwrap_or(true),
            notifier_ids,
            reminder_interval_seconds: self
                .reminder_interval_seconds
                .map(validate_reminder_interval)
                .transpose()?,
            public: self.public.unwrap_or(false),
            group,
            check_type,
            conditions: typed.conditions,
            dns: typed.dns,
            packets: typed.packets,
            tls_skip_verify: typed.tls_skip_verify,
            starttls: typed.starttls,
            cert_expiry_alert_days: typed.cert_expiry_alert_days,
            push_grace_seconds: typed.push_grace_seconds,
            push_url: typed.push_url,
            regions,
            quorum,
            proxy,
            created_at,
            updated_at,
        })
    }
}

/// Checks a reminder interval (a monitor's or a channel's): 0 (no reminders) or from
/// [`MIN_REMINDER_SECONDS`] to [`MAX_REMINDER_SECONDS`].
pub fn validate_reminder_interval(seconds: u32) -> Result<u32, ValidationError> {
    if seconds != 0 && !(MIN_REMINDER_SECONDS..=MAX_REMINDER_SECONDS).contains(&seconds) {
        return Err(ValidationError::new(
            "reminder_interval_seconds",
            format!(
                "must be 0 (no reminders) or from {MIN_REMINDER_SECONDS} to \
                 {MAX_REMINDER_SECONDS} seconds"
            ),
        ));
    }
    Ok(seconds)
}

/// Longest region name: it is part of a Kafka topic's name (`upwatch.jobs.<region>`).
pub const MAX_REGION_CHARS: usize = 63;

/// Checks a region's name (`UPWATCH_REGION`, `UPWATCH_REGIONS`, a monitor's `regions`): 1 to
/// 63 of `a`-`z`, `0`-`9`, `-`, `_` and `.`, as it becomes part of a topic's name.
pub fn validate_region_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_REGION_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a region name: use 1 to {MAX_REGION_CHARS} of a-z, 0-9, `-`, `_` \
             and `.`, such as `eu-west`"
        ))
    }
}

/// A monitor's regions (names checked, repeats dropped, order kept) and quorum (at least 1,
/// at most the number of regions it names).
fn validate_regions(
    check_type: CheckType,
    regions: Vec<String>,
    quorum: Option<u32>,
) -> Result<(Vec<String>, Option<u32>), ValidationError> {
    if check_type == CheckType::Push && (!regions.is_empty() || quorum.is_some()) {
        return Err(ValidationError::new(
            if regions.is_empty() {
                "quorum"
            } else {
                "regions"
            },
            "does not apply to push monitors: their pushes come to the API, not from a region",
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(regions.len());
    for region in regions {
        let region = region.trim().to_string();
        validate_region_name(&region).map_err(|e| ValidationError::new("regions", e))?;
        if !kept.contains(&region) {
            kept.push(region);
        }
    }
    if let Some(q) = quorum {
        if q == 0 {
            return Err(ValidationError::new(
                "quorum",
                "must be at least 1: the number of regions that must see the monitor down",
            ));
        }
        if !kept.is_empty() && q as usize > kept.len() {
            return Err(ValidationError::new(
                "quorum",
                format!(
                    "must not be above the number of the monitor's `regions` ({q} > {})",
                    kept.len()
                ),
            ));
        }
    }
    Ok((kept, quorum))
}

/// A monitor's proxy: `http`, `https`, `socks5` or `socks5h` with a host, for HTTP monitors.
fn validate_proxy(
    check_type: CheckType,
    proxy: Option<String>,
) -> Result<Option<String>, ValidationError> {
    let Some(proxy) = proxy
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    if check_type != CheckType::Http {
        return Err(ValidationError::new(
            "proxy",
            "applies to http:// and https:// monitors only",
        ));
    }
    check_proxy_url(&proxy).map_err(|e| ValidationError::new("proxy", e))?;
    Ok(Some(proxy))
}

/// Checks a proxy's URL (a monitor's `proxy`, `UPWATCH_CHECK_PROXY`); the error never repeats
/// the URL, which may hold a password.
pub fn check_proxy_url(proxy: &str) -> Result<(), String> {
    let parsed = url::Url::parse(proxy).map_err(|_| {
        "must be a URL such as `http://proxy.internal:3128` or `socks5://127.0.0.1:1080`"
            .to_string()
    })?;
    if !["http", "https", "socks5", "socks5h"].contains(&parsed.scheme()) {
        return Err(format!(
            "must use http, https, socks5 or socks5h, not `{}`",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name the proxy's host".to_string());
    }
    Ok(())
}

/// A group name trimmed, with an empty one meaning no group.
fn validate_group(group: Option<String>) -> Result<Option<String>, ValidationError> {
    let Some(group) = group
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
    else {
        return Ok(None);
    };
    if group.chars().count() > MAX_GROUP_CHARS {
        return Err(ValidationError::new(
            "group",
            format!("must be at most {MAX_GROUP_CHARS} characters"),
        ));
    }
    if group.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "group",
            "must not contain control characters",
        ));
    }
    Ok(Some(group))
}

fn threshold(field: &str, value: Option<u32>) -> Result<u32, ValidationError> {
    let value = value.unwrap_or(1);
    if (1..=MAX_THRESHOLD).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between 1 and {MAX_THRESHOLD}, not {value}"),
        ))
    }
}

/// The check type and normalised URL of a monitor: the URL's scheme selects the type, and a
/// push monitor without a URL gets a fresh `push://` token.
fn validate_target(
    check_type: Option<CheckType>,
    url: Option<&str>,
) -> Result<(CheckType, String), ValidationError> {
    let Some(raw) = url else {
        return match check_type {
            Some(CheckType::Push) => Ok((CheckType::Push, format!("push://{}", new_push_token()))),
            _ => Err(ValidationError::new(
                "url",
                "is required (or `\"type\": \"push\"` for a monitor that is sent heartbeats)",
            )),
        };
    };
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err(ValidationError::new(
            "url",
            "must be at most 2048 characters",
        ));
    }
    let parsed = url::Url::parse(raw).map_err(|e| {
        let why = match e {
            url::ParseError::InvalidPort => "its port must be a number from 1 to 65535".to_string(),
            other => other.to_string(),
        };
        ValidationError::new(
            "url",
            format!(
                "`{raw}` is not a valid URL ({why}); expected a form such as \
                 https://example.com/health, tcp://db.example.com:5432 or icmp://example.com"
            ),
        )
    })?;
    let Some(scheme_type) = CheckType::of_scheme(parsed.scheme()) else {
        return Err(ValidationError::new(
            "url",
            format!(
                "must use http, https, tcp, tls, icmp or dns, not `{}`",
                parsed.scheme()
            ),
        ));
    };
    if let Some(given) = check_type {
        if given != scheme_type {
            return Err(ValidationError::new(
                "type",
                format!(
                    "is `{given}` but the url's scheme `{}` makes a `{scheme_type}` monitor; \
                     leave `type` out or make them agree",
                    parsed.scheme()
                ),
            ));
        }
    }
    let host = parsed.host_str().filter(|h| !h.is_empty());
    if scheme_type == CheckType::Push {
        let token = raw.strip_prefix("push://").unwrap_or_default();
        if !is_push_token(token) {
            return Err(ValidationError::new(
                "url",
                "of a push monitor must be `push://` and 32 lower-case hex digits; \
                 leave it out to have one made",
            ));
        }
        return Ok((CheckType::Push, raw.to_string()));
    }
    let Some(host) = host else {
        return Err(ValidationError::new("url", "must name a host"));
    };
    if scheme_type == CheckType::Http {
        return Ok((CheckType::Http, parsed.to_string()));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        return Err(ValidationError::new(
            "url",
            format!(
                "of a {scheme_type} monitor must have no path or query, only a host{}",
                match scheme_type {
                    CheckType::Icmp => "",
                    CheckType::Dns => " and an optional port",
                    _ => " and a port",
                }
            ),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ValidationError::new(
            "url",
            format!("of a {scheme_type} monitor must not carry a user or password"),
        ));
    }
    let port = match (scheme_type, parsed.port()) {
        (CheckType::Icmp, Some(_)) => {
            return Err(ValidationError::new(
                "url",
                "of an icmp monitor must not have a port: ICMP has none",
            ))
        }
        (CheckType::Icmp, None) => None,
        (CheckType::Tcp | CheckType::Tls, None) => {
            return Err(ValidationError::new(
                "url",
                format!(
                    "of a {scheme_type} monitor needs a port, as in {scheme_type}://{host}:443"
                ),
            ))
        }
        (_, Some(0)) => {
            return Err(ValidationError::new(
                "url",
                "has port 0; expected a port from 1 to 65535",
            ))
        }
        (CheckType::Dns, None) => Some(53),
        (_, port) => port,
    };
    let url = match port {
        Some(port) => format!("{scheme_type}://{host}:{port}"),
        None => format!("{scheme_type}://{host}"),
    };
    Ok((scheme_type, url))
}

/// A fresh push token: 128 random bits as 32 lower-case hex digits.
fn new_push_token() -> String {
    // Two version-4 UUIDs give 2 x 122 random bits; the 16 bytes taken skip the version and
    // variant bits.
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let bytes = [
        a[0], a[1], a[2], a[3], a[4], a[5], a[7], a[9], b[0], b[1], b[2], b[3], b[4], b[5], b[7],
        b[9],
    ];
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `token` has the form of a push token.
pub fn is_push_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The settings that belong to one check type, validated against it.
struct TypedSettings {
    conditions: Vec<String>,
    dns: Option<DnsQuery>,
    packets: Option<u32>,
    tls_skip_verify: bool,
    starttls: Option<Starttls>,
    cert_expiry_alert_days: Option<Vec<u32>>,
    push_grace_seconds: Option<u32>,
    push_url: Option<String>,
}

impl TypedSettings {
    fn validate(
        check_type: CheckType,
        url: &str,
        input: &MonitorInput,
    ) -> Result<TypedSettings, ValidationError> {
        let only = |field: &str, types: &str| {
            ValidationError::new(
                field,
                format!("applies only to {types} monitors, and this one is `{check_type}`"),
            )
        };
        if check_type != CheckType::Http {
            if input.keyword.as_ref().is_some_and(|k| !k.is_empty()) {
                return Err(only("keyword", "http"));
            }
            if input.body.is_some() {
                return Err(only("body", "http"));
            }
            if input.headers.as_ref().is_some_and(|h| !h.is_empty()) {
                return Err(only("headers", "http"));
            }
            if input
                .method
                .as_deref()
                .is_some_and(|m| !m.trim().eq_ignore_ascii_case("GET"))
            {
                return Err(only("method", "http"));
            }
            if input
                .expected_status_codes
                .as_ref()
                .is_some_and(|e| *e != ExpectedStatus::default())
                || input.expected_status_code.is_some()
            {
                return Err(only("expected_status_codes", "http"));
            }
        }
        let dns = match (check_type, input.dns.clone()) {
            (CheckType::Dns, None) => {
                return Err(ValidationError::new(
                    "dns",
                    "is required for a dns monitor: {\"query_name\": \"example.com\", \"query_type\": \"A\"}",
                ))
            }
            (CheckType::Dns, Some(query)) => Some(validate_dns(query)?),
            (_, Some(_)) => return Err(only("dns", "dns")),
            (_, None) => None,
        };
        let packets = match (check_type, input.packets) {
            (CheckType::Icmp, packets) => {
                let packets = packets.unwrap_or(DEFAULT_PACKETS);
                if !(1..=MAX_PACKETS).contains(&packets) {
                    return Err(ValidationError::new(
                        "packets",
                        format!("must be between 1 and {MAX_PACKETS}, not {packets}"),
                    ));
                }
                Some(packets)
            }
            (_, Some(_)) => return Err(only("packets", "icmp")),
            (_, None) => None,
        };
        let speaks_tls = check_type.speaks_tls(url);
        let tls_skip_verify = input.tls_skip_verify.unwrap_or(false);
        if tls_skip_verify && !speaks_tls {
            return Err(only("tls_skip_verify", "https and tls"));
        }
        if input.starttls.is_some() && check_type != CheckType::Tls {
            return Err(only("starttls", "tls"));
        }
        let cert_expiry_alert_days = match input.cert_expiry_alert_days.clone() {
            Some(_) if !speaks_tls => return Err(only("cert_expiry_alert_days", "https and tls")),
            Some(days) => Some(validate_alert_days("cert_expiry_alert_days", days)?),
            None => None,
        };
        let (push_grace_seconds, push_url) = match (check_type, input.push_grace_seconds) {
            (CheckType::Push, grace) => {
                let grace = grace.unwrap_or(DEFAULT_PUSH_GRACE_SECONDS);
                if grace > MAX_INTERVAL_SECONDS {
                    return Err(ValidationError::new(
                        "push_grace_seconds",
                        format!("must be at most {MAX_INTERVAL_SECONDS} seconds, not {grace}"),
                    ));
                }
                let token = url.strip_prefix("push://").unwrap_or_default();
                (Some(grace), Some(format!("{PUSH_PATH}/{token}")))
            }
            (_, Some(_)) => return Err(only("push_grace_seconds", "push")),
            (_, None) => (None, None),
        };
        let conditions = input.conditions.clone().unwrap_or_default();
        if conditions.len() > MAX_CONDITIONS {
            return Err(ValidationError::new(
                "conditions",
                format!("must list at most {MAX_CONDITIONS} conditions"),
            ));
        }
        for (i, text) in conditions.iter().enumerate() {
            let field = format!("conditions[{i}]");
            if text.len() > 1024 {
                return Err(ValidationError::new(field, "must be at most 1024 bytes"));
            }
            let condition = Condition::parse(text).map_err(|e| {
                ValidationError::new(field.clone(), format!("`{text}` does not parse: {e}"))
            })?;
            if let Some(p) = condition
                .placeholders()
                .into_iter()
                .find(|p| !check_type.allows(url, *p))
            {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "names {p}, which a `{check_type}` monitor{} does not have",
                        if check_type == CheckType::Http
                            && p == crate::observation::Placeholder::CertificateExpiration
                        {
                            " over plain http"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        Ok(TypedSettings {
            conditions: conditions
                .into_iter()
                .map(|c| c.trim().to_string())
                .collect(),
            dns,
            packets,
            tls_skip_verify,
            starttls: input.starttls,
            cert_expiry_alert_days,
            push_grace_seconds,
            push_url,
        })
    }
}

fn validate_dns(query: DnsQuery) -> Result<DnsQuery, ValidationError> {
    let name = query.query_name.trim().trim_end_matches('.').to_string();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(ValidationError::new(
            "dns.query_name",
            format!(
                "`{}` is not a domain name; expected labels of letters, digits and hyphens \
                 such as example.com",
                query.query_name
            ),
        ));
    }
    Ok(DnsQuery {
        query_name: name,
        query_type: query.query_type,
    })
}

/// Alert thresholds in days: 1 to 365 each, at most 10, largest first.
pub fn validate_alert_days(field: &str, mut days: Vec<u32>) -> Result<Vec<u32>, ValidationError> {
    if days.len() > 10 {
        return Err(ValidationError::new(
            field,
            "must list at most 10 thresholds",
        ));
    }
    if let Some(bad) = days.iter().find(|d| !(1..=365).contains(*d)) {
        return Err(ValidationError::new(
            field,
            format!("must list days from 1 to 365, not {bad}"),
        ));
    }
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    Ok(days)
}

/// The record types a DNS monitor accepts, for messages.
pub fn dns_query_types() -> String {
    DnsQueryType::ALL.map(DnsQueryType::as_str).join(", ")
}

fn default_name(url: &str) -> String {
    if url.starts_with("push://") {
        return "Heartbeat".to_string();
    }
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string())
}

impl Monitor {
    /// The state of this monitor before any result: pending, or paused (since its settings
    /// last changed) when it is disabled. The one place where a monitor's first state is made:
    /// the stores, the live-status cache and the pages all start from it.
    pub fn initial_state(&self) -> crate::MonitorState {
        crate::MonitorState::initial(self.id, self.enabled, self.updated_at)
    }

    /// Creates a monitor from client input with a fresh id.
    pub fn create(input: MonitorInput, now: DateTime<Utc>) -> Result<Monitor, ValidationError> {
        input.into_monitor(Uuid::now_v7(), now, now)
    }

    /// The input that would recreate this monitor's settings.
    ///
    /// HTTP's own settings (method, headers, body, expected codes, keyword, redirects) are
    /// left out of other types' input: they do not apply there.
    pub fn to_input(&self) -> MonitorInput {
        let http = self.check_type == CheckType::Http;
        MonitorInput {
            name: Some(self.name.clone()),
            url: Some(self.url.clone()),
            method: http.then(|| self.method.clone()),
            headers: http.then(|| self.headers.clone()),
            body: self.body.clone(),
            expected_status_codes: http.then(|| self.expected_status_codes.clone()),
            expected_status_code: None,
            keyword: self.keyword.clone(),
            interval_seconds: Some(self.interval_seconds),
            timeout_seconds: Some(self.timeout_seconds),
            follow_redirects: http.then_some(self.follow_redirects),
            failure_threshold: Some(self.failure_threshold),
            success_threshold: Some(self.success_threshold),
            enabled: Some(self.enabled),
            notifier_ids: Some(self.notifier_ids.clone()),
            reminder_interval_seconds: self.reminder_interval_seconds,
            public: Some(self.public),
            group: self.group.clone(),
            // The URL's scheme says the type (`push://` included), so that a patch of the URL
            // alone can change it.
            check_type: None,
            conditions: Some(self.conditions.clone()),
            dns: self.dns.clone(),
            packets: self.packets,
            tls_skip_verify: Some(self.tls_skip_verify),
            starttls: self.starttls,
            cert_expiry_alert_days: self.cert_expiry_alert_days.clone(),
            push_grace_seconds: self.push_grace_seconds,
            regions: (!self.regions.is_empty()).then(|| self.regions.clone()),
            quorum: self.quorum,
            proxy: self.proxy.clone(),
        }
    }

    /// The regions that check this monitor, of `all` (`UPWATCH_REGIONS`): the ones it names
    /// that exist, or all of them.
    /// A push monitor has no region: its pushes come to the API, under
    /// [`crate::check::DEFAULT_REGION`].
    pub fn regions_in<'a>(&'a self, all: &'a [String]) -> Vec<&'a str> {
        if self.check_type == CheckType::Push {
            vec![crate::check::DEFAULT_REGION]
        } else if self.regions.is_empty() {
            all.iter().map(String::as_str).collect()
        } else {
            self.regions
                .iter()
                .filter(|r| all.contains(r))
                .map(String::as_str)
                .collect()
        }
    }

    /// How many of its `regions` must see this monitor down: its `quorum`, or a majority; never
    /// more than there are, never less than 1.
    pub fn quorum_of(&self, regions: usize) -> u32 {
        let regions = regions.max(1) as u32;
        self.quorum.unwrap_or(regions / 2 + 1).clamp(1, regions)
    }

    /// Checks the monitor's regions against those that exist (`UPWATCH_REGIONS`): each must be
    /// one of them, and the quorum no more than the regions that check it.
    pub fn validate_regions_against(&self, all: &[String]) -> Result<(), ValidationError> {
        if let Some(unknown) = self.regions.iter().find(|r| !all.contains(r)) {
            return Err(ValidationError::new(
                "regions",
                format!(
                    "names `{unknown}`, which is not a region: the regions are {}",
                    all.join(", ")
                ),
            ));
        }
        if let Some(q) = self.quorum {
            let n = self.regions_in(all).len();
            if q as usize > n {
                return Err(ValidationError::new(
                    "quorum",
                    format!("must not be above the number of regions that check the monitor ({q} > {n})"),
                ));
            }
        }
        Ok(())
    }

    /// Days before certificate expiry at which to alert: the monitor's own, or `default`;
    /// largest first, each once.
    pub fn cert_expiry_alert_days(&self, default: &[u32]) -> Vec<u32> {
        if !self.check_type.speaks_tls(&self.url) {
            return Vec::new();
        }
        let mut days = self
            .cert_expiry_alert_days
            .clone()
            .unwrap_or_else(|| default.to_vec());
        days.sort_unstable_by(|a, b| b.cmp(a));
        days.dedup();
        days
    }

    /// The token of a push monitor (the last segment of its `push://` URL).
    pub fn push_token(&self) -> Option<&str> {
        (self.check_type == CheckType::Push)
            .then(|| self.url.strip_prefix("push://"))
            .flatten()
    }

    /// Applies a JSON merge patch (RFC 7396) of settings and validates the result as a whole.
    ///
    /// `null` clears an optional field (`body`, `keyword`) or restores a default. The id and
    /// creation time are not settings and cannot be patched.
    pub fn apply_patch(
        &self,
        patch: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Monitor, ValidationError> {
        let serde_json::Value::Object(changes) = patch else {
            return Err(ValidationError::new(
                "",
                "a patch must be a JSON object of the fields to change",
            ));
        };
        let mut base = serde_json::to_value(self.to_input()).expect("monitor input serializes");
        if let serde_json::Value::Object(map) = &mut base {
            if changes.contains_key("expected_status_code") {
                map.remove("expected_status_codes");
            }
            // The earlier name of `notifier_ids` replaces it too.
            if changes.contains_key("webhook_ids") {
                map.remove("notifier_ids");
            }
        }
        merge_patch(&mut base, patch);
        let input: MonitorInput =
            serde_json::from_value(base).map_err(|e| ValidationError::new("", e.to_string()))?;
        input.into_monitor(self.id, self.created_at, now)
    }

    /// The state-machine thresholds of this monitor.
    pub fn rules(&self) -> crate::check::StateRules {
        crate::check::StateRules {
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
            quorum: self.quorum.unwrap_or(1).max(1),
            interval_ms: u64::from(self.interval_seconds) * 1000,
        }
    }
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(changes) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            let map = target.as_object_mut().expect("just made an object");
            for (key, value) in changes {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn create(value: serde_json::Value) -> Result<Monitor, ValidationError> {
        let input: MonitorInput =
            serde_json::from_value(value).map_err(|e| ValidationError::new("", e.to_string()))?;
        Monitor::create(input, now())
    }

    #[test]
    fn defaults_fill_everything_but_the_url() {
        let m = create(json!({"url": "https://example.com/health"})).unwrap();
        assert_eq!(m.name, "example.com");
        assert_eq!(m.method, "GET");
        assert_eq!(m.interval_seconds, 300);
        assert_eq!(m.timeout_seconds, 10);
        assert!(m.follow_redirects && m.enabled);
        assert_eq!((m.failure_threshold, m.success_threshold), (1, 1));
        assert_eq!(m.expected_status_codes, ExpectedStatus::default());
        assert_eq!(m.created_at, m.updated_at);
    }

    #[test]
    fn public_and_group_default_to_private_and_ungrouped() {
        let m = create(json!({"url": "http://a.test"})).unwrap();
        assert!(!m.public);
        assert_eq!(m.group, None);
        let m =
            create(json!({"url": "http://a.test", "public": true, "group": "  API  "})).unwrap();
        assert!(m.public);
        assert_eq!(m.group.as_deref(), Some("API"));
        let m = create(json!({"url": "http://a.test", "group": "   "})).unwrap();
        assert_eq!(m.group, None);
        let m = create(json!({"url": "http://a.test", "group": "é".repeat(100)})).unwrap();
        assert_eq!(m.group.map(|g| g.chars().count()), Some(100));
        let p = create(json!({"url": "http://a.test", "public": true, "group": "API"}))
            .unwrap()
            .apply_patch(&json!({"group": null, "public": false}), now())
            .unwrap();
        assert!(!p.public);
        assert_eq!(p.group, None);
    }

    #[test]
    fn monitors_stored_before_public_and_group_existed_still_read() {
        let m = create(json!({"url": "http://a.test"})).unwrap();
        let mut stored = serde_json::to_value(&m).unwrap();
        let map = stored.as_object_mut().unwrap();
        map.remove("public");
        map.remove("group");
        let read: Monitor = serde_json::from_value(stored).unwrap();
        assert_eq!(read, m);
    }

    #[test]
    fn short_interval_lowers_the_default_timeout() {
        let m = create(json!({"url": "http://127.0.0.1:1/", "interval_seconds": 2})).unwrap();
        assert_eq!(m.timeout_seconds, 2);
    }

    #[test]
    fn seed_shorthand_is_accepted() {
        let m = create(json!({"url": "http://a.test", "expected_status_code": 204})).unwrap();
        assert_eq!(
            m.expected_status_codes,
            ExpectedStatus(vec![StatusMatcher::Code(204)])
        );
        let err = create(json!({"url": "http://a.test", "expected_status_code": 204, "expected_status_codes": [200]})).unwrap_err();
        assert_eq!(err.field, "expected_status_code");
    }

    #[test]
    fn invalid_values_name_their_field() {
        let cases = [
            (json!({}), "url"),
            (json!({"url": "ftp://example.com"}), "url"),
            (json!({"url": "not a url"}), "url"),
            (
                json!({"url": "http://a.test", "interval_seconds": 0}),
                "interval_seconds",
            ),
            (
                json!({"url": "http://a.test", "interval_seconds": 10, "timeout_seconds": 11}),
                "timeout_seconds",
            ),
            (
                json!({"url": "http://a.test", "timeout_seconds": 0}),
                "timeout_seconds",
            ),
            (json!({"url": "http://a.test", "method": "FETCH"}), "method"),
            (json!({"url": "http://a.test", "name": "  "}), "name"),
            (
                json!({"url": "http://a.test", "failure_threshold": 0}),
                "failure_threshold",
            ),
            (
                json!({"url": "http://a.test", "success_threshold": 101}),
                "success_threshold",
            ),
            (
                json!({"url": "http://a.test", "headers": {"bad name": "x"}}),
                "headers",
            ),
            (
                json!({"url": "http://a.test", "headers": {"X-A": "a\r\nb"}}),
                "headers",
            ),
            (
                json!({"url": "http://a.test", "expected_status_codes": []}),
                "expected_status_codes",
            ),
            (
                json!({"url": "http://a.test", "group": "g".repeat(101)}),
                "group",
            ),
            (json!({"url": "http://a.test", "group": "a\nb"}), "group"),
        ];
        for (input, field) in cases {
            let err = create(input.clone()).unwrap_err();
            assert_eq!(err.field, field, "{input}: {err}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = create(json!({"url": "http://a.test", "intervall_seconds": 5})).unwrap_err();
        assert!(
            err.message.contains("unknown field `intervall_seconds`"),
            "{err}"
        );
    }

    #[test]
    fn patch_changes_only_what_it_names() {
        let m = create(json!({"url": "http://a.test", "keyword": "ok", "headers": {"A": "1"}}))
            .unwrap();
        let later = now() + chrono::Duration::seconds(5);
        let p = m
            .apply_patch(
                &json!({"interval_seconds": 60, "keyword": null, "headers": {"B": "2"}}),
                later,
            )
            .unwrap();
        assert_eq!(p.interval_seconds, 60);
        assert_eq!(p.keyword, None);
        assert_eq!(p.headers.len(), 2);
        assert_eq!(
            (p.id, p.created_at, p.updated_at),
            (m.id, m.created_at, later)
        );
        assert_eq!(p.url, m.url);
    }

    #[test]
    fn patch_is_validated_as_a_whole() {
        let m =
            create(json!({"url": "http://a.test", "interval_seconds": 60, "timeout_seconds": 30}))
                .unwrap();
        let err = m
            .apply_patch(&json!({"interval_seconds": 10}), now())
            .unwrap_err();
        assert_eq!(err.field, "timeout_seconds");
        let err = m.apply_patch(&json!({"id": "x"}), now()).unwrap_err();
        assert!(err.message.contains("unknown field `id`"), "{err}");
        assert!(m.apply_patch(&json!([1]), now()).is_err());
        let p = m
            .apply_patch(&json!({"expected_status_code": "2xx"}), now())
            .unwrap();
        assert_eq!(p.expected_status_codes.to_string(), "2xx");
    }

    #[test]
    fn regions_quorum_and_proxy_are_checked() {
        let make = |v: serde_json::Value| {
            let input: MonitorInput = serde_json::from_value(v).unwrap();
            input.into_monitor(Uuid::nil(), now(), now())
        };
        let m =
            make(json!({"url": "https://example.com", "regions": ["a", " b", "a"], "quorum": 2}))
                .unwrap();
        assert_eq!(m.regions, vec!["a", "b"]);
        let err = make(json!({"url": "https://example.com", "regions": ["EU"]})).unwrap_err();
        assert_eq!(err.field, "regions");
        let err = make(json!({"url": "https://example.com", "quorum": 0})).unwrap_err();
        assert_eq!(err.field, "quorum");
        let err =
            make(json!({"url": "https://example.com", "regions": ["a"], "quorum": 2})).unwrap_err();
        assert_eq!(err.field, "quorum");
        let err = make(json!({"type": "push", "regions": ["a"]})).unwrap_err();
        assert_eq!(err.field, "regions");
        let err =
            make(json!({"url": "tcp://example.com:22", "proxy": "http://p:3128"})).unwrap_err();
        assert_eq!(err.field, "proxy");
        let err =
            make(json!({"url": "https://example.com", "proxy": "ftp://u:hunter2@p"})).unwrap_err();
        assert_eq!(err.field, "proxy");
        assert!(!err.message.contains("hunter2"), "{}", err.message);
        let m = make(json!({"url": "https://example.com", "proxy": "socks5://127.0.0.1:1080"}))
            .unwrap();
        assert_eq!(m.proxy.as_deref(), Some("socks5://127.0.0.1:1080"));
        // The patch keeps them.
        let patched = m.apply_patch(&json!({"name": "x"}), now()).unwrap();
        assert_eq!(patched.proxy, m.proxy);
    }

    #[test]
    fn regions_and_quorum_against_those_that_exist() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let m = Monitor::create(MonitorInput::for_url("https://example.com"), now()).unwrap();
        assert_eq!(m.regions_in(&all), vec!["a", "b", "c"]);
        assert_eq!(m.quorum_of(3), 2, "a majority");
        assert_eq!(m.quorum_of(1), 1);
        assert_eq!(m.quorum_of(4), 3);
        let mut named = m.clone();
        named.regions = vec!["a".into(), "x".into()];
        let err = named.validate_regions_against(&all).unwrap_err();
        assert_eq!(err.field, "regions");
        assert!(err.message.contains("`x`"), "{}", err.message);
        named.regions = vec!["a".into()];
        named.quorum = Some(1);
        assert!(named.validate_regions_against(&all).is_ok());
        let mut all_of_them = m.clone();
        all_of_them.quorum = Some(4);
        assert_eq!(
            all_of_them
                .validate_regions_against(&all)
                .unwrap_err()
                .field,
            "quorum"
        );
        assert_eq!(all_of_them.quorum_of(3), 3, "never above the regions");
    }
}
