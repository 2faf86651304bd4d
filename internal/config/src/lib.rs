//! Layered configuration.
//!
//! Built-in defaults < an optional TOML file (`--config`) < environment variables
//! (`UPWATCH_*`, plus the conventional `DATABASE_URL`, `DISCORD_WEBHOOK_URL` and
//! `SITES_TO_MONITOR`) < command-line flags. Every value is read as text and parsed here, so
//! that an invalid value stops start-up with a message naming the variable and the expected
//! form. Secrets (`DISCORD_WEBHOOK_URL`, `UPWATCH_API_TOKEN`) are kept in [`SecretString`]s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use upwatch_core::rollup::Retention;

use secrecy::{ExposeSecret, SecretString};
use upwatch_telemetry::LogFormat;

/// One configuration setting: its key in the TOML file, its environment variable, its default
/// and the form it expects. The table is the single source of the documentation in
/// `.env.example` and the README.
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub expected: &'static str,
}

/// Every setting upwatch reads.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "listen",
        env: "UPWATCH_LISTEN",
        default: Some("127.0.0.1:8080"),
        expected: "an address and port such as 127.0.0.1:8080",
    },
    Setting {
        key: "database_url",
        env: "DATABASE_URL",
        default: Some("sqlite://upwatch.db"),
        expected: "a database URL such as sqlite://upwatch.db",
    },
    Setting {
        key: "discord_webhook_url",
        env: "DISCORD_WEBHOOK_URL",
        default: None,
        expected: "comma-separated http(s) webhook URLs",
    },
    Setting {
        key: "sites_to_monitor",
        env: "SITES_TO_MONITOR",
        default: None,
        expected: "comma-separated http(s) URLs",
    },
    Setting {
        key: "api_token",
        env: "UPWATCH_API_TOKEN",
        default: None,
        expected: "a bearer token of at least 16 characters",
    },
    Setting {
        key: "workers",
        env: "UPWATCH_WORKERS",
        default: Some("512"),
        expected: "a whole number of checks in flight from 1 to 100000",
    },
    Setting {
        key: "queue_capacity",
        env: "UPWATCH_QUEUE_CAPACITY",
        default: Some("10000"),
        expected: "a whole number of queued messages from 1 to 10000000",
    },
    Setting {
        key: "drain_timeout_seconds",
        env: "UPWATCH_DRAIN_TIMEOUT_SECONDS",
        default: Some("15"),
        expected: "a whole number of seconds from 0 to 3600",
    },
    Setting {
        key: "check_max_body_bytes",
        env: "UPWATCH_CHECK_MAX_BODY_BYTES",
        default: Some("65536"),
        expected: "a whole number of bytes from 0 to 10485760",
    },
    Setting {
        key: "check_max_redirects",
        env: "UPWATCH_CHECK_MAX_REDIRECTS",
        default: Some("10"),
        expected: "a whole number of hops from 0 to 50",
    },
    Setting {
        key: "check_max_per_host",
        env: "UPWATCH_CHECK_MAX_PER_HOST",
        default: Some("16"),
        expected: "a whole number of checks in flight against one host from 0 (no limit) to 100000",
    },
    Setting {
        key: "check_ca_file",
        env: "UPWATCH_CHECK_CA_FILE",
        default: None,
        expected: "the path of a PEM file of CA certificates to trust besides the public ones",
    },
    Setting {
        key: "cert_expiry_alert_days",
        env: "UPWATCH_CERT_EXPIRY_ALERT_DAYS",
        default: Some("14,7,1"),
        expected: "comma-separated whole numbers of days from 1 to 365, such as 14,7,1 (or `off`)",
    },
    Setting {
        key: "push_max_per_minute",
        env: "UPWATCH_PUSH_MAX_PER_MINUTE",
        default: Some("60"),
        expected: "a whole number of pushes one push monitor may send per minute, from 1 to 100000",
    },
    Setting {
        key: "notifiers_file",
        env: "UPWATCH_NOTIFIERS_FILE",
        default: None,
        expected: "the path of a YAML file of notifiers (as `upwatch export` writes them), secrets as ${ENV_VAR}",
    },
    Setting {
        key: "alert_group_threshold",
        env: "UPWATCH_ALERT_GROUP_THRESHOLD",
        default: Some("10"),
        expected: "a whole number of alerts to one channel within the group window above which they go out as one message, from 0 (never group) to 100000",
    },
    Setting {
        key: "alert_group_window",
        env: "UPWATCH_ALERT_GROUP_WINDOW",
        default: Some("60s"),
        expected: "a span such as 60s or 5m (from 1s to 1h)",
    },
    Setting {
        key: "public_url",
        env: "UPWATCH_PUBLIC_URL",
        default: None,
        expected: "the http(s) URL people open the dashboard at, such as https://status.example.com",
    },
    Setting {
        key: "region",
        env: "UPWATCH_REGION",
        default: Some("default"),
        expected: "the region of this process's workers: 1 to 63 of a-z, 0-9, -, _ and ., such as eu-west",
    },
    Setting {
        key: "regions",
        env: "UPWATCH_REGIONS",
        default: None,
        expected: "comma-separated region names that exist, such as eu-west,us-east,ap-south (default: UPWATCH_REGION alone)",
    },
    Setting {
        key: "connectivity_targets",
        env: "UPWATCH_CONNECTIVITY_TARGETS",
        default: None,
        expected: "comma-separated addresses that always answer, as monitor URLs such as https://1.1.1.1,tcp://9.9.9.9:53 (default: none, no connectivity check)",
    },
    Setting {
        key: "connectivity_interval",
        env: "UPWATCH_CONNECTIVITY_INTERVAL",
        default: Some("10s"),
        expected: "a span such as 10s or 1m (from 1s to 1h)",
    },
    Setting {
        key: "check_proxy",
        env: "UPWATCH_CHECK_PROXY",
        default: None,
        expected: "a proxy URL for this worker's HTTP checks: http://, https:// or socks5://, such as socks5://127.0.0.1:1080",
    },
    Setting {
        key: "logger_batch_size",
        env: "UPWATCH_LOGGER_BATCH_SIZE",
        default: Some("1000"),
        expected: "a whole number of results from 1 to 100000",
    },
    Setting {
        key: "logger_batch_ms",
        env: "UPWATCH_LOGGER_BATCH_MS",
        default: Some("200"),
        expected: "a whole number of milliseconds from 1 to 60000",
    },
    Setting {
        key: "alerter_batch_size",
        env: "UPWATCH_ALERTER_BATCH_SIZE",
        default: Some("1000"),
        expected: "a whole number of results from 1 to 100000",
    },
    Setting {
        key: "alerter_batch_ms",
        env: "UPWATCH_ALERTER_BATCH_MS",
        default: Some("200"),
        expected: "a whole number of milliseconds from 1 to 60000",
    },
    Setting {
        key: "scheduler_reload_ms",
        env: "UPWATCH_SCHEDULER_RELOAD_MS",
        default: Some("1000"),
        expected: "a whole number of milliseconds from 10 to 600000",
    },
    Setting {
        key: "stale_after_intervals",
        env: "UPWATCH_STALE_AFTER_INTERVALS",
        default: Some("3"),
        expected: "a whole number of intervals from 1 to 1000",
    },
    Setting {
        key: "retention_raw",
        env: "UPWATCH_RETENTION_RAW",
        default: Some("7d"),
        expected: "a length of time such as 7d, 48h or 90m, or `forever`",
    },
    Setting {
        key: "retention_minute",
        env: "UPWATCH_RETENTION_MINUTE",
        default: Some("48h"),
        expected: "a length of time such as 7d, 48h or 90m, or `forever`",
    },
    Setting {
        key: "retention_hour",
        env: "UPWATCH_RETENTION_HOUR",
        default: Some("90d"),
        expected: "a length of time such as 7d, 48h or 90m, or `forever`",
    },
    Setting {
        key: "retention_day",
        env: "UPWATCH_RETENTION_DAY",
        default: Some("forever"),
        expected: "a length of time such as 7d, 48h or 90m, or `forever`",
    },
    Setting {
        key: "prune_interval_seconds",
        env: "UPWATCH_PRUNE_INTERVAL_SECONDS",
        default: Some("600"),
        expected: "a whole number of seconds from 1 to 86400",
    },
    Setting {
        key: "prune_batch_monitors",
        env: "UPWATCH_PRUNE_BATCH_MONITORS",
        default: Some("50"),
        expected: "a whole number of monitors per transaction from 1 to 10000",
    },
    Setting {
        key: "api_max_body_bytes",
        env: "UPWATCH_API_MAX_BODY_BYTES",
        default: Some("1048576"),
        expected: "a whole number of bytes from 1024 to 104857600",
    },
    Setting {
        key: "api_status_max_age_ms",
        env: "UPWATCH_API_STATUS_MAX_AGE_MS",
        default: Some("250"),
        expected: "a whole number of milliseconds from 0 (off) to 1000",
    },
    Setting {
        key: "dashboard_public",
        env: "UPWATCH_DASHBOARD_PUBLIC",
        default: Some("false"),
        expected: "true or false",
    },
    Setting {
        key: "kafka_brokers",
        env: "KAFKA_BROKERS",
        default: None,
        expected: "comma-separated host:port pairs such as 127.0.0.1:9092",
    },
    Setting {
        key: "kafka_jobs_topic",
        env: "UPWATCH_KAFKA_JOBS_TOPIC",
        default: Some("upwatch.jobs"),
        expected: "a Kafka topic name (letters, digits, `.`, `_`, `-`)",
    },
    Setting {
        key: "kafka_results_topic",
        env: "UPWATCH_KAFKA_RESULTS_TOPIC",
        default: Some("upwatch.results"),
        expected: "a Kafka topic name (letters, digits, `.`, `_`, `-`)",
    },
    Setting {
        key: "kafka_partitions",
        env: "UPWATCH_KAFKA_PARTITIONS",
        default: Some("12"),
        expected: "a whole number of partitions from 1 to 1000",
    },
    Setting {
        key: "kafka_group_prefix",
        env: "UPWATCH_KAFKA_GROUP_PREFIX",
        default: Some(""),
        expected: "a prefix for consumer group names (letters, digits, `.`, `_`, `-`)",
    },
    Setting {
        key: "kafka_properties",
        env: "UPWATCH_KAFKA_PROPERTIES",
        default: None,
        expected: "librdkafka properties as key=value pairs separated by `;`",
    },
    Setting {
        key: "kafka_allow_unverified_assignment",
        env: "UPWATCH_KAFKA_ALLOW_UNVERIFIED_ASSIGNMENT",
        default: Some("false"),
        expected: "true or false",
    },
    Setting {
        key: "redis_url",
        env: "REDIS_URL",
        default: None,
        expected: "a Redis URL such as redis://127.0.0.1:6379",
    },
    Setting {
        key: "redis_prefix",
        env: "UPWATCH_REDIS_PREFIX",
        default: Some("upwatch:"),
        expected: "a key prefix such as upwatch:",
    },
    Setting {
        key: "log_format",
        env: "UPWATCH_LOG_FORMAT",
        default: Some("text"),
        expected: "`text` or `json`",
    },
    Setting {
        key: "log",
        env: "UPWATCH_LOG",
        default: Some("info"),
        expected: "a tracing filter such as `info` or `upwatch=debug,sqlx=warn`",
    },
];

/// Invalid configuration, naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value does not have the expected form.
    #[error("{env} (`{key}` in the config file) must be {expected}, not `{value}`")]
    Invalid {
        env: &'static str,
        key: &'static str,
        expected: &'static str,
        value: String,
    },
    /// The config file could not be read or parsed.
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    /// `UPWATCH_KAFKA_PROPERTIES` sets a partition assignment strategy whose consumer-group
    /// failover upwatch has not verified.
    #[error(
        "UPWATCH_KAFKA_PROPERTIES sets partition.assignment.strategy to `{value}`, which upwatch \
         has not verified for consumer-group failover (verified: {}); set \
         UPWATCH_KAFKA_ALLOW_UNVERIFIED_ASSIGNMENT=true to start with it anyway",
        verified_assignment_strategies()
    )]
    UnverifiedAssignment { value: String },
}

/// The values of librdkafka's `partition.assignment.strategy` with which upwatch's consumer
/// groups were verified to fail over (a killed member's partitions move to the survivors).
/// `range,roundrobin` is librdkafka's default, which upwatch uses when the property is not set.
/// The Kafka bus (`upwatch_bus_kafka`) warns about any other, reading this list.
pub const VERIFIED_ASSIGNMENT_STRATEGIES: &[&str] = &["range", "roundrobin", "range,roundrobin"];

/// The librdkafka property that chooses how a consumer group's partitions are assigned.
pub const ASSIGNMENT_STRATEGY_PROPERTY: &str = "partition.assignment.strategy";

/// The verified strategies as the error message lists them.
fn verified_assignment_strategies() -> String {
    let mut listed: Vec<String> = VERIFIED_ASSIGNMENT_STRATEGIES
        .iter()
        .map(|s| format!("`{s}`"))
        .collect();
    if let Some(last) = listed.last_mut() {
        last.push_str(" (librdkafka's default)");
    }
    listed.join(", ")
}

/// A `partition.assignment.strategy` value as librdkafka reads it: names separated by `,`,
/// blanks around them and empty or repeated names ignored, order kept (it is the preference).
pub fn normalize_assignment_strategy(value: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(",")
}

/// Whether `value` of `partition.assignment.strategy` is one upwatch has verified.
pub fn is_verified_assignment_strategy(value: &str) -> bool {
    VERIFIED_ASSIGNMENT_STRATEGIES.contains(&normalize_assignment_strategy(value).as_str())
}

/// Where durable state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// Embedded mode: a SQLite file (or `sqlite::memory:`).
    Sqlite(String),
    /// Distributed mode: a PostgreSQL server.
    Postgres(String),
}

/// Values given on the command line, which override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub log_format: Option<String>,
}

/// The validated configuration of a process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    /// Webhook URLs from `DISCORD_WEBHOOK_URL`.
    pub discord_webhook_urls: Vec<SecretString>,
    /// Sites from `SITES_TO_MONITOR`, added at start when missing.
    pub sites_to_monitor: Vec<String>,
    pub api_token: Option<SecretString>,
    pub workers: usize,
    pub queue_capacity: usize,
    pub drain_timeout: Duration,
    pub check_max_body_bytes: usize,
    pub check_max_redirects: usize,
    /// Checks in flight against one host at most (0: no limit).
    pub check_max_per_host: usize,
    /// A PEM file of CA certificates that TLS-speaking checks trust besides the public roots.
    pub check_ca_file: Option<PathBuf>,
    /// Days before a certificate's expiry at which monitors that set none alert; empty: off.
    pub cert_expiry_alert_days: Vec<u32>,
    /// Pushes one push monitor may send per minute; more are answered 429.
    pub push_max_per_minute: u32,
    /// A YAML file of notifiers to keep in the store at every start.
    pub notifiers_file: Option<PathBuf>,
    /// More alerts than this to one channel within `alert_group_window` go out as one
    /// message (0: never grouped).
    pub alert_group_threshold: u32,
    pub alert_group_window: Duration,
    /// Where people open the dashboard, for links in messages.
    pub public_url: Option<String>,
    /// The region of this process's workers (`UPWATCH_REGION`).
    pub region: String,
    /// The regions that exist (`UPWATCH_REGIONS`; this process's region alone by default).
    pub regions: Vec<String>,
    /// Addresses that always answer: while none does, this worker's results are
    /// inconclusive. Empty: no connectivity check.
    pub connectivity_targets: Vec<String>,
    pub connectivity_interval: Duration,
    /// The proxy of this worker's HTTP checks; may hold a password.
    pub check_proxy: Option<SecretString>,
    pub logger_batch_size: usize,
    pub logger_batch_wait: Duration,
    /// Results the alerter applies in one transaction at most, and the longest wait before a
    /// partial batch is applied.
    pub alerter_batch_size: usize,
    pub alerter_batch_wait: Duration,
    pub scheduler_reload: Duration,
    /// Intervals without a result after which the watchdog shows a monitor as stale (never
    /// less than the interval plus 15 s).
    pub stale_after_intervals: u32,
    pub api_max_body_bytes: usize,
    /// How long an answer of `GET /api/v1/sites/{id}/status` is served again from memory
    /// (zero: never).
    pub api_status_max_age: Duration,
    /// Whether the dashboard (`/`, `/sites/{id}`) is served while `api_token` is set. Without
    /// a token it always is; the public status page (`/status`) always is.
    pub dashboard_public: bool,
    /// How long raw results and each resolution of rollups are kept.
    pub retention: Retention,
    /// How often history older than the retention is pruned.
    pub prune_interval: Duration,
    /// Monitors pruned per transaction.
    pub prune_batch_monitors: usize,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// The Kafka bus of the distributed mode, when `KAFKA_BROKERS` is set.
    pub kafka: Option<KafkaSettings>,
    /// The Redis cache of the distributed mode, when `REDIS_URL` is set.
    pub redis: Option<RedisSettings>,
}

/// Kafka settings of the distributed mode.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub jobs_topic: String,
    pub results_topic: String,
    pub partitions: i32,
    /// Prepended to every consumer group name, to run two deployments on one cluster.
    pub group_prefix: String,
    /// Extra librdkafka properties (SASL, TLS); values may be secrets.
    pub properties: Vec<(String, SecretString)>,
}

/// Redis settings of the distributed mode.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// May hold a password.
    pub url: SecretString,
    pub prefix: String,
}

struct Raw {
    values: HashMap<String, String>,
}

impl Raw {
    fn setting(key: &str) -> &'static Setting {
        SETTINGS
            .iter()
            .find(|s| s.key == key)
            .expect("known setting")
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn invalid(&self, key: &str) -> ConfigError {
        let s = Raw::setting(key);
        ConfigError::Invalid {
            env: s.env,
            key: s.key,
            expected: s.expected,
            value: self.text(key).unwrap_or("").to_string(),
        }
    }

    fn number(&self, key: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
        let text = self.text(key).ok_or_else(|| self.invalid(key))?;
        match text.trim().replace('_', "").parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.invalid(key)),
        }
    }

    /// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`, in any case).
    fn boolean(&self, key: &str) -> Result<bool, ConfigError> {
        let text = self.text(key).ok_or_else(|| self.invalid(key))?;
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.invalid(key)),
        }
    }

    /// A retention: a span such as `7d`, or `forever` (kept without limit).
    fn retention(&self, key: &str) -> Result<Option<chrono::TimeDelta>, ConfigError> {
        let text = self.text(key).ok_or_else(|| self.invalid(key))?.trim();
        if text.eq_ignore_ascii_case("forever") {
            return Ok(None);
        }
        upwatch_core::parse_span(text)
            .map(Some)
            .ok_or_else(|| self.invalid(key))
    }

    fn name_or_empty(&self, key: &str) -> Result<String, ConfigError> {
        let text = self.text(key).unwrap_or("").trim();
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && text.len() <= 200
        {
            Ok(text.to_string())
        } else {
            Err(self.invalid(key))
        }
    }

    fn name(&self, key: &str) -> Result<String, ConfigError> {
        match self.name_or_empty(key)? {
            name if name.is_empty() => Err(self.invalid(key)),
            name => Ok(name),
        }
    }

    fn properties(&self, key: &str) -> Result<Vec<(String, SecretString)>, ConfigError> {
        let mut out = Vec::new();
        for pair in self
            .text(key)
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => out.push((
                    k.trim().to_string(),
                    SecretString::from(v.trim().to_string()),
                )),
                _ => {
                    let s = Raw::setting(key);
                    return Err(ConfigError::Invalid {
                        env: s.env,
                        key: s.key,
                        expected: s.expected,
                        // Values may be passwords: show only the start of the malformed pair.
                        value: format!("{}…", pair.chars().take(12).collect::<String>()),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Days before an event, such as `14,7,1`, largest first; `off` (or empty) for none.
    /// A span such as `60s` or `5m` (a bare number is seconds), from `min` to `max` seconds.
    fn span(&self, key: &str, min: i64, max: i64) -> Result<Duration, ConfigError> {
        let text = self.text(key).ok_or_else(|| self.invalid(key))?.trim();
        let seconds = match text.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => upwatch_core::parse_span(text).map(|d| d.num_seconds()),
        };
        match seconds {
            Some(n) if (min..=max).contains(&n) => Ok(Duration::from_secs(n as u64)),
            _ => Err(self.invalid(key)),
        }
    }

    /// An optional http(s) URL with a host, without its trailing slash.
    fn http_url(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.text(key).map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Ok(Some(text.trim_end_matches('/').to_string()))
            }
            _ => Err(self.invalid(key)),
        }
    }

    fn alert_days(&self, key: &str) -> Result<Vec<u32>, ConfigError> {
        let text = self.text(key).unwrap_or("").trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(Vec::new());
        }
        let days = text
            .split(',')
            .map(|d| d.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| self.invalid(key))?;
        upwatch_core::monitor::validate_alert_days(key, days).map_err(|_| self.invalid(key))
    }

    /// One region's name.
    fn region(&self, key: &str) -> Result<String, ConfigError> {
        let text = self.text(key).unwrap_or("").trim();
        upwatch_core::monitor::validate_region_name(text).map_err(|_| self.invalid(key))?;
        Ok(text.to_string())
    }

    /// Region names, each once, in the order given.
    fn regions(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for name in self.list(key) {
            upwatch_core::monitor::validate_region_name(&name).map_err(|_| self.invalid(key))?;
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Monitor URLs of addresses to probe (http(s), tcp, icmp, dns...), each valid as a
    /// monitor's URL.
    fn connectivity_targets(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let targets = self.list(key);
        for target in &targets {
            upwatch_core::Monitor::create(
                upwatch_core::MonitorInput::for_url(target.clone()),
                chrono::Utc::now(),
            )
            .map_err(|_| self.invalid(key))?;
        }
        Ok(targets)
    }

    /// A proxy URL (kept secret: it may hold a password, never shown in an error).
    fn proxy(&self, key: &str) -> Result<Option<SecretString>, ConfigError> {
        let Some(text) = self.text(key).map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if upwatch_core::monitor::check_proxy_url(text).is_err() {
            let s = Raw::setting(key);
            return Err(ConfigError::Invalid {
                env: s.env,
                key: s.key,
                expected: s.expected,
                value: "(hidden: it may hold a password)".into(),
            });
        }
        Ok(Some(SecretString::from(text.to_string())))
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.text(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .map(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        })
        .unwrap_or(false)
}

impl Settings {
    /// Reads the configuration from the layers. `env` is the process environment (passed in
    /// so tests need not touch the real one).
    pub fn load(
        overrides: &Overrides,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder = Config::builder();
        for s in SETTINGS {
            if let Some(default) = s.default {
                builder = builder.set_default(s.key, default).expect("static default");
            }
        }
        if let Some(path) = &overrides.config_file {
            builder = builder.add_source(
                File::from(path.as_path())
                    .format(FileFormat::Toml)
                    .required(true),
            );
        }
        builder = builder.add_source(
            Environment::with_prefix("UPWATCH")
                .prefix_separator("_")
                .source(Some(env.clone())),
        );
        for s in SETTINGS.iter().filter(|s| !s.env.starts_with("UPWATCH_")) {
            if let Some(value) = env.get(s.env) {
                builder = builder
                    .set_override(s.key, value.as_str())
                    .expect("string override");
            }
        }
        if let Some(listen) = &overrides.listen {
            builder = builder
                .set_override("listen", listen.as_str())
                .expect("string override");
        }
        if let Some(format) = &overrides.log_format {
            builder = builder
                .set_override("log_format", format.as_str())
                .expect("string override");
        }
        let config = builder.build().map_err(|e| ConfigError::File {
            path: overrides
                .config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            message: e.to_string(),
        })?;
        let mut values = HashMap::new();
        for s in SETTINGS {
            if let Ok(value) = config.get_string(s.key) {
                values.insert(s.key.to_string(), value);
            }
        }
        if let Some(filter) = env
            .get("RUST_LOG")
            .filter(|_| !env.contains_key("UPWATCH_LOG"))
        {
            values.insert("log".into(), filter.clone());
        }
        Settings::from_raw(Raw { values })
    }

    fn from_raw(raw: Raw) -> Result<Settings, ConfigError> {
        let listen = raw
            .text("listen")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| raw.invalid("listen"))?;
        let db = raw
            .text("database_url")
            .ok_or_else(|| raw.invalid("database_url"))?
            .trim();
        let database_url = if db.starts_with("sqlite:") {
            DatabaseUrl::Sqlite(db.to_string())
        } else if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            DatabaseUrl::Postgres(db.to_string())
        } else {
            return Err(raw.invalid("database_url"));
        };
        let webhooks = raw.list("discord_webhook_url");
        if let Some(bad) = webhooks.iter().find(|u| !is_http_url(u)) {
            return Err(ConfigError::Invalid {
                env: "DISCORD_WEBHOOK_URL",
                key: "discord_webhook_url",
                expected: "comma-separated http(s) webhook URLs",
                // The value is a secret: show only its redacted form.
                value: upwatch_core::redact_url(bad),
            });
        }
        let sites = raw.list("sites_to_monitor");
        if let Some(bad) = sites.iter().find(|u| !is_http_url(u)) {
            let s = Raw::setting("sites_to_monitor");
            return Err(ConfigError::Invalid {
                env: s.env,
                key: s.key,
                expected: s.expected,
                value: bad.clone(),
            });
        }
        let api_token = match raw.text("api_token") {
            Some(t) if t.trim().len() >= 16 => Some(SecretString::from(t.trim().to_string())),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    env: "UPWATCH_API_TOKEN",
                    key: "api_token",
                    expected: "a bearer token of at least 16 characters",
                    value: "(hidden)".into(),
                })
            }
            None => None,
        };
        let log_format = match raw
            .text("log_format")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            _ => return Err(raw.invalid("log_format")),
        };
        let kafka = match raw.text("kafka_brokers") {
            None => None,
            Some(brokers) => {
                let properties = raw.properties("kafka_properties")?;
                let allow_unverified = raw.boolean("kafka_allow_unverified_assignment")?;
                // Every occurrence is checked, not only the last one (which librdkafka uses).
                // Allowed, an unverified strategy is warned about by the Kafka bus when it
                // connects (logs are not set up yet while the configuration is read).
                if let Some((_, value)) = properties.iter().find(|(key, value)| {
                    key == ASSIGNMENT_STRATEGY_PROPERTY
                        && !is_verified_assignment_strategy(value.expose_secret())
                }) {
                    if !allow_unverified {
                        return Err(ConfigError::UnverifiedAssignment {
                            value: value.expose_secret().to_string(),
                        });
                    }
                }
                Some(KafkaSettings {
                    brokers: brokers.trim().to_string(),
                    jobs_topic: raw.name("kafka_jobs_topic")?,
                    results_topic: raw.name("kafka_results_topic")?,
                    partitions: raw.number("kafka_partitions", 1, 1000)? as i32,
                    group_prefix: raw.name_or_empty("kafka_group_prefix")?,
                    properties,
                })
            }
        };
        let redis = match raw.text("redis_url") {
            None => None,
            Some(url)
                if url.trim().starts_with("redis://") || url.trim().starts_with("rediss://") =>
            {
                Some(RedisSettings {
                    url: SecretString::from(url.trim().to_string()),
                    prefix: raw.text("redis_prefix").unwrap_or("").to_string(),
                })
            }
            Some(_) => {
                let s = Raw::setting("redis_url");
                return Err(ConfigError::Invalid {
                    env: s.env,
                    key: s.key,
                    expected: s.expected,
                    value: "(hidden: it may hold a password)".into(),
                });
            }
        };
        let region = raw.region("region")?;
        let mut regions = raw.regions("regions")?;
        if regions.is_empty() {
            regions.push(region.clone());
        }
        Ok(Settings {
            kafka,
            redis,
            listen,
            database_url,
            discord_webhook_urls: webhooks.into_iter().map(SecretString::from).collect(),
            sites_to_monitor: sites,
            api_token,
            workers: raw.number("workers", 1, 100_000)? as usize,
            queue_capacity: raw.number("queue_capacity", 1, 10_000_000)? as usize,
            drain_timeout: Duration::from_secs(raw.number("drain_timeout_seconds", 0, 3600)?),
            check_max_body_bytes: raw.number("check_max_body_bytes", 0, 10 * 1024 * 1024)? as usize,
            check_max_redirects: raw.number("check_max_redirects", 0, 50)? as usize,
            check_max_per_host: raw.number("check_max_per_host", 0, 100_000)? as usize,
            check_ca_file: raw.text("check_ca_file").map(|p| PathBuf::from(p.trim())),
            cert_expiry_alert_days: raw.alert_days("cert_expiry_alert_days")?,
            push_max_per_minute: raw.number("push_max_per_minute", 1, 100_000)? as u32,
            notifiers_file: raw.text("notifiers_file").map(|p| PathBuf::from(p.trim())),
            alert_group_threshold: raw.number("alert_group_threshold", 0, 100_000)? as u32,
            alert_group_window: raw.span("alert_group_window", 1, 3600)?,
            public_url: raw.http_url("public_url")?,
            region: region.clone(),
            regions,
            connectivity_targets: raw.connectivity_targets("connectivity_targets")?,
            connectivity_interval: raw.span("connectivity_interval", 1, 3600)?,
            check_proxy: raw.proxy("check_proxy")?,
            logger_batch_size: raw.number("logger_batch_size", 1, 100_000)? as usize,
            logger_batch_wait: Duration::from_millis(raw.number("logger_batch_ms", 1, 60_000)?),
            alerter_batch_size: raw.number("alerter_batch_size", 1, 100_000)? as usize,
            alerter_batch_wait: Duration::from_millis(raw.number("alerter_batch_ms", 1, 60_000)?),
            scheduler_reload: Duration::from_millis(raw.number(
                "scheduler_reload_ms",
                10,
                600_000,
            )?),
            stale_after_intervals: raw.number("stale_after_intervals", 1, 1000)? as u32,
            api_max_body_bytes: raw.number("api_max_body_bytes", 1024, 100 * 1024 * 1024)? as usize,
            api_status_max_age: Duration::from_millis(raw.number(
                "api_status_max_age_ms",
                0,
                1000,
            )?),
            dashboard_public: raw.boolean("dashboard_public")?,
            retention: Retention {
                raw: raw.retention("retention_raw")?,
                minute: raw.retention("retention_minute")?,
                hour: raw.retention("retention_hour")?,
                day: raw.retention("retention_day")?,
            },
            prune_interval: Duration::from_secs(raw.number("prune_interval_seconds", 1, 86_400)?),
            prune_batch_monitors: raw.number("prune_batch_monitors", 1, 10_000)? as usize,
            log_format,
            log_filter: raw.text("log").unwrap_or("info").to_string(),
        })
    }

    /// The defaults alone, for tests and tools.
    pub fn defaults() -> Settings {
        Settings::load(&Overrides::default(), &HashMap::new()).expect("defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&Overrides::default(), &env(pairs))
    }

    #[test]
    fn defaults_run_embedded_on_localhost() {
        let s = Settings::defaults();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite("sqlite://upwatch.db".into())
        );
        assert_eq!(s.workers, 512);
        assert!(s.discord_webhook_urls.is_empty() && s.api_token.is_none());
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = load(&[
            ("UPWATCH_WORKERS", "64"),
            ("UPWATCH_LISTEN", "0.0.0.0:9000"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/upwatch"),
            (
                "DISCORD_WEBHOOK_URL",
                "http://127.0.0.1:1/a, https://discord.com/api/webhooks/1/x",
            ),
            (
                "SITES_TO_MONITOR",
                "https://example.com,http://127.0.0.1:8000/health",
            ),
            ("UPWATCH_API_TOKEN", "0123456789abcdef"),
            ("UPWATCH_LOG_FORMAT", "JSON"),
        ])
        .unwrap();
        assert_eq!(s.workers, 64);
        assert_eq!(s.listen.port(), 9000);
        assert!(matches!(s.database_url, DatabaseUrl::Postgres(_)));
        assert_eq!(s.discord_webhook_urls.len(), 2);
        assert_eq!(
            s.discord_webhook_urls[1].expose_secret(),
            "https://discord.com/api/webhooks/1/x"
        );
        assert_eq!(s.sites_to_monitor.len(), 2);
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn check_settings_default_and_parse() {
        let s = load(&[]).unwrap();
        assert_eq!(s.check_max_per_host, 16);
        assert_eq!(s.check_ca_file, None);
        assert_eq!(s.cert_expiry_alert_days, vec![14, 7, 1]);
        assert_eq!(s.push_max_per_minute, 60);
        let s = load(&[
            ("UPWATCH_CERT_EXPIRY_ALERT_DAYS", " 3, 30 ,3"),
            ("UPWATCH_CHECK_CA_FILE", "/etc/upwatch/ca.pem"),
            ("UPWATCH_CHECK_MAX_PER_HOST", "0"),
        ])
        .unwrap();
        assert_eq!(
            s.cert_expiry_alert_days,
            vec![30, 3],
            "largest first, once each"
        );
        assert_eq!(s.check_ca_file, Some(PathBuf::from("/etc/upwatch/ca.pem")));
        assert_eq!(s.check_max_per_host, 0);
        let s = load(&[("UPWATCH_CERT_EXPIRY_ALERT_DAYS", "off")]).unwrap();
        assert!(s.cert_expiry_alert_days.is_empty());
    }

    #[test]
    fn flags_override_environment_and_file_sits_between() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upwatch.toml");
        std::fs::write(
            &path,
            "workers = 8\nlisten = \"127.0.0.1:7000\"\nlogger_batch_ms = 50\n",
        )
        .unwrap();
        let overrides = Overrides {
            config_file: Some(path),
            listen: Some("127.0.0.1:7100".into()),
            log_format: None,
        };
        let s = Settings::load(&overrides, &env(&[("UPWATCH_WORKERS", "16")])).unwrap();
        assert_eq!(s.workers, 16, "environment beats the file");
        assert_eq!(
            s.logger_batch_wait,
            Duration::from_millis(50),
            "the file beats defaults"
        );
        assert_eq!(s.listen.port(), 7100, "flags beat everything");
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_form() {
        let cases: &[(&str, &str, &str)] = &[
            ("UPWATCH_WORKERS", "lots", "a whole number"),
            ("UPWATCH_WORKERS", "0", "from 1 to 100000"),
            ("UPWATCH_LISTEN", "localhost", "an address and port"),
            ("DATABASE_URL", "mysql://x", "a database URL"),
            ("SITES_TO_MONITOR", "ftp://x", "http(s) URLs"),
            ("UPWATCH_LOG_FORMAT", "xml", "`text` or `json`"),
            ("UPWATCH_API_TOKEN", "short", "at least 16 characters"),
            (
                "UPWATCH_CERT_EXPIRY_ALERT_DAYS",
                "14,seven",
                "such as 14,7,1",
            ),
            ("UPWATCH_CERT_EXPIRY_ALERT_DAYS", "400", "from 1 to 365"),
            ("UPWATCH_CHECK_MAX_PER_HOST", "-1", "from 0 (no limit)"),
            ("UPWATCH_PUSH_MAX_PER_MINUTE", "0", "per minute, from 1"),
            ("UPWATCH_REGION", "EU West", "such as eu-west"),
            ("UPWATCH_REGIONS", "a,B", "such as eu-west,us-east"),
            (
                "UPWATCH_CONNECTIVITY_TARGETS",
                "gopher://x",
                "such as https://1.1.1.1",
            ),
            ("UPWATCH_CONNECTIVITY_INTERVAL", "0s", "from 1s to 1h"),
            ("UPWATCH_CHECK_PROXY", "ftp://u:hunter2@p", "socks5://"),
        ];
        for (var, value, expected) in cases {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}: {err}");
            assert!(err.contains(expected), "{var}: {err}");
            if *var == "UPWATCH_API_TOKEN" || *var == "UPWATCH_CHECK_PROXY" {
                assert!(!err.contains(value), "the secret is never printed: {err}");
            }
        }
    }

    #[test]
    fn regions_default_to_the_processs_own() {
        let s = load(&[]).unwrap();
        assert_eq!(s.region, "default");
        assert_eq!(s.regions, vec!["default"]);
        assert!(s.connectivity_targets.is_empty());
        assert_eq!(s.connectivity_interval, Duration::from_secs(10));
        let s = load(&[("UPWATCH_REGION", "eu-west")]).unwrap();
        assert_eq!(s.regions, vec!["eu-west"]);
        let s = load(&[
            ("UPWATCH_REGION", "b"),
            ("UPWATCH_REGIONS", "a, b,c,a"),
            (
                "UPWATCH_CONNECTIVITY_TARGETS",
                "https://1.1.1.1,tcp://9.9.9.9:53",
            ),
            ("UPWATCH_CHECK_PROXY", "socks5://127.0.0.1:1080"),
        ])
        .unwrap();
        assert_eq!(s.regions, vec!["a", "b", "c"]);
        assert_eq!(
            s.connectivity_targets,
            vec!["https://1.1.1.1", "tcp://9.9.9.9:53"]
        );
        assert!(s.check_proxy.is_some());
    }

    #[test]
    fn a_bad_webhook_url_is_reported_without_the_secret() {
        let err = load(&[(
            "DISCORD_WEBHOOK_URL",
            "discord.com/api/webhooks/1/topsecret",
        )])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("DISCORD_WEBHOOK_URL"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn distributed_backends_are_read_when_set() {
        let s = Settings::defaults();
        assert!(s.kafka.is_none() && s.redis.is_none());
        let s = load(&[
            ("KAFKA_BROKERS", "127.0.0.1:9092"),
            ("UPWATCH_KAFKA_PARTITIONS", "3"),
            (
                "UPWATCH_KAFKA_PROPERTIES",
                "security.protocol=SASL_SSL; sasl.password=hunter2",
            ),
            ("REDIS_URL", "redis://:pw@127.0.0.1:6379/0"),
        ])
        .unwrap();
        let kafka = s.kafka.unwrap();
        assert_eq!(
            (
                kafka.jobs_topic.as_str(),
                kafka.results_topic.as_str(),
                kafka.partitions
            ),
            ("upwatch.jobs", "upwatch.results", 3)
        );
        assert_eq!(kafka.properties.len(), 2);
        assert_eq!(kafka.properties[1].1.expose_secret(), "hunter2");
        assert_eq!(s.redis.unwrap().prefix, "upwatch:");
        let err = load(&[
            ("KAFKA_BROKERS", "x"),
            ("UPWATCH_KAFKA_PROPERTIES", "sasl.password"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("UPWATCH_KAFKA_PROPERTIES"), "{err}");
        let err = load(&[("REDIS_URL", "http://:secret@x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("REDIS_URL") && !err.contains("secret"),
            "{err}"
        );
        let err = load(&[
            ("KAFKA_BROKERS", "x"),
            ("UPWATCH_KAFKA_JOBS_TOPIC", "bad topic"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("UPWATCH_KAFKA_JOBS_TOPIC"), "{err}");
    }

    #[test]
    fn only_verified_assignment_strategies_start_unless_allowed() {
        let kafka = |properties: &str, allow: Option<&str>| {
            let mut pairs = vec![
                ("KAFKA_BROKERS", "127.0.0.1:9092"),
                ("UPWATCH_KAFKA_PROPERTIES", properties),
            ];
            if let Some(allow) = allow {
                pairs.push(("UPWATCH_KAFKA_ALLOW_UNVERIFIED_ASSIGNMENT", allow));
            }
            load(&pairs)
        };
        assert!(
            Settings::defaults().kafka.is_none(),
            "no Kafka, nothing to check"
        );
        assert!(
            kafka("client.rack=a", None).is_ok(),
            "unset: librdkafka's default"
        );
        for verified in [
            "range",
            "roundrobin",
            "range,roundrobin",
            " range , roundrobin ",
            "range,,range,roundrobin,",
        ] {
            let s = kafka(&format!("partition.assignment.strategy={verified}"), None)
                .unwrap_or_else(|e| panic!("{verified}: {e}"));
            assert_eq!(
                s.kafka.unwrap().properties[0].1.expose_secret(),
                verified.trim()
            );
        }
        for unverified in [
            "cooperative-sticky",
            "roundrobin,range",
            "Range",
            "range,cooperative-sticky",
        ] {
            let properties = format!("partition.assignment.strategy={unverified}");
            let err = kafka(&properties, None).unwrap_err().to_string();
            assert!(err.starts_with("UPWATCH_KAFKA_PROPERTIES"), "{err}");
            assert!(err.contains(&format!("`{unverified}`")), "{err}");
            assert!(
                err.contains("verified: `range`, `roundrobin`, `range,roundrobin`"),
                "{err}"
            );
            assert!(
                err.contains("UPWATCH_KAFKA_ALLOW_UNVERIFIED_ASSIGNMENT=true"),
                "{err}"
            );
            assert!(kafka(&properties, Some("false")).is_err(), "{unverified}");
            let s = kafka(&properties, Some("true")).unwrap();
            assert_eq!(
                s.kafka.unwrap().properties[0].1.expose_secret(),
                unverified,
                "allowed, it is passed on as given"
            );
        }
        // librdkafka uses the last occurrence; an unverified one anywhere is refused.
        assert!(kafka(
            "partition.assignment.strategy=cooperative-sticky;partition.assignment.strategy=range",
            None
        )
        .is_err());
        let err = kafka("partition.assignment.strategy=range", Some("maybe"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("UPWATCH_KAFKA_ALLOW_UNVERIFIED_ASSIGNMENT")
                && err.contains("true or false"),
            "{err}"
        );
    }

    #[test]
    fn assignment_strategies_are_read_as_librdkafka_reads_them() {
        assert_eq!(
            normalize_assignment_strategy(" range ,, roundrobin,range "),
            "range,roundrobin"
        );
        assert_eq!(normalize_assignment_strategy(""), "");
        assert!(is_verified_assignment_strategy("roundrobin"));
        assert!(!is_verified_assignment_strategy(""));
        assert!(!is_verified_assignment_strategy("cooperative-sticky"));
    }

    #[test]
    fn a_missing_config_file_is_an_error_naming_it() {
        let overrides = Overrides {
            config_file: Some("/nonexistent/upwatch.toml".into()),
            ..Overrides::default()
        };
        let err = Settings::load(&overrides, &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/upwatch.toml"), "{err}");
    }

    #[test]
    fn every_setting_has_a_documented_variable() {
        for s in SETTINGS {
            assert!(!s.env.is_empty() && !s.expected.is_empty());
            assert!(
                s.env.starts_with("UPWATCH_")
                    || [
                        "DATABASE_URL",
                        "DISCORD_WEBHOOK_URL",
                        "SITES_TO_MONITOR",
                        "KAFKA_BROKERS",
                        "REDIS_URL"
                    ]
                    .contains(&s.env)
            );
        }
    }
}

#[cfg(test)]
mod docs {
    use super::SETTINGS;

    /// `.env.example` and the README document every setting with its real default.
    #[test]
    fn every_setting_is_documented_with_its_default() {
        let env_example = include_str!("../../../.env.example");
        let readme = include_str!("../../../README.md");
        for s in SETTINGS {
            let line = format!("{}={}", s.env, s.default.unwrap_or(""));
            assert!(
                env_example.lines().any(|l| l == line),
                ".env.example lacks `{line}`"
            );
            assert!(
                readme.contains(&format!("`{}`", s.env)),
                "README lacks `{}`",
                s.env
            );
        }
    }
}
