//! Reading and checking a channel's settings (a JSON object), with errors that name the
//! field as the API shows it (`settings.chat_id`) and never repeat a value (it may be a
//! secret).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A setting that is missing or wrong: `field` is `settings.<name>` (or `kind`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    /// Where: `settings.chat_id`, `settings.to[1]`, `kind`.
    pub field: String,
    /// What to fix, in a sentence.
    pub message: String,
}

impl SettingsError {
    /// The error for `settings.<name>`.
    pub fn setting(name: &str, message: impl Into<String>) -> Self {
        SettingsError {
            field: format!("settings.{name}"),
            message: message.into(),
        }
    }
}

/// A typed view of a channel's settings object.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a>(&'a Map<String, Value>);

/// An empty object, for settings that are not an object at all.
static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Settings<'a> {
    /// The settings `value`, which must be a JSON object.
    pub fn of(value: &'a Value) -> Result<Settings<'a>, SettingsError> {
        match value {
            Value::Object(map) => Ok(Settings(map)),
            Value::Null => Ok(Settings(&EMPTY)),
            _ => Err(SettingsError {
                field: "settings".into(),
                message: "must be an object of the kind's settings".into(),
            }),
        }
    }

    /// The settings as they are, for providers that read them without checking (they were
    /// checked when the channel was made). Not an object: no settings.
    pub fn lenient(value: &'a Value) -> Settings<'a> {
        Self::of(value).unwrap_or(Settings(&EMPTY))
    }

    /// Refuses any setting not in `known`, naming it and listing the known ones.
    pub fn only(&self, known: &[&str]) -> Result<(), SettingsError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(SettingsError::setting(
                unknown,
                format!(
                    "is not a setting of this kind; its settings are {}",
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A required, non-empty string.
    pub fn str(&self, name: &str) -> Result<&'a str, SettingsError> {
        self.opt_str(name)?
            .ok_or_else(|| SettingsError::setting(name, "is required: a non-empty string"))
    }

    /// An optional string; empty counts as absent.
    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, SettingsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(SettingsError::setting(name, "must be a string")),
        }
    }

    /// A required `http://` or `https://` URL with a host.
    pub fn url(&self, name: &str) -> Result<url::Url, SettingsError> {
        self.opt_url(name)?
            .ok_or_else(|| SettingsError::setting(name, "is required: an http:// or https:// URL"))
    }

    /// An optional `http://` or `https://` URL with a host.
    pub fn opt_url(&self, name: &str) -> Result<Option<url::Url>, SettingsError> {
        let Some(text) = self.opt_str(name)? else {
            return Ok(None);
        };
        let bad = || SettingsError::setting(name, "must be an http:// or https:// URL with a host");
        let url = url::Url::parse(text.trim()).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad());
        }
        Ok(Some(url))
    }

    /// An optional whole number within `range`.
    pub fn opt_u64(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, SettingsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(SettingsError::setting(
                    name,
                    format!(
                        "must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )),
            },
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, SettingsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(SettingsError::setting(name, "must be true or false")),
        }
    }

    /// An optional string that must be one of `choices`.
    pub fn opt_choice(
        &self,
        name: &str,
        choices: &[&'a str],
    ) -> Result<Option<&'a str>, SettingsError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => choices
                .iter()
                .find(|c| **c == s)
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    SettingsError::setting(name, format!("must be one of {}", choices.join(", ")))
                }),
        }
    }

    /// A list of non-empty strings (a single string counts as a list of one); absent is
    /// empty. Errors name the entry (`settings.to[1]`).
    pub fn str_list(&self, name: &str) -> Result<Vec<&'a str>, SettingsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(vec![s.as_str()]),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.as_str()),
                    _ => Err(SettingsError {
                        field: format!("settings.{name}[{i}]"),
                        message: "must be a non-empty string".into(),
                    }),
                })
                .collect(),
            Some(_) => Err(SettingsError::setting(name, "must be a list of strings")),
        }
    }

    /// An optional object of string values (HTTP headers); errors name the entry.
    pub fn str_map(&self, name: &str) -> Result<BTreeMap<&'a str, &'a str>, SettingsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.as_str())),
                    _ => Err(SettingsError {
                        field: format!("settings.{name}.{k}"),
                        message: "must be a string".into(),
                    }),
                })
                .collect(),
            Some(_) => Err(SettingsError::setting(
                name,
                "must be an object of names to string values",
            )),
        }
    }

    /// A setting read leniently (the settings were validated when saved): its text trimmed,
    /// or `""` when it is absent or not a string.
    pub fn text(&self, name: &str) -> &'a str {
        self.opt_str(name).ok().flatten().unwrap_or_default().trim()
    }

    /// A service's base address read leniently: the setting (`api_url`), else `default`,
    /// without a trailing slash.
    pub fn base_url(&self, name: &str, default: &'a str) -> &'a str {
        self.opt_str(name)
            .ok()
            .flatten()
            .unwrap_or(default)
            .trim()
            .trim_end_matches('/')
    }

    /// The raw value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name)
    }
}

/// `value` with the settings named in `secrets` replaced by a redacted form: URLs keep their
/// scheme and host (through [`upwatch_core::redact_url`]), other strings become `********`
/// and their last four characters when longer than twelve. Non-string secrets (none today)
/// become `********`.
pub fn redact(value: &Value, secrets: &[&str]) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    let mut out = map.clone();
    for (k, v) in out.iter_mut() {
        if secrets.contains(&k.as_str()) {
            *v = Value::String(redact_text(v));
        }
    }
    Value::Object(out)
}

/// The redacted form of one secret value.
pub fn redact_text(v: &Value) -> String {
    match v {
        Value::String(s) if s.contains("://") => upwatch_core::redact_url(s),
        Value::String(s) if s.chars().count() > 12 => {
            let tail: String = s
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("********{tail}")
        }
        _ => "********".to_string(),
    }
}

/// Every secret value in `value` (the strings of the settings named in `secrets`), for
/// scrubbing them out of error texts.
pub fn secret_values<'a>(value: &'a Value, secrets: &[&str]) -> Vec<&'a str> {
    let Value::Object(map) = value else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| secrets.contains(&k.as_str()))
        .filter_map(|(_, v)| v.as_str())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_field_and_not_the_value() {
        let v =
            json!({"chat_id": 5, "to": ["a@x", ""], "api_url": "ftp://x", "bot_token": "s3cr3t"});
        let s = Settings::of(&v).unwrap();
        assert_eq!(s.str("chat_id").unwrap_err().field, "settings.chat_id");
        assert_eq!(s.str("missing").unwrap_err().field, "settings.missing");
        assert_eq!(s.str_list("to").unwrap_err().field, "settings.to[1]");
        let e = s.opt_url("api_url").unwrap_err();
        assert_eq!(e.field, "settings.api_url");
        assert!(!e.message.contains("ftp"));
        let e = s.only(&["chat_id", "to", "api_url"]).unwrap_err();
        assert_eq!(e.field, "settings.bot_token");
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn secrets_are_redacted() {
        let v = json!({"bot_token": "123456:ABCDEFGHIJKLMNOP", "chat_id": "42",
                       "webhook_url": "https://hooks.slack.com/services/T0/B0/XXXXSECRET"});
        let r = redact(&v, &["bot_token", "webhook_url"]);
        assert_eq!(r["chat_id"], "42");
        assert_eq!(r["bot_token"], "********MNOP");
        let url = r["webhook_url"].as_str().unwrap();
        assert!(url.starts_with("https://hooks.slack.com"), "{url}");
        assert!(!url.contains("XXXXSECRET"), "{url}");
        assert_eq!(
            secret_values(&v, &["bot_token"]),
            vec!["123456:ABCDEFGHIJKLMNOP"]
        );
    }
}
