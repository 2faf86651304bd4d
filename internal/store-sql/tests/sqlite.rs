//! The store contract on SQLite, each test on a fresh database file in its own directory, and
//! what is particular to SQLite: URL forms, reopening a file, and failing to open one.

use std::error::Error as _;
use std::path::Path;
use upwatch_store::prelude::*;

use chrono::{DateTime, Utc};
use tempfile::TempDir;
use upwatch_core::check::SCHEMA_VERSION;
use upwatch_core::{
    CheckError, CheckResult, CheckStatus, ErrorKind, Monitor, MonitorInput, MonitorStatus, Webhook,
    WebhookSource,
};
use upwatch_store::{contract, HistoryQuery, Store, StoreError};
use upwatch_store_sql::SqliteStore;
use uuid::Uuid;

fn url_for(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A store on a new file in a new temporary directory, which lives as long as the returned
/// guard.
async fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::connect(&url_for(&dir.path().join("upwatch.db")))
        .await
        .expect("a new database opens");
    (store, dir)
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _dir) = fresh().await;
                contract::$name(&store).await;
            }
        )*
    };
}

upwatch_store::for_each_contract_test!(contract_tests);

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
}

fn down_result(m: &Monitor, at: i64) -> CheckResult {
    CheckResult {
        region: "default".to_string(),
        v: SCHEMA_VERSION,
        id: CheckResult::key_id(m.id, "default", t(at)),
        job_id: Uuid::now_v7(),
        monitor_id: m.id,
        monitor_name: m.name.clone(),
        url: m.url.clone(),
        due_at: t(at),
        checked_at: t(at),
        response_time_ms: 1500,
        status_code: None,
        status: CheckStatus::Down,
        error: Some(CheckError::new(ErrorKind::Timeout, "no answer within 1s")),
        rules: m.rules(),
        details: Default::default(),
        cert_expiry_alert_days: Vec::new(),
        maintenance: false,
    }
}

/// The whole chain of an error's messages, as a log line would show it.
fn chain(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Everything written before a restart is there after it, and the state machine carries on
/// where it stopped: a result applied before is not applied again.
#[tokio::test]
async fn reopening_keeps_data_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_for(&dir.path().join("upwatch.db"));
    let store = SqliteStore::connect(&url).await.unwrap();
    let hook = Webhook {
        id: Uuid::now_v7(),
        name: "ops".into(),
        url: "http://127.0.0.1:9/hooks/ops".into(),
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Config,
        created_at: t(0),
        kind: "discord".into(),
        settings: Default::default(),
        options: upwatch_core::ChannelOptions {
            default: true,
            ..Default::default()
        },
    }
    .normalized();
    store.upsert_webhook(&hook).await.unwrap();
    let m = Monitor::create(MonitorInput::for_url("http://127.0.0.1:1/"), t(0)).unwrap();
    store.insert_monitor(&m).await.unwrap();
    let down = down_result(&m, 10);
    assert_eq!(
        store
            .insert_results(std::slice::from_ref(&down))
            .await
            .unwrap(),
        1
    );
    let alert = store
        .apply_result(&down)
        .await
        .unwrap()
        .expect("a new monitor that is down alerts");
    let version = store.monitors_version().await.unwrap();
    let state = store.get_state(m.id).await.unwrap();
    store.close().await;
    drop(store);

    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(store.get_monitor(m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(
        store.get_webhook(hook.id).await.unwrap(),
        Some(hook.clone())
    );
    assert_eq!(store.monitors_version().await.unwrap(), version);
    assert_eq!(store.get_state(m.id).await.unwrap(), state);
    assert_eq!(state.unwrap().status, MonitorStatus::Down);
    let history = store
        .history(
            m.id,
            &HistoryQuery {
                limit: 10,
                ..HistoryQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, down.id);
    assert_eq!(history[0].error, down.error);
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(
        store.next_delivery(hook.id).await.unwrap().unwrap().alert,
        alert
    );

    assert_eq!(
        store.apply_result(&down).await.unwrap(),
        None,
        "applied before the restart"
    );
    assert_eq!(
        store.apply_result(&down_result(&m, 20)).await.unwrap(),
        None,
        "still down"
    );
    assert_eq!(
        store.insert_results(&[down]).await.unwrap(),
        0,
        "stored before the restart"
    );
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
}

/// `sqlite:PATH` and `sqlite://PATH` both create the file; `sqlite::memory:` keeps its data
/// for the life of the store.
#[tokio::test]
async fn url_forms_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for (i, prefix) in ["sqlite:", "sqlite://"].into_iter().enumerate() {
        let path = dir.path().join(format!("form-{i}.db"));
        let store = SqliteStore::connect(&format!("{prefix}{}", path.display()))
            .await
            .unwrap_or_else(|e| panic!("{prefix}: {}", chain(&e)));
        store.ping().await.unwrap();
        assert!(path.is_file(), "{prefix} creates {}", path.display());
        store.close().await;
    }

    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let m = Monitor::create(MonitorInput::for_url("http://127.0.0.1:2/"), t(0)).unwrap();
    store.insert_monitor(&m).await.unwrap();
    let clone = store.clone();
    assert_eq!(clone.get_monitor(m.id).await.unwrap(), Some(m.clone()));
    assert!(store
        .apply_result(&down_result(&m, 1))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        clone.get_state(m.id).await.unwrap().unwrap().status,
        MonitorStatus::Down
    );

    let other = SqliteStore::connect("sqlite::memory:").await.unwrap();
    assert_eq!(
        other.get_monitor(m.id).await.unwrap(),
        None,
        "each memory store is its own"
    );
}

/// A path that cannot be created is an error that names it, not a panic.
#[tokio::test]
async fn unwritable_paths_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    let under_a_file = file.join("upwatch.db");
    let missing_dir = dir.path().join("no-such-dir").join("upwatch.db");
    for path in [under_a_file, missing_dir] {
        let url = url_for(&path);
        let err = SqliteStore::connect(&url)
            .await
            .expect_err("the path cannot be created");
        let text = chain(&err);
        assert!(matches!(err, StoreError::Database(_)), "{text}");
        assert!(text.contains(&url), "the error names the database: {text}");
        assert!(text.contains("cannot open"), "{text}");
    }
}

/// A file that is not a SQLite database is refused with an error.
#[tokio::test]
async fn a_foreign_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are notes, not a database, ".repeat(200)).unwrap();
    let err = SqliteStore::connect(&url_for(&path))
        .await
        .expect_err("not a database");
    assert!(
        chain(&err).contains(&path.display().to_string()),
        "{}",
        chain(&err)
    );
}

/// A database migrated by a newer build (a migration this one does not know) is refused as a
/// schema error rather than used.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_for(&dir.path().join("upwatch.db"));
    let store = SqliteStore::connect(&url).await.unwrap();
    store.close().await;
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let err = SqliteStore::connect(&url)
        .await
        .expect_err("a newer schema");
    assert!(matches!(err, StoreError::Schema(_)), "{}", chain(&err));
}

/// A database made before certificate alerts existed keeps its alerts and their pending
/// deliveries (ids and order) through the migration that rebuilds `alerts`.
#[tokio::test]
async fn the_certificate_alerts_migration_keeps_alerts_and_deliveries() {
    use sqlx::migrate::Migrator;
    let dir = tempfile::tempdir().unwrap();
    let url = url_for(&dir.path().join("upwatch.db"));
    let all = Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/sqlite"
    )))
    .await
    .unwrap();
    let before = Migrator {
        migrations: all
            .migrations
            .iter()
            .filter(|m| m.version < 3)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..Migrator::DEFAULT
    };
    {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        use std::str::FromStr;
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        before.run(&pool).await.unwrap();
        pool.close().await;
    }
    // The old schema, filled through today's code would need today's schema: write the rows
    // the old code wrote, by hand.
    let monitor = upwatch_core::Monitor::create(
        upwatch_core::MonitorInput::for_url("http://127.0.0.1:9/"),
        chrono::Utc::now(),
    )
    .unwrap();
    let webhook_id = uuid::Uuid::now_v7();
    let alert_ids = [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()];
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO webhooks (id, name, url, enabled, source, created_at) VALUES (?, 'w', 'https://discord.test/api/webhooks/1/x', 1, 'api', 0)")
            .bind(webhook_id.as_bytes().as_slice())
            .execute(&mut conn)
            .await
            .unwrap();
        for (i, id) in alert_ids.iter().enumerate() {
            let result =
                upwatch_core::CheckResult::simulated(&monitor, chrono::Utc::now(), i == 1, 5);
            let transition = if i == 0 {
                upwatch_core::Transition::WentDown {
                    at: result.checked_at,
                }
            } else {
                upwatch_core::Transition::Recovered {
                    at: result.checked_at,
                    down_since: result.checked_at,
                }
            };
            let mut alert = upwatch_core::Alert::new(&transition, &result);
            alert.id = *id;
            sqlx::query("INSERT INTO alerts (id, monitor_id, kind, payload, created_at) VALUES (?, ?, ?, ?, 0)")
                .bind(id.as_bytes().as_slice())
                .bind(monitor.id.as_bytes().as_slice())
                .bind(alert.kind.as_str())
                .bind(serde_json::to_string(&alert).unwrap())
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO alert_deliveries (alert_id, webhook_id, state, next_attempt_at, created_at) VALUES (?, ?, 'pending', 0, 0)")
                .bind(id.as_bytes().as_slice())
                .bind(webhook_id.as_bytes().as_slice())
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    }
    let store = SqliteStore::connect(&url)
        .await
        .expect("the migration applies");
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);
    let first = store.next_delivery(webhook_id).await.unwrap().unwrap();
    assert_eq!(
        first.alert.id, alert_ids[0],
        "the oldest delivery first, as before"
    );
    store.delivery_sent(first.id).await.unwrap();
    let second = store.next_delivery(webhook_id).await.unwrap().unwrap();
    assert_eq!(second.alert.id, alert_ids[1]);
}

/// Results stored before regions existed read back as the default region's, and the store
/// writes the default region as NULL, so a one-region install stores no region text; an
/// inconclusive result is stored as not up, of kind `local_network`.
#[tokio::test]
async fn results_of_the_default_region_are_stored_without_one() {
    use sqlx::migrate::Migrator;
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = url_for(&dir.path().join("upwatch.db"));
    let all = Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/sqlite"
    )))
    .await
    .unwrap();
    let before = Migrator {
        migrations: all
            .migrations
            .iter()
            .filter(|m| m.version < 6)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..Migrator::DEFAULT
    };
    let m = Monitor::create(MonitorInput::for_url("http://127.0.0.1:9/"), t(0)).unwrap();
    let old = Uuid::now_v7();
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        before.run(&mut conn).await.unwrap();
        // The rows the code before regions wrote: a monitor and one result.
        sqlx::query(
            "INSERT INTO monitors (id, url, spec, created_at, updated_at) VALUES (?, ?, ?, 0, 0)",
        )
        .bind(m.id.as_bytes().as_slice())
        .bind(&m.url)
        .bind(serde_json::to_string(&m).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO results (monitor_id, checked_at, id, response_time_ms, status_code, up) \
             VALUES (?, ?, ?, 40, 200, 1)",
        )
        .bind(m.id.as_bytes().as_slice())
        .bind(t(10).timestamp_millis())
        .bind(old.as_bytes().as_slice())
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = SqliteStore::connect(&url)
        .await
        .expect("the migration applies");
    let query = |region: Option<&str>| HistoryQuery {
        region: region.map(str::to_string),
        limit: 10,
        ..HistoryQuery::default()
    };
    let history = store.history(m.id, &query(None)).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].id, history[0].region.as_str()),
        (old, "default")
    );

    let default = CheckResult::simulated(&m, t(20), true, 40);
    let mut elsewhere = CheckResult::simulated(&m, t(30), false, 40);
    elsewhere.region = "eu-west".to_string();
    let lost = CheckResult::simulated(&m, t(40), true, 40).into_inconclusive("offline");
    store
        .insert_results(&[default.clone(), elsewhere.clone(), lost.clone()])
        .await
        .unwrap();
    let ids = |entries: Vec<upwatch_store::HistoryEntry>| -> Vec<Uuid> {
        entries.into_iter().map(|e| e.id).collect()
    };
    assert_eq!(
        ids(store.history(m.id, &query(Some("default"))).await.unwrap()),
        vec![lost.id, default.id, old]
    );
    assert_eq!(
        ids(store.history(m.id, &query(Some("eu-west"))).await.unwrap()),
        vec![elsewhere.id]
    );
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    // id, region, up, error_kind
    type Row = (Vec<u8>, Option<String>, bool, Option<String>);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT id, region, up, error_kind FROM results ORDER BY checked_at")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let rows: Vec<(Uuid, Option<String>, bool, Option<String>)> = rows
        .into_iter()
        .map(|(id, region, up, kind)| (Uuid::from_slice(&id).unwrap(), region, up, kind))
        .collect();
    assert_eq!(
        rows,
        vec![
            (old, None, true, None),
            (default.id, None, true, None),
            (
                elsewhere.id,
                Some("eu-west".into()),
                false,
                Some("status_mismatch".into())
            ),
            (lost.id, None, false, Some("local_network".into())),
        ]
    );
    conn.close().await.unwrap();
}
