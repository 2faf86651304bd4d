//! The behaviour every [`Store`] must show, as async functions that each implementation's
//! tests call, one test per function, each with a fresh, empty store.
//!
//! The functions panic (through `assert!`) on the first difference, naming what was expected.
//! Times used here are whole seconds, which every store keeps exactly (stores may keep times
//! to the millisecond only).
//!
//! Split like the store's traits, one module per concern; every function is also reachable at
//! `contract::` itself, so that a driver's tests list them by name.

mod monitors;
mod notifiers;
mod outbox;
mod results;
mod state;
mod webhooks;

pub use monitors::*;
pub use notifiers::*;
pub use outbox::*;
pub use results::*;
pub use state::*;
pub use webhooks::*;

/// Calls the macro `$run` with the name of every contract function, so that each store's
/// test file makes one test per function from its own setup, and a new function is tested
/// on every store.
#[macro_export]
macro_rules! for_each_contract_test {
    ($run:ident) => {
        $run!(
            monitors_crud_and_version,
            monitors_list_in_id_order,
            monitor_found_by_url,
            new_monitors_start_pending_or_paused,
            delete_removes_history_and_state,
            results_are_idempotent,
            history_pages_newest_first,
            apply_result_alerts_on_transitions,
            apply_result_uses_the_monitors_webhooks,
            apply_result_ignores_paused_and_unknown,
            apply_result_is_atomic,
            pause_and_resume_via_update,
            webhooks_upsert_keeps_enabled,
            disable_webhook_fails_pending,
            enable_webhook_resumes_alerts,
            delete_webhook_removes_pending,
            outbox_delivers_in_order,
            rollups_equal_the_raw_rows_they_summarize,
            concurrent_batches_add_up,
            retention_prunes_exactly_what_is_older,
            incidents_open_and_close_with_transitions,
            delete_removes_rollups_and_incidents,
            apply_results_in_batches_equals_one_by_one,
            insert_monitors_is_all_or_nothing,
            certificate_expiry_alerts_once_without_incident,
            maintenance_results_are_kept_out_of_uptime_and_alerts,
            maintenances_crud_and_version,
            channels_keep_kind_settings_and_options,
            alerts_route_by_monitor_then_group_then_default,
            storm_reads_count_and_settle_together,
            reminders_are_stored_once_and_counted,
            results_keep_their_region,
            inconclusive_results_count_in_no_rollup,
            regions_vote_with_a_quorum,
        );
    };
}

use chrono::{DateTime, Utc};
use upwatch_core::{Alert, CheckResult, Monitor, MonitorInput, Webhook, WebhookSource};
use uuid::Uuid;

use crate::{HistoryCursor, HistoryEntry, HistoryQuery, Store};

/// A fixed time, `s` seconds after 2023-11-14T22:13:20Z.
pub(super) fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid time")
}

/// Now, cut to the millisecond so that any store gives it back unchanged.
pub(super) fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("valid time")
}

pub(super) fn monitor_from(input: MonitorInput) -> Monitor {
    Monitor::create(input, t(0)).expect("a valid monitor")
}

pub(super) fn monitor(url: &str) -> Monitor {
    monitor_from(MonitorInput::for_url(url))
}

pub(super) fn disabled_monitor(url: &str) -> Monitor {
    monitor_from(MonitorInput {
        enabled: Some(false),
        ..MonitorInput::for_url(url)
    })
}

/// A result of `m` checked at `t(at)`: up with HTTP 200, or down with HTTP 503.
pub(super) fn result(m: &Monitor, at: i64, up: bool) -> CheckResult {
    CheckResult::simulated(m, t(at), up, 40 + at.unsigned_abs() as u32)
}

/// Stores `webhooks` and a new monitor of `url`, then a failing check of it at `t(10)`: the
/// monitor is down, with one pending delivery per webhook. Returns the monitor and its alert.
pub(super) async fn alerting_monitor(
    store: &dyn Store,
    url: &str,
    webhooks: &[&Webhook],
) -> (Monitor, Alert) {
    for hook in webhooks {
        store.upsert_webhook(hook).await.unwrap();
    }
    let m = monitor(url);
    store.insert_monitor(&m).await.unwrap();
    let alert = store
        .apply_result(&result(&m, 10, false))
        .await
        .unwrap()
        .expect("a new monitor that is down alerts");
    (m, alert)
}

/// What history shows of `r`.
pub(super) fn entry(r: &CheckResult) -> HistoryEntry {
    HistoryEntry {
        id: r.id,
        checked_at: r.checked_at,
        status: r.status,
        response_time_ms: r.response_time_ms,
        status_code: r.status_code,
        error: r.error.clone(),
        maintenance: r.maintenance,
        region: r.region.clone(),
    }
}

/// An enabled default Discord channel made through the API at `t(created)`, as
/// `/api/v1/webhooks` makes them.
pub(super) fn webhook(name: &str, created: i64) -> Webhook {
    Webhook {
        created_at: t(created),
        ..Webhook::discord(
            Uuid::now_v7(),
            name.to_string(),
            format!("http://127.0.0.1:9/hooks/{name}/secret"),
            WebhookSource::Api,
        )
    }
}

pub(super) fn query(limit: u32) -> HistoryQuery {
    HistoryQuery {
        limit,
        ..HistoryQuery::default()
    }
}

pub(super) fn cursor(e: &HistoryEntry) -> HistoryCursor {
    HistoryCursor {
        checked_at: e.checked_at,
        id: e.id,
    }
}

pub(super) fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}
