//! A [`Store`] wrapper for tests: it tells a hook about every call before passing it on, so
//! that a test can count the calls a component makes, or make some of them fail, against a
//! real store.

use crate::prelude::*;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use upwatch_core::maintenance::Maintenance;
use upwatch_core::rollup::{Cutoffs, RollupRun};
use upwatch_core::{Alert, AlertKind, CheckResult, Monitor, MonitorState, Webhook};
use uuid::Uuid;

use crate::{
    Delivery, HistoryEntry, HistoryQuery, Incident, IncidentQuery, Pruned, Store, StoreResult,
    StoredRollup,
};

/// One call made to an [`Intercepted`] store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The [`Store`] method's name, such as `"rollups"`.
    pub method: &'static str,
    /// How many monitors the call names: the length of `monitor_ids`, 1 for a call about one
    /// monitor, 0 otherwise.
    pub monitors: usize,
}

type Hook = dyn Fn(Call) -> StoreResult<()> + Send + Sync;

/// `inner`, with `hook` called before every method; an error from the hook is returned
/// instead of calling `inner`.
pub struct Intercepted {
    inner: Arc<dyn Store>,
    hook: Arc<Hook>,
}

impl Intercepted {
    pub fn new(
        inner: Arc<dyn Store>,
        hook: impl Fn(Call) -> StoreResult<()> + Send + Sync + 'static,
    ) -> Self {
        Intercepted {
            inner,
            hook: Arc::new(hook),
        }
    }

    fn call(&self, method: &'static str, monitors: usize) -> StoreResult<()> {
        (self.hook)(Call { method, monitors })
    }
}

#[async_trait]
impl MonitorReader for Intercepted {
    async fn get_monitor(&self, id: Uuid) -> StoreResult<Option<Monitor>> {
        self.call("get_monitor", 1)?;
        self.inner.get_monitor(id).await
    }

    async fn list_monitors(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<Monitor>> {
        self.call("list_monitors", 0)?;
        self.inner.list_monitors(after, limit).await
    }

    async fn all_monitors(&self) -> StoreResult<Vec<Monitor>> {
        self.call("all_monitors", 0)?;
        self.inner.all_monitors().await
    }

    async fn find_monitor_by_url(&self, url: &str) -> StoreResult<Option<Monitor>> {
        self.call("find_monitor_by_url", 0)?;
        self.inner.find_monitor_by_url(url).await
    }

    async fn monitors_version(&self) -> StoreResult<i64> {
        self.call("monitors_version", 0)?;
        self.inner.monitors_version().await
    }
}

#[async_trait]
impl MonitorStore for Intercepted {
    async fn insert_monitor(&self, monitor: &Monitor) -> StoreResult<()> {
        self.call("insert_monitor", 0)?;
        self.inner.insert_monitor(monitor).await
    }

    async fn insert_monitors(&self, monitors: &[Monitor]) -> StoreResult<()> {
        self.call("insert_monitors", monitors.len())?;
        self.inner.insert_monitors(monitors).await
    }

    async fn update_monitor(&self, monitor: &Monitor) -> StoreResult<bool> {
        self.call("update_monitor", 0)?;
        self.inner.update_monitor(monitor).await
    }

    async fn delete_monitor(&self, id: Uuid) -> StoreResult<bool> {
        self.call("delete_monitor", 1)?;
        self.inner.delete_monitor(id).await
    }
}

#[async_trait]
impl HistoryReader for Intercepted {
    async fn history(
        &self,
        monitor_id: Uuid,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryEntry>> {
        self.call("history", 1)?;
        self.inner.history(monitor_id, query).await
    }

    async fn rollups(
        &self,
        monitor_ids: &[Uuid],
        runs: &[RollupRun],
    ) -> StoreResult<Vec<StoredRollup>> {
        self.call("rollups", monitor_ids.len())?;
        self.inner.rollups(monitor_ids, runs).await
    }

    async fn incidents(&self, query: &IncidentQuery) -> StoreResult<Vec<Incident>> {
        self.call("incidents", 0)?;
        self.inner.incidents(query).await
    }
}

#[async_trait]
impl ResultLog for Intercepted {
    async fn insert_results(&self, results: &[CheckResult]) -> StoreResult<u64> {
        self.call("insert_results", 0)?;
        self.inner.insert_results(results).await
    }

    async fn prune(&self, monitor_ids: &[Uuid], cutoffs: &Cutoffs) -> StoreResult<Pruned> {
        self.call("prune", monitor_ids.len())?;
        self.inner.prune(monitor_ids, cutoffs).await
    }

    async fn prune_days(
        &self,
        raw_cutoff: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.call("prune_days", 0)?;
        self.inner.prune_days(raw_cutoff, now).await
    }
}

#[async_trait]
impl StateReader for Intercepted {
    async fn get_state(&self, monitor_id: Uuid) -> StoreResult<Option<MonitorState>> {
        self.call("get_state", 1)?;
        self.inner.get_state(monitor_id).await
    }

    async fn list_states(&self) -> StoreResult<Vec<MonitorState>> {
        self.call("list_states", 0)?;
        self.inner.list_states().await
    }
}

#[async_trait]
impl StateStore for Intercepted {
    async fn apply_result(&self, result: &CheckResult) -> StoreResult<Option<Alert>> {
        self.call("apply_result", 0)?;
        self.inner.apply_result(result).await
    }

    async fn apply_results(&self, results: &[CheckResult]) -> StoreResult<Vec<Alert>> {
        self.call("apply_results", 0)?;
        self.inner.apply_results(results).await
    }
}

#[async_trait]
impl WebhookStore for Intercepted {
    async fn upsert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        self.call("upsert_webhook", 0)?;
        self.inner.upsert_webhook(webhook).await
    }

    async fn get_webhook(&self, id: Uuid) -> StoreResult<Option<Webhook>> {
        self.call("get_webhook", 0)?;
        self.inner.get_webhook(id).await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.call("list_webhooks", 0)?;
        self.inner.list_webhooks().await
    }

    async fn delete_webhook(&self, id: Uuid) -> StoreResult<bool> {
        self.call("delete_webhook", 0)?;
        self.inner.delete_webhook(id).await
    }

    async fn enable_webhook(&self, id: Uuid) -> StoreResult<bool> {
        self.call("enable_webhook", 0)?;
        self.inner.enable_webhook(id).await
    }
}

#[async_trait]
impl Outbox for Intercepted {
    async fn disable_webhook(&self, id: Uuid, reason: &str) -> StoreResult<()> {
        self.call("disable_webhook", 0)?;
        self.inner.disable_webhook(id, reason).await
    }

    async fn webhooks_with_pending(&self) -> StoreResult<Vec<Uuid>> {
        self.call("webhooks_with_pending", 0)?;
        self.inner.webhooks_with_pending().await
    }

    async fn next_delivery(&self, webhook_id: Uuid) -> StoreResult<Option<Delivery>> {
        self.call("next_delivery", 0)?;
        self.inner.next_delivery(webhook_id).await
    }

    async fn delivery_sent(&self, delivery_id: i64) -> StoreResult<()> {
        self.call("delivery_sent", 0)?;
        self.inner.delivery_sent(delivery_id).await
    }

    async fn delivery_retry(
        &self,
        delivery_id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        self.call("delivery_retry", 0)?;
        self.inner
            .delivery_retry(delivery_id, next_attempt_at, error)
            .await
    }

    async fn delivery_failed(&self, delivery_id: i64, error: &str) -> StoreResult<()> {
        self.call("delivery_failed", 0)?;
        self.inner.delivery_failed(delivery_id, error).await
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        self.call("pending_deliveries", 0)?;
        self.inner.pending_deliveries().await
    }

    async fn deliveries_sent(&self, delivery_ids: &[i64]) -> StoreResult<()> {
        self.call("deliveries_sent", 0)?;
        self.inner.deliveries_sent(delivery_ids).await
    }

    async fn deliveries_failed(&self, delivery_ids: &[i64], error: &str) -> StoreResult<()> {
        self.call("deliveries_failed", 0)?;
        self.inner.deliveries_failed(delivery_ids, error).await
    }

    async fn pending_deliveries_of(
        &self,
        webhook_id: Uuid,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.call("pending_deliveries_of", 0)?;
        self.inner.pending_deliveries_of(webhook_id, limit).await
    }

    async fn recent_deliveries(
        &self,
        webhook_id: Uuid,
        kind: AlertKind,
        since: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.call("recent_deliveries", 0)?;
        self.inner.recent_deliveries(webhook_id, kind, since).await
    }

    async fn queue_reminder(
        &self,
        incident_id: Uuid,
        alert: &Alert,
        webhook_id: Uuid,
    ) -> StoreResult<bool> {
        self.call("queue_reminder", 0)?;
        self.inner
            .queue_reminder(incident_id, alert, webhook_id)
            .await
    }
}

#[async_trait]
impl MaintenanceStore for Intercepted {
    async fn list_maintenances(&self) -> StoreResult<Vec<Maintenance>> {
        self.call("list_maintenances", 0)?;
        self.inner.list_maintenances().await
    }

    async fn get_maintenance(&self, id: Uuid) -> StoreResult<Option<Maintenance>> {
        self.call("get_maintenance", 0)?;
        self.inner.get_maintenance(id).await
    }

    async fn insert_maintenance(&self, maintenance: &Maintenance) -> StoreResult<()> {
        self.call("insert_maintenance", 0)?;
        self.inner.insert_maintenance(maintenance).await
    }

    async fn update_maintenance(&self, maintenance: &Maintenance) -> StoreResult<bool> {
        self.call("update_maintenance", 0)?;
        self.inner.update_maintenance(maintenance).await
    }

    async fn delete_maintenance(&self, id: Uuid) -> StoreResult<bool> {
        self.call("delete_maintenance", 0)?;
        self.inner.delete_maintenance(id).await
    }
}

#[async_trait]
impl Store for Intercepted {
    async fn ping(&self) -> StoreResult<()> {
        self.call("ping", 0)?;
        self.inner.ping().await
    }
}
