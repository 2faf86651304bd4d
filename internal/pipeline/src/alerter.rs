//! The alerter role: runs the state machine in the store, which records each transition's
//! alert in the outbox in the same transaction, and wakes the dispatcher that delivers it.

use std::sync::Arc;

use tokio::sync::Notify;
use upwatch_bus::Subscription;
use upwatch_store::StateStore;

use crate::consume::{each_batch, Batching};
use crate::retry::{until_ok, Backoff};

/// The alerter role.
pub struct Alerter {
    pub store: Arc<dyn StateStore>,
    /// Woken after an alert is stored, so delivery starts at once.
    pub dispatch: Arc<Notify>,
    /// Results are applied in batches, one store transaction each.
    pub batching: Batching,
}

impl Alerter {
    /// Runs until the results subscription ends.
    pub async fn run(self, results: Box<dyn Subscription>) {
        let (store, dispatch) = (&self.store, &self.dispatch);
        each_batch("alerter", results, self.batching, |batch| async move {
            let alerts = until_ok(
                "apply results to the state machine",
                Backoff::default(),
                || store.apply_results(&batch),
            )
            .await;
            for alert in &alerts {
                tracing::info!(
                    monitor_id = %alert.monitor_id,
                    monitor = %alert.monitor_name,
                    kind = alert.kind.as_str(),
                    alert_id = %alert.id,
                    "monitor changed state"
                );
            }
            if !alerts.is_empty() {
                dispatch.notify_one();
            }
        })
        .await;
    }
}
