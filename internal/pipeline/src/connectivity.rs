//! What a worker does when its own network comes and goes: its `/readyz` says so while it
//! lasts, and one message says the region lost connectivity and, later, that it is back
//! (to the channels marked `system`, or the log when none is). The verdict itself comes from
//! the checker's [`upwatch_checker::connectivity::Connectivity`]; the worker marks its results
//! inconclusive while it is lost.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use upwatch_checker::connectivity::Verdict;
use upwatch_core::watchdog::Notice;
use upwatch_telemetry::{Metrics, RegionLabel};

use crate::watchdog::Announce;

/// The readiness problem of a lost network.
pub const CONNECTIVITY_PROBLEM: &str = "connectivity";

/// Follows a worker's connectivity verdicts until `stop`.
pub struct ConnectivityWatch {
    pub region: String,
    /// How many targets the verdict is over.
    pub targets: usize,
    pub metrics: Arc<Metrics>,
    /// Where the messages go; the log only when `None` (a worker without the store).
    pub announce: Option<Arc<dyn Announce>>,
}

impl ConnectivityWatch {
    pub async fn run(self, mut verdicts: watch::Receiver<Verdict>, stop: CancellationToken) {
        let mut lost_since = None;
        let gauge = self
            .metrics
            .connectivity_lost
            .get_or_create(&RegionLabel {
                region: self.region.clone(),
            })
            .clone();
        loop {
            let verdict = verdicts.borrow_and_update().clone();
            gauge.set(i64::from(verdict.lost));
            match (verdict.lost, lost_since) {
                (true, None) => {
                    lost_since = Some(verdict.since);
                    self.metrics.health.set_problem(
                        CONNECTIVITY_PROBLEM,
                        format!(
                            "Region {} reaches none of its {} connectivity targets ({}): its \
                             results are inconclusive until it does.",
                            self.region, self.targets, verdict.detail
                        ),
                    );
                    self.tell(Notice::ConnectivityLost {
                        region: self.region.clone(),
                        targets: self.targets,
                    })
                    .await;
                }
                (false, Some(since)) => {
                    lost_since = None;
                    self.metrics.health.clear_problem(CONNECTIVITY_PROBLEM);
                    self.tell(Notice::ConnectivityBack {
                        region: self.region.clone(),
                        lasted_ms: (verdict.since - since).num_milliseconds().max(0),
                    })
                    .await;
                }
                _ => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = verdicts.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Sends `notice` to the `system` channels (the checker has logged the change already).
    async fn tell(&self, notice: Notice) {
        if let Some(announce) = &self.announce {
            announce.announce(notice).await;
        }
    }
}
