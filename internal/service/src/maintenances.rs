//! Maintenance windows' use cases: the core validates a window on its own; here it is also
//! checked against the monitors it names (every id a monitor, every group one some monitor
//! has), then stored, and the scheduler is told at once (schedulers elsewhere see the store's
//! monitors version change, which every window write bumps).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use upwatch_core::maintenance::{Maintenance, MaintenanceInput};
use upwatch_core::{Monitor, ValidationError};
use upwatch_store::{Store, StoreError, StoreResult};
use uuid::Uuid;

/// Why a window was not written.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The window is not valid, on its own or against the monitors; the error names the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What windows may name: the monitors' ids and the groups they have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    ids: HashSet<Uuid>,
    groups: BTreeSet<String>,
}

impl Targets {
    /// The ids and groups of these monitors.
    pub fn of<'a>(monitors: impl IntoIterator<Item = &'a Monitor>) -> Targets {
        let mut targets = Targets::default();
        for monitor in monitors {
            targets.add(monitor.id, monitor.group.as_deref());
        }
        targets
    }

    /// Adds a monitor with this id and group.
    pub fn add(&mut self, id: Uuid, group: Option<&str>) {
        self.ids.insert(id);
        if let Some(group) = group {
            self.add_group(group);
        }
    }

    /// Adds a group some monitor will have (one about to be created, whose id is not known).
    pub fn add_group(&mut self, group: &str) {
        self.groups.insert(group.to_string());
    }

    /// Refuses a window that names a monitor id no monitor has (`monitor_ids`) or a group no
    /// monitor is in (`groups`).
    pub fn check(&self, window: &Maintenance) -> Result<(), ValidationError> {
        if let Some(unknown) = window.monitor_ids.iter().find(|id| !self.ids.contains(id)) {
            return Err(ValidationError::new(
                "monitor_ids",
                format!("names `{unknown}`, which is not the id of any monitor"),
            ));
        }
        if let Some(unknown) = window.groups.iter().find(|g| !self.groups.contains(*g)) {
            let known = if self.groups.is_empty() {
                "no monitor has a group yet".to_string()
            } else {
                let names: Vec<String> = self.groups.iter().map(|g| format!("`{g}`")).collect();
                format!("the monitors' groups are {}", names.join(", "))
            };
            return Err(ValidationError::new(
                "groups",
                format!("names `{unknown}`, which is the group of no monitor ({known})"),
            ));
        }
        Ok(())
    }
}

/// Creates, changes, deletes and reads maintenance windows.
#[derive(Clone)]
pub struct MaintenanceService {
    store: Arc<dyn Store>,
    changed: Arc<Notify>,
}

impl MaintenanceService {
    /// `changed` is poked once after every write, so that a scheduler in this process reloads
    /// at once (schedulers elsewhere see the store's monitors version change).
    pub fn new(store: Arc<dyn Store>, changed: Arc<Notify>) -> MaintenanceService {
        MaintenanceService { store, changed }
    }

    /// For a tool that writes windows while no process of its own serves them (`upwatch
    /// import`): running processes learn of the changes through the store's monitors version.
    pub fn offline(store: Arc<dyn Store>) -> MaintenanceService {
        MaintenanceService::new(store, Arc::new(Notify::new()))
    }

    /// What windows may name now: every monitor's id and group.
    pub async fn targets(&self) -> StoreResult<Targets> {
        Ok(Targets::of(&self.store.all_monitors().await?))
    }

    /// Validates `input` on its own and against `targets`, as a new window (with a fresh id)
    /// or as the new settings of `existing` (keeping its id and creation time, which is also
    /// the start of a recurring rule). Writes nothing.
    pub fn validate(
        input: MaintenanceInput,
        existing: Option<&Maintenance>,
        targets: &Targets,
        now: DateTime<Utc>,
    ) -> Result<Maintenance, ValidationError> {
        let window = match existing {
            None => Maintenance::create(input, now)?,
            Some(existing) => input.into_maintenance(existing.id, existing.created_at, now)?,
        };
        targets.check(&window)?;
        Ok(window)
    }

    /// Validates `input` (on its own and against the monitors) and stores it as a new window.
    pub async fn create(
        &self,
        input: MaintenanceInput,
        now: DateTime<Utc>,
    ) -> Result<Maintenance, MaintenanceError> {
        let window = Self::validate(input, None, &self.targets().await?, now)?;
        self.insert(&window).await?;
        Ok(window)
    }

    /// Applies a JSON merge patch to a window and validates the result as a whole; `None` when
    /// there is no window with this id.
    pub async fn update(
        &self,
        id: Uuid,
        patch: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Option<Maintenance>, MaintenanceError> {
        let Some(existing) = self.store.get_maintenance(id).await? else {
            return Ok(None);
        };
        let updated = existing.apply_patch(patch, now)?;
        self.targets().await?.check(&updated)?;
        Ok(self.replace(&updated).await?.then_some(updated))
    }

    /// Stores a window already validated (by [`Targets::check`] among others) and tells the
    /// scheduler. A duplicate id is a [`StoreError::Conflict`].
    pub async fn insert(&self, window: &Maintenance) -> StoreResult<()> {
        self.store.insert_maintenance(window).await?;
        self.changed.notify_one();
        tracing::info!(maintenance_id = %window.id, title = %window.title, "maintenance window created");
        Ok(())
    }

    /// Replaces a window already validated and tells the scheduler; false when there is no
    /// window with its id.
    pub async fn replace(&self, window: &Maintenance) -> StoreResult<bool> {
        if !self.store.update_maintenance(window).await? {
            return Ok(false);
        }
        self.changed.notify_one();
        tracing::info!(maintenance_id = %window.id, title = %window.title, "maintenance window updated");
        Ok(true)
    }

    /// Deletes a window. Returns false when there was none.
    pub async fn delete(&self, id: Uuid) -> StoreResult<bool> {
        if !self.store.delete_maintenance(id).await? {
            return Ok(false);
        }
        self.changed.notify_one();
        tracing::info!(maintenance_id = %id, "maintenance window deleted");
        Ok(true)
    }

    /// Every window, oldest first.
    pub async fn list(&self) -> StoreResult<Vec<Maintenance>> {
        self.store.list_maintenances().await
    }

    pub async fn get(&self, id: Uuid) -> StoreResult<Option<Maintenance>> {
        self.store.get_maintenance(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upwatch_core::MonitorInput;

    fn monitor(group: Option<&str>) -> Monitor {
        let input = MonitorInput {
            group: group.map(str::to_string),
            ..MonitorInput::for_url("http://127.0.0.1:9/")
        };
        Monitor::create(input, Utc::now()).unwrap()
    }

    fn window(body: serde_json::Value) -> Maintenance {
        let input: MaintenanceInput = serde_json::from_value(body).unwrap();
        Maintenance::create(input, Utc::now()).unwrap()
    }

    #[test]
    fn windows_name_existing_monitors_and_groups_only() {
        let (a, b) = (monitor(Some("API")), monitor(None));
        let targets = Targets::of([&a, &b]);
        let times =
            serde_json::json!({"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z"});
        let with = |extra: serde_json::Value| {
            let mut body = times.clone();
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body["title"] = "t".into();
            window(body)
        };
        assert!(targets
            .check(&with(
                serde_json::json!({"monitor_ids": [a.id, b.id], "groups": ["API"]})
            ))
            .is_ok());
        assert!(targets
            .check(&with(serde_json::json!({"all": true})))
            .is_ok());
        let unknown = Uuid::now_v7();
        let err = targets
            .check(&with(serde_json::json!({"monitor_ids": [a.id, unknown]})))
            .unwrap_err();
        assert_eq!(err.field, "monitor_ids");
        assert!(err.message.contains(&unknown.to_string()), "{err}");
        let err = targets
            .check(&with(serde_json::json!({"groups": ["Web"]})))
            .unwrap_err();
        assert_eq!(err.field, "groups");
        assert!(
            err.message.contains("`Web`") && err.message.contains("`API`"),
            "{err}"
        );
        let err = Targets::default()
            .check(&with(serde_json::json!({"groups": ["Web"]})))
            .unwrap_err();
        assert!(err.message.contains("no monitor has a group"), "{err}");
    }
}
