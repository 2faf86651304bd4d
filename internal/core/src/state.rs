//! The up/down state machine of one monitor.
//!
//! A monitor is `pending` until its first result, then `up` or `down`; `paused` while it is
//! disabled. It goes DOWN after `failure_threshold` consecutive failures and UP again after
//! `success_threshold` consecutive successes; only those two changes are [`Transition`]s, and
//! only transitions alert. The first result of a new monitor, when it is up, changes the status
//! without alerting; a new monitor that is down from the start alerts once its threshold is met.
//!
//! With several regions, each region's results go through the thresholds on their own
//! ([`RegionState`]) and the regions vote: the monitor is down when at least `quorum` of them
//! are down, and up again when fewer are. A region without a result for two intervals is
//! `unknown` and left out of the vote; an inconclusive result (the worker's own network was
//! down) changes nothing but the region's shown status. A result moves the monitor only in its
//! own direction: a down result never brings a recovery (say, because another down region went
//! quiet), an up result never a down. With one region this is exactly the single machine.
//!
//! The state is plain data so that every store can persist it and every role that reads the
//! results stream can run the same machine.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use std::collections::BTreeMap;

use crate::check::{CheckError, CheckResult, CheckStatus};

/// The status a person sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorStatus {
    /// No result yet.
    Pending,
    Up,
    Down,
    /// The monitor is disabled; no checks run.
    Paused,
    /// Shown only, never a state of the machine: the monitor is enabled but upwatch has had
    /// no result of it for several intervals (see [`crate::watchdog`]). Its real status is
    /// unknown; nothing alerts on it as a down would.
    Stale,
    /// Shown only: the newest result came during a maintenance window of the monitor. Checks
    /// go on and the machine keeps its real state underneath; nothing alerts until the window
    /// ends, and then the real state decides.
    Maintenance,
}

impl MonitorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorStatus::Pending => "pending",
            MonitorStatus::Up => "up",
            MonitorStatus::Down => "down",
            MonitorStatus::Paused => "paused",
            MonitorStatus::Stale => "stale",
            MonitorStatus::Maintenance => "maintenance",
        }
    }

    /// The status named by [`MonitorStatus::as_str`]; unknown text reads as pending.
    pub fn parse(text: &str) -> MonitorStatus {
        match text {
            "up" => MonitorStatus::Up,
            "down" => MonitorStatus::Down,
            "paused" => MonitorStatus::Paused,
            "stale" => MonitorStatus::Stale,
            "maintenance" => MonitorStatus::Maintenance,
            _ => MonitorStatus::Pending,
        }
    }
}

/// A change that deserves an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The failure threshold was reached.
    WentDown { at: DateTime<Utc> },
    /// The success threshold was reached after being down since `down_since`.
    Recovered {
        at: DateTime<Utc>,
        down_since: DateTime<Utc>,
    },
}

/// Everything the state machine remembers of one monitor, and what the live status shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    pub monitor_id: Uuid,
    pub status: MonitorStatus,
    /// Start time of the newest result applied.
    pub last_checked: Option<DateTime<Utc>>,
    /// When `status` last changed (pending to up included).
    pub last_status_change: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// The status to return to when a paused monitor is resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_from: Option<MonitorStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CheckError>,
    /// The certificate of the newest TLS-speaking result, and which expiry alert it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateWatch>,
    /// Whether the newest result came during a maintenance window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_maintenance: bool,
    /// The transition a maintenance window kept quiet, owed when the window ends if the real
    /// state still agrees with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced: Option<Silenced>,
    /// Each region's own view, by region name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regions: BTreeMap<String, RegionState>,
}

/// The least silence before a region is `unknown`, beyond one interval.
pub const REGION_GRACE_MS: u64 = 15_000;

/// What one region sees of a monitor: its own thresholds over its own results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegionState {
    /// `pending`, `up`, `down` or `inconclusive` (the region's worker had lost its network).
    pub status: RegionStatus,
    pub last_checked: DateTime<Utc>,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub consecutive_successes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CheckError>,
    /// The status its thresholds reached, kept under an inconclusive spell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<RegionStatus>,
}

/// A region's status of a monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegionStatus {
    Pending,
    Up,
    Down,
    /// The region's worker could not reach its connectivity targets: it says nothing.
    Inconclusive,
    /// Shown only: no result from the region for two intervals; left out of the vote.
    Unknown,
}

impl RegionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionStatus::Pending => "pending",
            RegionStatus::Up => "up",
            RegionStatus::Down => "down",
            RegionStatus::Inconclusive => "inconclusive",
            RegionStatus::Unknown => "unknown",
        }
    }
}

impl RegionState {
    /// The region's status as of `now`: `unknown` once it sent nothing for two intervals
    /// (`interval_ms`; never when 0), and never sooner than the interval plus
    /// [`REGION_GRACE_MS`] (a check's own time, a consumer group's rebalance).
    pub fn status_at(&self, now: DateTime<Utc>, interval_ms: u64) -> RegionStatus {
        let silent = (now - self.last_checked).num_milliseconds();
        let after = (2 * interval_ms).max(interval_ms + REGION_GRACE_MS) as i64;
        if interval_ms > 0 && silent > after {
            RegionStatus::Unknown
        } else {
            self.status
        }
    }

    /// The status it votes with: its thresholds' outcome (an inconclusive spell keeps it out).
    fn vote_at(&self, now: DateTime<Utc>, interval_ms: u64) -> RegionStatus {
        self.status_at(now, interval_ms)
    }
}

/// What one region that checks a monitor sees of it at one moment, as the API and the
/// monitor page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RegionSeen {
    /// The region's name (one of `UPWATCH_REGIONS`).
    pub region: String,
    /// `pending` (no result from it yet), `up`, `down`, `inconclusive` (its worker had lost
    /// its own network) or `unknown` (no result from it for two intervals; left out of the
    /// vote).
    pub status: RegionStatus,
    pub response_time_ms: Option<u32>,
    /// When the region's newest result was checked; `None` before its first.
    pub last_checked: Option<DateTime<Utc>>,
    pub error: Option<CheckError>,
}

impl MonitorState {
    /// What each of `regions` (those that check the monitor, in that order) sees as of `now`:
    /// a region without a result yet is `pending`, one silent for two intervals `unknown`.
    pub fn regions_seen<S: AsRef<str>>(
        &self,
        regions: &[S],
        interval_ms: u64,
        now: DateTime<Utc>,
    ) -> Vec<RegionSeen> {
        regions
            .iter()
            .map(|name| {
                let name = name.as_ref();
                match self.regions.get(name) {
                    Some(region) => RegionSeen {
                        region: name.to_string(),
                        status: region.status_at(now, interval_ms),
                        response_time_ms: region.response_time_ms,
                        last_checked: Some(region.last_checked),
                        error: region.error.clone(),
                    },
                    None => RegionSeen {
                        region: name.to_string(),
                        status: RegionStatus::Pending,
                        response_time_ms: None,
                        last_checked: None,
                        error: None,
                    },
                }
            })
            .collect()
    }
}

/// How the regions of a monitor vote at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionVotes {
    pub down: Vec<String>,
    pub up: Vec<String>,
    /// Pending, inconclusive, or silent for two intervals: no vote.
    pub unknown: Vec<String>,
}

impl RegionVotes {
    /// "down from eu-west, us-east; up from ap-south", naming only the sides that have any.
    pub fn words(&self) -> String {
        let mut parts = Vec::new();
        for (side, names) in [
            ("down", &self.down),
            ("up", &self.up),
            ("unknown", &self.unknown),
        ] {
            if !names.is_empty() {
                let from = if side == "unknown" { "in" } else { "from" };
                parts.push(format!("{side} {from} {}", names.join(", ")));
            }
        }
        parts.join("; ")
    }
}

/// A transition kept quiet by a maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Silenced {
    WentDown,
    Recovered { down_since: DateTime<Utc> },
}

/// A monitor's current certificate, as the expiry alerts follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateWatch {
    /// SHA-256 of the certificate: a renewed one has another, and starts over.
    pub fingerprint: String,
    pub expires_at: DateTime<Utc>,
    /// The smallest threshold (in days) already announced for this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerted_days: Option<u32>,
}

/// A certificate that crossed one of its monitor's thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateExpiry {
    /// The threshold crossed (the smallest one, when several were crossed at once).
    pub threshold_days: u32,
    /// Whole days left (0 on the last day).
    pub days_left: i64,
    pub expires_at: DateTime<Utc>,
}

impl MonitorState {
    /// The state of a monitor that has no result yet.
    pub fn new(monitor_id: Uuid) -> Self {
        MonitorState {
            monitor_id,
            status: MonitorStatus::Pending,
            last_checked: None,
            last_status_change: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            paused_from: None,
            response_time_ms: None,
            status_code: None,
            error: None,
            certificate: None,
            in_maintenance: false,
            silenced: None,
            regions: BTreeMap::new(),
        }
    }

    /// The state of a new monitor: pending, or paused since `at` when it is disabled.
    pub fn initial(monitor_id: Uuid, enabled: bool, at: DateTime<Utc>) -> Self {
        let mut state = MonitorState::new(monitor_id);
        state.set_enabled(enabled, at);
        state
    }

    /// Resumes the monitor when `enabled`, pauses it otherwise; either is a no-op when the
    /// monitor already is that way.
    pub fn set_enabled(&mut self, enabled: bool, at: DateTime<Utc>) {
        if enabled {
            self.resume(at);
        } else {
            self.pause(at);
        }
    }

    /// Whether `result` may change this state: it belongs to this monitor, the monitor is not
    /// paused, and it is newer than the last result applied (a redelivered or reordered result
    /// is ignored, which makes applying idempotent).
    pub fn accepts(&self, result: &CheckResult) -> bool {
        // Regions check at their own pace: order holds within a region. A state from before
        // regions (no entries) orders by the monitor's newest result.
        let last = match self.regions.get(&result.region) {
            Some(region) => Some(region.last_checked),
            None if self.regions.is_empty() => self.last_checked,
            None => None,
        };
        result.monitor_id == self.monitor_id
            && self.status != MonitorStatus::Paused
            && last.is_none_or(|last| result.checked_at > last)
    }

    /// The regions that see the monitor down and those that see it up, as of `now`, each
    /// sorted; `None` while a single region checks it, whose word is the monitor's.
    pub fn region_votes(&self, now: DateTime<Utc>, interval_ms: u64) -> Option<RegionVotes> {
        if self.regions.len() < 2 {
            return None;
        }
        let mut votes = RegionVotes::default();
        for (name, region) in &self.regions {
            match region.vote_at(now, interval_ms) {
                RegionStatus::Down => votes.down.push(name.clone()),
                RegionStatus::Up => votes.up.push(name.clone()),
                _ => votes.unknown.push(name.clone()),
            }
        }
        Some(votes)
    }

    /// Applies one result and returns the transition that alerts, if any.
    ///
    /// A result during a maintenance window (`result.maintenance`) moves the machine as any
    /// other, but its transition is kept quiet: remembered as [`MonitorState::silenced`], and
    /// cancelled by the opposite one. The first result after the window then owes it: a
    /// monitor still down then alerts once (at that result), one that came back alerts
    /// nothing, and a recovery kept quiet is announced if the monitor is still up.
    pub fn apply(&mut self, result: &CheckResult) -> Option<Transition> {
        if !self.accepts(result) {
            return None;
        }
        let transition = self.step(result);
        self.in_maintenance = result.maintenance;
        if result.maintenance {
            if let Some(t) = transition {
                // The machine alternates between down and up, so a second transition kept
                // quiet is the opposite of the first: together they owe nothing.
                self.silenced = match self.silenced.take() {
                    Some(_) => None,
                    None => Some(match t {
                        Transition::WentDown { .. } => Silenced::WentDown,
                        Transition::Recovered { down_since, .. } => {
                            Silenced::Recovered { down_since }
                        }
                    }),
                };
            }
            return None;
        }
        let Some(owed) = self.silenced.take() else {
            return transition;
        };
        if transition.is_some() {
            // This result undid what the window kept quiet: nothing to say.
            return None;
        }
        let at = result.checked_at;
        match owed {
            Silenced::WentDown => Some(Transition::WentDown { at }),
            Silenced::Recovered { down_since } => Some(Transition::Recovered { at, down_since }),
        }
    }

    /// The state machine's step for one accepted result: the result's region goes through
    /// its thresholds, then the regions vote.
    fn step(&mut self, result: &CheckResult) -> Option<Transition> {
        let at = result.checked_at;
        let rules = result.rules;
        // A state from before regions carries on as its one region.
        // A new region starts pending, but a state from before regions carries on as its
        // one region.
        let (status, failures, successes) = match self.status {
            _ if !self.regions.is_empty() => (RegionStatus::Pending, 0, 0),
            MonitorStatus::Up => (
                RegionStatus::Up,
                self.consecutive_failures,
                self.consecutive_successes,
            ),
            MonitorStatus::Down => (
                RegionStatus::Down,
                self.consecutive_failures,
                self.consecutive_successes,
            ),
            _ => (
                RegionStatus::Pending,
                self.consecutive_failures,
                self.consecutive_successes,
            ),
        };
        let region = self
            .regions
            .entry(result.region.clone())
            .or_insert_with(|| RegionState {
                status,
                last_checked: at,
                consecutive_failures: failures,
                consecutive_successes: successes,
                response_time_ms: None,
                status_code: None,
                error: None,
                settled: None,
            });
        region.last_checked = at;
        region.response_time_ms = Some(result.response_time_ms);
        region.status_code = result.status_code;
        region.error = result.error.clone();
        match result.status {
            CheckStatus::Inconclusive => {
                if region.status != RegionStatus::Inconclusive {
                    region.settled = Some(region.status);
                    region.status = RegionStatus::Inconclusive;
                }
            }
            CheckStatus::Up => {
                if let Some(settled) = region.settled.take() {
                    region.status = settled;
                }
                region.consecutive_successes = region.consecutive_successes.saturating_add(1);
                region.consecutive_failures = 0;
                if region.status == RegionStatus::Pending
                    || region.consecutive_successes >= rules.success_threshold.max(1)
                {
                    region.status = RegionStatus::Up;
                }
            }
            CheckStatus::Down => {
                if let Some(settled) = region.settled.take() {
                    region.status = settled;
                }
                region.consecutive_failures = region.consecutive_failures.saturating_add(1);
                region.consecutive_successes = 0;
                if region.consecutive_failures >= rules.failure_threshold.max(1) {
                    region.status = RegionStatus::Down;
                }
            }
        }
        let (failures, successes) = (region.consecutive_failures, region.consecutive_successes);
        let region_status = region.status;
        // The monitor shows the newest result, whichever region made it.
        if self.last_checked.is_none_or(|last| at >= last) {
            self.last_checked = Some(at);
            self.response_time_ms = Some(result.response_time_ms);
            self.status_code = result.status_code;
            self.error = result.error.clone();
            self.consecutive_failures = failures;
            self.consecutive_successes = successes;
        }
        let down = self
            .regions
            .values()
            .filter(|r| r.vote_at(at, rules.interval_ms) == RegionStatus::Down)
            .count();
        let quorum = rules.quorum.max(1) as usize;
        match result.status {
            CheckStatus::Up if region_status == RegionStatus::Up && down < quorum => {
                match self.status {
                    MonitorStatus::Pending => {
                        self.change(MonitorStatus::Up, at);
                        None
                    }
                    MonitorStatus::Down => {
                        let down_since = self.last_status_change.unwrap_or(at);
                        self.change(MonitorStatus::Up, at);
                        Some(Transition::Recovered { at, down_since })
                    }
                    _ => None,
                }
            }
            CheckStatus::Down if region_status == RegionStatus::Down && down >= quorum => {
                match self.status {
                    MonitorStatus::Pending | MonitorStatus::Up => {
                        self.change(MonitorStatus::Down, at);
                        Some(Transition::WentDown { at })
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Follows the certificate of `result` (a result of this monitor newer than the last one,
    /// as [`MonitorState::accepts`] says) and tells when it crossed a threshold of
    /// `result.cert_expiry_alert_days` not yet announced: one alert per threshold and
    /// certificate, only the smallest when several are crossed at once, none again for the
    /// same certificate, and a renewed certificate starts over.
    pub fn observe_certificate(&mut self, result: &CheckResult) -> Option<CertificateExpiry> {
        let cert = result.details.certificate.as_ref()?;
        let watch = match &mut self.certificate {
            Some(watch) if watch.fingerprint == cert.fingerprint => watch,
            slot => slot.insert(CertificateWatch {
                fingerprint: cert.fingerprint.clone(),
                expires_at: cert.expires_at,
                alerted_days: None,
            }),
        };
        let left = cert.expires_at - result.checked_at;
        let crossed = result
            .cert_expiry_alert_days
            .iter()
            .copied()
            .filter(|days| left <= chrono::Duration::days(i64::from(*days)))
            .min()?;
        if watch.alerted_days.is_some_and(|done| done <= crossed) {
            return None;
        }
        watch.alerted_days = Some(crossed);
        Some(CertificateExpiry {
            threshold_days: crossed,
            days_left: left.num_days(),
            expires_at: cert.expires_at,
        })
    }

    /// Pauses the monitor, remembering its status for [`MonitorState::resume`].
    pub fn pause(&mut self, at: DateTime<Utc>) {
        if self.status != MonitorStatus::Paused {
            self.paused_from = Some(self.status);
            self.change(MonitorStatus::Paused, at);
        }
    }

    /// Resumes a paused monitor in the status it had, with fresh counters, so that a site
    /// that was down and still is sends nothing new, and its recovery still alerts.
    pub fn resume(&mut self, at: DateTime<Utc>) {
        if self.status == MonitorStatus::Paused {
            let status = self.paused_from.take().unwrap_or(MonitorStatus::Pending);
            self.change(status, at);
            self.consecutive_failures = 0;
            self.consecutive_successes = 0;
            for region in self.regions.values_mut() {
                region.consecutive_failures = 0;
                region.consecutive_successes = 0;
            }
        }
    }

    fn change(&mut self, status: MonitorStatus, at: DateTime<Utc>) {
        self.status = status;
        self.last_status_change = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{ErrorKind, StateRules, SCHEMA_VERSION};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn result(id: Uuid, at: i64, up: bool, rules: (u32, u32)) -> CheckResult {
        CheckResult {
            region: "default".to_string(),
            v: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            job_id: Uuid::now_v7(),
            monitor_id: id,
            monitor_name: "m".into(),
            url: "http://127.0.0.1/".into(),
            due_at: t(at),
            checked_at: t(at),
            response_time_ms: 5,
            status_code: Some(if up { 200 } else { 500 }),
            status: if up {
                CheckStatus::Up
            } else {
                CheckStatus::Down
            },
            error: (!up).then(|| CheckError::new(ErrorKind::StatusMismatch, "got HTTP 500")),
            rules: StateRules {
                quorum: 1,
                interval_ms: 0,
                failure_threshold: rules.0,
                success_threshold: rules.1,
            },
            details: Default::default(),
            cert_expiry_alert_days: Vec::new(),
            maintenance: false,
        }
    }

    /// Runs a sequence of up (true) / down (false) results and returns the transitions.
    fn run(seq: &[bool], rules: (u32, u32)) -> (MonitorState, Vec<Transition>) {
        let id = Uuid::now_v7();
        let mut state = MonitorState::new(id);
        let transitions = seq
            .iter()
            .enumerate()
            .filter_map(|(i, up)| state.apply(&result(id, i as i64, *up, rules)))
            .collect();
        (state, transitions)
    }

    #[test]
    fn first_result_up_changes_status_without_alert() {
        let (s, tr) = run(&[true, true], (1, 1));
        assert_eq!(s.status, MonitorStatus::Up);
        assert_eq!(s.last_status_change, Some(t(0)));
        assert!(tr.is_empty());
    }

    #[test]
    fn new_monitor_that_is_down_alerts_once() {
        let (s, tr) = run(&[false, false, false], (1, 1));
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(tr, vec![Transition::WentDown { at: t(0) }]);
    }

    #[test]
    fn failure_threshold_needs_consecutive_failures() {
        let (s, tr) = run(&[true, false, false, true, false, false], (3, 1));
        assert_eq!(s.status, MonitorStatus::Up);
        assert!(tr.is_empty());
        let (s, tr) = run(&[true, false, false, false, false], (3, 1));
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(tr, vec![Transition::WentDown { at: t(3) }]);
    }

    #[test]
    fn success_threshold_needs_consecutive_successes() {
        let (s, tr) = run(&[true, false, true, false, true, true], (1, 2));
        assert_eq!(s.status, MonitorStatus::Up);
        assert_eq!(
            tr,
            vec![
                Transition::WentDown { at: t(1) },
                Transition::Recovered {
                    at: t(5),
                    down_since: t(1)
                },
            ]
        );
    }

    #[test]
    fn flapping_alerts_on_each_transition_only() {
        let (_, tr) = run(&[true, false, false, true, true, false], (1, 1));
        assert_eq!(tr.len(), 3);
        assert!(matches!(tr[0], Transition::WentDown { .. }));
        assert!(matches!(tr[1], Transition::Recovered { .. }));
        assert!(matches!(tr[2], Transition::WentDown { .. }));
    }

    #[test]
    fn redelivered_and_older_results_are_ignored() {
        let id = Uuid::now_v7();
        let mut s = MonitorState::new(id);
        let down = result(id, 10, false, (1, 1));
        assert!(s.apply(&down).is_some());
        assert_eq!(s.apply(&down), None, "the same result twice alerts once");
        assert_eq!(s.apply(&result(id, 5, true, (1, 1))), None, "older result");
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(
            s.apply(&result(Uuid::now_v7(), 20, true, (1, 1))),
            None,
            "other monitor"
        );
    }

    #[test]
    fn paused_ignores_results_and_resume_restores_status() {
        let id = Uuid::now_v7();
        let mut s = MonitorState::new(id);
        s.apply(&result(id, 0, false, (1, 1)));
        s.pause(t(1));
        assert_eq!(s.status, MonitorStatus::Paused);
        assert_eq!(s.apply(&result(id, 2, true, (1, 1))), None);
        assert_eq!(s.status, MonitorStatus::Paused);
        s.resume(t(3));
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(
            s.apply(&result(id, 4, false, (1, 1))),
            None,
            "still down: nothing new"
        );
        assert!(matches!(
            s.apply(&result(id, 5, true, (1, 1))),
            Some(Transition::Recovered { .. })
        ));
    }

    #[test]
    fn pausing_twice_keeps_the_original_status() {
        let id = Uuid::now_v7();
        let mut s = MonitorState::new(id);
        s.apply(&result(id, 0, true, (1, 1)));
        s.pause(t(1));
        s.pause(t(2));
        s.resume(t(3));
        assert_eq!(s.status, MonitorStatus::Up);
        s.resume(t(4));
        assert_eq!(
            s.last_status_change,
            Some(t(3)),
            "resuming a running monitor is a no-op"
        );
    }

    #[test]
    fn new_monitors_start_pending_or_paused() {
        let id = Uuid::now_v7();
        assert_eq!(MonitorState::initial(id, true, t(0)), MonitorState::new(id));
        let paused = MonitorState::initial(id, false, t(1));
        assert_eq!(paused.status, MonitorStatus::Paused);
        assert_eq!(paused.paused_from, Some(MonitorStatus::Pending));
        assert_eq!(paused.last_status_change, Some(t(1)));
    }

    #[test]
    fn restart_from_persisted_state_sends_nothing_new() {
        let (s, _) = run(&[false], (1, 1));
        let json = serde_json::to_string(&s).unwrap();
        let mut restored: MonitorState = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, s);
        let id = restored.monitor_id;
        assert_eq!(restored.apply(&result(id, 100, false, (1, 1))), None);
    }

    #[test]
    fn a_zero_threshold_behaves_as_one() {
        let (s, tr) = run(&[true, false], (0, 0));
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(tr.len(), 1);
    }

    fn with_cert(at: i64, fingerprint: &str, expires_in_hours: i64, days: &[u32]) -> CheckResult {
        let mut r = result(Uuid::nil(), at, true, (1, 1));
        r.details.certificate = Some(crate::observation::Certificate {
            expires_at: t(at) + chrono::Duration::hours(expires_in_hours),
            not_before: t(at) - chrono::Duration::days(60),
            issuer: "CN=test ca".into(),
            subject: "CN=site".into(),
            sans: vec!["site.test".into()],
            fingerprint: fingerprint.into(),
        });
        r.cert_expiry_alert_days = days.to_vec();
        r
    }

    #[test]
    fn each_certificate_threshold_alerts_once_and_a_renewal_starts_over() {
        let days = [14, 7, 1];
        let mut s = MonitorState::new(Uuid::nil());
        // 30 days left: nothing, but the certificate is followed.
        assert_eq!(
            s.observe_certificate(&with_cert(0, "a", 30 * 24, &days)),
            None
        );
        assert_eq!(s.certificate.as_ref().unwrap().alerted_days, None);
        // 14 days left exactly: the 14-day alert.
        let alert = s
            .observe_certificate(&with_cert(10, "a", 14 * 24, &days))
            .unwrap();
        assert_eq!((alert.threshold_days, alert.days_left), (14, 14));
        // Still between 14 and 7: nothing more.
        assert_eq!(
            s.observe_certificate(&with_cert(20, "a", 10 * 24, &days)),
            None
        );
        // 5 days left: the 7-day alert, once.
        let alert = s
            .observe_certificate(&with_cert(30, "a", 5 * 24, &days))
            .unwrap();
        assert_eq!((alert.threshold_days, alert.days_left), (7, 5));
        assert_eq!(
            s.observe_certificate(&with_cert(40, "a", 5 * 24 - 1, &days)),
            None
        );
        // Under a day: the last one, with 0 whole days left.
        let alert = s
            .observe_certificate(&with_cert(50, "a", 20, &days))
            .unwrap();
        assert_eq!((alert.threshold_days, alert.days_left), (1, 0));
        assert_eq!(s.observe_certificate(&with_cert(60, "a", 2, &days)), None);
        // Renewed: a new certificate far from expiry resets, and alerts again when it nears.
        assert_eq!(
            s.observe_certificate(&with_cert(70, "b", 90 * 24, &days)),
            None
        );
        assert_eq!(s.certificate.as_ref().unwrap().fingerprint, "b");
        let alert = s
            .observe_certificate(&with_cert(80, "b", 13 * 24, &days))
            .unwrap();
        assert_eq!(alert.threshold_days, 14);
    }

    #[test]
    fn a_certificate_already_close_gets_only_its_smallest_threshold() {
        let mut s = MonitorState::new(Uuid::nil());
        let alert = s
            .observe_certificate(&with_cert(0, "a", 5 * 24, &[14, 7, 1]))
            .unwrap();
        assert_eq!(alert.threshold_days, 7);
        // No thresholds (alerts off), or no certificate: nothing.
        let mut s = MonitorState::new(Uuid::nil());
        assert_eq!(s.observe_certificate(&with_cert(0, "a", 1, &[])), None);
        assert_eq!(
            s.observe_certificate(&result(Uuid::nil(), 1, true, (1, 1))),
            None
        );
        // An expired certificate seen through `tls_skip_verify` is past every threshold.
        let mut s = MonitorState::new(Uuid::nil());
        let alert = s
            .observe_certificate(&with_cert(0, "a", -48, &[14, 7, 1]))
            .unwrap();
        assert_eq!((alert.threshold_days, alert.days_left), (1, -2));
    }

    fn during(mut r: CheckResult) -> CheckResult {
        r.maintenance = true;
        r
    }

    #[test]
    fn a_window_keeps_a_down_quiet_and_the_end_alerts_once_if_still_down() {
        let id = Uuid::nil();
        let mut s = MonitorState::new(id);
        assert_eq!(s.apply(&result(id, 0, true, (1, 1))), None);
        // Down inside the window: the machine is down, nothing alerts, status shows why.
        assert_eq!(s.apply(&during(result(id, 10, false, (1, 1)))), None);
        assert_eq!(s.status, MonitorStatus::Down);
        assert!(s.in_maintenance);
        assert_eq!(s.silenced, Some(Silenced::WentDown));
        assert_eq!(s.apply(&during(result(id, 20, false, (1, 1)))), None);
        // Still down after it: one down alert, at the first result after the window.
        assert_eq!(
            s.apply(&result(id, 30, false, (1, 1))),
            Some(Transition::WentDown { at: t(30) })
        );
        assert!(!s.in_maintenance);
        assert_eq!(s.silenced, None);
        assert_eq!(s.apply(&result(id, 40, false, (1, 1))), None, "only once");
        // And its recovery alerts as usual.
        assert!(matches!(
            s.apply(&result(id, 50, true, (1, 1))),
            Some(Transition::Recovered { .. })
        ));
    }

    #[test]
    fn a_down_and_back_inside_a_window_alerts_nothing() {
        let id = Uuid::nil();
        let mut s = MonitorState::new(id);
        s.apply(&result(id, 0, true, (1, 1)));
        assert_eq!(s.apply(&during(result(id, 10, false, (1, 1)))), None);
        assert_eq!(s.apply(&during(result(id, 20, true, (1, 1)))), None);
        assert_eq!(s.silenced, None, "down then up owes nothing");
        assert_eq!(s.apply(&result(id, 30, true, (1, 1))), None);
        // Down in the window, up exactly at its end: nothing either.
        s.apply(&during(result(id, 40, false, (1, 1))));
        assert_eq!(s.apply(&result(id, 50, true, (1, 1))), None);
        assert_eq!(s.status, MonitorStatus::Up);
    }

    #[test]
    fn a_window_that_starts_while_down_leaves_the_incident_and_announces_the_recovery_after() {
        let id = Uuid::nil();
        let mut s = MonitorState::new(id);
        s.apply(&result(id, 0, true, (1, 1)));
        assert!(
            s.apply(&result(id, 10, false, (1, 1))).is_some(),
            "down, alerted"
        );
        // Recovered during the window: kept quiet.
        assert_eq!(s.apply(&during(result(id, 20, true, (1, 1)))), None);
        assert_eq!(s.silenced, Some(Silenced::Recovered { down_since: t(10) }));
        // Up after the window: the recovery is announced then, with the real downtime start.
        assert_eq!(
            s.apply(&result(id, 30, true, (1, 1))),
            Some(Transition::Recovered {
                at: t(30),
                down_since: t(10)
            })
        );
        // Down again in a window and still down after: a new down alert.
        s.apply(&during(result(id, 40, false, (1, 1))));
        assert!(matches!(
            s.apply(&result(id, 50, false, (1, 1))),
            Some(Transition::WentDown { .. })
        ));
    }

    #[test]
    fn a_new_monitor_down_from_the_start_inside_a_window_alerts_when_it_ends() {
        let id = Uuid::nil();
        let mut s = MonitorState::new(id);
        assert_eq!(s.apply(&during(result(id, 0, false, (2, 1)))), None);
        assert_eq!(s.apply(&during(result(id, 10, false, (2, 1)))), None);
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(
            s.apply(&result(id, 20, false, (2, 1))),
            Some(Transition::WentDown { at: t(20) })
        );
    }

    #[test]
    fn states_stored_before_maintenance_existed_still_read() {
        let s = MonitorState::new(Uuid::nil());
        let mut stored = serde_json::to_value(&s).unwrap();
        let map = stored.as_object_mut().unwrap();
        map.remove("in_maintenance");
        map.remove("silenced");
        let read: MonitorState = serde_json::from_value(stored).unwrap();
        assert_eq!(read, s);
    }

    /// A result of `region` at `at`, with a quorum and a 10 s interval.
    fn from(region: &str, at: i64, up: bool, quorum: u32, thresholds: (u32, u32)) -> CheckResult {
        let mut r = result(Uuid::nil(), at, up, thresholds);
        r.region = region.to_string();
        r.rules.quorum = quorum;
        r.rules.interval_ms = 10_000;
        r
    }

    fn inconclusive(region: &str, at: i64) -> CheckResult {
        from(region, at, false, 1, (1, 1)).into_inconclusive("lost")
    }

    #[test]
    fn one_region_below_the_quorum_is_shown_but_not_alerted() {
        let mut s = MonitorState::new(Uuid::nil());
        for (i, region) in ["a", "b"].iter().enumerate() {
            assert_eq!(s.apply(&from(region, i as i64, true, 2, (1, 1))), None);
        }
        assert_eq!(s.status, MonitorStatus::Up);
        assert_eq!(s.apply(&from("c", 2, false, 2, (1, 1))), None);
        assert_eq!(s.status, MonitorStatus::Up);
        assert_eq!(s.regions["c"].status, RegionStatus::Down);
        // A second region down reaches the quorum: one transition.
        assert_eq!(
            s.apply(&from("a", 10, false, 2, (1, 1))),
            Some(Transition::WentDown { at: t(10) })
        );
        // The third one down too: nothing more.
        assert_eq!(s.apply(&from("b", 11, false, 2, (1, 1))), None);
        let votes = s.region_votes(t(11), 10_000).unwrap();
        assert_eq!(votes.words(), "down from a, b, c");
        // One region back leaves two down: still down.
        assert_eq!(s.apply(&from("a", 20, true, 2, (1, 1))), None);
        // A second back: fewer than the quorum are down, one recovery.
        assert_eq!(
            s.apply(&from("b", 21, true, 2, (1, 1))),
            Some(Transition::Recovered {
                at: t(21),
                down_since: t(10)
            })
        );
        assert_eq!(
            s.region_votes(t(21), 10_000).unwrap().words(),
            "down from c; up from a, b"
        );
    }

    #[test]
    fn each_region_has_its_own_thresholds() {
        let mut s = MonitorState::new(Uuid::nil());
        s.apply(&from("a", 0, true, 1, (2, 2)));
        s.apply(&from("b", 0, true, 1, (2, 2)));
        // Failures alternate between the regions: neither reaches two in a row.
        assert_eq!(s.apply(&from("a", 1, false, 1, (2, 2))), None);
        assert_eq!(s.apply(&from("b", 1, true, 1, (2, 2))), None);
        assert_eq!(s.regions["a"].status, RegionStatus::Up);
        assert_eq!(
            s.apply(&from("a", 2, false, 1, (2, 2))),
            Some(Transition::WentDown { at: t(2) })
        );
    }

    #[test]
    fn a_down_result_never_recovers_the_monitor_when_another_region_goes_quiet() {
        let mut s = MonitorState::new(Uuid::nil());
        s.apply(&from("a", 0, false, 2, (1, 1)));
        assert_eq!(
            s.apply(&from("b", 0, false, 2, (1, 1))),
            Some(Transition::WentDown { at: t(0) })
        );
        // b's worker dies: after two intervals (and the grace) it is unknown, and a alone is
        // below the quorum, but a still sees the site down.
        assert_eq!(s.apply(&from("a", 60, false, 2, (1, 1))), None);
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(
            s.regions["b"].status_at(t(60), 10_000),
            RegionStatus::Unknown
        );
        assert_eq!(
            s.region_votes(t(60), 10_000).unwrap().words(),
            "down from a; unknown in b"
        );
        // Only an up result brings the recovery.
        assert!(matches!(
            s.apply(&from("a", 70, true, 2, (1, 1))),
            Some(Transition::Recovered { .. })
        ));
    }

    #[test]
    fn inconclusive_results_neither_alert_nor_recover() {
        let mut s = MonitorState::new(Uuid::nil());
        assert_eq!(s.apply(&from("a", 0, true, 1, (1, 1))), None);
        for at in 1..=5 {
            assert_eq!(s.apply(&inconclusive("a", at)), None);
        }
        assert_eq!(s.status, MonitorStatus::Up);
        assert_eq!(s.regions["a"].status, RegionStatus::Inconclusive);
        // Back: up again with no transition (it never went down).
        assert_eq!(s.apply(&from("a", 6, true, 1, (2, 2))), None);
        assert_eq!(s.regions["a"].status, RegionStatus::Up);
        // A down monitor stays down through an inconclusive spell and recovers only on
        // real successes.
        assert!(s.apply(&from("a", 7, false, 1, (1, 1))).is_some());
        assert_eq!(s.apply(&inconclusive("a", 8)), None);
        assert_eq!(s.status, MonitorStatus::Down);
        assert_eq!(s.apply(&from("a", 9, true, 1, (1, 2))), None);
        assert!(matches!(
            s.apply(&from("a", 10, true, 1, (1, 2))),
            Some(Transition::Recovered { .. })
        ));
    }

    #[test]
    fn regions_keep_their_own_order() {
        let mut s = MonitorState::new(Uuid::nil());
        s.apply(&from("b", 10, true, 1, (1, 1)));
        // a's result is older than b's newest, but newer than a's own: it counts.
        let late = from("a", 9, false, 1, (1, 1));
        assert!(s.accepts(&late));
        assert!(s.apply(&late).is_some());
        // A redelivered copy of it does not.
        assert!(!s.accepts(&late));
    }

    #[test]
    fn a_state_from_before_regions_carries_on_as_its_one_region() {
        let mut s = MonitorState::new(Uuid::nil());
        s.status = MonitorStatus::Down;
        s.last_checked = Some(t(0));
        s.last_status_change = Some(t(0));
        // Success threshold 2: one success does not recover it.
        assert_eq!(s.apply(&from("default", 1, true, 1, (1, 2))), None);
        assert!(s.apply(&from("default", 2, true, 1, (1, 2))).is_some());
    }
}
