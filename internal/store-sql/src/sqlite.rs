//! The embedded implementation of [`Store`]: SQLite through sqlx, with the library bundled.
//!
//! The schema lives in `migrations/sqlite/` at the root of the repository and is compiled into
//! the binary; [`SqliteStore::connect`] applies whatever part of it a database lacks.
//!
//! Conventions: UUIDs are stored as their 16 big-endian bytes (so that byte order, which is how
//! SQLite compares BLOBs, is id order), times as `i64` milliseconds since the Unix epoch, and
//! whole domain values (a monitor, a state, an alert) as JSON text. Every method that writes
//! runs in one transaction started with `BEGIN IMMEDIATE`, which takes SQLite's write lock at
//! once: a transaction that read first and asked for the lock later could fail with "database
//! is locked" when another writer committed in between, whatever the busy timeout.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;
use upwatch_store::prelude::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use upwatch_core::webhook::route;
use upwatch_core::{
    Alert, AlertKind, CheckResult, CheckStatus, Monitor, MonitorState, Webhook, WebhookSource,
};
use uuid::Uuid;

use upwatch_core::maintenance::Maintenance;
use upwatch_core::rollup::{Cutoffs, Resolution, Rollup, RollupRun};

use crate::script::{self, RollupDeltas, ScriptSql};
use crate::{
    error_columns, region_column, rollup_from_columns, stored_error, stored_region, stored_status,
    Db,
};
use upwatch_store::{
    Delivery, HistoryEntry, HistoryQuery, Incident, IncidentQuery, Pruned, Store, StoreError,
    StoreResult, StoredRollup,
};

/// The schema, embedded at build time from `migrations/sqlite/`.
static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of a pool on a file: readers run in parallel (WAL), writers take turns.
const FILE_POOL_SIZE: u32 = 4;

/// The `meta` key of the monitors' version counter.
const MONITORS_VERSION: &str = "monitors_version";

/// A [`Store`] in one SQLite database file (or in memory, for tests and trials).
///
/// Cloning is cheap: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it when missing) the database at `url` and brings its schema up to date.
    ///
    /// Accepted forms: `sqlite://PATH`, `sqlite:PATH` (a relative or absolute path; query
    /// parameters such as `?mode=ro` are honoured) and `sqlite::memory:`. The database uses
    /// write-ahead logging with `synchronous=NORMAL` (a power loss may lose the last
    /// transactions but never corrupts the file), waits up to five seconds for a lock, and
    /// enforces foreign keys. An in-memory database lives as long as the returned store and
    /// its clones, on a single connection (each connection would otherwise see its own empty
    /// database).
    ///
    /// Fails with [`StoreError::Database`] when the URL is malformed or the file cannot be
    /// opened or created (the message names the URL), and with [`StoreError::Schema`] when
    /// the migrations cannot be applied, for example because a newer upwatch migrated the
    /// database further than this build knows.
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| open_error(url, e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // 64 MiB of page cache per connection (the default is 2 MiB): the states and
            // rollups of 100,000 monitors are read and written at random.
            .pragma("cache_size", "-65536")
            // Checkpoint every 4,000 pages of log (16 MiB) instead of 1,000: the rollup pages
            // rewritten by every batch are copied into the database once per checkpoint.
            .pragma("wal_autocheckpoint", "4000");
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            // The database disappears with its last connection: keep exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new()
                .max_connections(FILE_POOL_SIZE)
                .after_release(|conn, _| Box::pin(async move { Ok(still_usable(conn).await) }))
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|e| open_error(url, e))?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Schema(format!(
                "could not bring the database at `{url}` up to date: {e}"
            ))
        })?;
        tracing::debug!(url, in_memory, "sqlite store ready");
        Ok(SqliteStore { pool })
    }

    /// Closes every connection after the statements in flight, checkpointing the write-ahead
    /// log. Calls made afterwards fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that holds the database's write lock from its first statement.
    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.db()
    }
}

/// Whether a connection given back to the pool can serve another caller; one that cannot is
/// closed (the pool opens a new one when needed).
///
/// SQLite itself rolls back the transaction in which a write failed with `SQLITE_FULL` (a full
/// disk) or an I/O error. sqlx does not know: its rollback when the transaction is dropped then
/// fails ("no transaction is active") and leaves the connection counting one transaction
/// open, so every later `BEGIN IMMEDIATE` on it fails ("attempted to call begin_with at
/// non-zero transaction depth") long after the disk has room again. The ping is queued behind
/// that rollback, so once it answers the count is final.
async fn still_usable(conn: &mut SqliteConnection) -> bool {
    use sqlx::Connection as _;
    if conn.ping().await.is_err() {
        return false;
    }
    if conn.is_in_transaction() {
        // The failed write itself is reported (and retried) by its caller.
        tracing::debug!(
            "closing a database connection whose failed transaction SQLite had already ended \
             (a full disk or an I/O error)"
        );
        return false;
    }
    true
}

/// A failure to open the database, naming it, with the cause as its source.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the sqlite database `{url}`")]
struct OpenError {
    url: String,
    #[source]
    source: sqlx::Error,
}

/// Wraps a failure to open the database at `url` so that its message says which one.
fn open_error(url: &str, e: sqlx::Error) -> StoreError {
    // An `io::Error` shows the wrapped error's message and passes its source on, so the chain
    // reads "cannot open the sqlite database `URL`: CAUSE" without saying anything twice.
    let open = OpenError {
        url: url.to_string(),
        source: e,
    };
    StoreError::Database(Box::new(sqlx::Error::Io(std::io::Error::other(open))))
}

/// The current time in the store's unit, milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64, what: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: {ms} is not a valid time")))
}

fn uuid(bytes: &[u8], what: &str) -> StoreResult<Uuid> {
    Uuid::from_slice(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what}: an id of {} bytes, not 16", bytes.len())))
}

fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    // The domain types serialize infallibly (no maps with non-string keys, no custom
    // serializers that fail); an error here would be a bug, reported rather than hidden.
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot serialize a value to store: {e}")))
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn u32_column(value: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{what}: {value} is out of range")))
}

/// A row of `webhooks`, in column order of [`WEBHOOK_COLUMNS`].
type WebhookRow = (
    Vec<u8>,
    String,
    String,
    bool,
    Option<String>,
    String,
    i64,
    String,
    String,
    String,
);

const WEBHOOK_COLUMNS: &str =
    "id, name, url, enabled, disabled_reason, source, created_at, kind, settings, options";

fn webhook_from_row(row: WebhookRow) -> StoreResult<Webhook> {
    let (id, name, url, enabled, disabled_reason, source, created_at, kind, settings, options) =
        row;
    let id = uuid(&id, "webhook id")?;
    let source = WebhookSource::parse(&source)
        .ok_or_else(|| StoreError::Corrupt(format!("webhook {id}: unknown source `{source}`")))?;
    Ok(Webhook {
        id,
        name,
        url,
        enabled,
        disabled_reason,
        source,
        created_at: time(created_at, "webhook creation time")?,
        kind,
        settings: from_json(&settings, &format!("settings of channel {id}"))?,
        options: from_json(&options, &format!("options of channel {id}"))?,
    }
    .normalized())
}

/// The columns of a delivery and its alert, then [`W_COLUMNS`], from `alert_deliveries d`
/// joined with `alerts a` and `webhooks w`.
const DELIVERY_SELECT: &str = "SELECT d.id, d.attempts, d.next_attempt_at, a.payload, \
     w.id, w.name, w.url, w.enabled, w.disabled_reason, w.source, w.created_at, w.kind, \
     w.settings, w.options \
     FROM alert_deliveries d \
     JOIN alerts a ON a.id = d.alert_id \
     JOIN webhooks w ON w.id = d.webhook_id";

/// A row of [`DELIVERY_SELECT`].
type DeliveryRow = (
    i64,
    i64,
    i64,
    String,
    Vec<u8>,
    String,
    String,
    bool,
    Option<String>,
    String,
    i64,
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
        next_attempt_at: time(next_attempt_at, "delivery next attempt time")?,
    })
}

async fn load_monitor(conn: &mut SqliteConnection, id: Uuid) -> StoreResult<Option<Monitor>> {
    let spec: Option<String> = sqlx::query_scalar("SELECT spec FROM monitors WHERE id = ?")
        .bind(id.as_bytes().as_slice())
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    spec.map(|s| from_json(&s, &format!("monitor {id}")))
        .transpose()
}

async fn load_state(conn: &mut SqliteConnection, id: Uuid) -> StoreResult<Option<MonitorState>> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM monitor_state WHERE monitor_id = ?")
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&mut *conn)
            .await
            .db()?;
    state
        .map(|s| from_json(&s, &format!("state of monitor {id}")))
        .transpose()
}

async fn save_state(conn: &mut SqliteConnection, state: &MonitorState) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO monitor_state (monitor_id, state) VALUES (?, ?) \
         ON CONFLICT (monitor_id) DO UPDATE SET state = excluded.state",
    )
    .bind(state.monitor_id.as_bytes().as_slice())
    .bind(to_json(state)?)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

async fn bump_monitors_version(conn: &mut SqliteConnection) -> StoreResult<()> {
    let updated = sqlx::query("UPDATE meta SET value = value + 1 WHERE key = ?")
        .bind(MONITORS_VERSION)
        .execute(&mut *conn)
        .await
        .db()?;
    if updated.rows_affected() == 1 {
        Ok(())
    } else {
        Err(missing_version())
    }
}

fn missing_version() -> StoreError {
    StoreError::Schema(format!("the meta table lacks the `{MONITORS_VERSION}` row"))
}

/// Pushes `(?, ?, ...)` binding the ids, for `... IN` followed by it.
fn push_ids(sql: &mut QueryBuilder<'_, Sqlite>, ids: &[Uuid]) {
    sql.push("(");
    let mut list = sql.separated(", ");
    for id in ids {
        list.push_bind(id.as_bytes().to_vec());
    }
    sql.push(")");
}

/// Adds each delta to its stored rollup, creating the missing ones: the existing rows are
/// read and written back merged a chunk at a time. The caller holds the write lock, so
/// reading and writing back cannot interleave with another writer.
async fn add_to_rollups(
    conn: &mut SqliteConnection,
    deltas: BTreeMap<(Uuid, Resolution, DateTime<Utc>), Rollup>,
) -> StoreResult<()> {
    let mut totals: Vec<((Uuid, i64, i64), Rollup)> = deltas
        .into_iter()
        .map(|((id, resolution, start), rollup)| {
            (
                (id, resolution.duration().num_seconds(), start.timestamp()),
                rollup,
            )
        })
        .collect();
    for chunk in totals.chunks_mut(100) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT monitor_id, resolution, start, up, down, rt_sum, rt_min, rt_max, sketch \
             FROM rollups WHERE (monitor_id, resolution, start) IN (",
        );
        sql.push_values(chunk.iter(), |mut row, ((id, resolution, start), _)| {
            row.push_bind(id.as_bytes().to_vec())
                .push_bind(*resolution)
                .push_bind(*start);
        });
        sql.push(")");
        type Row = (
            Vec<u8>,
            i64,
            i64,
            i64,
            i64,
            i64,
            Option<i64>,
            Option<i64>,
            Vec<u8>,
        );
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&mut *conn).await.db()?;
        let mut stored: HashMap<(Uuid, i64, i64), Rollup> = HashMap::with_capacity(rows.len());
        for (id, resolution, start, up, down, sum, min, max, sketch) in rows {
            stored.insert(
                (uuid(&id, "rollup monitor id")?, resolution, start),
                rollup_from_columns(up, down, sum, min, max, &sketch)?,
            );
        }
        for (key, total) in chunk.iter_mut() {
            if let Some(before) = stored.get(key) {
                total.merge(before);
            }
        }
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO rollups \
             (monitor_id, resolution, start, up, down, rt_sum, rt_min, rt_max, sketch) ",
        );
        sql.push_values(chunk.iter(), |mut row, ((id, resolution, start), total)| {
            row.push_bind(id.as_bytes().to_vec())
                .push_bind(*resolution)
                .push_bind(*start)
                .push_bind(i64::from(total.up))
                .push_bind(i64::from(total.down))
                .push_bind(i64::try_from(total.response_time_sum_ms).unwrap_or(i64::MAX))
                .push_bind(total.response_time_min_ms.map(i64::from))
                .push_bind(total.response_time_max_ms.map(i64::from))
                .push_bind(total.sketch.to_bytes());
        });
        sql.build().execute(&mut *conn).await.db()?;
    }
    Ok(())
}

/// The SQLite statements of the transaction scripts, in a transaction that holds the write
/// lock from its start (`BEGIN IMMEDIATE`): SQLite has no row locks, and needs none then.
struct Script<'c>(&'c mut SqliteConnection);

#[async_trait]
impl ScriptSql for Script<'_> {
    async fn insert_new_results(&mut self, results: &[CheckResult]) -> StoreResult<HashSet<Uuid>> {
        // Multi-row statements: a round trip to SQLite's thread costs more than a row.
        let mut inserted: HashSet<Uuid> = HashSet::with_capacity(results.len());
        for chunk in results.chunks(100) {
            // `OR IGNORE` skips a result stored before (or twice in the batch); RETURNING
            // names those stored.
            let mut sql = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO results \
                 (monitor_id, checked_at, id, response_time_ms, status_code, up, error_kind, error_message, \
                  maintenance, region) \
                 SELECT * FROM (",
            );
            sql.push_values(chunk, |mut row, r| {
                // An inconclusive result is stored as not up, its kind `local_network`.
                let (kind, message) = error_columns(r);
                row.push_bind(r.monitor_id.as_bytes().to_vec())
                    .push_bind(ms(r.checked_at))
                    .push_bind(r.id.as_bytes().to_vec())
                    .push_bind(i64::from(r.response_time_ms))
                    .push_bind(r.status_code.map(i64::from))
                    .push_bind(r.status == CheckStatus::Up)
                    .push_bind(kind.map(str::to_string))
                    .push_bind(message.map(str::to_string))
                    .push_bind(r.maintenance)
                    .push_bind(region_column(&r.region).map(str::to_string));
            });
            sql.push(") AS v WHERE v.column1 IN (SELECT id FROM monitors) RETURNING id");
            let ids: Vec<Vec<u8>> = sql
                .build_query_scalar()
                .fetch_all(&mut *self.0)
                .await
                .db()?;
            for id in ids {
                inserted.insert(uuid(&id, "result id")?);
            }
        }
        Ok(inserted)
    }

    async fn add_to_rollups(&mut self, deltas: RollupDeltas) -> StoreResult<()> {
        add_to_rollups(self.0, deltas).await
    }

    async fn monitors(&mut self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Monitor>> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT spec FROM monitors WHERE id IN ");
        push_ids(&mut sql, ids);
        let specs: Vec<String> = sql
            .build_query_scalar()
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
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT state FROM monitor_state WHERE monitor_id IN ");
        push_ids(&mut sql, &ids);
        let rows: Vec<String> = sql
            .build_query_scalar()
            .fetch_all(&mut *self.0)
            .await
            .db()?;
        let mut states = HashMap::with_capacity(rows.len());
        for row in rows {
            let state: MonitorState = from_json(&row, "monitor state")?;
            states.insert(state.monitor_id, state);
        }
        Ok(states)
    }

    async fn save_states(&mut self, states: &[&MonitorState]) -> StoreResult<()> {
        let mut sql = QueryBuilder::<Sqlite>::new("INSERT INTO monitor_state (monitor_id, state) ");
        let mut encoded = Vec::with_capacity(states.len());
        for state in states {
            encoded.push((state.monitor_id, to_json(state)?));
        }
        sql.push_values(encoded, |mut row, (id, json)| {
            row.push_bind(id.as_bytes().to_vec()).push_bind(json);
        });
        sql.push(" ON CONFLICT (monitor_id) DO UPDATE SET state = excluded.state");
        sql.build().execute(&mut *self.0).await.db()?;
        Ok(())
    }

    async fn insert_alert(&mut self, alert: &Alert) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO alerts (id, monitor_id, kind, payload, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(alert.id.as_bytes().as_slice())
        .bind(alert.monitor_id.as_bytes().as_slice())
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
             status_code, down_alert_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(incident.id.as_bytes().as_slice())
        .bind(incident.monitor_id.as_bytes().as_slice())
        .bind(ms(incident.started_at))
        .bind(incident.first_error.as_ref().map(|e| e.kind.as_str()))
        .bind(incident.first_error.as_ref().map(|e| e.message.as_str()))
        .bind(incident.status_code.map(i64::from))
        .bind(alert_id.as_bytes().as_slice())
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
            "UPDATE incidents SET ended_at = ?, recovery_alert_id = ? \
             WHERE monitor_id = ? AND ended_at IS NULL",
        )
        .bind(ms(at))
        .bind(alert_id.as_bytes().as_slice())
        .bind(monitor_id.as_bytes().as_slice())
        .execute(&mut *self.0)
        .await
        .db()?;
        Ok(())
    }

    async fn queue_deliveries(&mut self, monitor: &Monitor, alert: &Alert) -> StoreResult<()> {
        let now = now_ms();
        let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled = 1 ORDER BY created_at, id"
        ))
        .fetch_all(&mut *self.0)
        .await
        .db()?;
        let channels = rows
            .into_iter()
            .map(webhook_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        for channel in route(&monitor.notifier_ids, monitor.group.as_deref(), &channels) {
            sqlx::query(
                "INSERT INTO alert_deliveries \
                 (alert_id, webhook_id, state, attempts, next_attempt_at, created_at) \
                 VALUES (?, ?, 'pending', 0, ?, ?)",
            )
            .bind(alert.id.as_bytes().as_slice())
            .bind(channel.id.as_bytes().as_slice())
            .bind(now)
            .bind(now)
            .execute(&mut *self.0)
            .await
            .db()?;
        }
        Ok(())
    }
}

#[async_trait]
impl MonitorReader for SqliteStore {
    async fn get_monitor(&self, id: Uuid) -> StoreResult<Option<Monitor>> {
        let mut conn = self.pool.acquire().await.db()?;
        load_monitor(&mut conn, id).await
    }

    async fn list_monitors(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<Monitor>> {
        let after = after.map_or_else(Vec::new, |id| id.as_bytes().to_vec());
        // An empty BLOB sorts before every 16-byte id, so "no cursor" needs no second query.
        let specs: Vec<String> =
            sqlx::query_scalar("SELECT spec FROM monitors WHERE id > ? ORDER BY id LIMIT ?")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .db()?;
        specs.iter().map(|s| from_json(s, "monitor")).collect()
    }

    async fn all_monitors(&self) -> StoreResult<Vec<Monitor>> {
        let specs: Vec<String> = sqlx::query_scalar("SELECT spec FROM monitors ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .db()?;
        specs.iter().map(|s| from_json(s, "monitor")).collect()
    }

    async fn find_monitor_by_url(&self, url: &str) -> StoreResult<Option<Monitor>> {
        let spec: Option<String> =
            sqlx::query_scalar("SELECT spec FROM monitors WHERE url = ? ORDER BY id LIMIT 1")
                .bind(url)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        spec.map(|s| from_json(&s, "monitor")).transpose()
    }

    async fn monitors_version(&self) -> StoreResult<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(MONITORS_VERSION)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        version.ok_or_else(missing_version)
    }
}

#[async_trait]
impl MonitorStore for SqliteStore {
    async fn insert_monitors(&self, monitors: &[Monitor]) -> StoreResult<()> {
        if monitors.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for monitor in monitors {
            let inserted = sqlx::query(
                "INSERT INTO monitors (id, url, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(monitor.id.as_bytes().as_slice())
            .bind(&monitor.url)
            .bind(to_json(monitor)?)
            .bind(ms(monitor.created_at))
            .bind(ms(monitor.updated_at))
            .execute(&mut *tx)
            .await.db()?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "a monitor with id {} already exists",
                    monitor.id
                )));
            }
            let state = monitor.initial_state();
            save_state(&mut tx, &state).await?;
        }
        bump_monitors_version(&mut tx).await?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn update_monitor(&self, monitor: &Monitor) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let Some(old) = load_monitor(&mut tx, monitor.id).await? else {
            return Ok(false);
        };
        sqlx::query("UPDATE monitors SET url = ?, spec = ?, updated_at = ? WHERE id = ?")
            .bind(&monitor.url)
            .bind(to_json(monitor)?)
            .bind(ms(monitor.updated_at))
            .bind(monitor.id.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .db()?;
        if old.enabled != monitor.enabled {
            let mut state = load_state(&mut tx, monitor.id)
                .await?
                .unwrap_or_else(|| monitor.initial_state());
            state.set_enabled(monitor.enabled, Utc::now());
            save_state(&mut tx, &state).await?;
        }
        bump_monitors_version(&mut tx).await?;
        tx.commit().await.db()?;
        Ok(true)
    }

    async fn delete_monitor(&self, id: Uuid) -> StoreResult<bool> {
        let key = id.as_bytes().as_slice();
        let mut tx = self.write_tx().await?;
        let deleted = sqlx::query("DELETE FROM monitors WHERE id = ?")
            .bind(key)
            .execute(&mut *tx)
            .await
            .db()?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        for table in ["results", "rollups", "incidents"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE monitor_id = ?"))
                .bind(key)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        // The foreign key cascades too; deleting explicitly does not depend on it being on.
        sqlx::query("DELETE FROM monitor_state WHERE monitor_id = ?")
            .bind(key)
            .execute(&mut *tx)
            .await
            .db()?;
        bump_monitors_version(&mut tx).await?;
        tx.commit().await.db()?;
        Ok(true)
    }
}

#[async_trait]
impl HistoryReader for SqliteStore {
    async fn history(
        &self,
        monitor_id: Uuid,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryEntry>> {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT checked_at, id, response_time_ms, status_code, up, error_kind, error_message, \
             maintenance, region FROM results WHERE monitor_id = ",
        );
        sql.push_bind(monitor_id.as_bytes().to_vec());
        // A filter on the rows of the key's range: the default region is stored as NULL.
        match query.region.as_deref().map(region_column) {
            None => {}
            Some(None) => {
                sql.push(" AND region IS NULL");
            }
            Some(Some(region)) => {
                sql.push(" AND region = ").push_bind(region.to_string());
            }
        }
        if let Some(since) = query.since {
            sql.push(" AND checked_at >= ").push_bind(ms(since));
        }
        if let Some(until) = query.until {
            sql.push(" AND checked_at < ").push_bind(ms(until));
        }
        if let Some(after) = query.after {
            // Row-value comparison: strictly older than the cursor in (checked_at, id) order,
            // which SQLite answers as a range of the clustered key.
            sql.push(" AND (checked_at, id) < (")
                .push_bind(ms(after.checked_at))
                .push(", ")
                .push_bind(after.id.as_bytes().to_vec())
                .push(")");
        }
        sql.push(" ORDER BY checked_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        type Row = (
            i64,
            Vec<u8>,
            i64,
            Option<i64>,
            bool,
            Option<String>,
            Option<String>,
            bool,
            Option<String>,
        );
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&self.pool).await.db()?;
        rows.into_iter()
            .map(
                |(
                    checked_at,
                    id,
                    response_time_ms,
                    status_code,
                    up,
                    kind,
                    message,
                    maintenance,
                    region,
                )| {
                    let id = uuid(&id, "result id")?;
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
                        region: stored_region(region),
                        id,
                        checked_at: time(checked_at, "result check time")?,
                        status: stored_status(up, error.as_ref()),
                        response_time_ms: u32_column(response_time_ms, "result response time")?,
                        status_code,
                        error,
                        maintenance,
                    })
                },
            )
            .collect()
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
        let mut conn = self.pool.acquire().await.db()?;
        // One range scan per monitor, in one statement per run (and chunk of monitors).
        for run in runs {
            for chunk in monitor_ids.chunks(500) {
                let mut sql = QueryBuilder::<Sqlite>::new(
                    "SELECT monitor_id, start, up, down, rt_sum, rt_min, rt_max, sketch \
                     FROM rollups WHERE resolution = ",
                );
                sql.push_bind(run.resolution.duration().num_seconds())
                    .push(" AND start >= ")
                    .push_bind(run.from.timestamp())
                    .push(" AND start < ")
                    .push_bind(run.to.timestamp())
                    .push(" AND monitor_id IN ");
                push_ids(&mut sql, chunk);
                type Row = (
                    Vec<u8>,
                    i64,
                    i64,
                    i64,
                    i64,
                    Option<i64>,
                    Option<i64>,
                    Vec<u8>,
                );
                let rows: Vec<Row> = sql.build_query_as().fetch_all(&mut *conn).await.db()?;
                for (monitor_id, start, up, down, sum, min, max, sketch) in rows {
                    out.push(StoredRollup {
                        monitor_id: uuid(&monitor_id, "rollup monitor id")?,
                        resolution: run.resolution,
                        start: time(start.saturating_mul(1000), "rollup start")?,
                        rollup: rollup_from_columns(up, down, sum, min, max, &sketch)?,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn incidents(&self, query: &IncidentQuery) -> StoreResult<Vec<Incident>> {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT i.id, i.monitor_id, i.started_at, i.ended_at, i.error_kind, i.error_message, \
             i.status_code, (SELECT count(*) FROM alert_deliveries d \
               WHERE d.alert_id IN (i.down_alert_id, i.recovery_alert_id) AND d.state = 'sent') \
             + (SELECT count(*) FROM alerts r JOIN alert_deliveries d ON d.alert_id = r.id \
               WHERE r.incident_id = i.id AND d.state = 'sent') \
             FROM incidents i WHERE 1 = 1",
        );
        if let Some(monitor_id) = query.monitor_id {
            sql.push(" AND i.monitor_id = ")
                .push_bind(monitor_id.as_bytes().to_vec());
        }
        if query.open_only {
            sql.push(" AND i.ended_at IS NULL");
        }
        if let Some(before) = query.before {
            sql.push(" AND i.id < ")
                .push_bind(before.as_bytes().to_vec());
        }
        sql.push(" ORDER BY i.id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        type Row = (
            Vec<u8>,
            Vec<u8>,
            i64,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<i64>,
            i64,
        );
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&self.pool).await.db()?;
        rows.into_iter()
            .map(
                |(id, monitor_id, started_at, ended_at, kind, message, status_code, sent)| {
                    Ok(Incident {
                        id: uuid(&id, "incident id")?,
                        monitor_id: uuid(&monitor_id, "incident monitor id")?,
                        started_at: time(started_at, "incident start")?,
                        ended_at: ended_at.map(|t| time(t, "incident end")).transpose()?,
                        first_error: stored_error(kind, message),
                        status_code: status_code.and_then(|c| u16::try_from(c).ok()),
                        alerts_sent: u32::try_from(sent).unwrap_or(u32::MAX),
                    })
                },
            )
            .collect()
    }
}

#[async_trait]
impl ResultLog for SqliteStore {
    async fn insert_results(&self, results: &[CheckResult]) -> StoreResult<u64> {
        if results.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let stored = script::insert_results(&mut Script(&mut tx), results).await?;
        tx.commit().await.db()?;
        Ok(stored)
    }

    async fn prune(&self, monitor_ids: &[Uuid], cutoffs: &Cutoffs) -> StoreResult<Pruned> {
        let mut pruned = Pruned::default();
        if monitor_ids.is_empty() {
            return Ok(pruned);
        }
        let mut tx = self.write_tx().await?;
        for id in monitor_ids {
            let key = id.as_bytes().as_slice();
            if let Some(before) = cutoffs.raw {
                // A range of the clustered key: the monitor's oldest results.
                let done =
                    sqlx::query("DELETE FROM results WHERE monitor_id = ? AND checked_at < ?")
                        .bind(key)
                        .bind(ms(before))
                        .execute(&mut *tx)
                        .await
                        .db()?;
                pruned.raw += done.rows_affected();
            }
            for (resolution, before) in cutoffs.rollups {
                let Some(before) = before else { continue };
                let done = sqlx::query(
                    "DELETE FROM rollups WHERE monitor_id = ? AND resolution = ? AND start < ?",
                )
                .bind(key)
                .bind(resolution.duration().num_seconds())
                // A bucket goes once it has ended before the cutoff.
                .bind((before - resolution.duration()).timestamp())
                .execute(&mut *tx)
                .await
                .db()?;
                pruned.rollups += done.rows_affected();
            }
        }
        tx.commit().await.db()?;
        Ok(pruned)
    }
}

#[async_trait]
impl StateReader for SqliteStore {
    async fn get_state(&self, monitor_id: Uuid) -> StoreResult<Option<MonitorState>> {
        let mut conn = self.pool.acquire().await.db()?;
        load_state(&mut conn, monitor_id).await
    }

    async fn list_states(&self) -> StoreResult<Vec<MonitorState>> {
        let states: Vec<String> =
            sqlx::query_scalar("SELECT state FROM monitor_state ORDER BY monitor_id")
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
impl StateStore for SqliteStore {
    async fn apply_results(&self, results: &[CheckResult]) -> StoreResult<Vec<Alert>> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        // The write lock is held from the first read, so that two consumers applying results
        // of the same monitor at once cannot both read the old state (and both alert).
        let mut tx = self.write_tx().await?;
        let alerts = script::apply_results(&mut Script(&mut tx), results).await?;
        tx.commit().await.db()?;
        Ok(alerts)
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn list_maintenances(&self) -> StoreResult<Vec<Maintenance>> {
        let specs: Vec<(Vec<u8>, String)> =
            sqlx::query_as("SELECT id, spec FROM maintenances ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .db()?;
        specs
            .into_iter()
            .map(|(id, spec)| {
                from_json(
                    &spec,
                    &format!("maintenance {}", uuid(&id, "maintenance id")?),
                )
            })
            .collect()
    }

    async fn get_maintenance(&self, id: Uuid) -> StoreResult<Option<Maintenance>> {
        let spec: Option<String> = sqlx::query_scalar("SELECT spec FROM maintenances WHERE id = ?")
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .db()?;
        spec.map(|s| from_json(&s, &format!("maintenance {id}")))
            .transpose()
    }

    async fn insert_maintenance(&self, maintenance: &Maintenance) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO maintenances (id, spec, created_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(maintenance.id.as_bytes().as_slice())
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
        bump_monitors_version(&mut tx).await?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn update_maintenance(&self, maintenance: &Maintenance) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query("UPDATE maintenances SET spec = ?, updated_at = ? WHERE id = ?")
            .bind(to_json(maintenance)?)
            .bind(ms(maintenance.updated_at))
            .bind(maintenance.id.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .db()?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        bump_monitors_version(&mut tx).await?;
        tx.commit().await.db()?;
        Ok(true)
    }

    async fn delete_maintenance(&self, id: Uuid) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let deleted = sqlx::query("DELETE FROM maintenances WHERE id = ?")
            .bind(id.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .db()?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        bump_monitors_version(&mut tx).await?;
        tx.commit().await.db()?;
        Ok(true)
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn upsert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webhooks (id, name, url, enabled, disabled_reason, source, created_at, \
             kind, settings, options) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET \
             name = excluded.name, url = excluded.url, source = excluded.source, \
             kind = excluded.kind, settings = excluded.settings, options = excluded.options",
        )
        .bind(webhook.id.as_bytes().as_slice())
        .bind(&webhook.name)
        .bind(&webhook.url)
        .bind(webhook.enabled)
        .bind(webhook.disabled_reason.as_deref())
        .bind(webhook.source.as_str())
        .bind(ms(webhook.created_at))
        .bind(&webhook.kind)
        .bind(to_json(&webhook.settings)?)
        .bind(to_json(&webhook.options)?)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn get_webhook(&self, id: Uuid) -> StoreResult<Option<Webhook>> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?"
        ))
        .bind(id.as_bytes().as_slice())
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
        let key = id.as_bytes().as_slice();
        let mut tx = self.write_tx().await?;
        // Its deliveries go first, whatever their state: they would refer to nothing.
        sqlx::query("DELETE FROM alert_deliveries WHERE webhook_id = ?")
            .bind(key)
            .execute(&mut *tx)
            .await
            .db()?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(key)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn enable_webhook(&self, id: Uuid) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE webhooks SET enabled = 1, disabled_reason = NULL WHERE id = ?")
                .bind(id.as_bytes().as_slice())
                .execute(&self.pool)
                .await
                .db()?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn disable_webhook(&self, id: Uuid, reason: &str) -> StoreResult<()> {
        let key = id.as_bytes().as_slice();
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE webhooks SET enabled = 0, disabled_reason = ? WHERE id = ?")
            .bind(reason)
            .bind(key)
            .execute(&mut *tx)
            .await
            .db()?;
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'failed', last_error = ? \
             WHERE webhook_id = ? AND state = 'pending'",
        )
        .bind(format!("webhook disabled: {reason}"))
        .bind(key)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn webhooks_with_pending(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT w.id FROM webhooks w WHERE w.enabled = 1 AND EXISTS \
             (SELECT 1 FROM alert_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending') \
             ORDER BY w.created_at, w.id",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        ids.iter().map(|id| uuid(id, "webhook id")).collect()
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
            "{DELIVERY_SELECT} WHERE d.webhook_id = ? AND d.state = 'pending' \
             ORDER BY d.id LIMIT ?"
        ))
        .bind(webhook_id.as_bytes().as_slice())
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
             WHERE d.webhook_id = ? AND d.created_at >= ? AND a.kind = ?",
        )
        .bind(webhook_id.as_bytes().as_slice())
        .bind(ms(since))
        .bind(kind.as_str())
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn deliveries_sent(&self, delivery_ids: &[i64]) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        for chunk in delivery_ids.chunks(500) {
            let mut sql = QueryBuilder::<Sqlite>::new(
                "UPDATE alert_deliveries SET state = 'sent', attempts = attempts + 1, sent_at = ",
            );
            sql.push_bind(now).push(" WHERE id IN (");
            let mut list = sql.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            sql.push(")");
            sql.build().execute(&mut *tx).await.db()?;
        }
        tx.commit().await.db()?;
        Ok(())
    }

    async fn deliveries_failed(&self, delivery_ids: &[i64], error: &str) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for chunk in delivery_ids.chunks(500) {
            let mut sql = QueryBuilder::<Sqlite>::new(
                "UPDATE alert_deliveries SET state = 'failed', attempts = attempts + 1, \
                 last_error = ",
            );
            sql.push_bind(error)
                .push(" WHERE state = 'pending' AND id IN (");
            let mut list = sql.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            sql.push(")");
            sql.build().execute(&mut *tx).await.db()?;
        }
        tx.commit().await.db()?;
        Ok(())
    }

    async fn queue_reminder(
        &self,
        incident_id: Uuid,
        alert: &Alert,
        webhook_id: Uuid,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO alerts (id, monitor_id, kind, payload, created_at, incident_id) \
             SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS \
             (SELECT 1 FROM webhooks WHERE id = ? AND enabled = 1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(alert.id.as_bytes().as_slice())
        .bind(alert.monitor_id.as_bytes().as_slice())
        .bind(alert.kind.as_str())
        .bind(to_json(alert)?)
        .bind(now)
        .bind(incident_id.as_bytes().as_slice())
        .bind(webhook_id.as_bytes().as_slice())
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            > 0;
        if inserted {
            sqlx::query(
                "INSERT INTO alert_deliveries \
                 (alert_id, webhook_id, state, attempts, next_attempt_at, created_at) \
                 VALUES (?, ?, 'pending', 0, ?, ?)",
            )
            .bind(alert.id.as_bytes().as_slice())
            .bind(webhook_id.as_bytes().as_slice())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        tx.commit().await.db()?;
        Ok(inserted)
    }

    async fn delivery_sent(&self, delivery_id: i64) -> StoreResult<()> {
        // Whatever its state: a delivery that was failed meanwhile (its webhook disabled) did
        // reach the endpoint, and the outbox should say so.
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'sent', attempts = attempts + 1, sent_at = ? \
             WHERE id = ?",
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
            "UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? \
             WHERE id = ? AND state = 'pending'",
        )
        .bind(ms(next_attempt_at))
        .bind(error)
        .bind(delivery_id)
        .execute(&self.pool)
        .await.db()?;
        Ok(())
    }

    async fn delivery_failed(&self, delivery_id: i64, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'failed', attempts = attempts + 1, last_error = ? \
             WHERE id = ? AND state = 'pending'",
        )
        .bind(error)
        .bind(delivery_id)
        .execute(&self.pool)
        .await.db()?;
        Ok(())
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        // Counted webhook by webhook (CROSS JOIN fixes webhooks as the outer loop in SQLite),
        // so that each count is a range of the (webhook_id, state, id) index and the sent and
        // failed deliveries, which pile up, are never scanned. Every delivery has its webhook:
        // the foreign key and `delete_webhook` see to it.
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhooks w CROSS JOIN alert_deliveries d \
                 ON d.webhook_id = w.id AND d.state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.db()?;
        Ok(())
    }
}
