//! Config as code: every monitor's settings as a YAML file, and that file applied back.
//!
//! The file is a document `{version: 1, sites: [...]}` whose sites are monitor settings in
//! the form the API accepts (`MonitorInput`), with a `name`, and without ids or timestamps so
//! that the file is portable between installations. [`import`] also reads a bare list of
//! sites.
//!
//! Import validates every site before it writes anything. A site then updates the existing
//! monitor it matches (the same name and URL, else the same name, else the same URL; each
//! monitor is matched at most once) or is created; importing the same file twice changes
//! nothing the second time.

use std::collections::HashMap;
use std::fmt;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use upwatch_core::{Monitor, MonitorInput};
use upwatch_service::MonitorService;
use upwatch_store::{Store, StoreError};
use uuid::Uuid;

/// The version of the file format that [`export`] writes and [`import`] reads.
pub const FORMAT_VERSION: u32 = 1;

/// The file as [`export`] writes it.
#[derive(Debug, Serialize)]
struct ExportDocument {
    version: u32,
    sites: Vec<MonitorInput>,
}

/// The file as [`import`] reads it; sites are read one by one to name the one at fault.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportDocument {
    version: u32,
    #[serde(default)]
    sites: Vec<serde_norway::Value>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Sites that matched no monitor and were created.
    pub created: usize,
    /// Existing monitors whose settings changed.
    pub updated: usize,
    /// Existing monitors that already had the file's settings.
    pub unchanged: usize,
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
    /// The store failed; sites before the failure may have been written.
    #[error("database error: {0}")]
    Store(#[from] StoreError),
}

/// Every monitor's settings as a YAML document of [`FORMAT_VERSION`], in creation order.
pub async fn export(store: &dyn Store) -> Result<String, StoreError> {
    let sites = store
        .all_monitors()
        .await?
        .iter()
        .map(portable_settings)
        .collect();
    let document = ExportDocument {
        version: FORMAT_VERSION,
        sites,
    };
    Ok(serde_norway::to_string(&document).expect("monitor settings serialize as YAML"))
}

/// A monitor's settings without its empty collections, `public: false` and
/// `tls_skip_verify: false`, which are the defaults anyway. A push monitor keeps its
/// `push://` URL, so that its token, which its job calls, survives an export and import.
fn portable_settings(monitor: &Monitor) -> MonitorInput {
    let mut input = monitor.to_input();
    input.headers = input.headers.filter(|h| !h.is_empty());
    input.webhook_ids = input.webhook_ids.filter(|w| !w.is_empty());
    input.public = input.public.filter(|&public| public);
    input.conditions = input.conditions.filter(|c| !c.is_empty());
    input.tls_skip_verify = input.tls_skip_verify.filter(|&skip| skip);
    input
}

/// Applies a sites document (or a bare list of sites) through `monitors`: validates every
/// site first, then creates the sites that match no monitor and updates the others.
pub async fn import(monitors: &MonitorService, text: &str) -> Result<Summary, ImportError> {
    let store = monitors.store();
    let now = Utc::now();
    let wanted = parse(text)?
        .into_iter()
        .enumerate()
        .map(|(index, value)| validate(index, value, now))
        .collect::<Result<Vec<_>, _>>()?;
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
    Ok(summary)
}

/// The sites of a document or a bare list, not yet read into settings.
fn parse(text: &str) -> Result<Vec<serde_norway::Value>, ImportError> {
    let value: serde_norway::Value = serde_norway::from_str(text)
        .map_err(|e| ImportError::Format(format!("the file is not valid YAML: {e}")))?;
    match value {
        serde_norway::Value::Sequence(sites) => Ok(sites),
        serde_norway::Value::Mapping(_) => {
            let document: ImportDocument = serde_norway::from_value(value).map_err(|e| {
                ImportError::Format(format!(
                    "the file is not a sites document ({e}); expected `version: {FORMAT_VERSION}` and a list of `sites`"
                ))
            })?;
            if document.version != FORMAT_VERSION {
                return Err(ImportError::Format(format!(
                    "the file has format version {}, and this upwatch reads version {FORMAT_VERSION}",
                    document.version
                )));
            }
            Ok(document.sites)
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
    if !value.is_mapping() {
        return Err(invalid(
            "must be a mapping of a site's settings".to_string(),
        ));
    }
    let input: MonitorInput = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if path == "." || message.starts_with("unknown field") {
            invalid(message)
        } else {
            invalid(format!("`{path}` is not valid: {message}"))
        }
    })?;
    input
        .into_monitor(Uuid::nil(), now, now)
        .map_err(|e| invalid(e.to_string()))
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
            parse("- url: http://a.test/\n").expect("a bare list").len(),
            1
        );
    }
}
