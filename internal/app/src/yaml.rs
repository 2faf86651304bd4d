//! Config as code: every monitor's settings, every maintenance window and every notifier as
//! a YAML file, and that file applied back. Notifiers keep their ids and carry their secrets
//! as `${ENV_VAR}` references (see [`crate::channels`]): import fills them from the
//! environment and refuses, naming the variable, when one is unset.
//!
//! The file is a document `{version: 1, sites: [...], maintenances: [...]}` whose sites are
//! monitor settings in the form the API accepts (`MonitorInput`), with a `name`, and without
//! ids or timestamps so that the file is portable between installations, and whose
//! maintenances are windows in the form the API accepts (`MaintenanceInput`; a window names
//! its monitors by id, so `groups` and `all` are what carries over to another installation).
//! `maintenances` is left out when there is none, and `version` may be left out. [`import`]
//! also reads a bare list of sites.
//!
//! Import validates every site and every window before it writes anything (a window against
//! the monitors as they will be after the import). A site then updates the existing monitor
//! it matches (the same name and URL, else the same name, else the same URL; each monitor is
//! matched at most once) or is created; a window updates the existing window with its title,
//! or is created. Importing the same file twice changes nothing the second time.

use std::collections::HashMap;
use std::fmt;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use upwatch_core::maintenance::{Maintenance, MaintenanceInput};
use upwatch_core::{Monitor, MonitorInput, Webhook, WebhookSource};
use upwatch_notifiers::Channels;

use crate::channels::NotifierDoc;
use upwatch_service::{MaintenanceService, MonitorService, Targets};
use upwatch_store::{Store, StoreError};
use uuid::Uuid;

/// The version of the file format that [`export`] writes and [`import`] reads.
pub const FORMAT_VERSION: u32 = 1;

/// The file as [`export`] writes it.
#[derive(Debug, Serialize)]
struct ExportDocument {
    version: u32,
    sites: Vec<MonitorInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    maintenances: Vec<MaintenanceInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notifiers: Vec<NotifierDoc>,
}

/// The file as [`import`] reads it; sites and windows are read one by one to name the one at
/// fault.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportDocument {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    sites: Vec<serde_norway::Value>,
    #[serde(default)]
    maintenances: Vec<serde_norway::Value>,
    #[serde(default)]
    notifiers: Vec<serde_norway::Value>,
}

/// What a file holds, not yet read into settings.
#[derive(Debug, Default)]
struct Parsed {
    sites: Vec<serde_norway::Value>,
    maintenances: Vec<serde_norway::Value>,
    notifiers: Vec<serde_norway::Value>,
}

/// What an import did to monitors (or to maintenance windows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Sites that matched no monitor and were created.
    pub created: usize,
    /// Existing monitors whose settings changed.
    pub updated: usize,
    /// Existing monitors that already had the file's settings.
    pub unchanged: usize,
}

impl Summary {
    /// How many items of the file this counts.
    pub fn total(&self) -> usize {
        self.created + self.updated + self.unchanged
    }
}

/// What an import did to monitors and to maintenance windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub sites: Summary,
    pub maintenances: Summary,
    pub notifiers: Summary,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "created {}, updated {}, unchanged {}",
            self.created, self.updated, self.unchanged
        )
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The text is not YAML, or not a sites document or list; nothing was written.
    #[error("{0}")]
    Format(String),
    /// A site is not valid; nothing was written.
    #[error("sites[{index}]: {message}")]
    Invalid {
        /// The position of the site in the file's list, counting from 0.
        index: usize,
        /// What is wrong, naming the field when one is at fault.
        message: String,
    },
    /// A maintenance window is not valid; nothing was written.
    #[error("maintenances[{index}]: {message}")]
    InvalidMaintenance {
        /// The position of the window in the file's list, counting from 0.
        index: usize,
        /// What is wrong, naming the field when one is at fault.
        message: String,
    },
    /// A notifier is not valid (or names an unset variable); nothing was written.
    #[error("notifiers[{index}]: {message}")]
    InvalidNotifier {
        /// The position of the notifier in the file's list, counting from 0.
        index: usize,
        /// What is wrong, naming the field (never a secret's value).
        message: String,
    },
    /// The store failed; sites before the failure may have been written.
    #[error("database error: {0}")]
    Store(#[from] StoreError),
}

/// Every monitor's settings and every maintenance window as a YAML document of
/// [`FORMAT_VERSION`], each in creation order.
pub async fn export(store: &dyn Store) -> Result<String, StoreError> {
    let sites = store
        .all_monitors()
        .await?
        .iter()
        .map(portable_settings)
        .collect();
    let maintenances = store
        .list_maintenances()
        .await?
        .iter()
        .map(portable_window)
        .collect();
    let channels = Channels::default();
    // Channels from the configuration are made at every start; the file carries the
    // others, their secrets as `${ENV_VAR}` references.
    let notifiers = store
        .list_webhooks()
        .await?
        .iter()
        .filter(|c| c.source == WebhookSource::Api)
        .map(|c| crate::channels::export(&channels, c))
        .collect();
    let document = ExportDocument {
        version: FORMAT_VERSION,
        sites,
        maintenances,
        notifiers,
    };
    Ok(serde_norway::to_string(&document).expect("monitor settings serialize as YAML"))
}

/// A window's settings without its empty lists and `all: false`, the defaults anyway.
fn portable_window(window: &Maintenance) -> MaintenanceInput {
    let mut input = window.to_input();
    input.monitor_ids = input.monitor_ids.filter(|ids| !ids.is_empty());
    input.groups = input.groups.filter(|groups| !groups.is_empty());
    input.all = input.all.filter(|&all| all);
    input
}

/// A monitor's settings without its empty collections, `public: false` and
/// `tls_skip_verify: false`, which are the defaults anyway. A push monitor keeps its
/// `push://` URL, so that its token, which its job calls, survives an export and import.
fn portable_settings(monitor: &Monitor) -> MonitorInput {
    let mut input = monitor.to_input();
    input.headers = input.headers.filter(|h| !h.is_empty());
    input.notifier_ids = input.notifier_ids.filter(|w| !w.is_empty());
    input.public = input.public.filter(|&public| public);
    input.conditions = input.conditions.filter(|c| !c.is_empty());
    input.tls_skip_verify = input.tls_skip_verify.filter(|&skip| skip);
    input
}

/// Applies a sites document (or a bare list of sites) through `monitors`, and its
/// maintenance windows through an offline [`MaintenanceService`] on the same store; returns
/// what it did to the monitors (see [`import_all`]).
pub async fn import(monitors: &MonitorService, text: &str) -> Result<Summary, ImportError> {
    let maintenances = MaintenanceService::offline(monitors.store().clone());
    Ok(import_all(monitors, &maintenances, text).await?.sites)
}

/// Applies a sites document (or a bare list of sites): validates every site and every
/// maintenance window first, then creates the sites that match no monitor and updates the
/// others, then the same for windows (matched by title).
pub async fn import_all(
    monitors: &MonitorService,
    maintenances: &MaintenanceService,
    text: &str,
) -> Result<Imported, ImportError> {
    let store = monitors.store();
    let now = Utc::now();
    let parsed = parse(text)?;
    let channels = validate_notifiers(parsed.notifiers, &crate::channels::process_env)?;
    let wanted = parsed
        .sites
        .into_iter()
        .enumerate()
        .map(|(index, value)| validate(index, value, now))
        .collect::<Result<Vec<_>, _>>()?;
    for (index, monitor) in wanted.iter().enumerate() {
        monitors
            .check_regions(monitor)
            .map_err(|e| ImportError::Invalid {
                index,
                message: e.to_string(),
            })?;
    }
    let mut first_of_pair = HashMap::new();
    for (index, monitor) in wanted.iter().enumerate() {
        let pair = (monitor.name.as_str(), monitor.url.as_str());
        if let Some(first) = first_of_pair.insert(pair, index) {
            return Err(ImportError::Invalid {
                index,
                message: format!(
                    "repeats the `name` and `url` of sites[{first}]; each site must differ in one of them"
                ),
            });
        }
    }

    let existing = store.all_monitors().await?;
    let matches = match_existing(&wanted, &existing);
    let windows = validate_windows(
        store.as_ref(),
        parsed.maintenances,
        after_import(&wanted, &existing, &matches),
        now,
    )
    .await?;

    let mut summary = Summary::default();
    for (monitor, matched) in wanted.into_iter().zip(matches) {
        match matched.map(|i| &existing[i]) {
            Some(current) => {
                let mut updated = Monitor {
                    id: current.id,
                    created_at: current.created_at,
                    updated_at: current.updated_at,
                    ..monitor
                };
                if &updated == current {
                    summary.unchanged += 1;
                } else {
                    updated.updated_at = now;
                    monitors.update(current, &updated).await?;
                    tracing::info!(monitor_id = %updated.id, name = %updated.name, "monitor updated from a file");
                    summary.updated += 1;
                }
            }
            None => {
                let created = Monitor {
                    id: Uuid::now_v7(),
                    ..monitor
                };
                monitors.create(std::slice::from_ref(&created)).await?;
                tracing::info!(monitor_id = %created.id, name = %created.name, "monitor created from a file");
                summary.created += 1;
            }
        }
    }

    let mut windows_summary = Summary::default();
    for (window, current) in windows {
        match current {
            Some(current) if same_settings(&window, &current) => windows_summary.unchanged += 1,
            Some(_) => {
                maintenances.replace(&window).await?;
                windows_summary.updated += 1;
            }
            None => {
                maintenances.insert(&window).await?;
                windows_summary.created += 1;
            }
        }
    }
    let mut notifiers_summary = Summary::default();
    let stored = store.list_webhooks().await?;
    for channel in channels {
        match stored.iter().find(|c| c.id == channel.id) {
            Some(current) if crate::channels::same(&channel, current) => {
                notifiers_summary.unchanged += 1
            }
            Some(current) => {
                let channel = Webhook {
                    created_at: current.created_at,
                    ..channel
                };
                store.upsert_webhook(&channel).await?;
                notifiers_summary.updated += 1;
            }
            None => {
                store.upsert_webhook(&channel).await?;
                tracing::info!(notifier_id = %channel.id, kind = %channel.kind, "notifier created from a file");
                notifiers_summary.created += 1;
            }
        }
    }
    Ok(Imported {
        sites: summary,
        maintenances: windows_summary,
        notifiers: notifiers_summary,
    })
}

/// Reads and checks every notifier of the file, its `${ENV_VAR}` references filled from
/// `env`; writes nothing.
fn validate_notifiers(
    values: Vec<serde_norway::Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Webhook>, ImportError> {
    let channels = Channels::default();
    let docs = values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            read_settings::<NotifierDoc>(value, "a notifier's `id`, `name`, `kind` and `settings`")
                .map_err(|message| ImportError::InvalidNotifier { index, message })
        })
        .collect::<Result<Vec<_>, _>>()?;
    crate::channels::read_all(&channels, &docs, WebhookSource::Api, env)
        .map_err(|(index, message)| ImportError::InvalidNotifier { index, message })
}

/// Whether two versions of a window differ in nothing but their time of change.
fn same_settings(a: &Maintenance, b: &Maintenance) -> bool {
    Maintenance {
        updated_at: b.updated_at,
        ..a.clone()
    } == *b
}

/// What maintenance windows may name once the import is done: every existing monitor (an
/// import deletes none) with the group the file gives it if it matched a site, and the groups
/// of the sites that are created.
fn after_import(wanted: &[Monitor], existing: &[Monitor], matches: &[Option<usize>]) -> Targets {
    let mut group_of: Vec<Option<&str>> = existing.iter().map(|m| m.group.as_deref()).collect();
    let mut targets = Targets::default();
    for (site, matched) in wanted.iter().zip(matches) {
        match matched {
            Some(i) => group_of[*i] = site.group.as_deref(),
            None => {
                if let Some(group) = &site.group {
                    targets.add_group(group);
                }
            }
        }
    }
    for (monitor, group) in existing.iter().zip(group_of) {
        targets.add(monitor.id, group);
    }
    targets
}

/// Reads and validates every window of the file (against `targets`), each as a new window or
/// as the new settings of the existing window with its title; writes nothing.
async fn validate_windows(
    store: &dyn Store,
    values: Vec<serde_norway::Value>,
    targets: Targets,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<(Maintenance, Option<Maintenance>)>, ImportError> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let inputs = values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            read_settings::<MaintenanceInput>(value, "a maintenance window's settings")
                .map_err(|message| ImportError::InvalidMaintenance { index, message })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut first_of_title: HashMap<String, usize> = HashMap::new();
    for (index, input) in inputs.iter().enumerate() {
        let title = input
            .title
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_string();
        if title.is_empty() {
            continue; // refused with its field below
        }
        if let Some(first) = first_of_title.insert(title, index) {
            return Err(ImportError::InvalidMaintenance {
                index,
                message: format!(
                    "`title` repeats the title of maintenances[{first}]; windows are matched by title, so each needs its own"
                ),
            });
        }
    }
    let mut existing: Vec<Option<Maintenance>> = store
        .list_maintenances()
        .await?
        .into_iter()
        .map(Some)
        .collect();
    let mut windows = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let title = input.title.as_deref().unwrap_or_default().trim();
        let current = existing
            .iter_mut()
            .find(|w| w.as_ref().is_some_and(|w| w.title == title))
            .and_then(Option::take);
        let window =
            MaintenanceService::validate(input, current.as_ref(), &targets, now).map_err(|e| {
                ImportError::InvalidMaintenance {
                    index,
                    message: e.to_string(),
                }
            })?;
        windows.push((window, current));
    }
    Ok(windows)
}

/// The sites and windows of a document, or the sites of a bare list, not yet read into
/// settings.
fn parse(text: &str) -> Result<Parsed, ImportError> {
    let value: serde_norway::Value = serde_norway::from_str(text)
        .map_err(|e| ImportError::Format(format!("the file is not valid YAML: {e}")))?;
    match value {
        serde_norway::Value::Sequence(sites) => Ok(Parsed {
            sites,
            ..Parsed::default()
        }),
        serde_norway::Value::Mapping(_) => {
            let document: ImportDocument = serde_norway::from_value(value).map_err(|e| {
                ImportError::Format(format!(
                    "the file is not a sites document ({e}); expected `version: {FORMAT_VERSION}`, a list of `sites` and one of `maintenances`"
                ))
            })?;
            if let Some(version) = document.version.filter(|&v| v != FORMAT_VERSION) {
                return Err(ImportError::Format(format!(
                    "the file has format version {version}, and this upwatch reads version {FORMAT_VERSION}"
                )));
            }
            Ok(Parsed {
                sites: document.sites,
                maintenances: document.maintenances,
                notifiers: document.notifiers,
            })
        }
        _ => Err(ImportError::Format(format!(
            "the file must hold a document with `version: {FORMAT_VERSION}` and `sites`, or a list of sites"
        ))),
    }
}

/// Reads and validates site `index` into the monitor it describes (with a nil id).
fn validate(
    index: usize,
    value: serde_norway::Value,
    now: chrono::DateTime<Utc>,
) -> Result<Monitor, ImportError> {
    let invalid = |message: String| ImportError::Invalid { index, message };
    let input: MonitorInput = read_settings(value, "a site's settings").map_err(invalid)?;
    input
        .into_monitor(Uuid::nil(), now, now)
        .map_err(|e| invalid(e.to_string()))
}

/// Reads a mapping of settings, or says what is wrong with it, naming the field at fault.
fn read_settings<T: serde::de::DeserializeOwned>(
    value: serde_norway::Value,
    what: &str,
) -> Result<T, String> {
    if !value.is_mapping() {
        return Err(format!("must be a mapping of {what}"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if path == "." || message.starts_with("unknown field") {
            message
        } else {
            format!("`{path}` is not valid: {message}")
        }
    })
}

/// For each wanted monitor, the index in `existing` of the monitor it updates, if any.
///
/// Matching runs in three passes over every site, so that an exact match is never taken by
/// a looser one of an earlier site: the same name and URL, then the same name, then the
/// same URL. Each existing monitor is matched at most once.
fn match_existing(wanted: &[Monitor], existing: &[Monitor]) -> Vec<Option<usize>> {
    type Same = fn(&Monitor, &Monitor) -> bool;
    let passes: [Same; 3] = [
        |a, b| a.name == b.name && a.url == b.url,
        |a, b| a.name == b.name,
        |a, b| a.url == b.url,
    ];
    let mut matches = vec![None; wanted.len()];
    let mut taken = vec![false; existing.len()];
    for same in passes {
        for (site, matched) in wanted.iter().zip(matches.iter_mut()) {
            if matched.is_some() {
                continue;
            }
            if let Some(i) = (0..existing.len()).find(|&i| !taken[i] && same(site, &existing[i])) {
                taken[i] = true;
                *matched = Some(i);
            }
        }
    }
    matches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(name: &str, url: &str) -> Monitor {
        let input = MonitorInput {
            name: Some(name.to_string()),
            ..MonitorInput::for_url(url)
        };
        Monitor::create(input, Utc::now()).expect("a valid monitor")
    }

    #[test]
    fn exact_matches_win_over_looser_ones() {
        let existing = [
            monitor("a", "http://x.test/"),
            monitor("b", "http://y.test/"),
        ];
        let wanted = [
            monitor("c", "http://y.test/"),
            monitor("b", "http://z.test/"),
            monitor("a", "http://x.test/"),
        ];
        assert_eq!(match_existing(&wanted, &existing), [None, Some(1), Some(0)]);
    }

    #[test]
    fn a_monitor_is_matched_once() {
        let existing = [monitor("a", "http://x.test/")];
        let wanted = [
            monitor("b", "http://x.test/"),
            monitor("c", "http://x.test/"),
        ];
        assert_eq!(match_existing(&wanted, &existing), [Some(0), None]);
    }

    #[test]
    fn other_format_versions_are_refused() {
        let error = parse("version: 2\nsites: []\n").expect_err("version 2 is refused");
        assert!(error.to_string().contains("version 2"), "{error}");
        assert!(parse("just text").is_err());
        assert_eq!(
            parse("- url: http://a.test/\n")
                .expect("a bare list")
                .sites
                .len(),
            1
        );
        let parsed = parse("sites:\n  - url: http://a.test/\nmaintenances:\n  - title: t\n")
            .expect("a document without a version");
        assert_eq!((parsed.sites.len(), parsed.maintenances.len()), (1, 1));
    }

    #[test]
    fn windows_may_name_the_groups_monitors_have_after_the_import() {
        let mut existing = [
            monitor("a", "http://x.test/"),
            monitor("b", "http://y.test/"),
        ];
        existing[0].group = Some("Old".into());
        existing[1].group = Some("Kept".into());
        let mut wanted = [
            monitor("a", "http://x.test/"),
            monitor("c", "http://z.test/"),
        ];
        wanted[0].group = Some("Moved".into());
        wanted[1].group = Some("New".into());
        let matches = match_existing(&wanted, &existing);
        let targets = after_import(&wanted, &existing, &matches);
        let input = |groups: &[&str]| MaintenanceInput {
            title: Some("t".into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            monitor_ids: Some(vec![existing[0].id]),
            start: Some(Utc::now()),
            end: Some(Utc::now() + chrono::TimeDelta::hours(1)),
            ..MaintenanceInput::default()
        };
        let now = Utc::now();
        assert!(MaintenanceService::validate(
            input(&["Moved", "Kept", "New"]),
            None,
            &targets,
            now
        )
        .is_ok());
        let error = MaintenanceService::validate(input(&["Old"]), None, &targets, now)
            .expect_err("a group no monitor keeps");
        assert_eq!(error.field, "groups");
    }
}
