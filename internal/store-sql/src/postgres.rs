//! The distributed implementation of [`Store`]: PostgreSQL through sqlx, shared by every
//! process of the distributed mode, and [`LeaderLock`], which elects one process of a role.
//!
//! The schema lives in `migrations/postgres/` at the root of the repository and is compiled
//! into the binary. Unlike the embedded store, [`PostgresStore::connect`] never changes the
//! schema: several processes share one database and may run different builds during an
//! upgrade, so the schema is changed by one deliberate step, `upwatch migrate`
//! ([`PostgresStore::migrate`]), and every process checks at start that it was taken.
//!
//! Conventions: ids are `uuid`, times `timestamptz` cut to the millisecond (as the SQLite
//! store keeps them, so that both give back the same values), and whole domain values (a
//! monitor, a state, an alert) `jsonb`, written and read as JSON text so that a value that
//! does not parse is reported as [`StoreError::Corrupt`] with what it belongs to. PostgreSQL
//! cannot store the NUL character in text or JSON; the store writes U+FFFD in its place.
//!
//! Concurrency: transactions run at PostgreSQL's default isolation, read committed, and take
//! row locks where a decision depends on a row staying as read. Every transaction that locks
//! both a monitor and its state locks the monitor first, so they cannot deadlock:
//! - applying a result locks the monitor against deletion (`FOR KEY SHARE`), then its state
//!   row (`FOR UPDATE`), so that processes applying results of one monitor take turns and a
//!   transition alerts once; it also share-locks the webhooks it creates deliveries for, so
//!   that a webhook being disabled or deleted at that moment gets none left pending;
//! - storing results locks their monitors against deletion (`FOR KEY SHARE`), so that a
//!   result cannot be stored after its monitor's history was deleted;
//! - updating a monitor locks its row (`FOR NO KEY UPDATE`, which does not block the two
//!   above), then its state when it pauses or resumes it;
//! - every write of a monitor then updates the one `monitors_version` row, so such writes
//!   take turns at their end.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use upwatch_store::prelude::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};
use upwatch_core::webhook::route;
use upwatch_core::{
    Alert, AlertKind, CheckResult, CheckStatus, Monitor, MonitorState, Webhook, WebhookSource,
};
use uuid::Uuid;

use upwatch_core::maintenance::Maintenance;
use upwatch_core::rollup::{Cutoffs, Resolution, Rollup, RollupRun};

use crate::script::{self, RollupDeltas, ScriptSql};
use crate::{
    error_columns, region_column, resolution_from_seconds, rollup_from_columns, stored_error,
    stored_region, stored_status, Db,
};
use upwatch_store::{
    Delivery, HistoryEntry, HistoryQuery, Incident, IncidentQuery, Pruned, Store, StoreError,
    StoreResult, StoredRollup,
};

/// The schema, embedded at build time from `migrations/postgres/`.
static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connections of a store's pool: enough for a role's concurrent work without crowding the
/// server, which every process of the distributed mode shares.
const POOL_SIZE: u32 = 10;

/// How long a method waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The name connections give the server (seen in `pg_stat_activity`) when the URL sets none.
const APPLICATION_NAME: &str = "upwatch";

/// The `meta` key of the monitors' version counter.
const MONITORS_VERSION: &str = "monitors_version";

/// The channel notified, with the monitor's id as payload, whenever a monitor is written.
pub const MONITORS_CHANNEL: &str = "upwatch_monitors";

/// What every schema error that a migration fixes ends with.
const RUN_MIGRATE: &str = "run `upwatch migrate` first";

/// A [`Store`] in a PostgreSQL database, shared by the processes of the distributed mode.
///
/// Cloning is cheap: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The days (their UTC start) whose results partition this process made or found, from
    /// today on: an insert of their results needs no catalog statement. Older days are looked
    /// up each time, since the pruner of any process may drop them.
    days: Arc<Mutex<HashSet<DateTime<Utc>>>>,
}

impl PostgresStore {
    /// Brings the schema of the database at `url` up to date, applying the migrations it
    /// lacks; this is what `upwatch migrate` does.
    ///
    /// Safe to run again (it then changes nothing) and from several processes at once: the
    /// migrations are applied under an advisory lock, each in its own transaction. Fails with
    /// [`StoreError::Database`] when the database cannot be reached (the message names it,
    /// without any password), and with [`StoreError::Schema`] when a migration fails or the
    /// database was migrated by a build whose migrations differ from this one's.
    pub async fn migrate(url: &str) -> StoreResult<()> {
        let options = connect_options(url)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| open_error(&options, e))?;
        let outcome = MIGRATOR.run(&mut conn).await;
        // Closing politely is a courtesy to the server; dropping the connection would do.
        let _ = conn.close().await;
        outcome.map_err(|e| {
            StoreError::Schema(format!(
                "could not migrate the database {}: {e}",
                describe(&options)
            ))
        })?;
        tracing::info!(database = %describe(&options), "postgres schema up to date");
        Ok(())
    }

    /// Connects to the database at `url` (a `postgres://` URL, as libpq takes them) with a
    /// pool of up to ten connections, opened as needed, each method waiting at most five
    /// seconds for one.
    ///
    /// The schema is not changed: every migration of this build must already be applied,
    /// else this fails with [`StoreError::Schema`] saying to run `upwatch migrate`. Migrations
    /// of a newer build are accepted (migrations only add to the schema, so that processes of
    /// the previous build keep working during an upgrade) and logged. Fails with
    /// [`StoreError::Database`] when the database cannot be reached; the message names it,
    /// without any password.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let options = connect_options(url)?;
        // A connection of its own checks the schema first: a failure to connect then says
        // why at once, rather than after the pool's acquire timeout.
        let mut probe = PgConnection::connect_with(&options)
            .await
            .map_err(|e| open_error(&options, e))?;
        let checked = check_schema(&mut probe).await;
        let _ = probe.close().await;
        checked?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        tracing::debug!(database = %describe(&options), "postgres store ready");
        Ok(PostgresStore {
            pool,
            days: Arc::default(),
        })
    }

    /// Closes every connection after the statements in flight. Calls made afterwards fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Parses `url`, naming this program to the server unless the URL names another.
fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        // The URL itself is not repeated: it may hold a password.
        StoreError::Database(Box::new(sqlx::Error::Configuration(
            format!("the postgresql database url is not valid: {e}").into(),
        )))
    })?;
    Ok(if options.get_application_name().is_none() {
        options.application_name(APPLICATION_NAME)
    } else {
        options
    })
}

/// Names a database for messages and logs, as `user@host:port/database` (never a password).
fn describe(options: &PgConnectOptions) -> String {
    let server = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    format!(
        "`{}@{server}/{}`",
        options.get_username(),
        options.get_database().unwrap_or(options.get_username())
    )
}

/// Wraps a failure to connect to the database of `options` so that its message says which
/// database, and why.
fn open_error(options: &PgConnectOptions, e: sqlx::Error) -> StoreError {
    // The cause is part of the message: `StoreError::Database` shows its error's message but
    // does not pass it on as a source, so a chain of sources would end before the cause.
    let message = format!(
        "cannot connect to the postgresql database {}: {e}",
        describe(options)
    );
    StoreError::Database(Box::new(sqlx::Error::Io(std::io::Error::other(message))))
}

/// The schema error for a database that lacks migrations of this build.
fn schema_behind(what: &str) -> StoreError {
    StoreError::Schema(format!(
        "{what}: the schema is missing or older than this build; {RUN_MIGRATE}"
    ))
}

/// Checks that every migration embedded in this build was applied, unchanged, to the
/// database of `conn`.
async fn check_schema(conn: &mut PgConnection) -> StoreResult<()> {
    // `to_regclass` resolves the name on the search path, as sqlx does when it creates the
    // table, and gives NULL instead of an error when there is no such table.
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&mut *conn)
        .await
        .db()?;
    if table.is_none() {
        return Err(schema_behind(
            "no migration was ever applied to the database",
        ));
    }
    let rows: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations")
            .fetch_all(&mut *conn)
            .await
            .db()?;
    let applied: HashMap<i64, (bool, Vec<u8>)> = rows
        .into_iter()
        .map(|(version, success, checksum)| (version, (success, checksum)))
        .collect();
    for migration in MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        let name = format!(
            "migration {} ({})",
            migration.version, migration.description
        );
        match applied.get(&migration.version) {
            None => return Err(schema_behind(&format!("{name} is not applied"))),
            Some((false, _)) => {
                return Err(schema_behind(&format!("{name} did not complete")));
            }
            Some((true, checksum)) if checksum.as_slice() != &*migration.checksum => {
                return Err(StoreError::Schema(format!(
                    "{name} was applied from a different text than this build's; the database \
                     belongs to another version of upwatch"
                )));
            }
            Some((true, _)) => {}
        }
    }
    let mut newer: Vec<i64> = applied
        .keys()
        .copied()
        .filter(|v| !MIGRATOR.version_exists(*v))
        .collect();
    if !newer.is_empty() {
        newer.sort_unstable();
        tracing::warn!(
            migrations = ?newer,
            "the database has migrations that this build does not know; a newer upwatch \
             migrated it"
        );
    }
    Ok(())
}

/// The UTC day of a time, as its start: results are partitioned by day, as the day rollups
/// bucket them.
fn day_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Resolution::Day.bucket_start(t)
}

/// The partition of the results of the day starting at `day`: `results_YYYYMMDD`.
fn partition_name(day: DateTime<Utc>) -> String {
    format!("results_{}", day.format("%Y%m%d"))
}

/// The start of the day of a partition this store named ([`partition_name`]).
fn partition_day(name: &str) -> Option<DateTime<Utc>> {
    let date = chrono::NaiveDate::parse_from_str(name.strip_prefix("results_")?, "%Y%m%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Takes the lock under which day partitions are made and dropped, until the commit: two
/// processes making the same day's take turns, and none makes a day being dropped.
async fn lock_days(tx: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('upwatch results days'))")
        .execute(&mut *tx)
        .await
        .db()?;
    Ok(())
}

/// A result's region as its series keeps it: '' for the default region.
fn series_region(region: &str) -> &str {
    region_column(region).unwrap_or("")
}

/// A region read back from its series ('' is the default region).
fn stored_series_region(region: &str) -> String {
    stored_region(Some(region.to_string()).filter(|r| !r.is_empty()))
}

impl PostgresStore {
    /// Makes the result partitions of the days of `times` that do not exist yet, each in a
    /// short transaction of its own, before results of them are stored.
    async fn make_days(&self, times: impl IntoIterator<Item = DateTime<Utc>>) -> StoreResult<()> {
        let today = day_of(Utc::now());
        let missing: BTreeSet<DateTime<Utc>> = {
            let known = self.days.lock().expect("days lock");
            times
                .into_iter()
                .map(day_of)
                .filter(|day| !known.contains(day))
                .collect()
        };
        for day in missing {
            let name = partition_name(day);
            let mut tx = self.pool.begin().await.db()?;
            lock_days(&mut tx).await?;
            let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(&name)
                .fetch_one(&mut *tx)
                .await
                .db()?;
            if exists.is_none() {
                sqlx::query(&format!(
                    "CREATE TABLE {name} PARTITION OF results FOR VALUES FROM ('{}') TO ('{}')",
                    day.to_rfc3339(),
                    (day + Resolution::Day.duration()).to_rfc3339()
                ))
                .execute(&mut *tx)
                .await
                .db()?;
                tracing::debug!(partition = %name, "day of results made");
            }
            tx.commit().await.db()?;
            // Days before today may be dropped by any process's pruner: not remembered.
            if day >= today {
                self.days.lock().expect("days lock").insert(day);
            }
        }
        Ok(())
    }
}

/// A time as the store keeps it, cut to the millisecond.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The current time, as the store keeps it.
fn now_ms() -> DateTime<Utc> {
    ms(Utc::now())
}

/// Text that PostgreSQL can store: it refuses the NUL character, which becomes U+FFFD.
fn text(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Replaces the NUL characters of every string (and key) in a JSON value with U+FFFD.
fn scrub_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = text(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_nul),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            *map = entries
                .into_iter()
                .map(|(key, mut item)| {
                    scrub_nul(&mut item);
                    (text(&key).into_owned(), item)
                })
                .collect();
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The JSON text of a value, which `jsonb` accepts.
fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    // The domain types serialize infallibly (no maps with non-string keys, no custom
    // serializers that fail); an error here would be a bug, reported rather than hidden.
    let failed = |e: serde_json::Error| {
        StoreError::Corrupt(format!("cannot serialize a value to store: {e}"))
    };
    let json = serde_json::to_string(value).map_err(failed)?;
    // `jsonb` refuses the escape `\u0000`; the rare value with a NUL in a string is rebuilt
    // without it (replacing the escape in the text could split an escaped backslash).
    if !json.contains("\\u0000") {
        return Ok(json);
    }
    let mut tree = serde_json::to_value(value).map_err(failed)?;
    scrub_nul(&mut tree);
    serde_json::to_string(&tree).map_err(failed)
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn u32_column(value: i32, what: &str) -> StoreResult<u32> {
    u32::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{what}: {value} is out of range")))
}

/// A response time as the `integer` column keeps it. Timeouts are bounded far below the
/// column's range (24 days), so saturating never changes a real measurement; it only keeps
/// a nonsensical one from failing the whole batch it came in.
fn response_time_column(ms: u32) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// An HTTP status code as the `smallint` column keeps it. HTTP status codes have three
/// digits; a number beyond the column's range is no status code and is stored as none.
fn status_code_column(code: Option<u16>) -> Option<i16> {
    code.and_then(|c| i16::try_from(c).ok())
}

/// A row of `webhooks`, in column order of [`WEBHOOK_COLUMNS`].
type WebhookRow = (
    Uuid,
    String,
    String,
    bool,
    Option<String>,
    String,
    DateTime<Utc>,
    String,
    String,
    String,
);

const WEBHOOK_COLUMNS: &str = "id, name, url, enabled, disabled_reason, source, created_at, \
     kind, settings::text, options::text";

fn webhook_from_row(row: WebhookRow) -> StoreResult<Webhook> {
    let (id, name, url, enabled, disabled_reason, source, created_at, kind, settings, options) =
        row;
    let source = WebhookSource::parse(&source)
        .ok_or_else(|| StoreError::Corrupt(format!("webhook {id}: unknown source `{source}`")))?;
    Ok(Webhook {
        id,
        name,
        url,
        enabled,
        disabled_reason,
        source,
        created_at,
        kind,
        settings: from_json(&settings, &format!("settings of channel {id}"))?,
        options: from_json(&options, &format!("options of channel {id}"))?,
    }
    .normalized())
}

/// The columns of a delivery and its alert, then the channel's, from `alert_deliveries d`
/// joined with `alerts a` and `webhooks w`.
const DELIVERY_SELECT: &str = "SELECT d.id, d.attempts, d.next_attempt_at, a.payload::text, \
     w.id, w.name, w.url, w.enabled, w.disabled_reason, w.source, w.created_at, w.kind, \
     w.settings::text, w.options::text \
     FROM alert_deliveries d \
     JOIN alerts a ON a.id = d.alert_id \
     JOIN webhooks w ON w.id = d.webhook_id";

/// A row of [`DELIVERY_SELECT`].
type DeliveryRow = (
    i64,
    i32,
    DateTime<Utc>,
    String,
    Uuid,
    String,
    String,
    bool,
    Option<String>,
    String,
    DateTime<Utc>,
    String,
    String,
    String,
);

fn delivery_from_row(row: DeliveryRow) -> StoreResult<Delivery> {
    let (id, attempts, next_attempt_at, payload, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9) = row;
    Ok(Delivery {
        id,
        alert: from_json(&payload, &format!("alert of delivery {id}"))?,
        webhook: webhook_from_row((w0, w1, w2, w3, w4, w5, w6, w7, w8, w9))?,
        attempts: u32_column(attempts, "delivery attempts")?,
        next_attempt_at,
    })
}

async fn load_monitor(conn: &mut PgConnection, id: Uuid) -> StoreResult<Option<Monitor>> {
    let spec: Option<String> = sqlx::query_scalar("SELECT spec::text FROM monitors WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    spec.map(|s| from_json(&s, &format!("monitor {id}")))
        .transpose()
}

/// Reads a monitor's state and locks its row until the end of the transaction.
async fn lock_state(conn: &mut PgConnection, id: Uuid) -> StoreResult<Option<MonitorState>> {
    let state: Option<String> = sqlx::query_scalar(
        "SELECT state::text FROM monitor_state WHERE monitor_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    state
        .map(|s| from_json(&s, &format!("state of monitor {id}")))
        .transpose()
}

async fn save_state(conn: &mut PgConnection, state: &MonitorState) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO monitor_state (monitor_id, state) VALUES ($1, $2::jsonb) \
         ON CONFLICT (monitor_id) DO UPDATE SET state = excluded.state",
    )
    .bind(state.monitor_id)
    .bind(to_json(state)?)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

/// Counts a change of monitor `id` and notifies [`MONITORS_CHANNEL`]; the notification goes
/// out when (and if) the transaction commits.
async fn bump_monitors_version(conn: &mut PgConnection, id: Uuid) -> StoreResult<()> {
    let bumped = sqlx::query(
        "WITH bumped AS (UPDATE meta SET value = value + 1 WHERE key = $1 RETURNING value) \
         SELECT pg_notify($2, $3) FROM bumped",
    )
    .bind(MONITORS_VERSION)
    .bind(MONITORS_CHANNEL)
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    bumped.map(|_| ()).ok_or_else(missing_version)
}

fn missing_version() -> StoreError {
    StoreError::Schema(format!("the meta table lacks the `{MONITORS_VERSION}` row"))
}

/// The first key of the transaction-level advisory locks that serialize writers of one
/// monitor's rollups (the second key is taken from the monitor's id). The two-key space does
/// not overlap the single-key space of the leader locks.
const ROLLUP_LOCK_CLASS: i32 = 0x7570_7772; // "upwr"

/// Adds each delta to its stored rollup, creating the missing ones.
///
/// Two loggers may add to the same rollups at once (while a consumer group rebalances, say).
/// So each monitor's rollups are first locked for the transaction with an advisory lock, taken
/// in monitor order so that two writers never wait on each other in a cycle; then the rows are
/// read, merged in Rust (the latency sketch cannot be merged in SQL) and written back with one
/// upsert, a single new row version each, which keeps the table from bloating.
async fn add_to_rollups(
    conn: &mut PgConnection,
    deltas: BTreeMap<(Uuid, Resolution, DateTime<Utc>), Rollup>,
) -> StoreResult<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut lock_keys: Vec<i32> = deltas
        .keys()
        .map(|(monitor_id, _, _)| rollup_lock_key(*monitor_id))
        .collect();
    lock_keys.sort_unstable();
    lock_keys.dedup();
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock($1, k)) \
         FROM (SELECT k FROM UNNEST($2::integer[]) AS k ORDER BY k) AS keys",
    )
    .bind(ROLLUP_LOCK_CLASS)
    .bind(&lock_keys)
    .execute(&mut *conn)
    .await
    .db()?;

    let mut monitor_ids = Vec::with_capacity(deltas.len());
    let mut resolutions = Vec::with_capacity(deltas.len());
    let mut starts = Vec::with_capacity(deltas.len());
    for (monitor_id, resolution, start) in deltas.keys() {
        monitor_ids.push(*monitor_id);
        resolutions.push(resolution.duration().num_seconds() as i32);
        starts.push(*start);
    }
    type Row = (
        Uuid,
        i32,
        DateTime<Utc>,
        i32,
        i32,
        i64,
        Option<i32>,
        Option<i32>,
        Vec<u8>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.monitor_id, r.resolution, r.bucket_start, r.up, r.down, r.rt_sum, r.rt_min, \
                r.rt_max, r.sketch \
         FROM rollups r \
         JOIN UNNEST($1::uuid[], $2::integer[], $3::timestamptz[]) AS k (m, res, b) \
           ON r.monitor_id = k.m AND r.resolution = k.res AND r.bucket_start = k.b",
    )
    .bind(&monitor_ids)
    .bind(&resolutions)
    .bind(&starts)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let mut totals = deltas;
    for (monitor_id, seconds, start, up, down, sum, min, max, sketch) in rows {
        let resolution = resolution_from_seconds(i64::from(seconds))?;
        let stored = rollup_from_columns(up, down, sum, min, max, &sketch)?;
        if let Some(total) = totals.get_mut(&(monitor_id, resolution, start)) {
            total.merge(&stored);
        }
    }
    let (mut ups, mut downs, mut sums, mut mins, mut maxs, mut sketches) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for total in totals.values() {
        ups.push(i32::try_from(total.up).unwrap_or(i32::MAX));
        downs.push(i32::try_from(total.down).unwrap_or(i32::MAX));
        sums.push(i64::try_from(total.response_time_sum_ms).unwrap_or(i64::MAX));
        mins.push(total.response_time_min_ms.map(response_time_column));
        maxs.push(total.response_time_max_ms.map(response_time_column));
        sketches.push(total.sketch.to_bytes());
    }
    sqlx::query(
        "INSERT INTO rollups \
         (monitor_id, resolution, bucket_start, up, down, rt_sum, rt_min, rt_max, sketch) \
         SELECT * FROM UNNEST($1::uuid[], $2::integer[], $3::timestamptz[], $4::integer[], \
                              $5::integer[], $6::bigint[], $7::integer[], $8::integer[], \
                              $9::bytea[]) \
         ON CONFLICT (monitor_id, resolution, bucket_start) DO UPDATE SET \
             up = excluded.up, down = excluded.down, rt_sum = excluded.rt_sum, \
             rt_min = excluded.rt_min, rt_max = excluded.rt_max, sketch = excluded.sketch",
    )
    .bind(&monitor_ids)
    .bind(&resolutions)
    .bind(&starts)
    .bind(&ups)
    .bind(&downs)
    .bind(&sums)
    .bind(&mins)
    .bind(&maxs)
    .bind(&sketches)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

/// The second key of a monitor's rollup lock: 32 bits of its id's random tail.
fn rollup_lock_key(monitor_id: Uuid) -> i32 {
    let b = monitor_id.as_bytes();
    i32::from_be_bytes([b[12], b[13], b[14], b[15]])
}

/// The PostgreSQL statements of the transaction scripts. Locks are taken in the order every
/// transaction that takes both keeps: monitors first, then their states, each in id order.
struct Script<'c>(&'c mut PgConnection);

#[async_trait]
impl ScriptSql for Script<'_> {
    async fn insert_new_results(&mut self, results: &[CheckResult]) -> StoreResult<HashSet<Uuid>> {
        // The monitors kept are locked against deletion (`FOR KEY SHARE`, in id order) until
        // the commit.
        let monitor_ids = script::monitor_ids(results);
        let live: HashSet<Uuid> = sqlx::query_scalar(
            "SELECT id FROM monitors WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
        )
        .bind(&monitor_ids)
        .fetch_all(&mut *self.0)
        .await
        .db()?
        .into_iter()
        .collect();
        // Each result once, by its key as stored (the region as its series names it): the
        // first of a batch that gives one twice.
        let mut by_key: HashMap<(Uuid, String, DateTime<Utc>), &CheckResult> = HashMap::new();
        for r in results.iter().filter(|r| live.contains(&r.monitor_id)) {
            let region = text(series_region(&r.region)).into_owned();
            by_key
                .entry((r.monitor_id, region, ms(r.checked_at)))
                .or_insert(r);
        }
        if by_key.is_empty() {
            return Ok(HashSet::new());
        }
        // The series of the batch that are new, in key order (the order of their locks).
        let pairs: BTreeSet<(Uuid, &str)> = by_key
            .keys()
            .map(|(m, region, _)| (*m, region.as_str()))
            .collect();
        let (pair_monitors, pair_regions): (Vec<Uuid>, Vec<&str>) = pairs.into_iter().unzip();
        sqlx::query(
            "INSERT INTO series (monitor_id, region) \
             SELECT p.monitor_id, p.region \
             FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY AS p (monitor_id, region, n) \
             WHERE NOT EXISTS ( \
                 SELECT 1 FROM series s WHERE s.monitor_id = p.monitor_id AND s.region = p.region \
             ) \
             ORDER BY p.n \
             ON CONFLICT DO NOTHING",
        )
        .bind(&pair_monitors)
        .bind(&pair_regions)
        .execute(&mut *self.0)
        .await
        .db()?;

        let count = by_key.len();
        let mut monitor_ids = Vec::with_capacity(count);
        let mut regions = Vec::with_capacity(count);
        let mut checked_at = Vec::with_capacity(count);
        let mut response_times = Vec::with_capacity(count);
        let mut status_codes = Vec::with_capacity(count);
        let mut ups = Vec::with_capacity(count);
        let mut error_kinds = Vec::with_capacity(count);
        let mut error_messages = Vec::with_capacity(count);
        let mut maintenance = Vec::with_capacity(count);
        for ((monitor_id, region, at), r) in &by_key {
            // An inconclusive result is stored as not up, its kind `local_network`.
            let (kind, message) = error_columns(r);
            monitor_ids.push(*monitor_id);
            regions.push(region.as_str());
            checked_at.push(*at);
            response_times.push(response_time_column(r.response_time_ms));
            status_codes.push(status_code_column(r.status_code));
            ups.push(r.status == CheckStatus::Up);
            error_kinds.push(kind);
            error_messages.push(message.map(text));
            maintenance.push(r.maintenance);
        }
        // One statement for the whole batch, its columns sent as arrays and written in key
        // order. A result stored before conflicts on the key and is skipped; the keys of
        // those stored now come back.
        let inserted: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "WITH stored AS ( \
                 INSERT INTO results \
                 (checked_at, series, response_time_ms, status_code, up, maintenance, \
                  error_kind, error_message) \
                 SELECT r.checked_at, s.seq, r.response_time_ms, r.status_code, r.up, \
                        r.maintenance, r.error_kind, r.error_message \
                 FROM UNNEST( \
                     $1::uuid[], $2::text[], $3::timestamptz[], $4::integer[], $5::smallint[], \
                     $6::boolean[], $7::text[], $8::text[], $9::boolean[] \
                 ) AS r (monitor_id, region, checked_at, response_time_ms, status_code, up, \
                         error_kind, error_message, maintenance) \
                 JOIN series s ON s.monitor_id = r.monitor_id AND s.region = r.region \
                 ORDER BY s.seq, r.checked_at \
                 ON CONFLICT DO NOTHING \
                 RETURNING series, checked_at \
             ) \
             SELECT s.monitor_id, s.region, stored.checked_at \
             FROM stored JOIN series s ON s.seq = stored.series",
        )
        .bind(&monitor_ids)
        .bind(&regions)
        .bind(&checked_at)
        .bind(&response_times)
        .bind(&status_codes)
        .bind(&ups)
        .bind(&error_kinds)
        .bind(&error_messages)
        .bind(&maintenance)
        .fetch_all(&mut *self.0)
        .await
        .db()?;
        Ok(inserted
            .into_iter()
            .filter_map(|key| by_key.get(&key).map(|r| r.id))
            .collect())
    }

    async fn add_to_rollups(&mut self, deltas: RollupDeltas) -> StoreResult<()> {
        add_to_rollups(self.0, deltas).await
    }

    async fn monitors(&mut self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Monitor>> {
        // Locked against deletion only: an update of a monitor's settings may go on.
        let specs: Vec<String> = sqlx::query_scalar(
            "SELECT spec::text FROM monitors WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
        )
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await
        .db()?;
        let mut monitors = HashMap::with_capacity(specs.len());
        for spec in specs {
            let monitor: Monitor = from_json(&spec, "monitor")?;
            monitors.insert(monitor.id, monitor);
        }
        Ok(monitors)
    }

    async fn lock_states(
        &mut self,
        monitors: &[&Monitor],
    ) -> StoreResult<HashMap<Uuid, MonitorState>> {
        let ids: Vec<Uuid> = monitors.iter().map(|m| m.id).collect();
        // The state rows stay locked until the commit, so that processes applying results of
        // these monitors at once take turns, each reading what the previous one wrote: a
        // transition is seen, and alerted, once.
        let mut states = locked_states(self.0, &ids).await?;
        let missing: Vec<&Monitor> = monitors
            .iter()
            .copied()
            .filter(|m| !states.contains_key(&m.id))
            .collect();
        if !missing.is_empty() {
            // The rows are created with their monitors; should some be missing, they are
            // created here first, so that concurrent callers still have one row to take turns on.
            let initial = missing
                .iter()
                .map(|m| to_json(&m.initial_state()))
                .collect::<StoreResult<Vec<_>>>()?;
            let missing: Vec<Uuid> = missing.iter().map(|m| m.id).collect();
            sqlx::query(
                "INSERT INTO monitor_state (monitor_id, state) \
                 SELECT id, state::jsonb FROM UNNEST($1::uuid[], $2::text[]) AS s (id, state) \
                 ORDER BY id ON CONFLICT (monitor_id) DO NOTHING",
            )
            .bind(&missing)
            .bind(&initial)
            .execute(&mut *self.0)
            .await
            .db()?;
            states.extend(locked_states(self.0, &missing).await?);
        }
        Ok(states)
    }

    async fn save_states(&mut self, states: &[&MonitorState]) -> StoreResult<()> {
        let ids: Vec<Uuid> = states.iter().map(|s| s.monitor_id).collect();
        let encoded = states
            .iter()
            .map(|s| to_json(*s))
            .collect::<StoreResult<Vec<_>>>()?;
        sqlx::query(
            "INSERT INTO monitor_state (monitor_id, state) \
             SELECT id, state::jsonb FROM UNNEST($1::uuid[], $2::text[]) AS s (id, state) \
             ON CONFLICT (monitor_id) DO UPDATE SET state = excluded.state",
        )
        .bind(&ids)
        .bind(&encoded)
        .execute(&mut *self.0)
        .await
        .db()?;
        Ok(())
    }

    async fn insert_alert(&mut self, alert: &Alert) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO alerts (id, monitor_id, kind, payload, created_at) \
             VALUES ($1, $2, $3, $4::jsonb, $5)",
        )
        .bind(alert.id)
        .bind(alert.monitor_id)
        .bind(alert.kind.as_str())
        .bind(to_json(alert)?)
        .bind(now_ms())
        .execute(&mut *self.0)
        .await
        .db()?;
        Ok(())
    }

    async fn open_incident(&mut self, incident: &Incident, alert_id: Uuid) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO incidents (id, monitor_id, started_at, error_kind, error_message, \
             status_code, down_alert_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(incident.id)
        .bind(incident.monitor_id)
        .bind(ms(incident.started_at))
        .bind(incident.first_error.as_ref().map(|e| e.kind.as_str()))
        .bind(incident.first_error.as_ref().map(|e| text(&e.message)))
        .bind(status_code_column(incident.status_code))
        .bind(alert_id)
        .execute(&mut *self.0)
        .await
        .db()?;
        Ok(())
    }

    async fn close_incident(
        &mut self,
        monitor_id: Uuid,
        at: DateTime<Utc>,
        alert_id: Uuid,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE incidents SET ended_at = $1, recovery_alert_id = $2 \
             WHERE monitor_id = $3 AND ended_at IS NULL",
        )
        .bind(ms(at))
        .bind(alert_id)
        .bind(monitor_id)
        .execute(&mut *self.0)
        .await
        .db()?;
        Ok(())
    }

    async fn queue_deliveries(&mut self, monitor: &Monitor, alert: &Alert) -> StoreResult<()> {
        // The channels are share-locked, so that one being disabled or deleted meanwhile
        // either waits for this commit (and then fails or deletes the delivery too) or has
        // committed first (and is then skipped, its row read again).
        let now = now_ms();
        let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled \
             ORDER BY created_at, id FOR SHARE"
        ))
        .fetch_all(&mut *self.0)
        .await
        .db()?;
        let channels = rows
            .into_iter()
            .map(webhook_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let targets: Vec<Uuid> = route(&monitor.notifier_ids, monitor.group.as_deref(), &channels)
            .into_iter()
            .map(|c| c.id)
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO alert_deliveries \
             (alert_id, webhook_id, state, attempts, next_attempt_at, created_at) \
             SELECT $1, t.id, 'pending', 0, $3, $3 FROM unnest($2::uuid[]) WITH ORDINALITY AS t(id, n) \
             ORDER BY t.n",
        )
        .bind(alert.id)
        .bind(&targets)
        .bind(now)
        .execute(&mut *self.0)
        .await
        .db()?;
        Ok(())
    }
}

/// The states of monitors `ids`, their rows locked (in id order) until the commit.
async fn locked_states(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> StoreResult<HashMap<Uuid, MonitorState>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT state::text FROM monitor_state WHERE monitor_id = ANY($1) \
         ORDER BY monitor_id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let mut states = HashMap::with_capacity(rows.len());
    for row in rows {
        let state: MonitorState = from_json(&row, "monitor state")?;
        states.insert(state.monitor_id, state);
    }
    Ok(states)
}

#[async_trait]
impl MonitorReader for PostgresStore {
    async fn get_monitor(&self, id: Uuid) -> StoreResult<Option<Monitor>> {
        let mut conn = self.pool.acquire().await.db()?;
        load_monitor(&mut conn, id).await
    }

    async fn list_monitors(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<Monitor>> {
        // Two statements rather than one with `$1 IS NULL OR id > $1`, so that each has a
        // plan that starts the scan of the key at the cursor.
        let specs: Vec<String> = match after {
            Some(after) => sqlx::query_scalar(
                "SELECT spec::text FROM monitors WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .db()?,
            None => sqlx::query_scalar("SELECT spec::text FROM monitors ORDER BY id LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .db()?,
        };
        specs.iter().map(|s| from_json(s, "monitor")).collect()
    }

    async fn all_monitors(&self) -> StoreResult<Vec<Monitor>> {
        let specs: Vec<String> = sqlx::query_scalar("SELECT spec::text FROM monitors ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .db()?;
        specs.iter().map(|s| from_json(s, "monitor")).collect()
    }

    async fn find_monitor_by_url(&self, url: &str) -> StoreResult<Option<Monitor>> {
        let spec: Option<String> = sqlx::query_scalar(
            "SELECT spec::text FROM monitors WHERE url = $1 ORDER BY id LIMIT 1",
        )
        .bind(text(url))
        .fetch_optional(&self.pool)
        .await
        .db()?;
        spec.map(|s| from_json(&s, "monitor")).transpose()
    }

    async fn monitors_version(&self) -> StoreResult<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(MONITORS_VERSION)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        version.ok_or_else(missing_version)
    }
}

#[async_trait]
impl MonitorStore for PostgresStore {
    async fn insert_monitors(&self, monitors: &[Monitor]) -> StoreResult<()> {
        let Some(last) = monitors.last() else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await.db()?;
        for monitor in monitors {
            let inserted = sqlx::query(
                "INSERT INTO monitors (id, url, spec, created_at, updated_at) \
                 VALUES ($1, $2, $3::jsonb, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(monitor.id)
            .bind(text(&monitor.url))
            .bind(to_json(monitor)?)
            .bind(ms(monitor.created_at))
            .bind(ms(monitor.updated_at))
            .execute(&mut *tx)
            .await
            .db()?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "a monitor with id {} already exists",
                    monitor.id
                )));
            }
            let state = monitor.initial_state();
            save_state(&mut tx, &state).await?;
        }
        bump_monitors_version(&mut tx, last.id).await?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn update_monitor(&self, monitor: &Monitor) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.db()?;
        // Locked so that two updates of one monitor take turns and each sees what the other
        // wrote; `NO KEY` lets results of the monitor be stored and applied meanwhile.
        let old: Option<String> =
            sqlx::query_scalar("SELECT spec::text FROM monitors WHERE id = $1 FOR NO KEY UPDATE")
                .bind(monitor.id)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
        let Some(old) = old else {
            return Ok(false);
        };
        let old: Monitor = from_json(&old, &format!("monitor {}", monitor.id))?;
        sqlx::query(
            "UPDATE monitors SET url = $1, spec = $2::jsonb, updated_at = $3 WHERE id = $4",
        )
        .bind(text(&monitor.url))
        .bind(to_json(monitor)?)
        .bind(ms(monitor.updated_at))
        .bind(monitor.id)
        .execute(&mut *tx)
        .await
        .db()?;
        if old.enabled != monitor.enabled {
            let mut state = lock_state(&mut tx, monitor.id)
                .await?
                .unwrap_or_else(|| monitor.initial_state());
            state.set_enabled(monitor.enabled, Utc::now());
            save_state(&mut tx, &state).await?;
        }
        bump_monitors_version(&mut tx, monitor.id).await?;
        tx.commit().await.db()?;
        Ok(true)
    }

    async fn delete_monitor(&self, id: Uuid) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.db()?;
        // The monitor's row is locked first and stays locked until the commit, so that
        // results of it being stored are waited for, and those stored later are dropped. Its
        // results go through its series, before the foreign keys delete the series and the
        // state with the monitor; its rollups and incidents, which have no foreign key, are
        // deleted explicitly.
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM monitors WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
        if found.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM results WHERE series IN (SELECT seq FROM series WHERE monitor_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .db()?;
        sqlx::query("DELETE FROM monitors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        for table in ["rollups", "incidents"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE monitor_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        bump_monitors_version(&mut tx, id).await?;
        tx.commit().await.db()?;
        Ok(true)
    }
}

#[async_trait]
impl HistoryReader for PostgresStore {
    async fn history(
        &self,
        monitor_id: Uuid,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryEntry>> {
        // The monitor's series (one per region that checked it), then for each one a range
        // of the results' key read backwards, at most a page each; the pages are merged here
        // in (checked_at, id) order, since a result's id is computed from its key.
        let mut series =
            QueryBuilder::<Postgres>::new("SELECT seq, region FROM series WHERE monitor_id = ");
        series.push_bind(monitor_id);
        if let Some(region) = query.region.as_deref() {
            series
                .push(" AND region = ")
                .push_bind(text(series_region(region)).into_owned());
        }
        let series: Vec<(i32, String)> =
            series.build_query_as().fetch_all(&self.pool).await.db()?;
        if series.is_empty() || query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = QueryBuilder::<Postgres>::new("");
        for (i, (seq, region)) in series.iter().enumerate() {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            sql.push(
                "(SELECT series, checked_at, response_time_ms, status_code, up, error_kind, \
                      error_message, maintenance FROM results WHERE series = ",
            )
            .push_bind(*seq);
            if let Some(since) = query.since {
                sql.push(" AND checked_at >= ").push_bind(ms(since));
            }
            if let Some(until) = query.until {
                sql.push(" AND checked_at < ").push_bind(ms(until));
            }
            if let Some(after) = query.after {
                // Strictly older than the cursor in (checked_at, id) order: at the cursor's
                // time, this series' result comes after it when its id is smaller.
                let at = ms(after.checked_at);
                let id = CheckResult::key_id(monitor_id, &stored_series_region(region), at);
                sql.push(if id < after.id {
                    " AND checked_at <= "
                } else {
                    " AND checked_at < "
                })
                .push_bind(at);
            }
            sql.push(" ORDER BY checked_at DESC LIMIT ")
                .push_bind(i64::from(query.limit))
                .push(")");
        }
        let regions: HashMap<i32, String> = series
            .into_iter()
            .map(|(seq, region)| (seq, stored_series_region(&region)))
            .collect();
        type Row = (
            i32,
            DateTime<Utc>,
            i32,
            Option<i16>,
            bool,
            Option<String>,
            Option<String>,
            bool,
        );
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&self.pool).await.db()?;
        let mut entries = rows
            .into_iter()
            .map(
                |(
                    seq,
                    checked_at,
                    response_time_ms,
                    status_code,
                    up,
                    kind,
                    message,
                    maintenance,
                )| {
                    let region = regions
                        .get(&seq)
                        .cloned()
                        .unwrap_or_else(|| stored_region(None));
                    let id = CheckResult::key_id(monitor_id, &region, checked_at);
                    let status_code = status_code
                        .map(|c| {
                            u16::try_from(c).map_err(|_| {
                                StoreError::Corrupt(format!(
                                    "result {id}: status code {c} is out of range"
                                ))
                            })
                        })
                        .transpose()?;
                    let error = stored_error(kind, message);
                    Ok(HistoryEntry {
                        region,
                        id,
                        checked_at,
                        status: stored_status(up, error.as_ref()),
                        response_time_ms: u32_column(response_time_ms, "result response time")?,
                        status_code,
                        error,
                        maintenance,
                    })
                },
            )
            .collect::<StoreResult<Vec<_>>>()?;
        entries.sort_unstable_by_key(|e| std::cmp::Reverse((e.checked_at, e.id)));
        entries.truncate(query.limit as usize);
        Ok(entries)
    }

    async fn rollups(
        &self,
        monitor_ids: &[Uuid],
        runs: &[RollupRun],
    ) -> StoreResult<Vec<StoredRollup>> {
        let mut out = Vec::new();
        if monitor_ids.is_empty() {
            return Ok(out);
        }
        for run in runs {
            type Row = (
                Uuid,
                DateTime<Utc>,
                i32,
                i32,
                i64,
                Option<i32>,
                Option<i32>,
                Vec<u8>,
            );
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT monitor_id, bucket_start, up, down, rt_sum, rt_min, rt_max, sketch \
                 FROM rollups \
                 WHERE monitor_id = ANY($1) AND resolution = $2 \
                   AND bucket_start >= $3 AND bucket_start < $4",
            )
            .bind(monitor_ids)
            .bind(run.resolution.duration().num_seconds() as i32)
            .bind(run.from)
            .bind(run.to)
            .fetch_all(&self.pool)
            .await
            .db()?;
            for (monitor_id, start, up, down, sum, min, max, sketch) in rows {
                out.push(StoredRollup {
                    monitor_id,
                    resolution: run.resolution,
                    start,
                    rollup: rollup_from_columns(up, down, sum, min, max, &sketch)?,
                });
            }
        }
        Ok(out)
    }

    async fn incidents(&self, query: &IncidentQuery) -> StoreResult<Vec<Incident>> {
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT i.id, i.monitor_id, i.started_at, i.ended_at, i.error_kind, i.error_message, \
             i.status_code, (SELECT count(*) FROM alert_deliveries d \
               WHERE d.alert_id IN (i.down_alert_id, i.recovery_alert_id) AND d.state = 'sent') \
             + (SELECT count(*) FROM alerts r JOIN alert_deliveries d ON d.alert_id = r.id \
               WHERE r.incident_id = i.id AND d.state = 'sent') \
             FROM incidents i WHERE true",
        );
        if let Some(monitor_id) = query.monitor_id {
            sql.push(" AND i.monitor_id = ").push_bind(monitor_id);
        }
        if query.open_only {
            sql.push(" AND i.ended_at IS NULL");
        }
        if let Some(before) = query.before {
            sql.push(" AND i.id < ").push_bind(before);
        }
        sql.push(" ORDER BY i.id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        type Row = (
            Uuid,
            Uuid,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<String>,
            Option<i16>,
            i64,
        );
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&self.pool).await.db()?;
        Ok(rows
            .into_iter()
            .map(
                |(id, monitor_id, started_at, ended_at, kind, message, status_code, sent)| {
                    Incident {
                        id,
                        monitor_id,
                        started_at,
                        ended_at,
                        first_error: stored_error(kind, message),
                        status_code: status_code.and_then(|c| u16::try_from(c).ok()),
                        alerts_sent: u32::try_from(sent).unwrap_or(u32::MAX),
                    }
                },
            )
            .collect())
    }
}

#[async_trait]
impl ResultLog for PostgresStore {
    async fn insert_results(&self, results: &[CheckResult]) -> StoreResult<u64> {
        if results.is_empty() {
            return Ok(0);
        }
        self.make_days(results.iter().map(|r| r.checked_at)).await?;
        let mut tx = self.pool.begin().await.db()?;
        let stored = script::insert_results(&mut Script(&mut tx), results).await?;
        tx.commit().await.db()?;
        Ok(stored)
    }

    async fn prune_days(
        &self,
        raw_cutoff: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        // Today's and tomorrow's partitions are made ahead, so that the first results of a
        // day wait for no catalog change.
        self.make_days([now, now + Resolution::Day.duration()])
            .await?;
        let Some(cutoff) = raw_cutoff else {
            return Ok(0);
        };
        let partitions: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'results'::regclass ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        let mut dropped = 0;
        for name in partitions {
            // Only the days this store made: a partition named otherwise is the operator's.
            let Some(day) = partition_day(&name) else {
                continue;
            };
            if day + Resolution::Day.duration() > cutoff {
                continue;
            }
            let mut tx = self.pool.begin().await.db()?;
            lock_days(&mut tx).await?;
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}"))
                .fetch_one(&mut *tx)
                .await
                .db()?;
            sqlx::query(&format!("DROP TABLE {name}"))
                .execute(&mut *tx)
                .await
                .db()?;
            tx.commit().await.db()?;
            self.days.lock().expect("days lock").remove(&day);
            tracing::info!(partition = %name, results = rows, "day of results dropped");
            dropped += rows as u64;
        }
        Ok(dropped)
    }

    async fn prune(&self, monitor_ids: &[Uuid], cutoffs: &Cutoffs) -> StoreResult<Pruned> {
        let mut pruned = Pruned::default();
        if monitor_ids.is_empty() {
            return Ok(pruned);
        }
        let mut tx = self.pool.begin().await.db()?;
        if let Some(before) = cutoffs.raw {
            // Per series of the monitors, a range of the key: its oldest results, in the
            // partitions not dropped whole yet.
            let done = sqlx::query(
                "DELETE FROM results \
                 WHERE series IN (SELECT seq FROM series WHERE monitor_id = ANY($1)) \
                 AND checked_at < $2",
            )
            .bind(monitor_ids)
            .bind(before)
            .execute(&mut *tx)
            .await
            .db()?;
            pruned.raw += done.rows_affected();
        }
        for (resolution, before) in cutoffs.rollups {
            let Some(before) = before else { continue };
            let done = sqlx::query(
                "DELETE FROM rollups \
                 WHERE monitor_id = ANY($1) AND resolution = $2 AND bucket_start < $3",
            )
            .bind(monitor_ids)
            .bind(resolution.duration().num_seconds() as i32)
            // A bucket goes once it has ended before the cutoff.
            .bind(before - resolution.duration())
            .execute(&mut *tx)
            .await
            .db()?;
            pruned.rollups += done.rows_affected();
        }
        tx.commit().await.db()?;
        Ok(pruned)
    }
}

#[async_trait]
impl StateReader for PostgresStore {
    async fn get_state(&self, monitor_id: Uuid) -> StoreResult<Option<MonitorState>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state::text FROM monitor_state WHERE monitor_id = $1")
                .bind(monitor_id)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        state
            .map(|s| from_json(&s, &format!("state of monitor {monitor_id}")))
            .transpose()
    }

    async fn list_states(&self) -> StoreResult<Vec<MonitorState>> {
        let states: Vec<String> =
            sqlx::query_scalar("SELECT state::text FROM monitor_state ORDER BY monitor_id")
                .fetch_all(&self.pool)
                .await
                .db()?;
        states
            .iter()
            .map(|s| from_json(s, "monitor state"))
            .collect()
    }
}

#[async_trait]
impl StateStore for PostgresStore {
    /// One transaction for the whole batch (see [`script::apply_results`]).
    async fn apply_results(&self, results: &[CheckResult]) -> StoreResult<Vec<Alert>> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.db()?;
        let alerts = script::apply_results(&mut Script(&mut tx), results).await?;
        tx.commit().await.db()?;
        Ok(alerts)
    }
}

#[async_trait]
impl MaintenanceStore for PostgresStore {
    async fn list_maintenances(&self) -> StoreResult<Vec<Maintenance>> {
        let specs: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, spec::text FROM maintenances ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .db()?;
        specs
            .into_iter()
            .map(|(id, spec)| from_json(&spec, &format!("maintenance {id}")))
            .collect()
    }

    async fn get_maintenance(&self, id: Uuid) -> StoreResult<Option<Maintenance>> {
        let spec: Option<String> =
            sqlx::query_scalar("SELECT spec::text FROM maintenances WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        spec.map(|s| from_json(&s, &format!("maintenance {id}")))
            .transpose()
    }

    async fn insert_maintenance(&self, maintenance: &Maintenance) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.db()?;
        let inserted = sqlx::query(
            "INSERT INTO maintenances (id, spec, created_at, updated_at) \
             VALUES ($1, $2::jsonb, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(maintenance.id)
        .bind(to_json(maintenance)?)
        .bind(ms(maintenance.created_at))
        .bind(ms(maintenance.updated_at))
        .execute(&mut *tx)
        .await
        .db()?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "a maintenance window with id {} already exists",
                maintenance.id
            )));
        }
        bump_monitors_version(&mut tx, maintenance.id).await?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn update_maintenance(&self, maintenance: &Maintenance) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.db()?;
        let updated =
            sqlx::query("UPDATE maintenances SET spec = $1::jsonb, updated_at = $2 WHERE id = $3")
                .bind(to_json(maintenance)?)
                .bind(ms(maintenance.updated_at))
                .bind(maintenance.id)
                .execute(&mut *tx)
                .await
                .db()?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        bump_monitors_version(&mut tx, maintenance.id).await?;
        tx.commit().await.db()?;
        Ok(true)
    }

    async fn delete_maintenance(&self, id: Uuid) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.db()?;
        let deleted = sqlx::query("DELETE FROM maintenances WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        bump_monitors_version(&mut tx, id).await?;
        tx.commit().await.db()?;
        Ok(true)
    }
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn upsert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webhooks (id, name, url, enabled, disabled_reason, source, created_at, \
             kind, settings, options) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb) \
             ON CONFLICT (id) DO UPDATE SET \
             name = excluded.name, url = excluded.url, source = excluded.source, \
             kind = excluded.kind, settings = excluded.settings, options = excluded.options",
        )
        .bind(webhook.id)
        .bind(text(&webhook.name))
        .bind(text(&webhook.url))
        .bind(webhook.enabled)
        .bind(webhook.disabled_reason.as_deref().map(text))
        .bind(webhook.source.as_str())
        .bind(ms(webhook.created_at))
        .bind(text(&webhook.kind))
        .bind(to_json(&webhook.settings)?)
        .bind(to_json(&webhook.options)?)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn get_webhook(&self, id: Uuid) -> StoreResult<Option<Webhook>> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.map(webhook_from_row).transpose()
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.into_iter().map(webhook_from_row).collect()
    }

    async fn delete_webhook(&self, id: Uuid) -> StoreResult<bool> {
        // One statement: the foreign key's cascade deletes the webhook's deliveries, whatever
        // their state, with it (they would refer to nothing).
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn enable_webhook(&self, id: Uuid) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE webhooks SET enabled = true, disabled_reason = NULL WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await
                .db()?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl Outbox for PostgresStore {
    async fn disable_webhook(&self, id: Uuid, reason: &str) -> StoreResult<()> {
        let reason = text(reason);
        let mut tx = self.pool.begin().await.db()?;
        sqlx::query("UPDATE webhooks SET enabled = false, disabled_reason = $1 WHERE id = $2")
            .bind(&reason)
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'failed', last_error = $1 \
             WHERE webhook_id = $2 AND state = 'pending'",
        )
        .bind(format!("webhook disabled: {reason}"))
        .bind(id)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn webhooks_with_pending(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT w.id FROM webhooks w WHERE w.enabled AND EXISTS \
             (SELECT 1 FROM alert_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending') \
             ORDER BY w.created_at, w.id",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        Ok(ids)
    }

    async fn next_delivery(&self, webhook_id: Uuid) -> StoreResult<Option<Delivery>> {
        Ok(self.pending_deliveries_of(webhook_id, 1).await?.pop())
    }

    async fn pending_deliveries_of(
        &self,
        webhook_id: Uuid,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "{DELIVERY_SELECT} WHERE d.webhook_id = $1 AND d.state = 'pending' \
             ORDER BY d.id LIMIT $2"
        ))
        .bind(webhook_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    async fn recent_deliveries(
        &self,
        webhook_id: Uuid,
        kind: AlertKind,
        since: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
             WHERE d.webhook_id = $1 AND d.created_at >= $2 AND a.kind = $3",
        )
        .bind(webhook_id)
        .bind(ms(since))
        .bind(kind.as_str())
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn deliveries_sent(&self, delivery_ids: &[i64]) -> StoreResult<()> {
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'sent', attempts = attempts + 1, sent_at = $1 \
             WHERE id = ANY($2)",
        )
        .bind(now_ms())
        .bind(delivery_ids)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn deliveries_failed(&self, delivery_ids: &[i64], error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'failed', attempts = attempts + 1, \
             last_error = $1 WHERE state = 'pending' AND id = ANY($2)",
        )
        .bind(text(error))
        .bind(delivery_ids)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn queue_reminder(
        &self,
        incident_id: Uuid,
        alert: &Alert,
        webhook_id: Uuid,
    ) -> StoreResult<bool> {
        let now = now_ms();
        // One statement: the alert is inserted only when new and its channel is enabled
        // (share-locked against a concurrent disable), and its delivery with it.
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "WITH channel AS (SELECT id FROM webhooks WHERE id = $7 AND enabled FOR SHARE), \
             new_alert AS ( \
                 INSERT INTO alerts (id, monitor_id, kind, payload, created_at, incident_id) \
                 SELECT $1, $2, $3, $4::jsonb, $5, $6 FROM channel \
                 ON CONFLICT (id) DO NOTHING RETURNING id \
             ) \
             INSERT INTO alert_deliveries \
             (alert_id, webhook_id, state, attempts, next_attempt_at, created_at) \
             SELECT id, $7, 'pending', 0, $5, $5 FROM new_alert RETURNING alert_id",
        )
        .bind(alert.id)
        .bind(alert.monitor_id)
        .bind(alert.kind.as_str())
        .bind(to_json(alert)?)
        .bind(now)
        .bind(incident_id)
        .bind(webhook_id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        Ok(inserted.is_some())
    }

    async fn delivery_sent(&self, delivery_id: i64) -> StoreResult<()> {
        // Whatever its state: a delivery that was failed meanwhile (its webhook disabled) did
        // reach the endpoint, and the outbox should say so.
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'sent', attempts = attempts + 1, sent_at = $1 \
             WHERE id = $2",
        )
        .bind(now_ms())
        .bind(delivery_id)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn delivery_retry(
        &self,
        delivery_id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        // Only a pending delivery is retried; one failed meanwhile stays failed.
        sqlx::query(
            "UPDATE alert_deliveries \
             SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 \
             WHERE id = $3 AND state = 'pending'",
        )
        .bind(ms(next_attempt_at))
        .bind(text(error))
        .bind(delivery_id)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn delivery_failed(&self, delivery_id: i64, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'failed', attempts = attempts + 1, last_error = $1 \
             WHERE id = $2 AND state = 'pending'",
        )
        .bind(text(error))
        .bind(delivery_id)
        .execute(&self.pool)
        .await.db()?;
        Ok(())
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        // Counted webhook by webhook (the lateral subquery runs once per webhook), so that
        // each count is a range of the (webhook_id, state, id) index and the sent and failed
        // deliveries, which pile up, are never scanned. Every delivery has its webhook: the
        // foreign key sees to it.
        let count: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(p.n), 0)::bigint FROM webhooks w CROSS JOIN LATERAL \
             (SELECT COUNT(*) AS n FROM alert_deliveries d \
              WHERE d.webhook_id = w.id AND d.state = 'pending') p",
        )
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.db()?;
        Ok(())
    }
}

/// How often a leader checks that its session, and so its lock, is still there.
const LEADER_POLL: Duration = Duration::from_secs(1);

/// How long a leader waits for the server to answer a check before it gives leadership up.
const LEADER_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Leadership among the processes of one role: a PostgreSQL session advisory lock, held on a
/// connection of its own for as long as the process leads.
///
/// At most one session holds the lock of a key at a time. When the leader process dies or
/// loses its connection, the server ends its session and releases the lock, and a standby's
/// next [`LeaderLock::try_acquire`] succeeds. The leader's connection asks the server to
/// probe it with TCP keepalives every few seconds, so that a leader whose host vanished
/// without closing the connection loses the lock within about half a minute rather than
/// the system default of hours.
///
/// Keys are chosen by the caller, one constant per role; they share their space with every
/// other advisory lock in the database (sqlx's migrations take one derived from the
/// database's name).
///
/// Dropping the lock closes its connection, which releases it too; [`LeaderLock::release`]
/// does so without waiting for the server to notice.
#[derive(Debug)]
pub struct LeaderLock {
    conn: PgConnection,
    key: i64,
    /// Set once leadership is known to be lost, so that [`LeaderLock::lost`] then resolves
    /// at once.
    lost: bool,
}

impl LeaderLock {
    /// Tries, without waiting, to take the lock `key` on the database at `url`.
    ///
    /// Returns `None` when another session holds it, and fails with
    /// [`StoreError::Database`] when the database cannot be reached.
    pub async fn try_acquire(url: &str, key: i64) -> StoreResult<Option<LeaderLock>> {
        let options = connect_options(url)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| open_error(&options, e))?;
        // Server-side keepalives: a dead peer is noticed after 10 s of silence and three
        // unanswered probes 5 s apart. Ignored on Unix sockets, where death is seen at once.
        sqlx::query(
            "SELECT set_config('tcp_keepalives_idle', '10', false), \
                    set_config('tcp_keepalives_interval', '5', false), \
                    set_config('tcp_keepalives_count', '3', false)",
        )
        .execute(&mut conn)
        .await
        .db()?;
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await
            .db()?;
        if !acquired {
            let _ = conn.close().await;
            return Ok(None);
        }
        tracing::info!(key, database = %describe(&options), "leadership acquired");
        Ok(Some(LeaderLock {
            conn,
            key,
            lost: false,
        }))
    }

    /// Resolves when leadership is lost: when the lock's connection fails, or the server
    /// does not answer a check within five seconds. Checks once a second; until leadership
    /// is lost it never resolves.
    ///
    /// Meant for `tokio::select!` against the leader's work: it can be cancelled at any point
    /// and called again. Once it has resolved it resolves at once; the caller should stop
    /// acting as leader, and drop or release the lock.
    pub async fn lost(&mut self) {
        while !self.lost {
            tokio::time::sleep(LEADER_POLL).await;
            let check = sqlx::query("SELECT 1").execute(&mut self.conn);
            match tokio::time::timeout(LEADER_PING_TIMEOUT, check).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(key = self.key, error = %e, "leadership lost: the lock's connection failed");
                    self.lost = true;
                }
                Err(_) => {
                    tracing::warn!(
                        key = self.key,
                        timeout_seconds = LEADER_PING_TIMEOUT.as_secs(),
                        "leadership lost: the database did not answer in time"
                    );
                    self.lost = true;
                }
            }
        }
    }

    /// Gives leadership up: unlocks and closes the connection, so that a standby can take
    /// over at once. Failures are logged only; the lock goes with the session anyway.
    pub async fn release(self) {
        let LeaderLock {
            mut conn,
            key,
            lost,
        } = self;
        if lost {
            // The session may be gone or unresponsive: dropping the connection closes its
            // socket without waiting for the server.
            drop(conn);
        } else {
            let polite = async move {
                sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .fetch_one(&mut conn)
                    .await?;
                conn.close().await
            };
            match tokio::time::timeout(LEADER_PING_TIMEOUT, polite).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(key, error = %e, "could not unlock and close politely");
                }
                Err(_) => tracing::debug!(key, "the database did not answer the unlock in time"),
            }
        }
        tracing::info!(key, "leadership released");
    }
}
