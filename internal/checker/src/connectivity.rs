//! Whether the worker's own network works, so that a check that failed because the worker
//! lost its network is inconclusive rather than down.
//!
//! A worker has a few connectivity targets (`https://1.1.1.1`, `http://host/`,
//! `tcp://1.1.1.1:53`: URLs as monitors take them). They are probed through the worker's own
//! [`Checker`], so the worker's proxy and `User-Agent` apply to HTTP targets, all at once,
//! with a short timeout (at most [`MAX_PROBE_TIMEOUT`], at most the interval). Any answer
//! counts, whatever its status: a target answers when its check is up or failed after the
//! far end said something (a status, a TLS alert). The network is **lost** when none of the
//! targets answers, and back as soon as one does.
//!
//! Every verdict comes from [`Connectivity::confirm_since`]: the last probe when it started at
//! or after the given time, else a new one, which callers that ask at the same time share.
//! [`Connectivity::run`] and [`Connectivity::confirm`] accept a probe at most [`FRESH_FOR`]
//! old. The worker passes each result through [`Connectivity::judge`], which asks for a probe
//! that started after the check did: a down result that got no answer at all (timeout, DNS,
//! connect, no reply, other) while the network is lost becomes inconclusive (kind
//! `local_network`).
//!
//! With no targets the network is never lost and nothing is probed. Logs and verdicts name
//! targets without any userinfo or query.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use upwatch_core::check::{CheckJob, CheckResult, CheckStatus, ErrorKind};
use upwatch_core::expected::{ExpectedStatus, StatusMatcher};
use upwatch_core::observation::CheckType;
use upwatch_core::{Monitor, MonitorInput};

use crate::Checker;

/// How old a verdict may be for [`Connectivity::confirm`] to answer without probing.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// The longest a probe of one target may take.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest interval and probe timeout.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What the worker knows of its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether none of the targets answered at the last probe.
    pub lost: bool,
    /// When the network was found lost, or back (or when watching started).
    pub since: DateTime<Utc>,
    /// In words: which target answered, or what the targets' checks saw.
    pub detail: String,
}

/// One target: how it is shown, and the job that probes it.
#[derive(Debug)]
struct Target {
    shown: String,
    job: CheckJob,
}

/// Watches the worker's network by probing its connectivity targets; see the module docs.
#[derive(Debug)]
pub struct Connectivity {
    checker: Arc<Checker>,
    region: String,
    targets: Vec<Target>,
    interval: Duration,
    fresh_for: Duration,
    verdict: watch::Sender<Verdict>,
    /// When the last finished probe started (wall clock): its verdict speaks for every check
    /// that started before it.
    probe_started: Mutex<Option<DateTime<Utc>>>,
    /// When the network was last found back after being lost: a check that started before
    /// then ran, at least in part, while the network was lost.
    back_at: Mutex<Option<DateTime<Utc>>>,
    /// Held while probing: callers that come meanwhile wait, then share its verdict.
    flight: tokio::sync::Mutex<()>,
}

impl Connectivity {
    /// Watches the network of `region`'s worker through `targets`, every `interval` once
    /// [`run`](Connectivity::run). A target that is not a URL a monitor accepts (or is a
    /// push URL) is left out, with an error logged; [`Connectivity::check_targets`] says so
    /// beforehand.
    pub fn new(
        checker: Arc<Checker>,
        region: String,
        targets: Vec<String>,
        interval: Duration,
    ) -> Arc<Self> {
        Self::with_freshness(checker, region, targets, interval, FRESH_FOR)
    }

    /// As [`new`](Connectivity::new), with verdicts fresh for `fresh_for` instead of
    /// [`FRESH_FOR`] (`Duration::ZERO`: [`confirm`](Connectivity::confirm) always probes,
    /// concurrent callers still sharing one probe).
    pub fn with_freshness(
        checker: Arc<Checker>,
        region: String,
        targets: Vec<String>,
        interval: Duration,
        fresh_for: Duration,
    ) -> Arc<Self> {
        let interval = interval.max(MIN_INTERVAL);
        let timeout = interval.min(MAX_PROBE_TIMEOUT);
        let targets = targets
            .iter()
            .filter_map(|url| match target_job(url, &region, timeout) {
                Ok(job) => Some(Target {
                    shown: shown(url),
                    job,
                }),
                Err(why) => {
                    tracing::error!(
                        region = %region,
                        target = %shown(url),
                        error = %why,
                        "connectivity target left out"
                    );
                    None
                }
            })
            .collect();
        let (verdict, _) = watch::channel(Verdict {
            lost: false,
            since: Utc::now(),
            detail: "not probed yet".to_string(),
        });
        Arc::new(Connectivity {
            checker,
            region,
            targets,
            interval,
            fresh_for,
            verdict,
            probe_started: Mutex::new(None),
            back_at: Mutex::new(None),
            flight: tokio::sync::Mutex::new(()),
        })
    }

    /// Checks connectivity targets as [`new`](Connectivity::new) takes them; the error names
    /// the first bad one (without userinfo or query) and why.
    pub fn check_targets(targets: &[String]) -> Result<(), String> {
        for url in targets {
            target_job(url, "default", MAX_PROBE_TIMEOUT)
                .map_err(|why| format!("`{}`: {why}", shown(url)))?;
        }
        Ok(())
    }

    /// Whether there is anything to probe: without targets the network is never lost.
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    /// The current verdict: whether none of the targets answered at the last probe.
    pub fn is_lost(&self) -> bool {
        self.verdict.borrow().lost
    }

    /// The current verdict, in full.
    pub fn verdict(&self) -> Verdict {
        self.verdict.borrow().clone()
    }

    /// The verdict now and each time the network is found lost or back.
    pub fn subscribe(&self) -> watch::Receiver<Verdict> {
        self.verdict.subscribe()
    }

    /// Whether the network is lost, by a probe made now unless the verdict is at most
    /// [`FRESH_FOR`] old; callers at the same time share one probe. Always false without
    /// targets.
    pub async fn confirm(&self) -> bool {
        self.confirm_since(self.fresh_since()).await
    }

    /// The oldest start of a probe that still counts as fresh.
    fn fresh_since(&self) -> DateTime<Utc> {
        Utc::now() - chrono::Duration::from_std(self.fresh_for).unwrap_or_default()
    }

    /// `result`, made inconclusive when it is down without any answer from the far end
    /// (timeout, DNS, connect, no reply, other) and a probe says
    /// the network is lost; any other result as it is. An up result is always kept: it
    /// shows the check itself got through.
    ///
    /// The verdict used is that of a probe that started after the check did, so a network
    /// that dropped during the check is seen, however fresh the last verdict was; and a
    /// network that was lost while the check ran but is back by the time it is judged makes
    /// the result inconclusive too (the check waited on a network that was not there).
    pub async fn judge(&self, result: CheckResult) -> CheckResult {
        let unanswered = result.status == CheckStatus::Down
            && result.error.as_ref().is_some_and(|e| no_answer(e.kind));
        if !unanswered {
            return result;
        }
        let lost =
            self.confirm_since(result.checked_at).await || self.back_since(result.checked_at);
        if !lost {
            return result;
        }
        let n = self.targets.len();
        let region = &self.region;
        result.into_inconclusive(&format!(
            "region {region} lost its network: none of its {n} connectivity targets answered"
        ))
    }

    /// Whether the network is lost, by a probe that started at or after `since`: the last one
    /// when it did, else a new one (callers at the same time share it). Always false without
    /// targets.
    pub async fn confirm_since(&self, since: DateTime<Utc>) -> bool {
        if !self.enabled() {
            return false;
        }
        if !self.covers(since) {
            let _flight = self.flight.lock().await;
            if !self.covers(since) {
                self.probe_now().await;
            }
        }
        self.is_lost()
    }

    /// Whether the network was found back after `since`, so that it was lost at some time
    /// after `since`.
    fn back_since(&self, since: DateTime<Utc>) -> bool {
        self.back_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|back| back > since)
    }

    /// Whether the last finished probe started at or after `since`.
    fn covers(&self, since: DateTime<Utc>) -> bool {
        self.probe_started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|started| started >= since)
    }

    /// Probes now (the caller holds the flight) and notes when it started.
    async fn probe_now(&self) {
        let started = Utc::now();
        self.probe().await;
        *self.probe_started.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
    }

    /// Probes every interval until `stop` completes; without targets, only waits for `stop`.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        if !self.enabled() {
            stop.await;
            return;
        }
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = self.confirm() => {}
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Checks every target at once, until one answers or all have failed, and updates the
    /// verdict.
    async fn probe(&self) {
        let mut checks = JoinSet::new();
        for (i, target) in self.targets.iter().enumerate() {
            let checker = self.checker.clone();
            let job = target.job.clone();
            checks.spawn(async move { (i, checker.check(&job).await) });
        }
        let mut failures: Vec<String> = Vec::new();
        let mut answered = None;
        while let Some(joined) = checks.join_next().await {
            let Ok((i, result)) = joined else {
                failures.push("the probe's task failed".to_string());
                continue;
            };
            if answers(&result) {
                answered = Some(i);
                break;
            }
            let why = result
                .error
                .map(|e| e.message)
                .unwrap_or_else(|| result.status.as_str().to_string());
            failures.push(format!("{}: {why}", self.targets[i].shown));
        }
        // Dropping the set aborts the checks still running once one target has answered.
        drop(checks);
        match answered {
            Some(i) => self.mark_back(&self.targets[i].shown),
            None => self.mark_lost(&failures),
        }
    }

    fn mark_back(&self, target: &str) {
        let now = Utc::now();
        self.verdict.send_if_modified(|verdict| {
            if !verdict.lost {
                return false;
            }
            let lost_for_s = (now - verdict.since).num_seconds();
            tracing::info!(
                region = %self.region,
                target = %target,
                lost_for_s,
                "network back: a connectivity target answered"
            );
            *self.back_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
            *verdict = Verdict {
                lost: false,
                since: now,
                detail: format!("{target} answered"),
            };
            true
        });
    }

    fn mark_lost(&self, failures: &[String]) {
        let now = Utc::now();
        let n = self.targets.len();
        self.verdict.send_if_modified(|verdict| {
            if verdict.lost {
                return false;
            }
            tracing::warn!(
                region = %self.region,
                failed = failures.len(),
                targets = n,
                "network lost: none of the connectivity targets answered"
            );
            *verdict = Verdict {
                lost: true,
                since: now,
                detail: format!(
                    "none of the {n} connectivity targets answered: {}",
                    failures.join("; ")
                ),
            };
            true
        });
    }
}

/// Whether a result's failure means nothing answered at all.
fn no_answer(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout
            | ErrorKind::Dns
            | ErrorKind::Connect
            | ErrorKind::NoReply
            | ErrorKind::Other
    )
}

/// Whether a target's check got an answer from the far end.
fn answers(result: &CheckResult) -> bool {
    match (&result.status, &result.error) {
        (CheckStatus::Up, _) => true,
        (_, Some(error)) => !no_answer(error.kind) && error.kind != ErrorKind::IcmpUnavailable,
        (_, None) => false,
    }
}

/// The job that probes `url`: any status answers, no redirect is followed, `timeout` bounds it.
fn target_job(url: &str, region: &str, timeout: Duration) -> Result<CheckJob, String> {
    let now = Utc::now();
    let monitor =
        Monitor::create(MonitorInput::for_url(url.trim()), now).map_err(|e| e.to_string())?;
    if monitor.check_type == CheckType::Push {
        return Err("a push URL cannot be probed".to_string());
    }
    let mut job = CheckJob::for_monitor(&monitor, now);
    job.region = region.to_string();
    job.request.expected_status_codes = ExpectedStatus(vec![StatusMatcher::Range(100, 599)]);
    job.request.follow_redirects = false;
    job.request.keyword = None;
    job.request.timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(5_000);
    Ok(job)
}

/// A target as logs and verdicts show it: without userinfo, query or fragment.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_shown_without_secrets() {
        assert_eq!(
            shown("https://bob:pw@example.com/health?token=x#y"),
            "https://example.com/health"
        );
        assert_eq!(shown("tcp://1.1.1.1:53"), "tcp://1.1.1.1:53");
    }

    #[test]
    fn target_jobs_accept_any_status_and_are_short() {
        let job = target_job("http://127.0.0.1:9/", "eu", Duration::from_secs(3)).unwrap();
        assert!(job.request.expected_status_codes.matches(100));
        assert!(job.request.expected_status_codes.matches(599));
        assert_eq!(job.request.timeout_ms, 3_000);
        assert_eq!(job.region, "eu");
        assert!(!job.request.follow_redirects);
        assert!(Connectivity::check_targets(&["ftp://x/".to_string()]).is_err());
        assert!(Connectivity::check_targets(&[
            "https://1.1.1.1".to_string(),
            "tcp://1.1.1.1:53".to_string()
        ])
        .is_ok());
    }
}
