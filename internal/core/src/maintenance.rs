//! Maintenance windows: planned work that pages nobody and does not count against uptime.
//!
//! A window is either one-off (`start`, `end`) or recurring: an RFC 5545 recurrence rule
//! (`FREQ=WEEKLY;BYDAY=SU;BYHOUR=2`) with a `duration` (`2h`) and an IANA `timezone`
//! (`Europe/Berlin`) in which the rule's hours and days are read. The recurrence itself is
//! expanded by the `rrule` crate; this module decides where the expansion starts, so that
//! finding the occurrence that covers an instant, or the next one, never walks through every
//! past occurrence (see [`Recurrence::anchor`]).
//!
//! # What a rule means here
//!
//! - The rule is the value of an `RRULE` line (an `RRULE:` prefix is accepted), without
//!   `DTSTART`: the window's DTSTART is its creation time in its time zone, truncated to the
//!   minute. Parts the RFC takes from DTSTART when a rule leaves them out are taken from it
//!   (`FREQ=WEEKLY` recurs on the weekday of creation, `FREQ=DAILY` at its hour and minute),
//!   except that a rule naming `BYHOUR` but no `BYMINUTE` starts on the hour (`BYHOUR=2` is
//!   02:00), and seconds are always 0 unless `BYSECOND` says otherwise.
//! - `UNTIL` must be a UTC time (`UNTIL=20261231T235959Z`) and is inclusive.
//! - `COUNT` is refused: it counts from a DTSTART the user never sees (and that a later edit of
//!   the rule does not move), so `UNTIL` is the way to end a rule. `FREQ=SECONDLY` is refused
//!   too: windows recur at most every minute. So is `FREQ=MINUTELY` with `BYHOUR` or
//!   `BYMINUTE`, which the crate does not expand on the INTERVAL's grid; `FREQ=DAILY` or
//!   `FREQ=HOURLY` with `BYHOUR` and `BYMINUTE` lists say the same.
//! - Local times that a daylight-saving change skips or repeats follow the `rrule` crate: a
//!   skipped time (02:30 on the spring-forward night in Europe) is shifted forward by the
//!   length of the gap (to 03:30 summer time, the same instant as 02:30 winter time would have
//!   been), and a repeated time (02:30 on the fall-back night) is its first, summer-time
//!   instance. Hourly and minutely rules step on the local wall clock, as the crate does: on the
//!   fall-back night their occurrences of the repeated hour fall on its first pass, and on the
//!   spring-forward night two wall-clock times can name one instant, which is then one
//!   occurrence. Occurrences are therefore the crate's, each kept only when it is later than
//!   every one before it.

use std::ops::ControlFlow;

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone,
    Timelike, Utc, Weekday,
};
use rrule::{Frequency, NWeekday, RRule, RRuleError, RRuleSet, Unvalidated};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::monitor::{merge_patch, ValidationError, MAX_GROUP_CHARS};
use crate::span::{format_span, parse_span};

/// The longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Occurrences looked at, from the window's creation or last change on, to find the shortest
/// gap between two of them that the duration must fit in.
const GAP_SAMPLE: usize = 50;
/// How far from a change of the time zone's UTC offset an anchor must be. The crate maps local
/// times that a change skips or repeats at most the size of the change (an hour, two in some
/// historical zones) away from where the wall clock puts them, so away from changes the
/// occurrences before an anchor and those after it do not mix.
const TRANSITION_GUARD: TimeDelta = TimeDelta::hours(3);
/// Attempts at finding an anchor before falling back to DTSTART itself (correct, only slower).
const ANCHOR_ATTEMPTS: usize = 16;
/// The most occurrences a rule may have within one of its periods (FREQ × INTERVAL). The
/// crate expands a period at a time, so this bounds the work of every question about the
/// window; `FREQ=DAILY;BYHOUR=…;BYMINUTE=…` stays well within it (at most 1440 a day).
pub const MAX_OCCURRENCES_PER_PERIOD: usize = 10_000;

/// What a client sends to create or replace a maintenance window.
///
/// Either `start` and `end` (one-off) or `rrule`, `duration` and `timezone` (recurring).
/// Unknown fields are refused so that a typo is an error rather than an ignored setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Database upgrade", "groups": ["API"],
    "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "duration": "2h", "timezone": "Europe/Berlin"
}))]
pub struct MaintenanceInput {
    /// A short name, shown on the dashboard and status page (1 to 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What is done and why (at most 2000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Monitors the window covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_ids: Option<Vec<Uuid>>,
    /// Monitor groups the window covers: every monitor in one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// True covers every monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Start of a one-off window (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// End of a one-off window (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// RFC 5545 recurrence rule of a recurring window, without DTSTART:
    /// `FREQ=WEEKLY;BYDAY=SU;BYHOUR=2`. End it with `UNTIL=…Z`; `COUNT` is not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2")]
    pub rrule: Option<String>,
    /// How long each occurrence lasts: `90m`, `2h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2h")]
    pub duration: Option<String>,
    /// IANA time zone in which the rule's days and hours are read: `Europe/Berlin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
}

/// When a window applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MaintenanceSchedule {
    /// From `start` (inclusive) to `end` (exclusive).
    Once {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Every occurrence of `rrule` in `timezone`, for `duration_seconds`.
    Recurring {
        /// The rule as given, trimmed and without an `RRULE:` prefix.
        rrule: String,
        duration_seconds: u64,
        /// The IANA name of the time zone.
        timezone: String,
    },
}

/// A maintenance window, as stored and as the API returns it.
///
/// It serializes flat, with the input's field names (`start`/`end` or
/// `rrule`/`duration`/`timezone`, the others `null`) plus `id`, `created_at` and `updated_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "MaintenanceRepr", try_from = "MaintenanceRepr")]
pub struct Maintenance {
    /// Stable identifier (UUIDv7).
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    /// Covers every monitor.
    pub all: bool,
    /// Covered monitors, sorted, each once.
    pub monitor_ids: Vec<Uuid>,
    /// Covered monitor groups, sorted, each once.
    pub groups: Vec<String>,
    pub schedule: MaintenanceSchedule,
    /// Also the DTSTART of a recurring rule (in its time zone, truncated to the minute).
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One occurrence of a window: from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Occurrence {
    /// Whether `at` is within this occurrence (start inclusive, end exclusive).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// The flat form of [`Maintenance`] that the API shows and the stores keep.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": "0190f5a4-6a47-7c1e-9a8b-3c2d1e0f9a7b", "title": "Database upgrade",
    "description": null, "all": false, "monitor_ids": [], "groups": ["API"],
    "start": null, "end": null,
    "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "duration": "2h", "timezone": "Europe/Berlin",
    "created_at": "2026-11-27T12:00:00Z", "updated_at": "2026-11-27T12:00:00Z"
}))]
struct MaintenanceRepr {
    /// Stable identifier (UUIDv7).
    id: Uuid,
    /// A short name.
    title: String,
    /// What is done and why.
    #[serde(default)]
    description: Option<String>,
    /// True covers every monitor.
    #[serde(default)]
    all: bool,
    /// Covered monitors.
    #[serde(default)]
    monitor_ids: Vec<Uuid>,
    /// Covered monitor groups.
    #[serde(default)]
    groups: Vec<String>,
    /// Start of a one-off window (inclusive); `null` for a recurring one.
    #[serde(default)]
    start: Option<DateTime<Utc>>,
    /// End of a one-off window (exclusive); `null` for a recurring one.
    #[serde(default)]
    end: Option<DateTime<Utc>>,
    /// Recurrence rule of a recurring window; `null` for a one-off one.
    #[serde(default)]
    rrule: Option<String>,
    /// Length of each occurrence of a recurring window (`2h`); `null` for a one-off one.
    #[serde(default)]
    duration: Option<String>,
    /// IANA time zone of a recurring window; `null` for a one-off one.
    #[serde(default)]
    timezone: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Maintenance> for MaintenanceRepr {
    fn from(m: Maintenance) -> Self {
        let (start, end, rrule, duration, timezone) = match m.schedule {
            MaintenanceSchedule::Once { start, end } => (Some(start), Some(end), None, None, None),
            MaintenanceSchedule::Recurring {
                rrule,
                duration_seconds,
                timezone,
            } => (
                None,
                None,
                Some(rrule),
                Some(format_span(seconds(duration_seconds))),
                Some(timezone),
            ),
        };
        MaintenanceRepr {
            id: m.id,
            title: m.title,
            description: m.description,
            all: m.all,
            monitor_ids: m.monitor_ids,
            groups: m.groups,
            start,
            end,
            rrule,
            duration,
            timezone,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl TryFrom<MaintenanceRepr> for Maintenance {
    type Error = String;

    /// Reads a stored or returned window back. Only its shape is checked: a window that was
    /// valid when saved stays readable even if, say, its rule has stopped occurring.
    fn try_from(r: MaintenanceRepr) -> Result<Self, String> {
        let schedule = match (r.start, r.end, r.rrule, r.duration, r.timezone) {
            (Some(start), Some(end), None, None, None) => MaintenanceSchedule::Once { start, end },
            (None, None, Some(rrule), Some(duration), Some(timezone)) => {
                let duration = parse_span(&duration)
                    .ok_or_else(|| format!("`duration` `{duration}` is not a span like `2h`"))?;
                MaintenanceSchedule::Recurring {
                    rrule,
                    duration_seconds: duration.num_seconds() as u64,
                    timezone,
                }
            }
            _ => {
                return Err(
                    "a maintenance window has either `start` and `end` or `rrule`, `duration` \
                     and `timezone`"
                        .to_string(),
                )
            }
        };
        Ok(Maintenance {
            id: r.id,
            title: r.title,
            description: r.description,
            all: r.all,
            monitor_ids: r.monitor_ids,
            groups: r.groups,
            schedule,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl utoipa::PartialSchema for Maintenance {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <MaintenanceRepr as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Maintenance {}

fn seconds(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1_000))
}

impl MaintenanceInput {
    /// Validates the input, giving a window with the given identity and times.
    ///
    /// A recurring rule is read from `created_at` on (its DTSTART), and must occur at least
    /// once more after `updated_at` (the time of this change).
    pub fn into_maintenance(
        self,
        id: Uuid,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Result<Maintenance, ValidationError> {
        let title = match self.title {
            None => {
                return Err(ValidationError::new(
                    "title",
                    "is required: a short name for the window, such as `Database upgrade`",
                ))
            }
            Some(title) => title.trim().to_string(),
        };
        if title.is_empty() {
            return Err(ValidationError::new("title", "must not be empty"));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(ValidationError::new(
                "title",
                format!("must be at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        let description = self
            .description
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            return Err(ValidationError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        let mut monitor_ids = self.monitor_ids.unwrap_or_default();
        monitor_ids.sort();
        monitor_ids.dedup();
        let groups = validate_groups(self.groups.unwrap_or_default())?;
        let all = self.all.unwrap_or(false);
        if !all && monitor_ids.is_empty() && groups.is_empty() {
            return Err(ValidationError::new(
                "monitor_ids",
                "say what the window covers: `monitor_ids`, `groups` or `\"all\": true`",
            ));
        }
        let once = self.start.is_some() || self.end.is_some();
        let recurring = self.rrule.is_some() || self.duration.is_some() || self.timezone.is_some();
        let schedule = match (once, recurring) {
            (true, true) => {
                let field = if self.rrule.is_some() {
                    "rrule"
                } else if self.duration.is_some() {
                    "duration"
                } else {
                    "timezone"
                };
                return Err(ValidationError::new(
                    field,
                    "cannot be given together with `start` and `end`: a window is either \
                     one-off (`start`, `end`) or recurring (`rrule`, `duration`, `timezone`)",
                ));
            }
            (false, false) => {
                return Err(ValidationError::new(
                    "start",
                    "is required: give `start` and `end` for a one-off window, or `rrule`, \
                     `duration` and `timezone` for a recurring one",
                ))
            }
            (true, false) => {
                let start = self.start.ok_or_else(|| {
                    ValidationError::new("start", "is required with `end`: when the window begins")
                })?;
                let end = self.end.ok_or_else(|| {
                    ValidationError::new("end", "is required with `start`: when the window ends")
                })?;
                if end <= start {
                    return Err(ValidationError::new(
                        "end",
                        format!("must be after `start` ({end} is not after {start})"),
                    ));
                }
                MaintenanceSchedule::Once { start, end }
            }
            (false, true) => {
                let rule = self.rrule.ok_or_else(|| {
                    ValidationError::new(
                        "rrule",
                        "is required with `duration` and `timezone`: a recurrence rule such as \
                         `FREQ=WEEKLY;BYDAY=SU;BYHOUR=2`",
                    )
                })?;
                let duration = self.duration.ok_or_else(|| {
                    ValidationError::new(
                        "duration",
                        "is required with `rrule`: how long each occurrence lasts, such as `2h`",
                    )
                })?;
                let timezone = self.timezone.ok_or_else(|| {
                    ValidationError::new(
                        "timezone",
                        "is required with `rrule`: the IANA time zone its hours are read in, \
                         such as `Europe/Berlin`",
                    )
                })?;
                validate_recurring(&rule, &duration, &timezone, created_at, updated_at)?
            }
        };
        Ok(Maintenance {
            id,
            title,
            description,
            all,
            monitor_ids,
            groups,
            schedule,
            created_at,
            updated_at,
        })
    }
}

fn validate_groups(groups: Vec<String>) -> Result<Vec<String>, ValidationError> {
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let group = group.trim().to_string();
        if group.is_empty() {
            return Err(ValidationError::new(
                "groups",
                "must not contain an empty group name",
            ));
        }
        if group.chars().count() > MAX_GROUP_CHARS {
            return Err(ValidationError::new(
                "groups",
                format!("names must be at most {MAX_GROUP_CHARS} characters"),
            ));
        }
        if group.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "groups",
                "names must not contain control characters",
            ));
        }
        out.push(group);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Checks a recurring schedule as a whole: the zone, the rule, the duration, and that the rule
/// occurs again with room for the duration between two occurrences.
fn validate_recurring(
    rule: &str,
    duration: &str,
    timezone: &str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Result<MaintenanceSchedule, ValidationError> {
    let tz = parse_timezone(timezone).map_err(|m| ValidationError::new("timezone", m))?;
    let rule = strip_rule(rule);
    check_rule_text(rule).map_err(|m| ValidationError::new("rrule", m))?;
    let span = parse_span(duration.trim()).ok_or_else(|| {
        ValidationError::new(
            "duration",
            format!(
                "must be a positive span such as `90m`, `2h` or `1d` (a whole number and one of \
                 s, m, h, d), not `{duration}`"
            ),
        )
    })?;
    let recurrence = Recurrence::new(rule, tz, span, created_at)
        .map_err(|m| ValidationError::new("rrule", m))?;
    let mut starts = Vec::with_capacity(GAP_SAMPLE);
    let after = updated_at.max(created_at);
    recurrence.scan(after - span, |start| {
        if start + span > after {
            starts.push(start);
        }
        if starts.len() >= GAP_SAMPLE {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if starts.is_empty() {
        return Err(ValidationError::new(
            "rrule",
            format!(
                "never occurs after {}: check its BYxxx parts and UNTIL",
                after.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ));
    }
    let period = recurrence.period_upper_bound();
    let mut dense = 0;
    recurrence.scan(after, |start| {
        if start >= after + period {
            return ControlFlow::Break(());
        }
        dense += 1;
        if dense > MAX_OCCURRENCES_PER_PERIOD {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if dense > MAX_OCCURRENCES_PER_PERIOD {
        return Err(ValidationError::new(
            "rrule",
            format!(
                "occurs more than {MAX_OCCURRENCES_PER_PERIOD} times within {}, too often to \
                 evaluate cheaply: use a shorter FREQ with the same BYxxx parts, such as \
                 `FREQ=DAILY;BYHOUR=2,3;BYMINUTE=0,15,30,45`",
                format_span(period)
            ),
        ));
    }
    if let Some((gap, at)) = starts
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .min_by_key(|(gap, _)| *gap)
    {
        if span > gap {
            return Err(ValidationError::new(
                "duration",
                format!(
                    "{} is longer than the {} between two occurrences (from {}), so occurrences \
                     would overlap",
                    format_span(span),
                    format_span(gap),
                    at.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            ));
        }
    }
    Ok(MaintenanceSchedule::Recurring {
        rrule: rule.to_string(),
        duration_seconds: span.num_seconds() as u64,
        timezone: tz.name().to_string(),
    })
}

fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "must be a time zone name from the IANA database, such as `Europe/Berlin`, \
             `America/New_York` or `UTC`, not `{name}`"
        )
    })
}

/// The rule without surrounding space and without an `RRULE:` prefix.
fn strip_rule(rule: &str) -> &str {
    let rule = rule.trim();
    match rule.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("RRULE:") => rule[6..].trim(),
        _ => rule,
    }
}

/// Refuses what the crate would accept but this module does not: several lines (DTSTART,
/// EXDATE), `COUNT`, `UNTIL` in floating local time (the crate would read it in the machine's
/// zone) and `FREQ=SECONDLY`.
fn check_rule_text(rule: &str) -> Result<(), String> {
    if rule.is_empty() {
        return Err(
            "must not be empty: give a rule such as `FREQ=WEEKLY;BYDAY=SU;BYHOUR=2`".into(),
        );
    }
    if rule.contains(['\n', '\r', ':']) {
        return Err(
            "must be the value of one RRULE line, such as `FREQ=WEEKLY;BYDAY=SU;BYHOUR=2`, \
             without DTSTART or other lines: the window starts recurring when it is created"
                .into(),
        );
    }
    for part in rule.split(';') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let key = key.trim().to_ascii_uppercase();
        match key.as_str() {
            "COUNT" => {
                return Err(
                    "must not use COUNT (it would count from the window's creation, which the \
                     rule does not show): end the rule with `UNTIL=20261231T235959Z` instead"
                        .into(),
                )
            }
            "UNTIL" if !value.trim().ends_with('Z') => {
                return Err(format!(
                    "must give UNTIL in UTC, ending in Z, such as `UNTIL=20261231T235959Z`, \
                     not `{value}`"
                ))
            }
            "FREQ" if value.trim().eq_ignore_ascii_case("SECONDLY") => {
                return Err(
                    "must not use FREQ=SECONDLY: maintenance windows recur at most every minute \
                     (FREQ=MINUTELY)"
                        .into(),
                )
            }
            "INTERVAL" if value.trim().parse::<u16>() == Ok(0) => {
                return Err("must not use INTERVAL=0: the smallest interval is 1".into())
            }
            _ => {}
        }
    }
    Ok(())
}

/// The crate's reason for refusing a rule, in words, without its own prefix.
fn rrule_reason(error: &RRuleError) -> String {
    match error {
        RRuleError::ParserError(e) => e.to_string(),
        RRuleError::ValidationError(e) => e.to_string(),
        RRuleError::IterError(e) => e.clone(),
    }
}

impl Maintenance {
    /// Creates a window from client input with a fresh id.
    pub fn create(
        input: MaintenanceInput,
        now: DateTime<Utc>,
    ) -> Result<Maintenance, ValidationError> {
        input.into_maintenance(Uuid::now_v7(), now, now)
    }

    /// The input that would recreate this window.
    pub fn to_input(&self) -> MaintenanceInput {
        let mut input = MaintenanceInput {
            title: Some(self.title.clone()),
            description: self.description.clone(),
            monitor_ids: Some(self.monitor_ids.clone()),
            groups: Some(self.groups.clone()),
            all: Some(self.all),
            ..MaintenanceInput::default()
        };
        match &self.schedule {
            MaintenanceSchedule::Once { start, end } => {
                input.start = Some(*start);
                input.end = Some(*end);
            }
            MaintenanceSchedule::Recurring {
                rrule,
                duration_seconds,
                timezone,
            } => {
                input.rrule = Some(rrule.clone());
                input.duration = Some(format_span(seconds(*duration_seconds)));
                input.timezone = Some(timezone.clone());
            }
        }
        input
    }

    /// Applies a JSON merge patch (RFC 7396) and validates the result as a whole.
    ///
    /// `null` clears a field: turning a one-off window into a recurring one takes
    /// `{"start": null, "end": null, "rrule": …, "duration": …, "timezone": …}`. The id and
    /// creation time cannot be patched.
    pub fn apply_patch(
        &self,
        patch: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Maintenance, ValidationError> {
        if !patch.is_object() {
            return Err(ValidationError::new(
                "",
                "a patch must be a JSON object of the fields to change",
            ));
        }
        let mut base = serde_json::to_value(self.to_input()).expect("maintenance input serializes");
        merge_patch(&mut base, patch);
        let input: MaintenanceInput =
            serde_json::from_value(base).map_err(|e| ValidationError::new("", e.to_string()))?;
        input.into_maintenance(self.id, self.created_at, now)
    }

    /// Whether the window applies to a monitor with this id and group.
    pub fn covers(&self, monitor_id: Uuid, group: Option<&str>) -> bool {
        self.all
            || self.monitor_ids.contains(&monitor_id)
            || group.is_some_and(|g| self.groups.iter().any(|own| own == g))
    }

    /// The occurrence covering `at` (`start <= at < end`), if any. Should two overlap there
    /// (a daylight-saving change can shorten a gap), the later-starting one.
    pub fn active_at(&self, at: DateTime<Utc>) -> Option<Occurrence> {
        self.active_at_counted(at).0
    }

    /// The first occurrence starting strictly after `at`.
    pub fn next_after(&self, at: DateTime<Utc>) -> Option<Occurrence> {
        self.next_after_counted(at).0
    }

    /// Occurrences overlapping `[from, to)` (including one already under way at `from`), by
    /// start, at most `limit` of them: "upcoming in the next 7 days".
    pub fn occurrences_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<Occurrence> {
        self.occurrences_between_counted(from, to, limit).0
    }

    /// The recurrence of a recurring window; `None` for a one-off window, or for a stored rule
    /// that no longer reads (which then never occurs).
    fn recurrence(&self) -> Option<Recurrence> {
        let MaintenanceSchedule::Recurring {
            rrule,
            duration_seconds,
            timezone,
        } = &self.schedule
        else {
            return None;
        };
        let tz = parse_timezone(timezone).ok()?;
        let rule = strip_rule(rrule);
        check_rule_text(rule).ok()?;
        Recurrence::new(rule, tz, seconds(*duration_seconds), self.created_at).ok()
    }

    /// [`Maintenance::active_at`], with the number of occurrences the crate produced.
    fn active_at_counted(&self, at: DateTime<Utc>) -> (Option<Occurrence>, usize) {
        match &self.schedule {
            MaintenanceSchedule::Once { start, end } => {
                let o = Occurrence {
                    start: *start,
                    end: *end,
                };
                (o.contains(at).then_some(o), 0)
            }
            MaintenanceSchedule::Recurring { .. } => {
                let Some(r) = self.recurrence() else {
                    return (None, 0);
                };
                let mut found = None;
                let steps = r.scan(at - r.duration, |start| {
                    if start > at {
                        return ControlFlow::Break(());
                    }
                    let o = r.occurrence(start);
                    if o.contains(at) {
                        found = Some(o);
                    }
                    ControlFlow::Continue(())
                });
                (found, steps)
            }
        }
    }

    fn next_after_counted(&self, at: DateTime<Utc>) -> (Option<Occurrence>, usize) {
        match &self.schedule {
            MaintenanceSchedule::Once { start, end } => (
                (*start > at).then_some(Occurrence {
                    start: *start,
                    end: *end,
                }),
                0,
            ),
            MaintenanceSchedule::Recurring { .. } => {
                let Some(r) = self.recurrence() else {
                    return (None, 0);
                };
                let mut found = None;
                let steps = r.scan(at, |start| {
                    if start > at {
                        found = Some(r.occurrence(start));
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                });
                (found, steps)
            }
        }
    }

    fn occurrences_between_counted(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> (Vec<Occurrence>, usize) {
        if limit == 0 || to <= from {
            return (Vec::new(), 0);
        }
        match &self.schedule {
            MaintenanceSchedule::Once { start, end } => {
                let o = Occurrence {
                    start: *start,
                    end: *end,
                };
                let overlaps = o.end > from && o.start < to;
                (if overlaps { vec![o] } else { Vec::new() }, 0)
            }
            MaintenanceSchedule::Recurring { .. } => {
                let Some(r) = self.recurrence() else {
                    return (Vec::new(), 0);
                };
                let mut out = Vec::new();
                let steps = r.scan(from - r.duration, |start| {
                    if start >= to {
                        return ControlFlow::Break(());
                    }
                    let o = r.occurrence(start);
                    if o.end > from {
                        out.push(o);
                        if out.len() >= limit {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                });
                (out, steps)
            }
        }
    }
}

/// A parsed recurring schedule, ready to be expanded from any point in time.
struct Recurrence {
    tz: chrono_tz::Tz,
    /// The rule with every part that the crate would take from DTSTART written out, so that
    /// expanding it from a later anchor gives the same times (see [`Recurrence::anchor`]).
    rule: RRule<Unvalidated>,
    freq: Frequency,
    interval: i64,
    week_start: Weekday,
    until: Option<DateTime<Utc>>,
    /// DTSTART: the creation time in the window's zone, truncated to the minute.
    dtstart: DateTime<chrono_tz::Tz>,
    duration: TimeDelta,
}

impl Recurrence {
    /// Parses and normalises `rule` (already stripped and checked by [`check_rule_text`]),
    /// with DTSTART at `created_at`. The error is the crate's reason, in words.
    fn new(
        rule: &str,
        tz: chrono_tz::Tz,
        duration: TimeDelta,
        created_at: DateTime<Utc>,
    ) -> Result<Recurrence, String> {
        let parsed: RRule<Unvalidated> = rule.parse().map_err(|e| {
            format!(
                "is not a recurrence rule: {} (write one such as `FREQ=WEEKLY;BYDAY=SU;BYHOUR=2`)",
                rrule_reason(&e)
            )
        })?;
        let ts = created_at.timestamp();
        let dtstart = DateTime::from_timestamp(ts - ts.rem_euclid(60), 0)
            .expect("a minute of a valid time is valid")
            .with_timezone(&tz);
        let freq = parsed.get_freq();
        if freq == Frequency::Secondly || parsed.get_count().is_some() {
            return Err("uses COUNT or FREQ=SECONDLY, which are not supported".into());
        }
        let interval = i64::from(parsed.get_interval());
        if interval == 0 {
            return Err("must not use INTERVAL=0".into());
        }
        // The crate steps a minutely rule with BYHOUR or BYMINUTE hour by hour once the minutes
        // overflow, which leaves the INTERVAL's grid (INTERVAL=21;BYHOUR=0 starts at 00:03 on
        // some days) and makes the occurrences depend on where the expansion starts.
        if freq == Frequency::Minutely
            && !(parsed.get_by_hour().is_empty() && parsed.get_by_minute().is_empty())
        {
            return Err(
                "must not combine FREQ=MINUTELY with BYHOUR or BYMINUTE: list the times with \
                 FREQ=DAILY or FREQ=HOURLY instead, such as \
                 `FREQ=DAILY;BYHOUR=2,3;BYMINUTE=0,15,30,45`"
                    .into(),
            );
        }
        let rule = normalise(parsed, &dtstart);
        // Validating against DTSTART gives the crate's own reasons (BYMONTHDAY with WEEKLY,
        // UNTIL before the start, …).
        rule.clone()
            .validate(dtstart.with_timezone(&rrule::Tz::Tz(tz)))
            .map_err(|e| format!("cannot be used: {}", rrule_reason(&e)))?;
        Ok(Recurrence {
            tz,
            week_start: rule.get_week_start(),
            until: rule.get_until().map(|u| u.with_timezone(&Utc)),
            rule,
            freq,
            interval,
            dtstart,
            duration,
        })
    }

    /// At least the length of one of the rule's periods (FREQ × INTERVAL).
    fn period_upper_bound(&self) -> TimeDelta {
        let unit = match self.freq {
            Frequency::Yearly => TimeDelta::days(366),
            Frequency::Monthly => TimeDelta::days(31),
            Frequency::Weekly => TimeDelta::days(7),
            Frequency::Daily => TimeDelta::hours(25),
            Frequency::Hourly => TimeDelta::hours(2),
            Frequency::Minutely | Frequency::Secondly => TimeDelta::minutes(1),
        };
        unit * i32::try_from(self.interval).unwrap_or(i32::MAX)
    }

    fn occurrence(&self, start: DateTime<Utc>) -> Occurrence {
        Occurrence {
            start,
            end: start + self.duration,
        }
    }

    /// Feeds the starts of the occurrences from about `lower` on, in increasing order, to
    /// `visit` until it breaks or they run out. Starts before `lower` may be fed too (those of
    /// the anchor's period); none at or after `lower` is left out. Returns how many date-times
    /// the crate produced, the measure of the work done.
    fn scan(
        &self,
        lower: DateTime<Utc>,
        mut visit: impl FnMut(DateTime<Utc>) -> ControlFlow<()>,
    ) -> usize {
        let anchor = self.anchor(lower);
        if self.until.is_some_and(|until| until < anchor) {
            return 0;
        }
        let rtz = rrule::Tz::Tz(self.tz);
        let anchor = anchor.with_timezone(&rtz);
        let Ok(rule) = self.rule.clone().validate(anchor) else {
            return 0;
        };
        let set = RRuleSet::new(anchor).rrule(rule).limit();
        let mut steps = 0;
        let mut last: Option<DateTime<Utc>> = None;
        for start in &set {
            steps += 1;
            let start = start.with_timezone(&Utc);
            // Keep each occurrence only when it is later than all before it: around a
            // daylight-saving change two wall-clock times can name one instant.
            if last.is_some_and(|last| start <= last) {
                continue;
            }
            last = Some(start);
            if visit(start).is_break() {
                break;
            }
        }
        steps
    }

    /// Where to start expanding the rule so that every occurrence at or after `lower` is found
    /// without expanding the ones before: DTSTART moved forward by a whole number of the rule's
    /// periods (FREQ × INTERVAL), to the start of the last such period that begins at or before
    /// `lower`.
    ///
    /// Why the occurrences stay the same: the crate walks the rule period by period on the
    /// local wall clock of the window's zone, starting with DTSTART's period and stepping
    /// INTERVAL years, months, weeks (to the WKST day), days, hours or minutes at a time. Within
    /// a period, the candidates depend only on the rule's BYxxx parts and on which period it
    /// is, once the parts the crate would otherwise take from DTSTART (the weekday of a WEEKLY
    /// rule, the day of a MONTHLY one, the hour and minute of a daily or longer one, …) are
    /// written into the rule, as [`normalise`] does. (Minutely rules with BYHOUR or BYMINUTE,
    /// which the crate does not walk on such a grid, are refused.) So a DTSTART moved by k × INTERVAL whole
    /// periods (k × INTERVAL weeks, never a number of weeks that breaks an INTERVAL=2 cycle)
    /// lands on a period of the original walk, and from there the walk and its candidates are
    /// the original ones; only candidates before the new DTSTART are dropped, and those are
    /// before `lower`. The moved DTSTART is the very start of its period (the WKST day at 00:00
    /// for WEEKLY, the 1st at 00:00 for MONTHLY, …), because the crate expands only the rest of
    /// a week from DTSTART on, which would change what BYSETPOS picks in that first week;
    /// months, years, days, hours and minutes are always expanded whole. The original first
    /// period, partial or not, is never the moved one: before the second period, DTSTART
    /// itself is used. UNTIL bounds both walks alike. COUNT, which would need the number of
    /// occurrences skipped, is refused. The anchor is also kept 3 hours away from any change of
    /// the zone's UTC offset, where the crate maps skipped or repeated local times up to the
    /// size of the change away, so that no occurrence moves across it.
    ///
    /// The cost is a few date computations, plus expanding the occurrences between the anchor
    /// and `lower`: those of about one period (six hours more for an hourly or minutely rule
    /// near a daylight-saving change), however long ago DTSTART was.
    fn anchor(&self, lower: DateTime<Utc>) -> DateTime<chrono_tz::Tz> {
        let d0 = self.dtstart;
        if lower <= d0.with_timezone(&Utc) {
            return d0;
        }
        let t = lower.with_timezone(&self.tz).naive_local();
        let s = d0.naive_local();
        let periods = match self.freq {
            Frequency::Yearly => i64::from(t.year() - s.year()),
            Frequency::Monthly => month_index(t.date()) - month_index(s.date()),
            Frequency::Weekly => (week_start(t.date(), self.week_start)
                - week_start(s.date(), self.week_start))
            .num_days()
            .div_euclid(7),
            Frequency::Daily => (t.date() - s.date()).num_days(),
            Frequency::Hourly => (t - truncate_hour(s)).num_seconds().div_euclid(3_600),
            Frequency::Minutely | Frequency::Secondly => (t - s).num_seconds().div_euclid(60),
        };
        // Steps of k back past an offset change near the anchor: at least twice the guard.
        let guard_jump = match self.freq {
            Frequency::Hourly => 2 * TRANSITION_GUARD.num_hours() / self.interval + 1,
            Frequency::Minutely | Frequency::Secondly => {
                2 * TRANSITION_GUARD.num_minutes() / self.interval + 1
            }
            _ => 1,
        };
        let mut k = periods.div_euclid(self.interval);
        for _ in 0..ANCHOR_ATTEMPTS {
            if k <= 0 {
                return d0;
            }
            let Some(naive) = self.period_start(k * self.interval) else {
                return d0;
            };
            let Some(anchor) = self.tz.from_local_datetime(&naive).single() else {
                k -= 1;
                continue;
            };
            if anchor.with_timezone(&Utc) > lower {
                k -= 1;
                continue;
            }
            if self.near_offset_change(anchor.with_timezone(&Utc)) {
                k -= guard_jump;
                continue;
            }
            return anchor;
        }
        d0
    }

    /// The local start of the period `periods` periods (of FREQ, not of FREQ × INTERVAL) after
    /// DTSTART's.
    fn period_start(&self, periods: i64) -> Option<NaiveDateTime> {
        let s = self.dtstart.naive_local();
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
        match self.freq {
            Frequency::Yearly => {
                let year = i32::try_from(i64::from(s.year()) + periods).ok()?;
                midnight(NaiveDate::from_ymd_opt(year, 1, 1)?)
            }
            Frequency::Monthly => {
                let first = NaiveDate::from_ymd_opt(s.year(), s.month(), 1)?;
                midnight(first.checked_add_months(Months::new(u32::try_from(periods).ok()?))?)
            }
            Frequency::Weekly => midnight(
                week_start(s.date(), self.week_start)
                    .checked_add_days(Days::new(u64::try_from(periods).ok()?.checked_mul(7)?))?,
            ),
            Frequency::Daily => midnight(
                s.date()
                    .checked_add_days(Days::new(u64::try_from(periods).ok()?))?,
            ),
            Frequency::Hourly => {
                truncate_hour(s).checked_add_signed(TimeDelta::try_hours(periods)?)
            }
            Frequency::Minutely | Frequency::Secondly => {
                s.checked_add_signed(TimeDelta::try_minutes(periods)?)
            }
        }
    }

    /// Whether the zone's UTC offset changes within [`TRANSITION_GUARD`] of `at`.
    fn near_offset_change(&self, at: DateTime<Utc>) -> bool {
        let offset = |t: DateTime<Utc>| self.tz.offset_from_utc_datetime(&t.naive_utc()).fix();
        offset(at - TRANSITION_GUARD) != offset(at + TRANSITION_GUARD)
    }
}

/// Writes out the parts of `rule` that the crate would take from DTSTART, as RFC 5545 says,
/// except that a rule with BYHOUR but no BYMINUTE starts on the hour and seconds are 0.
fn normalise(rule: RRule<Unvalidated>, dtstart: &DateTime<chrono_tz::Tz>) -> RRule<Unvalidated> {
    let freq = rule.get_freq();
    let has_day_parts = !rule.get_by_week_no().is_empty()
        || !rule.get_by_year_day().is_empty()
        || !rule.get_by_month_day().is_empty()
        || !rule.get_by_weekday().is_empty();
    let user_hours = !rule.get_by_hour().is_empty();
    let mut rule = rule;
    if !has_day_parts {
        // `as u8`/`as i8` are safe: months are 1..=12 and days 1..=31.
        match freq {
            Frequency::Yearly => {
                if rule.get_by_month().is_empty() {
                    let month = chrono::Month::try_from(dtstart.month() as u8)
                        .expect("a date's month is a month");
                    rule = rule.by_month(&[month]);
                }
                rule = rule.by_month_day(vec![dtstart.day() as i8]);
            }
            Frequency::Monthly => rule = rule.by_month_day(vec![dtstart.day() as i8]),
            Frequency::Weekly => rule = rule.by_weekday(vec![NWeekday::Every(dtstart.weekday())]),
            _ => {}
        }
    }
    if !user_hours && freq < Frequency::Hourly {
        rule = rule.by_hour(vec![dtstart.hour() as u8]);
    }
    if rule.get_by_minute().is_empty() && freq < Frequency::Minutely {
        let minute = if user_hours {
            0
        } else {
            dtstart.minute() as u8
        };
        rule = rule.by_minute(vec![minute]);
    }
    if rule.get_by_second().is_empty() && freq < Frequency::Secondly {
        rule = rule.by_second(vec![0]);
    }
    rule
}

fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

/// The first day (`wkst`) of the week that holds `d`.
fn week_start(d: NaiveDate, wkst: Weekday) -> NaiveDate {
    let back = (d.weekday().num_days_from_monday() + 7 - wkst.num_days_from_monday()) % 7;
    d - Days::new(u64::from(back))
}

fn truncate_hour(t: NaiveDateTime) -> NaiveDateTime {
    t.date()
        .and_hms_opt(t.hour(), 0, 0)
        .expect("the start of an hour exists")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn create_at(value: serde_json::Value, now: &str) -> Result<Maintenance, ValidationError> {
        let input: MaintenanceInput =
            serde_json::from_value(value).map_err(|e| ValidationError::new("", e.to_string()))?;
        Maintenance::create(input, utc(now))
    }

    fn recurring(rule: &str, duration: &str, tz: &str, created: &str) -> Maintenance {
        create_at(
            json!({"title": "t", "all": true, "rrule": rule, "duration": duration, "timezone": tz}),
            created,
        )
        .unwrap_or_else(|e| panic!("{rule} {duration} {tz}: {e}"))
    }

    fn starts(occurrences: &[Occurrence]) -> Vec<DateTime<Utc>> {
        occurrences.iter().map(|o| o.start).collect()
    }

    fn occ(start: &str, end: &str) -> Occurrence {
        Occurrence {
            start: utc(start),
            end: utc(end),
        }
    }

    /// The occurrences overlapping `[from, to)` as the crate gives them from DTSTART itself,
    /// without any anchor: what [`Recurrence::anchor`] must not change.
    fn reference(m: &Maintenance, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Occurrence> {
        let r = m.recurrence().unwrap();
        let d0 = r.dtstart.with_timezone(&rrule::Tz::Tz(r.tz));
        let set = RRuleSet::new(d0)
            .rrule(r.rule.clone().validate(d0).unwrap())
            .limit();
        let mut out = Vec::new();
        let mut last: Option<DateTime<Utc>> = None;
        for start in &set {
            let start = start.with_timezone(&Utc);
            if last.is_some_and(|last| start <= last) {
                continue;
            }
            last = Some(start);
            if start >= to {
                break;
            }
            if start + r.duration > from {
                out.push(r.occurrence(start));
            }
        }
        out
    }

    #[test]
    fn one_off_windows_start_inclusive_and_end_exclusive() {
        let m = create_at(
            json!({"title": "Upgrade", "monitor_ids": [Uuid::nil()],
                   "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T12:00:00Z"}),
            "2026-05-01T00:00:00Z",
        )
        .unwrap();
        let window = occ("2026-06-01T10:00:00Z", "2026-06-01T12:00:00Z");
        for (at, active) in [
            ("2026-06-01T09:59:59Z", false),
            ("2026-06-01T10:00:00Z", true),
            ("2026-06-01T11:59:59Z", true),
            ("2026-06-01T12:00:00Z", false),
        ] {
            assert_eq!(m.active_at(utc(at)), active.then_some(window), "{at}");
        }
        assert_eq!(m.next_after(utc("2026-06-01T09:59:59Z")), Some(window));
        assert_eq!(m.next_after(utc("2026-06-01T10:00:00Z")), None);
        let between = |from: &str, to: &str| m.occurrences_between(utc(from), utc(to), 10);
        assert_eq!(
            between("2026-06-01T11:00:00Z", "2026-06-08T00:00:00Z"),
            [window]
        );
        assert_eq!(between("2026-05-25T00:00:00Z", "2026-06-01T10:00:00Z"), []);
        assert_eq!(between("2026-06-01T12:00:00Z", "2026-06-08T00:00:00Z"), []);
        assert_eq!(
            m.occurrences_between(utc("2026-05-25T00:00:00Z"), utc("2026-06-08T00:00:00Z"), 0),
            []
        );
    }

    /// Europe/Berlin: summer time from 2026-03-29 01:00Z (02:00 CET becomes 03:00 CEST) to
    /// 2026-10-25 01:00Z (03:00 CEST becomes 02:00 CET, so 02:00–03:00 happens twice).
    #[test]
    fn weekly_sunday_2am_in_berlin_across_both_dst_changes() {
        let m = recurring(
            "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
            "2h",
            "Europe/Berlin",
            "2026-01-01T00:00:00Z",
        );
        let spring =
            m.occurrences_between(utc("2026-03-20T00:00:00Z"), utc("2026-04-10T00:00:00Z"), 10);
        assert_eq!(
            spring,
            [
                occ("2026-03-22T01:00:00Z", "2026-03-22T03:00:00Z"), // 02:00 CET
                // 02:00 does not exist on 03-29: the crate shifts it by the gap, to 03:00 CEST,
                // the instant 02:00 CET would have been.
                occ("2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z"),
                occ("2026-04-05T00:00:00Z", "2026-04-05T02:00:00Z"), // 02:00 CEST
            ]
        );
        let autumn =
            m.occurrences_between(utc("2026-10-10T00:00:00Z"), utc("2026-11-03T00:00:00Z"), 10);
        assert_eq!(
            starts(&autumn),
            [
                utc("2026-10-11T00:00:00Z"),
                utc("2026-10-18T00:00:00Z"),
                // 02:00 happens twice on 10-25: the first, CEST, instance is the occurrence.
                utc("2026-10-25T00:00:00Z"),
                utc("2026-11-01T01:00:00Z"), // 02:00 CET
            ]
        );
        let table = [
            ("2026-03-29T00:59:59Z", None),
            ("2026-03-29T01:00:00Z", Some(spring[1])),
            ("2026-03-29T02:59:59Z", Some(spring[1])),
            ("2026-03-29T03:00:00Z", None),
            ("2026-10-24T23:59:59Z", None),
            ("2026-10-25T00:00:00Z", Some(autumn[2])),
            // The second 02:30 (CET) is inside the occurrence that began at the first 02:00.
            ("2026-10-25T01:30:00Z", Some(autumn[2])),
            ("2026-10-25T02:00:00Z", None),
        ];
        for (at, expected) in table {
            assert_eq!(m.active_at(utc(at)), expected, "{at}");
        }
        assert_eq!(m.next_after(utc("2026-03-22T01:00:00Z")), Some(spring[1]));
        assert_eq!(
            m.next_after(utc("2026-10-25T00:00:00Z")).unwrap().start,
            utc("2026-11-01T01:00:00Z")
        );
    }

    /// Hourly and minutely rules step on the local wall clock, as the crate does.
    #[test]
    fn hourly_rules_in_berlin_across_both_dst_changes() {
        let m = recurring(
            "FREQ=HOURLY",
            "30m",
            "Europe/Berlin",
            "2026-01-01T00:00:00Z",
        );
        let spring =
            m.occurrences_between(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T03:00:00Z"), 10);
        // 02:00 local does not exist; shifted to 03:00 CEST, which is also the 03:00 occurrence:
        // one occurrence at 01:00Z.
        assert_eq!(
            starts(&spring),
            [
                "2026-03-28T23:00:00Z",
                "2026-03-29T00:00:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T02:00:00Z"
            ]
            .map(utc)
        );
        let autumn =
            m.occurrences_between(utc("2026-10-24T23:00:00Z"), utc("2026-10-25T03:00:00Z"), 10);
        // 02:00 local is its first (CEST) instance, 00:00Z; the wall clock then goes on to
        // 03:00 CET, 02:00Z: the repeated hour has no occurrence of its own.
        assert_eq!(
            starts(&autumn),
            [
                "2026-10-24T23:00:00Z",
                "2026-10-25T00:00:00Z",
                "2026-10-25T02:00:00Z"
            ]
            .map(utc)
        );
        assert_eq!(m.active_at(utc("2026-10-25T01:10:00Z")), None);
    }

    /// America/New_York: EST to EDT on 2026-03-08 at 02:00 local, back on 2026-11-01 at 02:00
    /// EDT (01:00–02:00 happens twice).
    #[test]
    fn daily_rules_in_new_york_across_both_dst_changes() {
        let m = recurring(
            "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
            "30m",
            "America/New_York",
            "2026-03-01T12:00:00Z",
        );
        let spring =
            m.occurrences_between(utc("2026-03-07T00:00:00Z"), utc("2026-03-10T00:00:00Z"), 10);
        assert_eq!(
            starts(&spring),
            [
                "2026-03-07T07:30:00Z", // 02:30 EST
                "2026-03-08T07:30:00Z", // 02:30 does not exist: 03:30 EDT
                "2026-03-09T06:30:00Z", // 02:30 EDT
            ]
            .map(utc)
        );
        let autumn =
            m.occurrences_between(utc("2026-10-31T00:00:00Z"), utc("2026-11-03T00:00:00Z"), 10);
        assert_eq!(
            starts(&autumn),
            [
                "2026-10-31T06:30:00Z",
                "2026-11-01T07:30:00Z",
                "2026-11-02T07:30:00Z"
            ]
            .map(utc)
        );
        let m = recurring(
            "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
            "30m",
            "America/New_York",
            "2026-03-01T12:00:00Z",
        );
        let autumn =
            m.occurrences_between(utc("2026-10-31T00:00:00Z"), utc("2026-11-03T00:00:00Z"), 10);
        assert_eq!(
            starts(&autumn),
            [
                "2026-10-31T05:30:00Z", // 01:30 EDT
                "2026-11-01T05:30:00Z", // 01:30 happens twice: the first, EDT
                "2026-11-02T06:30:00Z", // 01:30 EST
            ]
            .map(utc)
        );
        assert_eq!(
            m.active_at(utc("2026-11-01T06:40:00Z")),
            None,
            "the second 01:30 is not one"
        );
        assert_eq!(
            m.active_at(utc("2026-11-01T05:59:59Z")).unwrap().start,
            utc("2026-11-01T05:30:00Z")
        );
    }

    #[test]
    fn month_ends_and_leap_days() {
        // Months without a 31st are skipped (RFC 5545).
        let m = recurring(
            "FREQ=MONTHLY;BYMONTHDAY=31;BYHOUR=0",
            "1d",
            "UTC",
            "2026-01-05T00:00:00Z",
        );
        let all =
            m.occurrences_between(utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"), 20);
        assert_eq!(
            starts(&all),
            [
                "2026-01-31",
                "2026-03-31",
                "2026-05-31",
                "2026-07-31",
                "2026-08-31",
                "2026-10-31",
                "2026-12-31"
            ]
            .map(|d| utc(&format!("{d}T00:00:00Z")))
        );
        assert_eq!(all[0].end, utc("2026-02-01T00:00:00Z"));
        // The last day of every month, February 29 in 2028; 22:00 in Berlin.
        let m = recurring(
            "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=22",
            "1h",
            "Europe/Berlin",
            "2027-06-01T00:00:00Z",
        );
        let all =
            m.occurrences_between(utc("2028-01-15T00:00:00Z"), utc("2028-05-15T00:00:00Z"), 20);
        assert_eq!(
            starts(&all),
            [
                "2028-01-31T21:00:00Z",
                "2028-02-29T21:00:00Z",
                "2028-03-31T20:00:00Z", // summer time since 03-26
                "2028-04-30T20:00:00Z",
            ]
            .map(utc)
        );
        assert_eq!(
            m.next_after(utc("2027-02-01T00:00:00Z").max(utc("2027-06-01T00:00:00Z")))
                .unwrap()
                .start,
            utc("2027-06-30T20:00:00Z")
        );
        // February 29 only: leap years.
        let m = recurring(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=9",
            "1d",
            "Asia/Tokyo",
            "2026-01-01T00:00:00Z",
        );
        let all =
            m.occurrences_between(utc("2026-01-01T00:00:00Z"), utc("2037-01-01T00:00:00Z"), 20);
        assert_eq!(
            starts(&all),
            [
                "2028-02-29T00:00:00Z",
                "2032-02-29T00:00:00Z",
                "2036-02-29T00:00:00Z"
            ]
            .map(utc)
        );
        assert_eq!(m.next_after(utc("2028-02-29T00:00:00Z")), Some(all[1]));
        assert_eq!(m.active_at(utc("2028-02-29T23:59:59Z")), Some(all[0]));
        assert_eq!(m.active_at(utc("2028-03-01T00:00:00Z")), None);
        // A year without February 29 (2100) is skipped too.
        let far =
            m.occurrences_between(utc("2096-01-01T00:00:00Z"), utc("2105-01-01T00:00:00Z"), 20);
        assert_eq!(
            starts(&far),
            ["2096-02-29T00:00:00Z", "2104-02-29T00:00:00Z"].map(utc)
        );
    }

    #[test]
    fn a_daily_window_may_cross_midnight() {
        let m = recurring(
            "FREQ=DAILY;BYHOUR=23;BYMINUTE=30",
            "2h",
            "Europe/Berlin",
            "2026-01-10T12:00:00Z",
        );
        let window = occ("2026-01-12T22:30:00Z", "2026-01-13T00:30:00Z"); // 23:30–01:30 CET
        for (at, expected) in [
            ("2026-01-12T22:29:59Z", None),
            ("2026-01-12T22:30:00Z", Some(window)),
            ("2026-01-13T00:00:00Z", Some(window)),
            ("2026-01-13T00:29:59Z", Some(window)),
            ("2026-01-13T00:30:00Z", None),
        ] {
            assert_eq!(m.active_at(utc(at)), expected, "{at}");
        }
        // One under way at `from` is listed.
        let listed =
            m.occurrences_between(utc("2026-01-13T00:00:00Z"), utc("2026-01-14T00:00:00Z"), 10);
        assert_eq!(
            listed,
            [window, occ("2026-01-13T22:30:00Z", "2026-01-14T00:30:00Z")]
        );
    }

    #[test]
    fn upcoming_in_the_next_seven_days() {
        let m = recurring(
            "FREQ=WEEKLY;BYDAY=TU,TH;BYHOUR=4",
            "1h",
            "UTC",
            "2026-05-01T00:00:00Z",
        );
        let now = utc("2026-05-05T04:30:00Z"); // a Tuesday, during an occurrence
        let week = m.occurrences_between(now, now + TimeDelta::days(7), 10);
        assert_eq!(
            week,
            [
                occ("2026-05-05T04:00:00Z", "2026-05-05T05:00:00Z"),
                occ("2026-05-07T04:00:00Z", "2026-05-07T05:00:00Z"),
                occ("2026-05-12T04:00:00Z", "2026-05-12T05:00:00Z"),
            ]
        );
        assert_eq!(
            m.occurrences_between(now, now + TimeDelta::days(7), 2),
            week[..2]
        );
        assert_eq!(m.active_at(now), Some(week[0]));
        assert_eq!(m.next_after(now), Some(week[1]));
        assert_eq!(m.next_after(utc("2026-05-07T04:00:00Z")), Some(week[2]));
    }

    /// DTSTART is the creation time, truncated to the minute, in the window's zone.
    #[test]
    fn parts_left_out_come_from_the_creation_time_but_byhour_starts_on_the_hour() {
        let created = "2026-05-01T10:37:42Z"; // a Friday
        let table = [
            ("FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "2026-05-03T02:00:00Z"),
            ("FREQ=DAILY", "2026-05-02T10:37:00Z"),
            ("FREQ=WEEKLY", "2026-05-08T10:37:00Z"),
            ("FREQ=HOURLY;BYHOUR=3,15", "2026-05-01T15:00:00Z"),
            ("FREQ=HOURLY", "2026-05-01T11:37:00Z"),
            ("FREQ=MINUTELY;INTERVAL=15", "2026-05-01T10:52:00Z"),
            ("RRULE:FREQ=DAILY;BYHOUR=6", "2026-05-02T06:00:00Z"),
            ("freq=daily;byhour=6;byminute=45", "2026-05-02T06:45:00Z"),
            ("FREQ=MONTHLY", "2026-06-01T10:37:00Z"),
            ("FREQ=YEARLY;BYMONTH=3", "2027-03-01T10:37:00Z"),
        ];
        for (rule, next) in table {
            let m = recurring(rule, "1m", "UTC", created);
            assert_eq!(
                m.next_after(utc(created)).map(|o| o.start),
                Some(utc(next)),
                "{rule}"
            );
        }
        // DTSTART itself is an occurrence when it matches, even seconds before creation.
        let m = recurring("FREQ=DAILY", "1h", "UTC", created);
        assert_eq!(
            m.active_at(utc(created)).unwrap().start,
            utc("2026-05-01T10:37:00Z")
        );
        let MaintenanceSchedule::Recurring { rrule, .. } =
            &recurring("  RRULE:FREQ=DAILY;BYHOUR=6 ", "1m", "UTC", created).schedule
        else {
            panic!("recurring")
        };
        assert_eq!(rrule, "FREQ=DAILY;BYHOUR=6");
    }

    #[test]
    fn until_is_inclusive_and_ends_the_rule() {
        let m = recurring(
            "FREQ=DAILY;BYHOUR=6;UNTIL=20260503T060000Z",
            "1h",
            "Europe/Berlin",
            "2026-05-01T10:00:00Z",
        );
        let all =
            m.occurrences_between(utc("2026-05-01T00:00:00Z"), utc("2026-06-01T00:00:00Z"), 10);
        assert_eq!(
            starts(&all),
            ["2026-05-02T04:00:00Z", "2026-05-03T04:00:00Z"].map(utc)
        );
        let m = recurring(
            "FREQ=DAILY;BYHOUR=6;UNTIL=20260503T040000Z",
            "1h",
            "Europe/Berlin",
            "2026-05-01T10:00:00Z",
        );
        assert_eq!(
            m.next_after(utc("2026-05-02T04:00:00Z")).unwrap().start,
            utc("2026-05-03T04:00:00Z")
        );
        assert_eq!(m.next_after(utc("2026-05-03T04:00:00Z")), None);
        assert_eq!(
            m.active_at(utc("2026-05-03T04:30:00Z")).unwrap().start,
            utc("2026-05-03T04:00:00Z")
        );
        assert_eq!(
            m.occurrences_between(utc("2027-01-01T00:00:00Z"), utc("2028-01-01T00:00:00Z"), 10),
            []
        );
    }

    #[test]
    fn covers_all_listed_monitors_and_groups() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let window = |cover: serde_json::Value| {
            let mut value = json!({"title": "t", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T11:00:00Z"});
            value
                .as_object_mut()
                .unwrap()
                .extend(cover.as_object().unwrap().clone());
            create_at(value, "2026-05-01T00:00:00Z").unwrap()
        };
        let all = window(json!({"all": true}));
        let ids = window(json!({"monitor_ids": [a, a]}));
        let groups = window(json!({"groups": [" API ", "API", "Web"]}));
        assert_eq!(ids.monitor_ids, [a]);
        assert_eq!(groups.groups, ["API", "Web"]);
        for (m, monitor, group, covered) in [
            (&all, b, None, true),
            (&ids, a, None, true),
            (&ids, b, Some("API"), false),
            (&groups, b, Some("API"), true),
            (&groups, b, Some("api"), false),
            (&groups, a, None, false),
        ] {
            assert_eq!(
                m.covers(monitor, group),
                covered,
                "{:?} {monitor} {group:?}",
                m.groups
            );
        }
    }

    #[test]
    fn invalid_input_names_its_field() {
        let now = "2026-05-01T10:00:00Z";
        let base = json!({"title": "t", "all": true});
        let once = |extra: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let rec = |rule: &str, duration: &str, tz: &str| {
            once(json!({"rrule": rule, "duration": duration, "timezone": tz}))
        };
        let weekly = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2";
        let cases = [
            (
                json!({"all": true, "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T11:00:00Z"}),
                "title",
                "required",
            ),
            (
                once(json!({"title": "  ", "rrule": weekly})),
                "title",
                "empty",
            ),
            (once(json!({"title": "x".repeat(201)})), "title", "200"),
            (
                once(json!({"description": "x".repeat(2001)})),
                "description",
                "2000",
            ),
            (
                json!({"title": "t", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T11:00:00Z"}),
                "monitor_ids",
                "\"all\": true",
            ),
            (
                json!({"title": "t", "all": false, "monitor_ids": [], "groups": [], "rrule": weekly}),
                "monitor_ids",
                "groups",
            ),
            (json!({"title": "t", "groups": ["  "]}), "groups", "empty"),
            (
                json!({"title": "t", "groups": ["a\nb"]}),
                "groups",
                "control",
            ),
            (once(json!({})), "start", "rrule"),
            (
                once(json!({"start": "2026-06-01T10:00:00Z"})),
                "end",
                "required",
            ),
            (
                once(json!({"end": "2026-06-01T10:00:00Z"})),
                "start",
                "required",
            ),
            (
                once(json!({"start": "2026-06-01T10:00:00Z", "end": "2026-06-01T10:00:00Z"})),
                "end",
                "after `start`",
            ),
            (
                once(json!({"start": "2026-06-01T10:00:00Z", "end": "2026-06-01T09:00:00Z"})),
                "end",
                "after `start`",
            ),
            (
                once(
                    json!({"start": "2026-06-01T10:00:00Z", "end": "2026-06-01T11:00:00Z", "rrule": weekly}),
                ),
                "rrule",
                "either",
            ),
            (
                once(json!({"start": "2026-06-01T10:00:00Z", "timezone": "UTC"})),
                "timezone",
                "either",
            ),
            (once(json!({"rrule": weekly})), "duration", "required"),
            (
                once(json!({"rrule": weekly, "duration": "2h"})),
                "timezone",
                "Europe/Berlin",
            ),
            (
                once(json!({"duration": "2h", "timezone": "UTC"})),
                "rrule",
                "required",
            ),
            (
                rec(weekly, "2h", "Mars/Olympus_Mons"),
                "timezone",
                "Europe/Berlin",
            ),
            (rec(weekly, "2h", "europe/berlin"), "timezone", "IANA"),
            (rec(weekly, "2 hours", "UTC"), "duration", "2h"),
            (rec(weekly, "0m", "UTC"), "duration", "positive"),
            (rec("FREQ=FORTNIGHTLY", "2h", "UTC"), "rrule", "FORTNIGHTLY"),
            (rec("every sunday", "2h", "UTC"), "rrule", "recurrence rule"),
            (rec("", "2h", "UTC"), "rrule", "empty"),
            (rec("FREQ=WEEKLY;BYDAY=XX", "2h", "UTC"), "rrule", "weekday"),
            (rec("FREQ=WEEKLY;COUNT=3", "2h", "UTC"), "rrule", "UNTIL"),
            (
                rec("FREQ=DAILY;UNTIL=20270101T000000", "2h", "UTC"),
                "rrule",
                "ending in Z",
            ),
            (
                rec("FREQ=DAILY;UNTIL=20200101T000000Z", "2h", "UTC"),
                "rrule",
                "UNTIL",
            ),
            (
                rec("FREQ=DAILY;BYHOUR=6;UNTIL=20260501T050000Z", "2h", "UTC"),
                "rrule",
                "UNTIL",
            ),
            (
                rec("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "2h", "UTC"),
                "rrule",
                "never occurs",
            ),
            (
                rec("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31", "2h", "Europe/Berlin"),
                "rrule",
                "never occurs",
            ),
            (
                rec("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY", "2h", "UTC"),
                "rrule",
                "DTSTART",
            ),
            (rec("FREQ=SECONDLY", "1s", "UTC"), "rrule", "MINUTELY"),
            (
                rec("FREQ=DAILY;INTERVAL=0", "1m", "UTC"),
                "rrule",
                "INTERVAL",
            ),
            (
                rec("FREQ=WEEKLY;BYMONTHDAY=3", "1m", "UTC"),
                "rrule",
                "BYMONTHDAY",
            ),
            (
                rec("FREQ=DAILY;BYEASTER=0", "1m", "UTC"),
                "rrule",
                "BYEASTER",
            ),
            (
                rec("FREQ=MINUTELY;INTERVAL=21;BYHOUR=0", "6m", "UTC"),
                "rrule",
                "FREQ=DAILY",
            ),
            (
                rec("FREQ=MINUTELY;BYMINUTE=0,30", "6m", "UTC"),
                "rrule",
                "BYMINUTE",
            ),
            (
                rec(
                    &format!(
                        "FREQ=YEARLY;BYMONTH=1,2,3,4,5,6;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR={};BYMINUTE=0,20,40",
                        (0..24).map(|h| h.to_string()).collect::<Vec<_>>().join(",")
                    ),
                    "1m",
                    "UTC",
                ),
                "rrule",
                "FREQ=DAILY",
            ),
            (
                rec("FREQ=HOURLY", "2h", "UTC"),
                "duration",
                "2h is longer than the 1h between two occurrences",
            ),
            (
                rec("FREQ=DAILY;BYHOUR=2,3", "90m", "UTC"),
                "duration",
                "90m is longer than the 1h",
            ),
            (
                rec("FREQ=MINUTELY;INTERVAL=15", "16m", "UTC"),
                "duration",
                "15m",
            ),
        ];
        for (input, field, words) in cases {
            let err = create_at(input.clone(), now).unwrap_err();
            assert_eq!(err.field, field, "{input}: {err}");
            assert!(err.message.contains(words), "{input}: {err}");
        }
        let err = create_at(once(json!({"rule": weekly})), now).unwrap_err();
        assert!(err.message.contains("unknown field `rule`"), "{err}");
        // As long as the gap is fine.
        assert!(create_at(rec("FREQ=HOURLY", "1h", "UTC"), now).is_ok());
        assert!(create_at(rec("FREQ=DAILY", "1d", "UTC"), now).is_ok());
    }

    #[test]
    fn serializes_flat_with_the_input_names() {
        let m = recurring(
            "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
            "90m",
            "Europe/Berlin",
            "2026-05-01T10:00:00Z",
        );
        let value = serde_json::to_value(&m).unwrap();
        assert_eq!(
            value,
            json!({
                "id": m.id, "title": "t", "description": null, "all": true, "monitor_ids": [],
                "groups": [], "start": null, "end": null, "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
                "duration": "90m", "timezone": "Europe/Berlin",
                "created_at": "2026-05-01T10:00:00Z", "updated_at": "2026-05-01T10:00:00Z"
            })
        );
        assert_eq!(
            serde_json::from_value::<Maintenance>(value.clone()).unwrap(),
            m
        );
        let once = create_at(
            json!({"title": "t", "groups": ["API"], "start": "2026-06-01T10:00:00+02:00", "end": "2026-06-01T11:00:00Z"}),
            "2026-05-01T10:00:00Z",
        )
        .unwrap();
        let value = serde_json::to_value(&once).unwrap();
        assert_eq!(value["start"], "2026-06-01T08:00:00Z");
        assert_eq!(value["rrule"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<Maintenance>(value).unwrap(), once);
        let mut half = serde_json::to_value(&once).unwrap();
        half["end"] = serde_json::Value::Null;
        assert!(serde_json::from_value::<Maintenance>(half).is_err());
        assert_eq!(
            once.to_input()
                .into_maintenance(once.id, once.created_at, once.updated_at)
                .unwrap(),
            once
        );
        assert_eq!(
            m.to_input()
                .into_maintenance(m.id, m.created_at, m.updated_at)
                .unwrap(),
            m
        );
    }

    #[test]
    fn patches_change_only_what_they_name_and_are_validated_as_a_whole() {
        let created = utc("2026-05-01T10:00:00Z");
        let later = utc("2026-05-02T10:00:00Z");
        let m = create_at(
            json!({"title": "Upgrade", "description": "db", "monitor_ids": [Uuid::from_u128(7)],
                   "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T12:00:00Z"}),
            "2026-05-01T10:00:00Z",
        )
        .unwrap();
        let p = m
            .apply_patch(
                &json!({"title": "Bigger upgrade", "description": null}),
                later,
            )
            .unwrap();
        assert_eq!(p.title, "Bigger upgrade");
        assert_eq!(p.description, None);
        assert_eq!((p.id, p.created_at, p.updated_at), (m.id, created, later));
        assert_eq!((&p.schedule, &p.monitor_ids), (&m.schedule, &m.monitor_ids));

        let err = m
            .apply_patch(&json!({"end": "2026-06-01T09:00:00Z"}), later)
            .unwrap_err();
        assert_eq!(err.field, "end");
        let err = m
            .apply_patch(
                &json!({"rrule": "FREQ=DAILY", "duration": "1h", "timezone": "UTC"}),
                later,
            )
            .unwrap_err();
        assert_eq!(err.field, "rrule", "{err}");
        let err = m
            .apply_patch(&json!({"monitor_ids": null}), later)
            .unwrap_err();
        assert_eq!(err.field, "monitor_ids");
        let err = m
            .apply_patch(&json!({"id": Uuid::nil()}), later)
            .unwrap_err();
        assert!(err.message.contains("unknown field `id`"), "{err}");
        assert!(m.apply_patch(&json!(["title"]), later).is_err());

        // One-off to recurring: the one-off fields are cleared with null.
        let r = m
            .apply_patch(
                &json!({"start": null, "end": null, "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
                        "duration": "2h", "timezone": "Europe/Berlin"}),
                later,
            )
            .unwrap();
        assert_eq!(
            r.schedule,
            MaintenanceSchedule::Recurring {
                rrule: "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2".into(),
                duration_seconds: 7_200,
                timezone: "Europe/Berlin".into(),
            }
        );
        let r = r.apply_patch(&json!({"duration": "3h"}), later).unwrap();
        assert_eq!(
            r.next_after(later).unwrap(),
            occ("2026-05-03T00:00:00Z", "2026-05-03T03:00:00Z")
        );
        let err = r
            .apply_patch(&json!({"timezone": "Berlin"}), later)
            .unwrap_err();
        assert_eq!(err.field, "timezone");
        // A rule that has stopped occurring by the time of the change is refused.
        let err = r
            .apply_patch(
                &json!({"rrule": "FREQ=DAILY;UNTIL=20260502T000000Z"}),
                later,
            )
            .unwrap_err();
        assert_eq!(err.field, "rrule", "{err}");
        assert!(err.message.contains("never occurs"), "{err}");
    }

    /// The anchor keeps the work per question independent of the window's age.
    #[test]
    fn a_minutely_window_ten_years_old_is_as_cheap_as_a_new_one() {
        let m = recurring(
            "FREQ=MINUTELY",
            "30s",
            "Europe/Berlin",
            "2016-05-01T00:00:00Z",
        );
        let at = utc("2026-05-01T12:34:20Z");
        let (active, steps) = m.active_at_counted(at);
        assert_eq!(
            active,
            Some(occ("2026-05-01T12:34:00Z", "2026-05-01T12:34:30Z"))
        );
        assert!(steps <= 4, "{steps} steps");
        let (next, steps) = m.next_after_counted(at);
        assert_eq!(next.unwrap().start, utc("2026-05-01T12:35:00Z"));
        assert!(steps <= 4, "{steps} steps");
        let (list, steps) = m.occurrences_between_counted(at, at + TimeDelta::minutes(3), 10);
        assert_eq!(
            starts(&list),
            ["12:34", "12:35", "12:36", "12:37"].map(|t| utc(&format!("2026-05-01T{t}:00Z")))
        );
        assert!(steps <= 8, "{steps} steps");
        assert_eq!(
            m.active_at_counted(utc("2026-05-01T12:34:40Z")),
            (None, m.active_at_counted(utc("2026-05-01T12:34:40Z")).1)
        );
        // Right after a DST change the anchor keeps 3 hours away from it: a few hundred steps.
        let (active, steps) = m.active_at_counted(utc("2026-03-29T01:10:10Z"));
        assert_eq!(active.unwrap().start, utc("2026-03-29T01:10:00Z"));
        assert!(steps <= 400, "{steps} steps");
        let (active, steps) = m.active_at_counted(utc("2026-10-25T03:10:10Z"));
        assert_eq!(active.unwrap().start, utc("2026-10-25T03:10:00Z"));
        assert!(steps <= 400, "{steps} steps");

        let weekly = recurring(
            "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
            "2h",
            "Europe/Berlin",
            "2016-05-01T00:00:00Z",
        );
        let (active, steps) = weekly.active_at_counted(utc("2026-05-03T01:00:00Z"));
        assert_eq!(active.unwrap().start, utc("2026-05-03T00:00:00Z"));
        assert!(steps <= 4, "{steps} steps");
        let hourly = recurring(
            "FREQ=HOURLY;INTERVAL=5",
            "1h",
            "America/New_York",
            "2016-05-01T00:00:00Z",
        );
        let (next, steps) = hourly.next_after_counted(utc("2026-05-01T12:00:00Z"));
        assert!(next.is_some());
        assert!(steps <= 4, "{steps} steps");
    }

    /// Anchors far from DTSTART give what the crate gives from DTSTART itself, for rules whose
    /// periods depend on DTSTART's position: WEEKLY with INTERVAL=2 and WKST, BYSETPOS in
    /// weeks and months, MONTHLY with INTERVAL=5.
    #[test]
    fn anchored_expansion_matches_expansion_from_dtstart() {
        let table = [
            (
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=MO;BYHOUR=9",
                "Europe/Berlin",
            ),
            (
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=SU;BYHOUR=9",
                "Europe/Berlin",
            ),
            (
                "FREQ=WEEKLY;INTERVAL=3;BYDAY=MO,FR;BYSETPOS=1;BYHOUR=1",
                "America/New_York",
            ),
            (
                "FREQ=MONTHLY;INTERVAL=5;BYDAY=-1FR;BYHOUR=23;BYMINUTE=30",
                "Australia/Lord_Howe",
            ),
            (
                "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=18",
                "America/Santiago",
            ),
            ("FREQ=YEARLY;INTERVAL=2;BYWEEKNO=1;BYDAY=MO", "Asia/Kolkata"),
            (
                "FREQ=DAILY;INTERVAL=3;BYHOUR=0;BYMINUTE=0",
                "America/Havana",
            ),
            ("FREQ=HOURLY;INTERVAL=7;BYMINUTE=15", "Europe/Berlin"),
        ];
        for (rule, tz) in table {
            let m = recurring(rule, "1m", tz, "2026-01-07T15:20:00Z");
            for (from, to) in [
                ("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"),
                ("2026-03-20T00:00:00Z", "2026-04-10T00:00:00Z"),
                ("2026-10-20T00:00:00Z", "2026-11-10T00:00:00Z"),
                ("2029-03-01T00:00:00Z", "2029-05-01T00:00:00Z"),
            ] {
                let (from, to) = (utc(from), utc(to));
                assert_eq!(
                    m.occurrences_between(from, to, 1_000),
                    reference(&m, from, to),
                    "{rule} {from}"
                );
            }
        }
    }

    const ZONES: &[&str] = &[
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "America/Santiago",
        "America/Havana",
        "Asia/Kolkata",
    ];

    fn by_list(values: &[u8]) -> String {
        values
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    prop_compose! {
        /// A random window of FREQ=MINUTELY, HOURLY or DAILY, with its period in seconds.
        fn short_rules()(
            freq in 0usize..3,
            interval in 1u32..5,
            hours in proptest::collection::vec(0u8..24, 0..3),
            minutes in proptest::collection::vec(0u8..60, 0..3),
            zone in 0..ZONES.len(),
            created in 1_704_067_200i64..1_893_456_000,
            duration_minutes in 1i64..90,
        ) -> (String, String, &'static str, DateTime<Utc>, i64) {
            let (name, unit) = [("MINUTELY", 60), ("HOURLY", 3_600), ("DAILY", 86_400)][freq];
            let interval = if freq == 0 { interval * 7 } else { interval };
            let mut rule = format!("FREQ={name};INTERVAL={interval}");
            if !hours.is_empty() && freq > 0 {
                rule += &format!(";BYHOUR={}", by_list(&hours));
            }
            if !minutes.is_empty() && freq > 0 {
                rule += &format!(";BYMINUTE={}", by_list(&minutes));
            }
            let duration = format!("{}m", duration_minutes.min(i64::from(interval) * unit / 60 / 2).max(1));
            (rule, duration, ZONES[zone], DateTime::from_timestamp(created, 0).unwrap(), i64::from(interval) * unit)
        }
    }

    prop_compose! {
        /// A random rule of any supported frequency, with BYxxx parts that depend on periods.
        fn any_rules()(
            freq in 0usize..6,
            interval in 1u32..4,
            days in proptest::collection::vec(0usize..7, 0..3),
            setpos in proptest::option::of(prop_oneof![Just(1i32), Just(2), Just(-1)]),
            month_day in proptest::option::of(prop_oneof![Just(-1i8), Just(1), Just(15), Just(29), Just(31)]),
            hours in proptest::collection::vec(0u8..24, 1..3),
            wkst in 0usize..7,
            zone in 0..ZONES.len(),
            created in 1_704_067_200i64..1_893_456_000,
        ) -> (String, &'static str, DateTime<Utc>, i64) {
            const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
            let (name, reach) = [
                ("YEARLY", 40 * 366 * 86_400),
                ("MONTHLY", 8 * 366 * 86_400),
                ("WEEKLY", 3 * 366 * 86_400),
                ("DAILY", 2 * 366 * 86_400),
                ("HOURLY", 60 * 86_400),
                ("MINUTELY", 2 * 86_400),
            ][freq];
            let mut rule = format!("FREQ={name};INTERVAL={interval};WKST={}", DAYS[wkst]);
            if !days.is_empty() {
                let days: Vec<_> = days.iter().map(|d| DAYS[*d]).collect();
                rule += &format!(";BYDAY={}", days.join(","));
            }
            if let (Some(day), false) = (month_day, name == "WEEKLY") {
                rule += &format!(";BYMONTHDAY={day}");
            }
            if name != "MINUTELY" {
                rule += &format!(";BYHOUR={}", by_list(&hours));
            }
            if let Some(pos) = setpos {
                rule += &format!(";BYSETPOS={pos}");
            }
            (rule, ZONES[zone], DateTime::from_timestamp(created, 0).unwrap(), reach)
        }
    }

    fn try_recurring(
        rule: &str,
        duration: &str,
        tz: &str,
        created: DateTime<Utc>,
    ) -> Option<Maintenance> {
        let value =
            json!({"title": "t", "all": true, "rrule": rule, "duration": duration, "timezone": tz});
        let input: MaintenanceInput = serde_json::from_value(value).unwrap();
        Maintenance::create(input, created).ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 96,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn active_at_agrees_with_the_occurrences_around(
            (rule, duration, tz, created, period) in short_rules(),
            later in 0i64..(10 * 366 * 86_400),
        ) {
            let m = try_recurring(&rule, &duration, tz, created);
            prop_assume!(m.is_some());
            let m = m.unwrap();
            let d = parse_span(&duration).unwrap();
            let t = created + TimeDelta::seconds(later);
            let around = m.occurrences_between(t - d - TimeDelta::seconds(period), t + TimeDelta::seconds(1), 100_000);
            let covering = around.iter().rev().find(|o| o.contains(t)).copied();
            prop_assert_eq!(m.active_at(t), covering, "{} in {} at {}", rule, tz, t);
            if let Some(next) = m.next_after(t) {
                prop_assert!(next.start > t);
                let skipped = m.occurrences_between(t, next.start, 100_000);
                prop_assert!(skipped.iter().all(|o| o.start <= t), "{} in {} at {}", rule, tz, t);
            }
        }

        #[test]
        fn anchored_expansion_is_expansion_from_dtstart(
            (rule, tz, created, reach) in any_rules(),
            offset in 0.0f64..1.0,
            days in 1i64..40,
        ) {
            let m = try_recurring(&rule, "1m", tz, created);
            prop_assume!(m.is_some());
            let m = m.unwrap();
            let from = created + TimeDelta::seconds((reach as f64 * offset) as i64);
            let to = from + TimeDelta::days(days);
            prop_assert_eq!(m.occurrences_between(from, to, 100_000), reference(&m, from, to), "{} in {} from {}", rule, tz, from);
        }
    }
}
