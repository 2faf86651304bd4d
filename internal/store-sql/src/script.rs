//! The transaction scripts, written once for both drivers: what storing a batch of results
//! and applying a batch of results to the monitors' state machines do, step by step. Each
//! driver runs a script inside one transaction of its own, over [`ScriptSql`], a small layer
//! that holds only its dialect's SQL (and its locking, where the dialect has row locks).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use upwatch_core::rollup::{Resolution, Rollup};
use upwatch_core::{Alert, CheckResult, Monitor, MonitorState};
use upwatch_store::{Incident, StoreResult};
use uuid::Uuid;

use upwatch_core::rollup::rollup_keys;
use upwatch_core::AlertKind;

/// The rollups a batch adds to, by (monitor, resolution, bucket start).
pub(crate) type RollupDeltas = BTreeMap<(Uuid, Resolution, DateTime<Utc>), Rollup>;

/// The statements of one dialect, each run in the caller's open transaction.
#[async_trait]
pub(crate) trait ScriptSql: Send {
    /// Stores the results of monitors that exist and that are not stored yet (a result given
    /// twice is stored once), locking those monitors against deletion until the commit where
    /// the dialect can. Returns the ids of the results stored now.
    async fn insert_new_results(&mut self, results: &[CheckResult]) -> StoreResult<HashSet<Uuid>>;
    /// Adds each delta to its stored rollup, creating the missing ones.
    async fn add_to_rollups(&mut self, deltas: RollupDeltas) -> StoreResult<()>;
    /// The monitors of `ids` (sorted, distinct) that exist, locked against deletion.
    async fn monitors(&mut self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Monitor>>;
    /// The states of `monitors` (in id order, distinct), locked until the commit so that
    /// processes applying results of one monitor take turns. A monitor without a state row
    /// may be left out: the script starts it from [`Monitor::initial_state`].
    async fn lock_states(
        &mut self,
        monitors: &[&Monitor],
    ) -> StoreResult<HashMap<Uuid, MonitorState>>;
    /// Writes the states back.
    async fn save_states(&mut self, states: &[&MonitorState]) -> StoreResult<()>;
    async fn insert_alert(&mut self, alert: &Alert) -> StoreResult<()>;
    /// Opens `incident`, made by the down alert `alert_id`.
    async fn open_incident(&mut self, incident: &Incident, alert_id: Uuid) -> StoreResult<()>;
    /// Closes the monitor's open incident at `at`, by the recovery alert `alert_id`.
    async fn close_incident(
        &mut self,
        monitor_id: Uuid,
        at: DateTime<Utc>,
        alert_id: Uuid,
    ) -> StoreResult<()>;
    /// One pending delivery of `alert` per applicable enabled webhook: the monitor's, or all
    /// when it names none, in the webhooks' creation order.
    async fn queue_deliveries(&mut self, monitor: &Monitor, alert: &Alert) -> StoreResult<()>;
}

/// [`Store::insert_results`](upwatch_store::Store::insert_results): the new results, and
/// their rollups counted once each. Returns how many were new.
pub(crate) async fn insert_results(
    sql: &mut (impl ScriptSql + ?Sized),
    results: &[CheckResult],
) -> StoreResult<u64> {
    let mut fresh = sql.insert_new_results(results).await?;
    let stored = fresh.len() as u64;
    // Only results stored now count in the rollups: a redelivered one is counted once, and so
    // is one given twice in the batch.
    let deltas = rollup_deltas(results.iter().filter(|r| fresh.remove(&r.id)));
    sql.add_to_rollups(deltas).await?;
    Ok(stored)
}

/// [`Store::apply_results`](upwatch_store::Store::apply_results) on a whole batch: the monitors
/// and their states are read (and locked) in two statements per chunk, the state machine runs
/// on each result in order, each transition's alert is stored with its incident change and its
/// deliveries, and the changed states are written back. Returns the alerts made.
pub(crate) async fn apply_results(
    sql: &mut (impl ScriptSql + ?Sized),
    results: &[CheckResult],
) -> StoreResult<Vec<Alert>> {
    let mut alerts = Vec::new();
    if results.is_empty() {
        return Ok(alerts);
    }
    let ids = monitor_ids(results);
    // Every monitor before any state: the lock order of every transaction that takes both.
    let mut monitors = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        monitors.extend(sql.monitors(chunk).await?);
    }
    let known: Vec<&Monitor> = ids.iter().filter_map(|id| monitors.get(id)).collect();
    let mut states = HashMap::with_capacity(known.len());
    for chunk in known.chunks(CHUNK) {
        states.extend(sql.lock_states(chunk).await?);
    }
    let mut changed = BTreeSet::new();
    for result in results {
        // Results of unknown (deleted) monitors change nothing.
        let Some(monitor) = monitors.get(&result.monitor_id) else {
            continue;
        };
        let state = states
            .entry(monitor.id)
            .or_insert_with(|| monitor.initial_state());
        let Applied::Changed(made) = apply_to_state(monitor, state, result) else {
            continue;
        };
        changed.insert(monitor.id);
        for alert in made {
            record_alert(sql, monitor, &alert).await?;
            alerts.push(alert);
        }
    }
    let changed: Vec<&MonitorState> = changed.iter().filter_map(|id| states.get(id)).collect();
    for chunk in changed.chunks(CHUNK) {
        sql.save_states(chunk).await?;
    }
    Ok(alerts)
}

/// The monitors of `results`, each once, in id order: the order in which stores lock them.
pub(crate) fn monitor_ids(results: &[CheckResult]) -> Vec<Uuid> {
    results
        .iter()
        .map(|r| r.monitor_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Monitors per statement when reading or writing many.
const CHUNK: usize = 500;

/// Stores an alert with its incident change and its pending deliveries.
async fn record_alert(
    sql: &mut (impl ScriptSql + ?Sized),
    monitor: &Monitor,
    alert: &Alert,
) -> StoreResult<()> {
    sql.insert_alert(alert).await?;
    match incident_change(alert) {
        IncidentChange::Open(incident) => sql.open_incident(&incident, alert.id).await?,
        IncidentChange::Close { at } => sql.close_incident(alert.monitor_id, at, alert.id).await?,
        IncidentChange::None => {}
    }
    sql.queue_deliveries(monitor, alert).await
}

/// The rollups a batch of new results adds to, keyed by (monitor, resolution, bucket start)
/// in key order, which is also the order in which stores lock rollup rows.
fn rollup_deltas<'a>(new_results: impl IntoIterator<Item = &'a CheckResult>) -> RollupDeltas {
    let mut deltas: BTreeMap<(Uuid, Resolution, DateTime<Utc>), Rollup> = BTreeMap::new();
    // A check during a maintenance window counts neither up nor down, like paused time.
    for result in new_results.into_iter().filter(|r| !r.maintenance) {
        for (resolution, start) in rollup_keys(result.checked_at) {
            deltas
                .entry((result.monitor_id, resolution, start))
                .or_default()
                .add(result);
        }
    }
    // `Rollup::add` decides what counts: an inconclusive result (its worker had lost its own
    // network) counts nothing either, and a bucket that only such results fell in makes no row.
    deltas.retain(|_, delta| delta.checks > 0);
    deltas
}

/// What applying a result did to a monitor's state.
enum Applied {
    /// Nothing: the monitor is paused, or the result is not newer than the last one applied.
    Ignored,
    /// The state changed; here are the alerts it made (a transition's, a certificate's).
    Changed(Vec<Alert>),
}

/// The incident change a transition's alert makes.
fn incident_change(alert: &Alert) -> IncidentChange {
    match alert.kind {
        AlertKind::Down => IncidentChange::Open(Incident {
            id: Uuid::now_v7(),
            monitor_id: alert.monitor_id,
            started_at: alert.at,
            ended_at: None,
            first_error: alert.error.clone(),
            status_code: alert.status_code,
            alerts_sent: 0,
        }),
        AlertKind::Recovery => IncidentChange::Close { at: alert.at },
        // The site is up: a certificate's expiry is a warning, not an outage.
        AlertKind::CertificateExpiry => IncidentChange::None,
        // Reminders are stored apart (`queue_reminder`), never made by a transition.
        AlertKind::Reminder => IncidentChange::None,
    }
}

enum IncidentChange {
    Open(Incident),
    Close { at: DateTime<Utc> },
    None,
}

/// The pure part of [`Store::apply_result`], shared by every implementation: runs the state
/// machine and builds a transition's alert, and a certificate's expiry alert. The result carries the name and URL the monitor
/// had when its job was emitted; the alert shows what the monitor is called now.
fn apply_to_state(monitor: &Monitor, state: &mut MonitorState, result: &CheckResult) -> Applied {
    if !state.accepts(result) {
        return Applied::Ignored;
    }
    let transition = state.apply(result).map(|t| {
        Alert::new(&t, result)
            .with_regions(state.region_votes(result.checked_at, result.rules.interval_ms))
    });
    let certificate = state
        .observe_certificate(result)
        .map(|expiry| Alert::certificate(&expiry, result));
    let alerts = transition
        .into_iter()
        .chain(certificate)
        .map(|mut alert| {
            alert.monitor_name.clone_from(&monitor.name);
            alert.monitor_url.clone_from(&monitor.url);
            alert
        })
        .collect();
    Applied::Changed(alerts)
}
