//! What the checker's test files share: a job from monitor settings, and running a check
//! with a deadline.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::Utc;
use upwatch_checker::Checker;
use upwatch_core::check::{CheckJob, CheckResult, ErrorKind};
use upwatch_core::{Monitor, MonitorInput};

/// The longest any single check in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The job of a new monitor with `input`'s settings, due now.
pub fn job(input: MonitorInput) -> CheckJob {
    let monitor = Monitor::create(input, Utc::now()).expect("a valid monitor");
    CheckJob::for_monitor(&monitor, Utc::now())
}

/// Runs a check, failing the test rather than hanging should the checker not return.
pub async fn run(checker: &Checker, job: &CheckJob) -> (CheckResult, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(DEADLINE, checker.check(job))
        .await
        .expect("the check returns within its deadline");
    (result, started.elapsed())
}

pub fn error_kind(result: &CheckResult) -> Option<ErrorKind> {
    result.error.as_ref().map(|e| e.kind)
}
