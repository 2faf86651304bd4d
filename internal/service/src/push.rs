//! Push (heartbeat) monitors: a cron job or a backup reports in at
//! `/api/v1/push/{token}`, and each push becomes a result on the results stream, where the
//! logger, the cache updater and the alerter take it as they take a check's.
//!
//! In the embedded mode the stream is the in-process bus; in the distributed mode the API
//! publishes onto the Kafka results topic. Missed heartbeats are the watchdog's (beside the
//! scheduler): it publishes a `missed_heartbeat` result at each deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use upwatch_bus::{publish_json, Bus, Topic};
use upwatch_core::check::truncate;
use upwatch_core::monitor::is_push_token;
use upwatch_core::observation::CheckType;
use upwatch_core::{CheckError, CheckResult, ErrorKind};
use upwatch_store::{MaintenanceStore, MonitorReader};
use uuid::Uuid;

/// Buckets kept before idle ones are forgotten.
const MAX_BUCKETS: usize = 10_000;
/// The longest message a push may carry, in bytes.
pub const MAX_PUSH_MESSAGE: usize = 300;

/// What a push says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Whether the job reports success (`?status=up`, the default) or failure.
    pub up: bool,
    /// Its own words (`?msg=`), shown as the error of a down push.
    pub message: Option<String>,
}

/// A push recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub monitor_id: Uuid,
    pub result_id: Uuid,
    pub up: bool,
}

/// Why a push was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No push monitor has this token.
    #[error("no push monitor has this token")]
    UnknownToken,
    /// The monitor's pushes exceed the configured rate.
    #[error("too many pushes; try again in {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The store or the results stream cannot be reached now; the push may be sent again.
    #[error("cannot record the push now: {0}")]
    Unavailable(String),
}

/// Records pushes: finds the monitor by its token, limits the rate per monitor and publishes
/// the result.
pub struct PushService {
    store: Arc<dyn MonitorReader>,
    windows: Arc<dyn MaintenanceStore>,
    results: Arc<dyn Bus>,
    per_minute: u32,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

/// A token bucket: `per_minute` pushes at once, refilled at `per_minute` a minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

impl PushService {
    pub fn new(
        store: Arc<dyn MonitorReader>,
        windows: Arc<dyn MaintenanceStore>,
        results: Arc<dyn Bus>,
        per_minute: u32,
    ) -> Self {
        PushService {
            store,
            windows,
            results,
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Records `push` for the monitor with `token`, received at `now`.
    pub async fn record(
        &self,
        token: &str,
        push: Push,
        now: DateTime<Utc>,
    ) -> Result<Recorded, PushError> {
        if !is_push_token(token) {
            return Err(PushError::UnknownToken);
        }
        let monitor = self
            .store
            .find_monitor_by_url(&format!("push://{token}"))
            .await
            .map_err(|e| PushError::Unavailable(e.to_string()))?
            .filter(|m| m.check_type == CheckType::Push)
            .ok_or(PushError::UnknownToken)?;
        self.take(monitor.id, now)?;
        let outcome = if push.up {
            Ok(())
        } else {
            let message = push
                .message
                .filter(|m| !m.trim().is_empty())
                .map(|m| truncate(m.trim().to_string(), MAX_PUSH_MESSAGE))
                .unwrap_or_else(|| "the job reported that it failed".to_string());
            Err(CheckError::new(ErrorKind::ReportedDown, message))
        };
        let mut result = CheckResult::heartbeat(
            monitor.id,
            &monitor.name,
            &monitor.url,
            monitor.rules(),
            now,
            outcome,
        );
        // A push during one of the monitor's maintenance windows is marked like a check.
        result.maintenance = self
            .windows
            .list_maintenances()
            .await
            .map_err(|e| PushError::Unavailable(e.to_string()))?
            .iter()
            .any(|w| w.covers(monitor.id, monitor.group.as_deref()) && w.active_at(now).is_some());
        publish_json(self.results.as_ref(), Topic::Results, monitor.id, &result)
            .await
            .map_err(|e| PushError::Unavailable(e.to_string()))?;
        tracing::debug!(monitor_id = %monitor.id, up = push.up, "push recorded");
        Ok(Recorded {
            monitor_id: monitor.id,
            result_id: result.id,
            up: push.up,
        })
    }

    /// Takes one push from the monitor's bucket, or says how long until one is free.
    fn take(&self, monitor_id: Uuid, now: DateTime<Utc>) -> Result<(), PushError> {
        let capacity = f64::from(self.per_minute);
        let per_ms = capacity / 60_000.0;
        let mut buckets = self.buckets.lock().expect("push buckets lock");
        if buckets.len() >= MAX_BUCKETS {
            // Forget the buckets that are full again: they limit nothing.
            buckets.retain(|_, b| {
                b.tokens + (now - b.at).num_milliseconds().max(0) as f64 * per_ms < capacity
            });
        }
        let bucket = buckets.entry(monitor_id).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = (now - bucket.at).num_milliseconds().max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * per_ms).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = ((1.0 - bucket.tokens) / per_ms).ceil() as u64;
            Err(PushError::RateLimited {
                retry_after: Duration::from_millis(wait_ms.max(1)),
            })
        }
    }
}
