//! Check jobs, their results, and the pure evaluation of an HTTP answer.
//!
//! Jobs and results are the two messages of the pipeline; both carry a schema version `v` so
//! that a fleet can be upgraded one role at a time.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::condition::{evaluate_all, Condition};
use crate::expected::ExpectedStatus;
use crate::monitor::Monitor;
use crate::observation::{CheckDetails, CheckType, DnsQuery, Observation, Placeholder, Starttls};

/// Days before a certificate's expiry at which it is announced, unless configured otherwise.
pub const DEFAULT_CERT_EXPIRY_ALERT_DAYS: [u32; 3] = [14, 7, 1];

/// The schema version written into every job and result.
pub const SCHEMA_VERSION: u16 = 1;
/// Longest error message kept in a result; longer ones are cut at a character boundary.
pub const MAX_ERROR_MESSAGE: usize = 300;
/// The region of a worker that names none (`UPWATCH_REGION`), and of results made without a
/// worker (pushes, missed heartbeats).
pub const DEFAULT_REGION: &str = "default";

/// [`DEFAULT_REGION`] as an owned name, for serde defaults.
pub fn default_region() -> String {
    DEFAULT_REGION.to_string()
}

fn one() -> u32 {
    1
}

/// Thresholds of the state machine, carried with each job and result so that consumers of the
/// results stream never need to read the monitor's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRules {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// How many regions must see the monitor down for it to be down (1 with one region).
    #[serde(default = "one")]
    pub quorum: u32,
    /// The monitor's interval: a region without a result for two of them is left out of the
    /// vote. 0 (results older than regions) never leaves a region out.
    #[serde(default)]
    pub interval_ms: u64,
}

impl Default for StateRules {
    fn default() -> Self {
        StateRules {
            failure_threshold: 1,
            success_threshold: 1,
            quorum: 1,
            interval_ms: 0,
        }
    }
}

/// Everything a worker needs to perform one HTTP check, with no database at hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub url: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub timeout_ms: u64,
    pub expected_status_codes: ExpectedStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    pub follow_redirects: bool,
    /// The check type (HTTP when absent, as in jobs from before other types existed).
    #[serde(rename = "type", default, skip_serializing_if = "is_http")]
    pub check_type: CheckType,
    /// Conditions that must all hold ([`crate::condition`]), as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// The query of a DNS check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsQuery>,
    /// Echo requests an ICMP check sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    /// Whether a TLS-speaking check accepts any certificate (unsafe).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_skip_verify: bool,
    /// The protocol a `tls://` check speaks before upgrading to TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<Starttls>,
    /// The monitor's own proxy for HTTP checks (`http`, `https` or `socks5`), which replaces
    /// the worker's `UPWATCH_CHECK_PROXY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

fn is_http(t: &CheckType) -> bool {
    *t == CheckType::Http
}

impl CheckRequest {
    /// The request's conditions, parsed once per check. They were validated when the monitor
    /// was saved, so an error here is a job that did not come from a valid monitor.
    pub fn parse_conditions(&self) -> Result<Vec<Condition>, CheckError> {
        self.conditions
            .iter()
            .map(|text| Condition::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CheckError::new(ErrorKind::Other, format!("invalid condition: {e}")))
    }

    /// The request a monitor's settings describe.
    pub fn for_monitor(m: &Monitor) -> Self {
        CheckRequest {
            url: m.url.clone(),
            method: m.method.clone(),
            headers: m.headers.clone(),
            body: m.body.clone(),
            timeout_ms: u64::from(m.timeout_seconds) * 1000,
            expected_status_codes: m.expected_status_codes.clone(),
            keyword: m.keyword.clone(),
            follow_redirects: m.follow_redirects,
            check_type: m.check_type,
            conditions: m.conditions.clone(),
            dns: m.dns.clone(),
            packets: m.packets,
            tls_skip_verify: m.tls_skip_verify,
            starttls: m.starttls,
            proxy: m.proxy.clone(),
        }
    }
}

/// One due check of one monitor, as the scheduler emits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckJob {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u16,
    /// Unique per emitted job (UUIDv7).
    pub id: Uuid,
    pub monitor_id: Uuid,
    pub monitor_name: String,
    /// When the check should start; lag is measured against it.
    pub due_at: DateTime<Utc>,
    /// The monitor's interval; a job picked up later than this after `due_at` is stale.
    pub interval_ms: u64,
    pub rules: StateRules,
    pub request: CheckRequest,
    /// Days before a certificate's expiry at which it is announced, largest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_expiry_alert_days: Vec<u32>,
    /// Whether the check is due during a maintenance window of the monitor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub maintenance: bool,
    /// The region whose workers make this check (its jobs topic is `upwatch.jobs.<region>`).
    #[serde(default = "default_region")]
    pub region: String,
}

impl CheckJob {
    /// The job for `monitor`'s check due at `due_at`.
    pub fn for_monitor(monitor: &Monitor, due_at: DateTime<Utc>) -> Self {
        CheckJob::for_monitor_with(monitor, due_at, &DEFAULT_CERT_EXPIRY_ALERT_DAYS)
    }

    /// The job for `monitor`'s check due at `due_at`, announcing certificate expiry at
    /// `default_days` unless the monitor sets its own.
    pub fn for_monitor_with(
        monitor: &Monitor,
        due_at: DateTime<Utc>,
        default_days: &[u32],
    ) -> Self {
        CheckJob {
            v: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            monitor_id: monitor.id,
            monitor_name: monitor.name.clone(),
            due_at,
            interval_ms: u64::from(monitor.interval_seconds) * 1000,
            rules: monitor.rules(),
            request: CheckRequest::for_monitor(monitor),
            cert_expiry_alert_days: monitor.cert_expiry_alert_days(default_days),
            maintenance: false,
            region: default_region(),
        }
    }

    /// This job, for the workers of `region`, with the monitor's quorum among
    /// `regions_total` regions.
    pub fn in_region(mut self, region: &str, quorum: u32) -> Self {
        self.region = region.to_string();
        self.rules.quorum = quorum.max(1);
        self
    }

    /// Whether a worker picking this job up at `now` is too late to check it meaningfully:
    /// the next check of the same monitor is already due.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        (now - self.due_at).num_milliseconds() > self.interval_ms as i64
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Up,
    Down,
    /// The worker could not reach any of its connectivity targets when it made the check
    /// (error kind `local_network`): counted neither up nor down, never alerted.
    Inconclusive,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Up => "up",
            CheckStatus::Down => "down",
            CheckStatus::Inconclusive => "inconclusive",
        }
    }
}

/// Why a check failed. The set is fixed so that dashboards and alerts can group by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// No complete answer within the monitor's timeout.
    Timeout,
    /// The host name could not be resolved.
    Dns,
    /// The TCP connection could not be made (refused, reset, unreachable).
    Connect,
    /// The TLS handshake failed (certificate invalid, expired, wrong host, protocol).
    Tls,
    /// The server answered with a code the monitor does not expect.
    StatusMismatch,
    /// The body (its bounded prefix) lacks the monitor's keyword.
    KeywordMissing,
    /// More redirects than the bounded number of hops.
    TooManyRedirects,
    /// A condition of the monitor did not hold; the message names it with the value seen.
    ConditionFailed,
    /// No echo reply came back (ICMP), every packet lost.
    NoReply,
    /// ICMP checks cannot run here: the process may open neither datagram nor raw ICMP
    /// sockets.
    IcmpUnavailable,
    /// A push monitor got no push within its interval and grace.
    MissedHeartbeat,
    /// A push monitor was told it is down (`?status=down`).
    ReportedDown,
    /// The worker's own network was down when it checked (none of its connectivity targets
    /// answered): the result is inconclusive.
    LocalNetwork,
    /// Anything else: a malformed answer, a protocol error.
    Other,
}

impl ErrorKind {
    /// Every kind, in a stable order (for metrics and docs).
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::Timeout,
        ErrorKind::Dns,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::StatusMismatch,
        ErrorKind::KeywordMissing,
        ErrorKind::TooManyRedirects,
        ErrorKind::ConditionFailed,
        ErrorKind::NoReply,
        ErrorKind::IcmpUnavailable,
        ErrorKind::MissedHeartbeat,
        ErrorKind::ReportedDown,
        ErrorKind::LocalNetwork,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::StatusMismatch => "status_mismatch",
            ErrorKind::KeywordMissing => "keyword_missing",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::ConditionFailed => "condition_failed",
            ErrorKind::NoReply => "no_reply",
            ErrorKind::IcmpUnavailable => "icmp_unavailable",
            ErrorKind::MissedHeartbeat => "missed_heartbeat",
            ErrorKind::ReportedDown => "reported_down",
            ErrorKind::LocalNetwork => "local_network",
            ErrorKind::Other => "other",
        }
    }

    /// The kind named by [`ErrorKind::as_str`], for stores that keep it as text.
    pub fn parse(text: &str) -> ErrorKind {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .unwrap_or(ErrorKind::Other)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed check's kind and a short message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CheckError {
    /// An error with its message cut to [`MAX_ERROR_MESSAGE`] bytes.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CheckError {
            kind,
            message: truncate(message.into(), MAX_ERROR_MESSAGE),
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

/// The result of one check, as workers publish it and every consumer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u16,
    /// Unique per result; redelivered copies carry the same id. A checked result's id is its
    /// key ([`CheckResult::key_id`]): a UUIDv7 of its check time whose other bits stand for
    /// its monitor and region, so that a store can key results on (monitor, region, time)
    /// and give the same id back without keeping it.
    pub id: Uuid,
    pub job_id: Uuid,
    pub monitor_id: Uuid,
    pub monitor_name: String,
    pub url: String,
    pub due_at: DateTime<Utc>,
    /// When the check started (UTC).
    pub checked_at: DateTime<Utc>,
    pub response_time_ms: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CheckError>,
    pub rules: StateRules,
    /// Facts of the check beyond its status (address, certificate, DNS answers, ICMP).
    #[serde(default, skip_serializing_if = "CheckDetails::is_empty")]
    pub details: CheckDetails,
    /// Days before the certificate's expiry at which it is announced (from the job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_expiry_alert_days: Vec<u32>,
    /// Whether the check came during a maintenance window: stored, shown as `maintenance`,
    /// counted neither up nor down, and alerting nothing until the window ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub maintenance: bool,
    /// The region of the worker that made the check ([`DEFAULT_REGION`] for pushes).
    #[serde(default = "default_region")]
    pub region: String,
}

impl CheckResult {
    /// The id of the result of `monitor_id`'s check by `region`'s worker started at
    /// `checked_at`: a UUIDv7 of `checked_at`'s millisecond whose other 74 bits come from a
    /// name-based UUID (v5) of the monitor and region. Ids of one monitor and region sort by
    /// check time, like the fresh UUIDv7s they replace.
    pub fn key_id(monitor_id: Uuid, region: &str, checked_at: DateTime<Utc>) -> Uuid {
        let series = Uuid::new_v5(&monitor_id, region.as_bytes());
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&series.as_bytes()[6..]);
        let millis = u64::try_from(checked_at.timestamp_millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
    }

    /// This result checked at `checked_at` instead, its id following ([`CheckResult::key_id`]).
    pub fn with_checked_at(mut self, checked_at: DateTime<Utc>) -> Self {
        self.checked_at = checked_at;
        self.id = Self::key_id(self.monitor_id, &self.region, checked_at);
        self
    }

    /// This result checked by `region`'s worker instead, its id following
    /// ([`CheckResult::key_id`]).
    pub fn with_region(mut self, region: &str) -> Self {
        self.region = region.to_string();
        self.id = Self::key_id(self.monitor_id, region, self.checked_at);
        self
    }

    /// A result for `job`, its id its key ([`CheckResult::key_id`]).
    pub fn for_job(
        job: &CheckJob,
        checked_at: DateTime<Utc>,
        response_time_ms: u32,
        status_code: Option<u16>,
        outcome: Result<(), CheckError>,
    ) -> Self {
        let (status, error) = match outcome {
            Ok(()) => (CheckStatus::Up, None),
            Err(e) => (CheckStatus::Down, Some(e)),
        };
        CheckResult {
            v: SCHEMA_VERSION,
            id: Self::key_id(job.monitor_id, &job.region, checked_at),
            job_id: job.id,
            monitor_id: job.monitor_id,
            monitor_name: job.monitor_name.clone(),
            url: job.request.url.clone(),
            due_at: job.due_at,
            checked_at,
            response_time_ms,
            status_code,
            status,
            error,
            rules: job.rules,
            details: CheckDetails::default(),
            cert_expiry_alert_days: job.cert_expiry_alert_days.clone(),
            maintenance: job.maintenance,
            region: job.region.clone(),
        }
    }

    /// Marks this result inconclusive: the worker's own network was down (none of its
    /// connectivity targets answered), so it says nothing about the site. What the check saw
    /// stays in the message.
    pub fn into_inconclusive(mut self, why: &str) -> Self {
        let seen = match &self.error {
            Some(e) => format!("{why}; the check saw {e}"),
            None => why.to_string(),
        };
        self.status = CheckStatus::Inconclusive;
        self.error = Some(CheckError::new(ErrorKind::LocalNetwork, seen));
        self
    }

    /// What a check of `monitor` due and started at `at` reports when it took
    /// `response_time_ms` and the site answered HTTP 200 (`up`) or HTTP 503. For simulations
    /// and tests, which need results without running checks.
    pub fn simulated(
        monitor: &Monitor,
        at: DateTime<Utc>,
        up: bool,
        response_time_ms: u32,
    ) -> Self {
        let job = CheckJob::for_monitor(monitor, at);
        let (code, outcome) = if up {
            (200, Ok(()))
        } else {
            (
                503,
                Err(CheckError::new(
                    ErrorKind::StatusMismatch,
                    "got HTTP 503, expected 2xx",
                )),
            )
        };
        CheckResult::for_job(&job, at, response_time_ms, Some(code), outcome)
    }

    /// A push monitor's result: a push that arrived at `at` (up, or down when the job said
    /// so), or its heartbeat missed at `at`. Push results have no job: the id stands in.
    pub fn heartbeat(
        monitor_id: Uuid,
        monitor_name: &str,
        url: &str,
        rules: StateRules,
        at: DateTime<Utc>,
        outcome: Result<(), CheckError>,
    ) -> Self {
        let id = Uuid::now_v7();
        let (status, error) = match outcome {
            Ok(()) => (CheckStatus::Up, None),
            Err(e) => (CheckStatus::Down, Some(e)),
        };
        CheckResult {
            v: SCHEMA_VERSION,
            id,
            job_id: id,
            monitor_id,
            monitor_name: monitor_name.to_string(),
            url: url.to_string(),
            due_at: at,
            checked_at: at,
            response_time_ms: 0,
            status_code: None,
            status,
            error,
            rules,
            details: CheckDetails::default(),
            cert_expiry_alert_days: Vec::new(),
            maintenance: false,
            region: default_region(),
        }
    }

    /// Milliseconds from due time to the start of the check.
    pub fn schedule_lag_ms(&self) -> i64 {
        (self.checked_at - self.due_at).num_milliseconds().max(0)
    }
}

/// Judges an HTTP answer against the request's expectations.
///
/// `body_prefix` is the bounded start of the body, read only when a keyword is set.
pub fn evaluate(
    request: &CheckRequest,
    status: u16,
    body_prefix: Option<&[u8]>,
) -> Result<(), CheckError> {
    if !request.expected_status_codes.matches(status) {
        return Err(CheckError::new(
            ErrorKind::StatusMismatch,
            format!(
                "got HTTP {status}, expected {}",
                request.expected_status_codes
            ),
        ));
    }
    if let Some(keyword) = &request.keyword {
        let found = body_prefix.is_some_and(|body| contains(body, keyword.as_bytes()));
        if !found {
            return Err(CheckError::new(
                ErrorKind::KeywordMissing,
                format!("the response does not contain `{keyword}`"),
            ));
        }
    }
    Ok(())
}

/// Judges what a probe observed against the request: for HTTP the expected status and the
/// keyword first, for DNS a `NOERROR` answer unless a condition names `[DNS_RCODE]`, then
/// every condition in order (`conditions`, the request's as
/// [`CheckRequest::parse_conditions`] gives them). The first failure is the check's error.
pub fn judge(
    request: &CheckRequest,
    conditions: &[Condition],
    observation: &Observation,
) -> Result<(), CheckError> {
    match request.check_type {
        CheckType::Http => {
            if let Some(status) = observation.status_code {
                evaluate(request, status, observation.body.as_deref())?;
            }
        }
        CheckType::Dns => {
            let names_rcode = conditions
                .iter()
                .any(|c| c.placeholders().contains(&Placeholder::DnsRcode));
            if let Some(dns) = &observation.details.dns {
                if !names_rcode && dns.rcode != "NOERROR" {
                    return Err(CheckError::new(
                        ErrorKind::Dns,
                        format!("the resolver answered {}, expected NOERROR", dns.rcode),
                    ));
                }
            }
        }
        _ => {}
    }
    evaluate_all(conditions, observation)
        .map_err(|failed| CheckError::new(ErrorKind::ConditionFailed, failed))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expected::StatusMatcher;

    fn request(keyword: Option<&str>) -> CheckRequest {
        CheckRequest {
            proxy: None,
            url: "http://127.0.0.1/".into(),
            method: "GET".into(),
            headers: BTreeMap::new(),
            body: None,
            timeout_ms: 1000,
            expected_status_codes: ExpectedStatus(vec![StatusMatcher::Range(200, 299)]),
            keyword: keyword.map(str::to_string),
            follow_redirects: true,
            check_type: CheckType::Http,
            conditions: Vec::new(),
            dns: None,
            packets: None,
            tls_skip_verify: false,
            starttls: None,
        }
    }

    #[test]
    fn expected_status_passes_and_others_fail() {
        assert!(evaluate(&request(None), 204, None).is_ok());
        let err = evaluate(&request(None), 503, None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::StatusMismatch);
        assert_eq!(err.message, "got HTTP 503, expected 2xx");
    }

    #[test]
    fn keyword_is_searched_in_the_prefix() {
        let r = request(Some("healthy"));
        assert!(evaluate(&r, 200, Some(b"status: healthy\n")).is_ok());
        assert_eq!(
            evaluate(&r, 200, Some(b"status: sick")).unwrap_err().kind,
            ErrorKind::KeywordMissing
        );
        assert_eq!(
            evaluate(&r, 200, None).unwrap_err().kind,
            ErrorKind::KeywordMissing
        );
        // The status is judged first: a 500 with the keyword is a status mismatch.
        assert_eq!(
            evaluate(&r, 500, Some(b"healthy")).unwrap_err().kind,
            ErrorKind::StatusMismatch
        );
    }

    #[test]
    fn messages_are_bounded_on_char_boundaries() {
        let e = CheckError::new(ErrorKind::Other, "é".repeat(400));
        assert!(e.message.len() <= MAX_ERROR_MESSAGE);
        assert!(e.message.ends_with('…'));
        assert_eq!(truncate("short".into(), 10), "short");
    }

    #[test]
    fn error_kinds_round_trip_as_text() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(ErrorKind::parse("whatever"), ErrorKind::Other);
    }

    #[test]
    fn staleness_is_one_interval_after_due() {
        let m = Monitor::create(
            crate::monitor::MonitorInput {
                url: Some("http://127.0.0.1/".into()),
                interval_seconds: Some(60),
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap();
        let due = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let job = CheckJob::for_monitor(&m, due);
        assert!(!job.is_stale(due + chrono::Duration::seconds(60)));
        assert!(job.is_stale(due + chrono::Duration::milliseconds(60_001)));
        let json = serde_json::to_string(&job).unwrap();
        assert_eq!(serde_json::from_str::<CheckJob>(&json).unwrap(), job);
    }
}
