//! The alerter role: runs the state machine in the store, which records each transition's
//! alert in the outbox in the same transaction, and wakes the dispatcher that delivers it.

use std::sync::Arc;

use tokio::sync::Notify;
use upwatch_bus::Subscription;
use upwatch_store::Store;

use crate::consume::each_result;
use crate::retry::{until_ok, Backoff};

/// The alerter role.
pub struct Alerter {
    pub store: Arc<dyn Store>,
    /// Woken after an alert is stored, so delivery starts at once.
    pub dispatch: Arc<Notify>,
}

impl Alerter {
    /// Runs until the results subscription ends.
    pub async fn run(self, results: Box<dyn Subscription>) {
        each_result("alerter", results, |result| {
            let store = self.store.clone();
            let dispatch = self.dispatch.clone();
            async move {
                let alert = until_ok(
                    "apply a result to the state machine",
                    Backoff::default(),
                    || store.apply_result(&result),
                )
                .await;
                if let Some(alert) = alert {
                    tracing::info!(
                        monitor_id = %alert.monitor_id,
                        monitor = %alert.monitor_name,
                        kind = alert.kind.as_str(),
                        alert_id = %alert.id,
                        "monitor changed state"
                    );
                    dispatch.notify_one();
                }
            }
        })
        .await;
    }
}
