//! The store contract on PostgreSQL, each test on a database of its own, and what is
//! particular to PostgreSQL: migrating as a separate step, the batch path of storing results,
//! change notifications, and the leader lock.
//!
//! The server is found through `UPWATCH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), whose user must be allowed to create
//! databases. Each test creates `upwatch_test_<uuid>` and drops it when it ends, so tests run
//! in parallel without seeing each other.

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;
use upwatch_store::prelude::*;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};
use upwatch_core::check::SCHEMA_VERSION;
use upwatch_core::{
    CheckError, CheckResult, CheckStatus, ErrorKind, Monitor, MonitorInput, MonitorStatus, Webhook,
    WebhookSource,
};
use upwatch_store::{contract, HistoryCursor, HistoryQuery, Store, StoreError};
use upwatch_store_sql::postgres::MONITORS_CHANNEL;
use upwatch_store_sql::{LeaderLock, PostgresStore};
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the server's maintenance database, where test databases are created.
fn admin_url() -> String {
    std::env::var("UPWATCH_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

/// `url` with its database replaced by `database`, keeping any query parameters.
fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((base, params)) => (base, Some(params)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match params {
        Some(params) => format!("{server}/{database}?{params}"),
        None => format!("{server}/{database}"),
    }
}

/// A database of one test, dropped (with any connection still open to it) when the value is,
/// even when the test fails.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Creates a new, empty database.
    async fn create() -> TestDb {
        let name = format!("upwatch_test_{}", Uuid::new_v4().simple());
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test server at {admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        conn.close().await.ok();
        let url = with_database(&admin, &name);
        TestDb { name, url }
    }

    /// Creates a new database with the schema applied.
    async fn migrated() -> TestDb {
        let db = TestDb::create().await;
        PostgresStore::migrate(&db.url)
            .await
            .unwrap_or_else(|e| panic!("migrating {}: {}", db.name, chain(&e)));
        db
    }

    /// A store on this database.
    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {}", self.name, chain(&e)))
    }

    /// A plain connection to this database, to look at it or tamper with it.
    async fn conn(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        upwatch_testkit::postgres::drop_database_blocking(&admin_url(), &self.name);
    }
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let db = TestDb::migrated().await;
                let store = db.store().await;
                contract::$name(&store).await;
                store.close().await;
            }
        )*
    };
}

upwatch_store::for_each_contract_test!(contract_tests);

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
}

fn monitor(url: &str) -> Monitor {
    Monitor::create(MonitorInput::for_url(url), t(0)).unwrap()
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

fn up_result(m: &Monitor, at: i64) -> CheckResult {
    CheckResult {
        region: "default".to_string(),
        response_time_ms: 30,
        status_code: Some(200),
        status: CheckStatus::Up,
        error: None,
        ..down_result(m, at)
    }
}

fn hook(name: &str) -> Webhook {
    Webhook {
        id: Uuid::now_v7(),
        name: name.into(),
        url: format!("http://127.0.0.1:9/hooks/{name}"),
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
    .normalized()
}

fn query(limit: u32) -> HistoryQuery {
    HistoryQuery {
        limit,
        ..HistoryQuery::default()
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

/// Polls `attempt` every 50 ms until it gives a value, failing the test after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A database that was never migrated is refused with a schema error that says what to do,
/// and so is one that lacks a migration of this build.
#[tokio::test]
async fn connect_refuses_an_unmigrated_database() {
    let db = TestDb::create().await;
    let err = PostgresStore::connect(&db.url)
        .await
        .expect_err("an empty database");
    let text = chain(&err);
    assert!(matches!(err, StoreError::Schema(_)), "{text}");
    assert!(text.contains("run `upwatch migrate`"), "{text}");
    let mut conn = db.conn().await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "connecting does not migrate");

    PostgresStore::migrate(&db.url).await.unwrap();
    db.store().await.close().await;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = PostgresStore::connect(&db.url)
        .await
        .expect_err("a missing migration");
    let text = chain(&err);
    assert!(matches!(err, StoreError::Schema(_)), "{text}");
    assert!(text.contains("migration 1"), "names the migration: {text}");
    assert!(text.contains("run `upwatch migrate`"), "{text}");
}

/// Migrating an up-to-date database changes nothing, and processes migrating at once do not
/// get in each other's way.
#[tokio::test]
async fn migrating_again_is_harmless() {
    let db = TestDb::create().await;
    let (a, b, c) = tokio::join!(
        PostgresStore::migrate(&db.url),
        PostgresStore::migrate(&db.url),
        PostgresStore::migrate(&db.url),
    );
    for outcome in [a, b, c] {
        outcome.unwrap_or_else(|e| panic!("concurrent migrations: {}", chain(&e)));
    }
    let store = db.store().await;
    let m = monitor("http://127.0.0.1:1/");
    store.insert_monitor(&m).await.unwrap();
    let version = store.monitors_version().await.unwrap();

    PostgresStore::migrate(&db.url).await.unwrap();
    assert_eq!(store.get_monitor(m.id).await.unwrap(), Some(m));
    assert_eq!(store.monitors_version().await.unwrap(), version);
    let mut conn = db.conn().await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/postgres"
    ))
    .unwrap()
    .filter(|f| {
        f.as_ref()
            .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "sql"))
    })
    .count();
    assert_eq!(
        applied,
        i64::try_from(files).unwrap(),
        "each migration once"
    );
    store.close().await;
}

/// A database that cannot be reached is an error that names it, without its password.
#[tokio::test]
async fn unreachable_databases_are_clear_errors() {
    let url = "postgres://upwatch:hunter2@127.0.0.1:1/monitoring";
    for err in [
        PostgresStore::connect(url).await.expect_err("no server"),
        PostgresStore::migrate(url).await.expect_err("no server"),
        LeaderLock::try_acquire(url, 1)
            .await
            .expect_err("no server"),
    ] {
        let text = chain(&err);
        assert!(matches!(err, StoreError::Database(_)), "{text}");
        assert!(text.contains("127.0.0.1:1/monitoring"), "{text}");
        assert!(text.contains("refused"), "the cause is shown: {text}");
        assert!(
            !text.contains("hunter2"),
            "the password is not shown: {text}"
        );
    }
    let err = PostgresStore::connect("postgres://127.0.0.1:notaport/x")
        .await
        .expect_err("not a url");
    assert!(matches!(err, StoreError::Database(_)), "{}", chain(&err));
}

/// Everything written by one process is there for the next, and the state machine carries on
/// where it stopped: a result applied before is not applied again.
#[tokio::test]
async fn reopening_keeps_data_and_state() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    let ops = hook("ops");
    store.upsert_webhook(&ops).await.unwrap();
    let m = monitor("http://127.0.0.1:1/");
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

    let store = db.store().await;
    assert_eq!(store.get_monitor(m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(store.get_webhook(ops.id).await.unwrap(), Some(ops.clone()));
    assert_eq!(store.monitors_version().await.unwrap(), version);
    assert_eq!(store.get_state(m.id).await.unwrap(), state);
    assert_eq!(state.unwrap().status, MonitorStatus::Down);
    let history = store.history(m.id, &query(10)).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, down.id);
    assert_eq!(history[0].error, down.error);
    assert_eq!(history[0].status_code, None);
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(
        store.next_delivery(ops.id).await.unwrap().unwrap().alert,
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
    store.close().await;
}

/// A batch of 2,000 results, with copies of some and results of an unknown monitor, is
/// stored in one call: every new result of a known monitor, once.
#[tokio::test]
async fn a_large_batch_is_stored_whole() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    let monitors: Vec<Monitor> = (0..4)
        .map(|i| monitor(&format!("http://127.0.0.1:{}/", 200 + i)))
        .collect();
    for m in &monitors {
        store.insert_monitor(m).await.unwrap();
    }
    let mut batch: Vec<CheckResult> = (0..2_000)
        .map(|i| {
            let m = &monitors[i % monitors.len()];
            let at = i64::try_from(i / monitors.len()).unwrap();
            if i % 3 == 0 {
                down_result(m, at)
            } else {
                up_result(m, at)
            }
        })
        .collect();
    let originals = batch.clone();
    batch.extend(originals[..50].iter().cloned());
    let ghost = monitor("http://127.0.0.1:299/");
    batch.extend((0..25).map(|i| up_result(&ghost, i)));

    assert_eq!(store.insert_results(&batch).await.unwrap(), 2_000);
    for (i, m) in monitors.iter().enumerate() {
        let history = store.history(m.id, &query(1_000)).await.unwrap();
        let mut expected: Vec<&CheckResult> =
            originals.iter().skip(i).step_by(monitors.len()).collect();
        expected.sort_by_key(|r| std::cmp::Reverse((r.checked_at, r.id)));
        assert_eq!(history.len(), 500, "monitor {i}");
        for (entry, r) in history.iter().zip(expected) {
            assert_eq!(
                (entry.id, entry.checked_at, entry.status, entry.status_code),
                (r.id, r.checked_at, r.status, r.status_code)
            );
            assert_eq!(entry.error, r.error);
        }
    }
    assert!(store
        .history(ghost.id, &query(100))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.insert_results(&batch).await.unwrap(),
        0,
        "all stored already"
    );

    // A page boundary in the middle of the batch continues exactly where it stopped.
    let m = &monitors[0];
    let first = store.history(m.id, &query(120)).await.unwrap();
    let last = first.last().unwrap();
    let rest = store
        .history(
            m.id,
            &HistoryQuery {
                after: Some(HistoryCursor {
                    checked_at: last.checked_at,
                    id: last.id,
                }),
                ..query(1_000)
            },
        )
        .await
        .unwrap();
    assert_eq!(first.len() + rest.len(), 500);
    assert!(rest.iter().all(|e| e.checked_at < last.checked_at));
    store.close().await;
}

/// PostgreSQL refuses NUL characters in text; results, states and alerts that carry one (an
/// error message quoting a response, say) are stored with U+FFFD in its place.
/// `apply_results` runs in one transaction per batch, however many results, monitors and
/// transitions it holds: a trigger records the transaction id of every statement that writes a
/// state, an alert, an incident or a delivery, and one id is seen.
#[tokio::test]
async fn a_batch_is_applied_in_one_transaction() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    let monitors: Vec<Monitor> = (0..20)
        .map(|i| monitor(&format!("http://127.0.0.1:{}/", 300 + i)))
        .collect();
    store.insert_monitors(&monitors).await.unwrap();
    store.upsert_webhook(&hook("ops")).await.unwrap();
    let mut conn = db.conn().await;
    for statement in [
        "CREATE TABLE tx_seen (xid xid8 PRIMARY KEY)",
        "CREATE FUNCTION note_tx() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         INSERT INTO tx_seen VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING; \
         RETURN NULL; END $$",
        "CREATE TRIGGER tx_state AFTER INSERT OR UPDATE ON monitor_state \
         FOR EACH STATEMENT EXECUTE FUNCTION note_tx()",
        "CREATE TRIGGER tx_alerts AFTER INSERT ON alerts \
         FOR EACH STATEMENT EXECUTE FUNCTION note_tx()",
        "CREATE TRIGGER tx_incidents AFTER INSERT OR UPDATE ON incidents \
         FOR EACH STATEMENT EXECUTE FUNCTION note_tx()",
        "CREATE TRIGGER tx_deliveries AFTER INSERT ON alert_deliveries \
         FOR EACH STATEMENT EXECUTE FUNCTION note_tx()",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    // Each monitor goes down, then recovers: two transitions each, in one batch.
    let mut batch = Vec::new();
    for at in 1..=4 {
        for m in &monitors {
            batch.push(down_result(m, at));
        }
    }
    for at in 5..=8 {
        for m in &monitors {
            batch.push(up_result(m, at));
        }
    }
    let alerts = store.apply_results(&batch).await.unwrap();
    assert_eq!(alerts.len(), 2 * monitors.len(), "{alerts:?}");
    let transactions: i64 = sqlx::query_scalar("SELECT count(*) FROM tx_seen")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        transactions,
        1,
        "{} results with {} alerts were applied in {transactions} transactions",
        batch.len(),
        alerts.len()
    );
    let pending = store.pending_deliveries().await.unwrap();
    assert_eq!(pending, 2 * monitors.len() as u64);
    store.close().await;
}

#[tokio::test]
async fn nul_characters_are_stored_replaced() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    store.upsert_webhook(&hook("ops")).await.unwrap();
    let m = monitor("http://127.0.0.1:3/");
    store.insert_monitor(&m).await.unwrap();
    let mut down = down_result(&m, 10);
    down.error = Some(CheckError::new(
        ErrorKind::KeywordMissing,
        "body starts with \u{0}\u{1}binary, and a \\u0000 that is text",
    ));
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
    let cleaned = "body starts with \u{FFFD}\u{1}binary, and a \\u0000 that is text";
    let history = store.history(m.id, &query(10)).await.unwrap();
    assert_eq!(history[0].error.as_ref().unwrap().message, cleaned);
    let state = store.get_state(m.id).await.unwrap().unwrap();
    assert_eq!(state.status, MonitorStatus::Down);
    let webhook = store.webhooks_with_pending().await.unwrap()[0];
    let stored = store.next_delivery(webhook).await.unwrap().unwrap().alert;
    assert_eq!(stored.id, alert.id);
    assert_eq!(stored.error.unwrap().message, cleaned);
    store.close().await;
}

/// The payload of the next notification, failing the test after ten seconds.
async fn next_notification(listener: &mut PgListener) -> String {
    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap()
        .payload()
        .to_string()
}

/// Every write of a monitor notifies the monitors' channel with the monitor's id, once it is
/// committed.
#[tokio::test]
async fn monitor_writes_are_notified() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    let mut listener = PgListener::connect(&db.url).await.unwrap();
    listener.listen(MONITORS_CHANNEL).await.unwrap();
    let m = monitor("http://127.0.0.1:4/");

    store.insert_monitor(&m).await.unwrap();
    assert_eq!(next_notification(&mut listener).await, m.id.to_string());
    let renamed = m
        .apply_patch(&serde_json::json!({"name": "renamed"}), t(1))
        .unwrap();
    assert!(store.update_monitor(&renamed).await.unwrap());
    assert_eq!(next_notification(&mut listener).await, m.id.to_string());
    assert!(store.delete_monitor(m.id).await.unwrap());
    assert_eq!(next_notification(&mut listener).await, m.id.to_string());
    store.close().await;
}

/// A deleted monitor's late results, racing its deletion, never survive it.
#[tokio::test]
async fn results_racing_a_deletion_do_not_survive_it() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    for round in 0..20 {
        let m = monitor(&format!("http://127.0.0.1:{}/", 300 + round));
        store.insert_monitor(&m).await.unwrap();
        let batch: Vec<CheckResult> = (0..200).map(|i| up_result(&m, i)).collect();
        let (stored, deleted) =
            tokio::join!(store.insert_results(&batch), store.delete_monitor(m.id));
        stored.unwrap();
        assert!(deleted.unwrap());
        assert!(
            store.history(m.id, &query(10)).await.unwrap().is_empty(),
            "round {round}: results outlived their monitor"
        );
    }
    store.close().await;
}

/// Processes applying copies of one result at the same moment, each through its own pool,
/// alert once: the state row makes them take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_applies_across_processes_alert_once() {
    let db = TestDb::migrated().await;
    let stores = [db.store().await, db.store().await];
    stores[0].upsert_webhook(&hook("ops")).await.unwrap();
    // Every pool opens its connections before the race, so that the copies really run at
    // once instead of one after another while connections are being opened.
    let pings: Vec<_> = (0..16)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move { store.ping().await })
        })
        .collect();
    for ping in pings {
        ping.await.unwrap().unwrap();
    }
    for round in 0..10u16 {
        let m = monitor(&format!("http://127.0.0.1:{}/", 400 + round));
        stores[0].insert_monitor(&m).await.unwrap();
        let down = down_result(&m, 10);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = stores[i % 2].clone();
                let down = down.clone();
                tokio::spawn(async move { store.apply_result(&down).await })
            })
            .collect();
        let mut alerts = 0;
        for task in tasks {
            if task.await.unwrap().unwrap().is_some() {
                alerts += 1;
            }
        }
        assert_eq!(alerts, 1, "round {round}: one alert for one transition");
        let state = stores[1].get_state(m.id).await.unwrap().unwrap();
        assert_eq!(state.consecutive_failures, 1, "round {round}");
        assert_eq!(
            stores[1].pending_deliveries().await.unwrap(),
            u64::from(round) + 1
        );
    }
    for store in &stores {
        store.close().await;
    }
}

/// A webhook disabled while an alert is being created for it keeps no pending delivery:
/// either the alert comes first and its delivery is failed with the others, or the webhook
/// is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alerts_racing_a_disabled_webhook_leave_nothing_pending() {
    let db = TestDb::migrated().await;
    let stores = [db.store().await, db.store().await];
    for round in 0..20u16 {
        let w = hook(&format!("hook-{round}"));
        stores[0].upsert_webhook(&w).await.unwrap();
        let m = monitor(&format!("http://127.0.0.1:{}/", 500 + round));
        stores[0].insert_monitor(&m).await.unwrap();
        let apply = {
            let store = stores[0].clone();
            let down = down_result(&m, 10);
            tokio::spawn(async move { store.apply_result(&down).await })
        };
        let disable = {
            let store = stores[1].clone();
            tokio::spawn(async move { store.disable_webhook(w.id, "HTTP 404").await })
        };
        assert!(apply.await.unwrap().unwrap().is_some(), "round {round}");
        disable.await.unwrap().unwrap();
        assert_eq!(
            stores[0].pending_deliveries().await.unwrap(),
            0,
            "round {round}: a delivery is pending for a disabled webhook"
        );
    }
    for store in &stores {
        store.close().await;
    }
}

/// One session at a time holds a key; releasing it lets another take it at once, and a
/// dropped lock is released too.
#[tokio::test]
async fn one_leader_per_key() {
    let db = TestDb::create().await;
    let key = 0x7570_7761_7463_6801;
    let first = LeaderLock::try_acquire(&db.url, key)
        .await
        .unwrap()
        .expect("a free key");
    assert!(
        LeaderLock::try_acquire(&db.url, key)
            .await
            .unwrap()
            .is_none(),
        "the key is held"
    );
    let other = LeaderLock::try_acquire(&db.url, key + 1)
        .await
        .unwrap()
        .expect("another key is free");

    first.release().await;
    let second = LeaderLock::try_acquire(&db.url, key)
        .await
        .unwrap()
        .expect("released keys are free at once");
    assert!(LeaderLock::try_acquire(&db.url, key)
        .await
        .unwrap()
        .is_none());

    drop(second);
    let third = eventually(
        Duration::from_secs(10),
        "a dropped lock is released",
        || async { LeaderLock::try_acquire(&db.url, key).await.unwrap() },
    )
    .await;
    third.release().await;
    other.release().await;
}

/// When the leader's session ends (here killed by an administrator, as the server does when
/// the leader process dies), the leader learns it within seconds and a standby takes over.
#[tokio::test]
async fn a_killed_leader_loses_and_a_standby_takes_over() {
    let db = TestDb::create().await;
    let key = 42;
    let mut leader = LeaderLock::try_acquire(&db.url, key)
        .await
        .unwrap()
        .expect("a free key");
    assert!(LeaderLock::try_acquire(&db.url, key)
        .await
        .unwrap()
        .is_none());
    // Leadership is kept while the session lives (more than two checks' worth of time).
    assert!(
        tokio::time::timeout(Duration::from_millis(2_500), leader.lost())
            .await
            .is_err(),
        "a healthy leader keeps leading"
    );

    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
    )
    .bind(&db.name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "one session held the lock");

    tokio::time::timeout(Duration::from_secs(10), leader.lost())
        .await
        .expect("the leader learns it lost within 10 s");
    tokio::time::timeout(Duration::from_millis(100), leader.lost())
        .await
        .expect("once lost, always lost");
    let standby = eventually(Duration::from_secs(10), "a standby takes over", || async {
        LeaderLock::try_acquire(&db.url, key).await.unwrap()
    })
    .await;
    leader.release().await;
    assert!(
        LeaderLock::try_acquire(&db.url, key)
            .await
            .unwrap()
            .is_none(),
        "releasing a lost lock does not free the new leader's"
    );
    standby.release().await;
    admin.close().await.ok();
}

/// The default region's series has the empty name, so a one-region install stores no
/// region text; other regions by name, each a series of its own whose number is all a result
/// row keeps of its monitor and region. An inconclusive result is stored as not up, of kind
/// `local_network`, and read back as inconclusive.
#[tokio::test]
async fn results_of_the_default_region_are_stored_without_one() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    let m = monitor("http://127.0.0.1:4/");
    store.insert_monitor(&m).await.unwrap();
    let default = up_result(&m, 10);
    let elsewhere = down_result(&m, 20).with_region("eu-west");
    let lost = up_result(&m, 30).into_inconclusive("offline");
    store
        .insert_results(&[default.clone(), elsewhere.clone(), lost.clone()])
        .await
        .unwrap();
    let mut conn = db.conn().await;
    let rows: Vec<(DateTime<Utc>, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT r.checked_at, s.region, r.up, r.error_kind \
         FROM results r JOIN series s ON s.seq = r.series ORDER BY r.checked_at",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (default.checked_at, String::new(), true, None),
            (
                elsewhere.checked_at,
                "eu-west".into(),
                false,
                Some("timeout".into())
            ),
            (
                lost.checked_at,
                String::new(),
                false,
                Some("local_network".into())
            ),
        ]
    );
    let history = store.history(m.id, &query(10)).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (e.id, e.region.as_str(), e.status))
            .collect::<Vec<_>>(),
        vec![
            (lost.id, "default", CheckStatus::Inconclusive),
            (elsewhere.id, "eu-west", CheckStatus::Down),
            (default.id, "default", CheckStatus::Up),
        ]
    );
    let of = |region: &str| HistoryQuery {
        region: Some(region.to_string()),
        ..query(10)
    };
    let ids = |entries: Vec<upwatch_store::HistoryEntry>| -> Vec<Uuid> {
        entries.into_iter().map(|e| e.id).collect()
    };
    assert_eq!(
        ids(store.history(m.id, &of("default")).await.unwrap()),
        vec![lost.id, default.id]
    );
    assert_eq!(
        ids(store.history(m.id, &of("eu-west")).await.unwrap()),
        vec![elsewhere.id]
    );
    store.close().await;
}

/// The names of the day partitions of `results`, in order.
async fn result_days(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'results'::regclass ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

/// Raw results live in one partition per UTC day, made as results of the day arrive and
/// ahead of time by the pruner; pruning drops the days that ended before the cutoff whole,
/// for every monitor, and counts their results. A result that comes after its day was
/// dropped is stored again, in the day made anew.
#[tokio::test]
async fn whole_days_of_results_are_dropped_and_made_ahead() {
    let db = TestDb::migrated().await;
    let store = db.store().await;
    let (a, b) = (
        monitor("http://127.0.0.1:5/"),
        monitor("http://127.0.0.1:6/"),
    );
    store.insert_monitor(&a).await.unwrap();
    store.insert_monitor(&b).await.unwrap();
    // t(0) is 2023-11-14 22:13:20 UTC: results on the 14th, 15th and 16th.
    const DAY: i64 = 86_400;
    let results: Vec<CheckResult> = [0, 600, DAY, DAY + 600, 2 * DAY]
        .into_iter()
        .flat_map(|at| [up_result(&a, at), down_result(&b, at)])
        .collect();
    assert_eq!(store.insert_results(&results).await.unwrap(), 10);
    let mut conn = db.conn().await;
    assert_eq!(
        result_days(&mut conn).await,
        ["results_20231114", "results_20231115", "results_20231116"]
    );

    // The cutoff falls inside the 16th: the 14th and 15th go whole, the 16th stays.
    let cutoff = t(2 * DAY + 60);
    let now = t(2 * DAY + 120);
    assert_eq!(store.prune_days(Some(cutoff), now).await.unwrap(), 8);
    assert_eq!(
        result_days(&mut conn).await,
        ["results_20231116", "results_20231117"],
        "the day of `now` and the next are made ahead"
    );
    for m in [&a, &b] {
        let history = store.history(m.id, &query(10)).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].checked_at, t(2 * DAY));
    }
    assert_eq!(store.prune_days(Some(cutoff), now).await.unwrap(), 0);
    assert_eq!(store.prune_days(None, now).await.unwrap(), 0);

    let late = up_result(&a, 300);
    assert_eq!(
        store
            .insert_results(std::slice::from_ref(&late))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.insert_results(&[late]).await.unwrap(), 0);
    assert_eq!(store.history(a.id, &query(10)).await.unwrap().len(), 2);
}

/// `upwatch migrate` moves the results stored before series and day partitions (keyed by
/// their id, with the monitor's uuid and the region's name in every row) into them: history
/// reads the same afterwards, each id given back from its key, and storing them again adds
/// nothing.
#[tokio::test]
async fn migrating_keeps_the_results_stored_before_series() {
    let db = TestDb::create().await;
    let all = sqlx::migrate!("../../migrations/postgres");
    let before = sqlx::migrate::Migrator {
        migrations: all
            .migrations
            .iter()
            .filter(|m| m.version < 7)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    };
    let mut conn = db.conn().await;
    before.run(&mut conn).await.unwrap();
    let m = monitor("http://127.0.0.1:7/");
    sqlx::query(
        "INSERT INTO monitors (id, url, spec, created_at, updated_at) \
         VALUES ($1, $2, $3::jsonb, now(), now())",
    )
    .bind(m.id)
    .bind(&m.url)
    .bind(serde_json::to_string(&m).unwrap())
    .execute(&mut conn)
    .await
    .unwrap();
    let results = [
        up_result(&m, 10),
        down_result(&m, 20).with_region("eu-west"),
        up_result(&m, 86_400 + 30),
    ];
    for r in &results {
        let error = r.error.as_ref();
        sqlx::query(
            "INSERT INTO results (monitor_id, checked_at, id, response_time_ms, status_code, \
             up, error_kind, error_message, maintenance, region) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false, $9)",
        )
        .bind(r.monitor_id)
        .bind(r.checked_at)
        // Ids made before ids were keys.
        .bind(Uuid::now_v7())
        .bind(r.response_time_ms as i32)
        .bind(r.status_code.map(|c| c as i16))
        .bind(r.status == CheckStatus::Up)
        .bind(error.map(|e| e.kind.as_str()))
        .bind(error.map(|e| e.message.clone()))
        .bind((r.region != "default").then_some(r.region.as_str()))
        .execute(&mut conn)
        .await
        .unwrap();
    }

    PostgresStore::migrate(&db.url).await.unwrap();
    let store = db.store().await;
    let history = store.history(m.id, &query(10)).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (
                e.id,
                e.checked_at,
                e.region.as_str(),
                e.status,
                e.error.clone()
            ))
            .collect::<Vec<_>>(),
        results
            .iter()
            .rev()
            .map(|r| (
                r.id,
                r.checked_at,
                r.region.as_str(),
                r.status,
                r.error.clone()
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        result_days(&mut conn).await,
        ["results_20231114", "results_20231115"]
    );
    assert_eq!(store.insert_results(&results).await.unwrap(), 0);
}
