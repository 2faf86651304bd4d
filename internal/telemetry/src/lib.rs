//! Metrics and logs shared by every role.
//!
//! [`Metrics`] is one registry per process, rendered as Prometheus text at `/metrics`.
//! [`init_tracing`] sets up structured logs, human-readable or JSON.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use upwatch_core::{CheckResult, CheckStatus};

/// Labels of a check counter: `up`, or the error kind of a failed check, and the region of
/// the worker that made it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
    pub region: String,
}

/// Label of a per-region metric: the region of the worker that made the check.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabel {
    pub region: String,
}

/// Label of a per-topic counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: &'static str,
}

/// Label of a per-partition gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: i32,
}

/// Why this process is not ready, by what noticed it (`/readyz` answers 503 with the reasons
/// while there is any). Roles set a reason when they see something people must act on, such
/// as monitors no one checks, and clear it when it is over.
#[derive(Debug, Default)]
pub struct Health {
    problems: Mutex<BTreeMap<&'static str, String>>,
}

impl Health {
    /// Records (or replaces) the problem `what` has noticed.
    pub fn set_problem(&self, what: &'static str, reason: String) {
        self.problems
            .lock()
            .expect("health lock")
            .insert(what, reason);
    }

    /// Forgets the problem `what` noticed.
    pub fn clear_problem(&self, what: &'static str) {
        self.problems.lock().expect("health lock").remove(what);
    }

    /// Every current problem, one sentence each; empty when the process is ready.
    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .expect("health lock")
            .values()
            .cloned()
            .collect()
    }
}

/// Every metric upwatch exports. Cheap to clone handles live inside; share it in an `Arc`.
pub struct Metrics {
    registry: Registry,
    /// Checks performed, by outcome (`up` or the error kind).
    pub checks: Family<OutcomeLabel, Counter>,
    /// Duration of checks, seconds.
    pub check_duration: Family<RegionLabel, Histogram, fn() -> Histogram>,
    /// Start of a check minus its due time, seconds.
    pub schedule_lag: Histogram,
    /// Time a job waited for a free worker, seconds.
    pub queue_wait: Histogram,
    /// Jobs waiting for a worker in this process.
    pub queue_depth: Gauge,
    /// Checks in flight in this process.
    pub checks_in_flight: Gauge,
    /// Jobs skipped because they were picked up more than one interval after their due time.
    pub jobs_stale: Counter,
    /// Jobs skipped because the previous check of the same monitor was still running.
    pub jobs_overlapping: Counter,
    /// Slots the scheduler skipped because it was more than an interval behind.
    pub schedule_missed: Counter,
    /// Jobs emitted by the scheduler.
    pub jobs_emitted: Counter,
    /// Monitors the scheduler is scheduling.
    pub monitors_scheduled: Gauge,
    /// Results written to the database.
    pub results_stored: Counter,
    /// Raw results and rollups deleted because they outlived their retention.
    pub history_pruned: Counter,
    /// Commit of a result's batch minus the result's due time, seconds.
    pub result_store_delay: Histogram,
    /// Alert deliveries that reached their webhook.
    pub alerts_sent: Counter,
    /// Failed alert delivery attempts (each retry counts).
    pub alerts_failed: Counter,
    /// Failed attempts to publish to the bus, by topic (each retry counts).
    pub publish_failures: Family<TopicLabel, Counter>,
    /// Enabled monitors without a result for too long, as the watchdog last counted them.
    pub monitors_stale: Gauge,
    /// 1 while this worker's region reaches none of its connectivity targets, else 0.
    pub connectivity_lost: Family<RegionLabel, Gauge>,
    /// Consumer lag of the workers' group on each partition of the jobs topic (distributed
    /// mode, read by the watchdog).
    pub jobs_partition_lag: Family<PartitionLabel, Gauge>,
    /// What keeps this process from being ready.
    pub health: Health,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("upwatch");
        let checks = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "checks",
            "Checks performed, by outcome (up or the error kind) and region",
            checks.clone(),
        );
        let check_duration =
            Family::<RegionLabel, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            });
        registry.register(
            "check_duration_seconds",
            "Duration of checks, by region",
            check_duration.clone(),
        );
        // Steps of 25% (1 ms to about 90 s), so that a p99 read from the buckets is within
        // a quarter of the true value.
        let schedule_lag = Histogram::new(fine_buckets());
        registry.register(
            "schedule_lag_seconds",
            "Start of a check minus its due time",
            schedule_lag.clone(),
        );
        let queue_wait = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        registry.register(
            "queue_wait_seconds",
            "Time a job waited for a free worker",
            queue_wait.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Jobs waiting for a worker in this process",
            queue_depth.clone(),
        );
        let checks_in_flight = Gauge::default();
        registry.register(
            "checks_in_flight",
            "Checks running in this process",
            checks_in_flight.clone(),
        );
        let jobs_stale = Counter::default();
        registry.register(
            "jobs_stale",
            "Jobs skipped because they were picked up more than one interval late",
            jobs_stale.clone(),
        );
        let jobs_overlapping = Counter::default();
        registry.register(
            "jobs_overlapping",
            "Jobs skipped because the monitor's previous check was still running",
            jobs_overlapping.clone(),
        );
        let schedule_missed = Counter::default();
        registry.register(
            "schedule_missed",
            "Slots skipped because the scheduler was more than an interval behind",
            schedule_missed.clone(),
        );
        let jobs_emitted = Counter::default();
        registry.register(
            "jobs_emitted",
            "Jobs emitted by the scheduler",
            jobs_emitted.clone(),
        );
        let monitors_scheduled = Gauge::default();
        registry.register(
            "monitors_scheduled",
            "Monitors being scheduled",
            monitors_scheduled.clone(),
        );
        let results_stored = Counter::default();
        registry.register(
            "results_stored",
            "Results written to the database",
            results_stored.clone(),
        );
        let history_pruned = Counter::default();
        registry.register(
            "history_pruned",
            "Raw results and rollups deleted after their retention",
            history_pruned.clone(),
        );
        let result_store_delay = Histogram::new(fine_buckets());
        registry.register(
            "result_store_delay_seconds",
            "Commit of a result's batch in the database minus the result's due time",
            result_store_delay.clone(),
        );
        let alerts_sent = Counter::default();
        registry.register(
            "alerts_sent",
            "Alert deliveries that reached their webhook",
            alerts_sent.clone(),
        );
        let alerts_failed = Counter::default();
        registry.register(
            "alerts_failed",
            "Failed alert delivery attempts",
            alerts_failed.clone(),
        );
        let publish_failures = Family::<TopicLabel, Counter>::default();
        registry.register(
            "publish_failures",
            "Failed attempts to publish to the bus",
            publish_failures.clone(),
        );
        let connectivity_lost = Family::<RegionLabel, Gauge>::default();
        registry.register(
            "connectivity_lost",
            "1 while this worker reaches none of its connectivity targets (its results are inconclusive)",
            connectivity_lost.clone(),
        );
        let monitors_stale = Gauge::default();
        registry.register(
            "monitors_stale",
            "Enabled monitors without a result for UPWATCH_STALE_AFTER_INTERVALS intervals",
            monitors_stale.clone(),
        );
        let jobs_partition_lag = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "jobs_partition_lag",
            "Jobs not yet consumed by the workers' group, per partition of the jobs topic",
            jobs_partition_lag.clone(),
        );
        Arc::new(Metrics {
            registry,
            checks,
            check_duration,
            schedule_lag,
            queue_wait,
            queue_depth,
            checks_in_flight,
            jobs_stale,
            jobs_overlapping,
            schedule_missed,
            jobs_emitted,
            monitors_scheduled,
            results_stored,
            history_pruned,
            result_store_delay,
            alerts_sent,
            alerts_failed,
            publish_failures,
            monitors_stale,
            connectivity_lost,
            jobs_partition_lag,
            health: Health::default(),
        })
    }

    /// Counts a finished check.
    pub fn record_check(&self, result: &CheckResult) {
        let outcome = match (&result.status, &result.error) {
            (CheckStatus::Up, _) => "up",
            (CheckStatus::Down | CheckStatus::Inconclusive, Some(e)) => e.kind.as_str(),
            (CheckStatus::Down, None) => "other",
            (CheckStatus::Inconclusive, None) => "local_network",
        };
        self.checks
            .get_or_create(&OutcomeLabel {
                outcome,
                region: result.region.clone(),
            })
            .inc();
        self.check_duration
            .get_or_create(&RegionLabel {
                region: result.region.clone(),
            })
            .observe(f64::from(result.response_time_ms) / 1000.0);
        self.schedule_lag
            .observe(result.schedule_lag_ms() as f64 / 1000.0);
    }

    /// Records the delay from each result's due time to `stored_at_ms` (Unix milliseconds),
    /// the commit of its batch.
    pub fn record_stored(&self, results: &[CheckResult], stored_at_ms: i64) {
        for result in results {
            let delay_ms = (stored_at_ms - result.due_at.timestamp_millis()).max(0);
            self.result_store_delay.observe(delay_ms as f64 / 1000.0);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Histogram bounds from 1 ms to about 90 s in steps of 25%.
fn fine_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 1.25, 52)
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the global tracing subscriber. `filter` uses `RUST_LOG` syntax (`info`,
/// `upwatch=debug,sqlx=warn`). Calling it twice keeps the first subscriber.
pub fn init_tracing(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_every_family() {
        let m = Metrics::new();
        m.checks
            .get_or_create(&OutcomeLabel {
                outcome: "timeout",
                region: "default".to_string(),
            })
            .inc();
        m.alerts_sent.inc();
        m.queue_depth.set(7);
        let text = m.render();
        assert!(
            text.contains("upwatch_checks_total{outcome=\"timeout\",region=\"default\"} 1"),
            "{text}"
        );
        assert!(text.contains("upwatch_alerts_sent_total 1"));
        assert!(text.contains("upwatch_queue_depth 7"));
        assert!(text.contains("# TYPE upwatch_schedule_lag_seconds histogram"));
        assert!(text.contains("# TYPE upwatch_result_store_delay_seconds histogram"));
        assert!(text.ends_with("# EOF\n"));
    }

    fn result(region: &str, status: CheckStatus, ms: u32) -> CheckResult {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        CheckResult {
            v: upwatch_core::check::SCHEMA_VERSION,
            id: uuid::Uuid::nil(),
            job_id: uuid::Uuid::nil(),
            monitor_id: uuid::Uuid::nil(),
            monitor_name: "m".to_string(),
            url: "http://127.0.0.1:9/".to_string(),
            due_at: at,
            checked_at: at,
            response_time_ms: ms,
            status_code: None,
            status,
            error: None,
            rules: Default::default(),
            details: Default::default(),
            cert_expiry_alert_days: Vec::new(),
            maintenance: false,
            region: region.to_string(),
        }
    }

    #[test]
    fn checks_are_counted_by_outcome_and_region() {
        let m = Metrics::new();
        m.record_check(&result("eu-west", CheckStatus::Up, 20));
        m.record_check(&result("eu-west", CheckStatus::Up, 30));
        m.record_check(&result("us-east", CheckStatus::Down, 40));
        m.record_check(&result("us-east", CheckStatus::Inconclusive, 0));
        let text = m.render();
        for line in [
            "upwatch_checks_total{outcome=\"up\",region=\"eu-west\"} 2",
            "upwatch_checks_total{outcome=\"other\",region=\"us-east\"} 1",
            "upwatch_checks_total{outcome=\"local_network\",region=\"us-east\"} 1",
            "upwatch_check_duration_seconds_count{region=\"eu-west\"} 2",
            "upwatch_check_duration_seconds_count{region=\"us-east\"} 2",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
