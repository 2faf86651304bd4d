//! Notifiers as code: the `notifiers` of an exported file, with every secret written as a
//! `${ENV_VAR}` reference so that a file kept in git holds none; reading them back with the
//! references filled from the environment (an unset one is refused by name); and
//! `UPWATCH_NOTIFIERS_FILE`, whose notifiers are kept in the store at every start like
//! `DISCORD_WEBHOOK_URL`'s.
//!
//! A notifier keeps its id in the file, so that the monitors' `notifier_ids` still name it
//! in another installation. The variable a secret is exported as is derived from the
//! notifier's name and the setting: `ops slack` / `webhook_url` becomes
//! `${OPS_SLACK_WEBHOOK_URL}` (and `${..._HEADERS_AUTHORIZATION}` for a header).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use upwatch_core::{ChannelOptions, Webhook, WebhookSource};
use upwatch_notify::Notifier;
use uuid::Uuid;

/// One notifier as a file holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierDoc {
    /// Kept across installations, so that monitors' `notifier_ids` still name it.
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    /// The kind's settings, secrets as `${ENV_VAR}` references.
    #[serde(default)]
    pub settings: Value,
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_interval_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_alerts: Option<bool>,
    /// Receives upwatch's messages about itself (the watchdog's, a region's connectivity).
    #[serde(default, skip_serializing_if = "is_false")]
    pub system: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// `channel` as a file holds it, its secrets replaced by `${ENV_VAR}` references.
pub fn export(notifier: &dyn Notifier, channel: &Webhook) -> NotifierDoc {
    let secrets = notifier
        .provider(&channel.kind)
        .map(|p| p.secrets())
        .unwrap_or_default();
    let mut settings = channel.settings.clone();
    if let Value::Object(map) = &mut settings {
        for (key, value) in map.iter_mut() {
            if secrets.contains(&key.as_str()) || notifier.provider(&channel.kind).is_none() {
                *value = reference(&channel.name, key, value);
            }
        }
    }
    NotifierDoc {
        id: channel.id,
        name: channel.name.clone(),
        kind: channel.kind.clone(),
        settings,
        default: channel.options.default,
        groups: channel.options.groups.clone(),
        reminder_interval_seconds: channel.options.reminder_interval_seconds,
        group_alerts: channel.options.group_alerts,
        system: channel.options.system,
    }
}

/// The `${ENV_VAR}` reference(s) that stand for a secret `value` of setting `key`.
fn reference(name: &str, key: &str, value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), reference(name, &format!("{key}_{k}"), v)))
                .collect(),
        ),
        _ => Value::String(format!("${{{}}}", env_name(&format!("{name}_{key}")))),
    }
}

/// `ops slack_webhook_url` → `OPS_SLACK_WEBHOOK_URL`.
pub fn env_name(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        format!("N_{out}")
    } else {
        out
    }
}

/// `value` with every `${NAME}` in its strings replaced by the variable's value from `env`;
/// the first unset variable is the error.
pub fn fill(value: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(fill_text(s, env)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| fill(v, env))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), fill(v, env)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn fill_text(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            out.push_str(&rest[start..start + 2 + end + 1]);
        } else {
            match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "names ${{{name}}}, which is not set in the environment; set it to the secret (the file holds only its name)"
                    ))
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The channel a file's notifier describes, its references filled from `env` and its
/// settings checked by its kind's provider; the error names the field.
pub fn read(
    notifier: &dyn Notifier,
    doc: &NotifierDoc,
    source: WebhookSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Webhook, String> {
    let name = upwatch_core::webhook::validate_name(&doc.name).map_err(|e| e.to_string())?;
    let settings = match &doc.settings {
        Value::Null => Value::Object(Default::default()),
        Value::Object(map) => {
            let mut filled = serde_json::Map::new();
            for (k, v) in map {
                let v = fill(v, env).map_err(|e| format!("`settings.{k}` {e}"))?;
                filled.insert(k.clone(), v);
            }
            Value::Object(filled)
        }
        _ => return Err("`settings` must be a mapping of the kind's settings".into()),
    };
    notifier
        .validate(&doc.kind, &settings)
        .map_err(|e| format!("`{}` {}", e.field, e.message))?;
    if let Some(s) = doc.reminder_interval_seconds {
        upwatch_core::monitor::validate_reminder_interval(s).map_err(|e| e.to_string())?;
    }
    Ok(Webhook {
        id: doc.id,
        name,
        // A Discord channel's `url` is its `webhook_url` (filled in by `normalized`).
        url: String::new(),
        enabled: true,
        disabled_reason: None,
        source,
        created_at: chrono::Utc::now(),
        kind: doc.kind.clone(),
        settings,
        options: ChannelOptions {
            default: doc.default,
            groups: doc.groups.clone(),
            reminder_interval_seconds: doc.reminder_interval_seconds.filter(|s| *s > 0),
            group_alerts: doc.group_alerts,
            system: doc.system,
        },
    }
    .normalized())
}

/// Whether `a` and `b` are the same channel settings (ignoring state and creation time).
pub fn same(a: &Webhook, b: &Webhook) -> bool {
    a.name == b.name
        && a.kind == b.kind
        && a.settings == b.settings
        && a.options == b.options
        && a.source == b.source
}

/// The process environment, for [`fill`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The notifiers of a YAML document (`notifiers:`), unread; used by `UPWATCH_NOTIFIERS_FILE`.
pub fn parse_file(text: &str) -> Result<Vec<NotifierDoc>, String> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        notifiers: Vec<serde_norway::Value>,
    }
    let file: File = serde_norway::from_str(text)
        .map_err(|e| format!("not a YAML document with a `notifiers` list: {e}"))?;
    file.notifiers
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_path_to_error::deserialize(v).map_err(|e| format!("notifiers[{i}]: {e}"))
        })
        .collect()
}

/// The channels `docs` describe (see [`read`]), refusing an id named twice; an error is the
/// index of the notifier at fault and what is wrong with it.
pub fn read_all(
    notifier: &dyn Notifier,
    docs: &[NotifierDoc],
    source: WebhookSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Webhook>, (usize, String)> {
    if let Some((first, index)) = repeated_ids(docs) {
        return Err((index, format!("`id` repeats the id of notifiers[{first}]")));
    }
    docs.iter()
        .enumerate()
        .map(|(index, doc)| read(notifier, doc, source, env).map_err(|e| (index, e)))
        .collect()
}

/// The ids of channels named in several places of one file, with the first index.
fn repeated_ids(docs: &[NotifierDoc]) -> Option<(usize, usize)> {
    let mut seen: BTreeMap<Uuid, usize> = BTreeMap::new();
    for (i, d) in docs.iter().enumerate() {
        if let Some(first) = seen.insert(d.id, i) {
            return Some((first, i));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_filled_from_the_environment() {
        let env = |n: &str| (n == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            fill(&json!({"a": "${TOKEN}", "b": "x-${TOKEN}-y", "c": 5}), &env).unwrap(),
            json!({"a": "s3cret", "b": "x-s3cret-y", "c": 5})
        );
        let error = fill(&json!("${MISSING}"), &env).unwrap_err();
        assert!(error.contains("${MISSING}"), "{error}");
        assert_eq!(
            fill(&json!("${not valid}"), &env).unwrap(),
            json!("${not valid}")
        );
    }

    #[test]
    fn names_become_variables() {
        assert_eq!(env_name("ops slack_webhook_url"), "OPS_SLACK_WEBHOOK_URL");
        assert_eq!(env_name("2nd  team!_token"), "N_2ND_TEAM_TOKEN");
        assert_eq!(
            reference("pager", "headers", &json!({"Authorization": "x"})),
            json!({"Authorization": "${PAGER_HEADERS_AUTHORIZATION}"})
        );
    }
}
