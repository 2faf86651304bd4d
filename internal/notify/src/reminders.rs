//! Reminders: while a monitor stays down, "still down for 1h 0m" at each channel's reminder
//! interval (or the monitor's own, which overrides it; off by default).
//!
//! Every [`REMINDER_TICK`] the leader looks at the open incidents. For each incident and each
//! channel its monitor's alerts go to, the reminder due now is the last multiple of the
//! interval since the incident opened ([`due_reminder`]). It is stored with one delivery
//! unless it already is: its id is derived from the incident, the channel and the due time,
//! so a second process or a restart stores it once, and a process that was away for three
//! intervals sends one reminder, not three. The dispatcher then delivers it like any alert,
//! and the incident counts it in `alerts_sent` once sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use upwatch_core::webhook::route;
use upwatch_core::{Alert, Monitor, Webhook};
use upwatch_store::{IncidentQuery, Store, StoreResult};
use uuid::Uuid;

/// How often the open incidents are looked at.
pub const REMINDER_TICK: Duration = Duration::from_secs(10);
/// Open incidents read per page.
const PAGE: u32 = 1000;

/// The reminder interval of `monitor` on `channel`, in seconds: the monitor's own when it
/// sets one (0: none), else the channel's.
pub fn reminder_interval(monitor: &Monitor, channel: &Webhook) -> Option<u32> {
    match monitor.reminder_interval_seconds {
        Some(0) => None,
        Some(s) => Some(s),
        None => channel.options.reminder_interval_seconds,
    }
    .filter(|s| *s > 0)
}

/// The reminder due at `now` for an incident opened at `started_at`, every `interval`
/// seconds: the last `started_at + k * interval` (k ≥ 1) not after `now`, if any.
pub fn due_reminder(
    started_at: DateTime<Utc>,
    interval_seconds: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let every = i64::from(interval_seconds.max(1)) * 1000;
    let k = (now - started_at).num_milliseconds() / every;
    (k >= 1).then(|| started_at + chrono::Duration::milliseconds(k * every))
}

/// The reminder task. Build it, then [`run`](Reminders::run) it under the leadership that
/// runs the dispatcher.
pub struct Reminders {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    every: Duration,
    /// Reminders this process stored (or found stored), by incident and channel: the due
    /// time, so that each is asked of the store once.
    done: HashMap<(Uuid, Uuid), DateTime<Utc>>,
}

impl Reminders {
    /// Reminders over `store`, poking `wake` (the dispatcher's waker) when it stores one.
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>) -> Self {
        Reminders {
            store,
            wake,
            every: REMINDER_TICK,
            done: HashMap::new(),
        }
    }

    /// Looks every `every` instead of [`REMINDER_TICK`].
    pub fn with_tick(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Stores the due reminders every tick until `shutdown`. Time follows tokio's clock from
    /// the wall clock at the start, so that paused-time tests drive it.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let wall = Utc::now();
        let start = Instant::now();
        info!("reminders started");
        loop {
            let now = wall
                + chrono::Duration::from_std(start.elapsed()).unwrap_or(chrono::Duration::zero());
            match self.tick(now).await {
                Ok(0) => {}
                Ok(n) => {
                    debug!(reminders = n, "reminders queued");
                    self.wake.notify_one();
                }
                Err(e) => warn!(error = %e, "could not queue reminders; trying again"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
        info!("reminders stopped");
    }

    /// Stores the reminders due at `now`; returns how many were new.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> StoreResult<usize> {
        let channels: Vec<Webhook> = self
            .store
            .list_webhooks()
            .await?
            .into_iter()
            .filter(|c| c.enabled)
            .collect();
        if channels.is_empty() {
            return Ok(0);
        }
        let mut open = HashSet::new();
        let mut queued = 0;
        let mut before = None;
        loop {
            let page = self
                .store
                .incidents(&IncidentQuery {
                    monitor_id: None,
                    open_only: true,
                    before,
                    limit: PAGE,
                })
                .await?;
            for incident in &page {
                open.insert(incident.id);
                let Some(monitor) = self.store.get_monitor(incident.monitor_id).await? else {
                    continue;
                };
                if !monitor.enabled {
                    continue;
                }
                for channel in route(&monitor.notifier_ids, monitor.group.as_deref(), &channels) {
                    let Some(interval) = reminder_interval(&monitor, channel) else {
                        continue;
                    };
                    let Some(due) = due_reminder(incident.started_at, interval, now) else {
                        continue;
                    };
                    let key = (incident.id, channel.id);
                    if self.done.get(&key) == Some(&due) {
                        continue;
                    }
                    let alert = Alert::reminder(
                        incident.id,
                        &monitor,
                        incident.started_at,
                        incident.first_error.clone(),
                        incident.status_code,
                        channel.id,
                        due,
                    );
                    if self
                        .store
                        .queue_reminder(incident.id, &alert, channel.id)
                        .await?
                    {
                        queued += 1;
                        info!(monitor_id = %monitor.id, channel = %channel.name, "reminder queued");
                    }
                    self.done.insert(key, due);
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => before = Some(last.id),
                _ => break,
            }
        }
        // Forget closed incidents.
        self.done.retain(|(incident, _), _| open.contains(incident));
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_due_reminder_is_the_last_multiple_of_the_interval() {
        let start = Utc.with_ymd_and_hms(2024, 1, 16, 20, 0, 0).unwrap();
        let at = |m: i64| start + chrono::Duration::minutes(m);
        assert_eq!(due_reminder(start, 3600, at(59)), None);
        assert_eq!(due_reminder(start, 3600, at(60)), Some(at(60)));
        assert_eq!(due_reminder(start, 3600, at(119)), Some(at(60)));
        // Away for three intervals: one reminder, the last.
        assert_eq!(due_reminder(start, 3600, at(200)), Some(at(180)));
    }
}
