//! Config as code: `upwatch export` and `upwatch import`, through the functions they call,
//! over SQLite stores in temporary directories.

use std::collections::BTreeMap;
use std::sync::Arc;
use upwatch_store::prelude::*;

use chrono::Utc;
use tempfile::TempDir;
use upwatch_app::yaml::{export, import, ImportError, Summary};
use upwatch_core::{Monitor, MonitorInput};
use upwatch_service::MonitorService;
use upwatch_store::Store;
use upwatch_store_sql::SqliteStore;

/// What `upwatch import` writes through, on `store`.
fn offline(store: &SqliteStore) -> MonitorService {
    MonitorService::offline(Arc::new(store.clone()))
}

/// A fresh store in its own directory.
async fn fresh_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("upwatch.db").display());
    let store = SqliteStore::connect(&url).await.expect("the store opens");
    (store, dir)
}

/// Three monitors with settings that differ from the defaults in many ways.
async fn seed(store: &dyn Store) {
    let inputs = [
        MonitorInput {
            name: Some("home".into()),
            interval_seconds: Some(60),
            keyword: Some("Welcome".into()),
            ..MonitorInput::for_url("https://example.com/")
        },
        MonitorInput {
            name: Some("api".into()),
            method: Some("post".into()),
            body: Some("{\"ping\":true}".into()),
            headers: Some(BTreeMap::from([("X-Probe".into(), "1".into())])),
            expected_status_code: Some(serde_json::from_str("204").expect("a code")),
            failure_threshold: Some(3),
            follow_redirects: Some(false),
            ..MonitorInput::for_url("https://api.example.com/health")
        },
        MonitorInput {
            enabled: Some(false),
            timeout_seconds: Some(5),
            ..MonitorInput::for_url("http://paused.example.org/status")
        },
    ];
    for input in inputs {
        let monitor = Monitor::create(input, Utc::now()).expect("a valid monitor");
        store.insert_monitor(&monitor).await.expect("the insert");
    }
}

/// Every monitor's settings, without ids and times, in creation order.
async fn settings_of(store: &dyn Store) -> Vec<MonitorInput> {
    store
        .all_monitors()
        .await
        .expect("the store answers")
        .iter()
        .map(Monitor::to_input)
        .collect()
}

#[tokio::test]
async fn export_then_import_reproduces_the_settings() {
    let (source, _source_dir) = fresh_store().await;
    seed(&source).await;
    let text = export(&source).await.expect("the export");
    assert!(text.starts_with("version: 1\n"), "{text}");
    assert!(!text.contains("id:"), "ids are not exported: {text}");
    assert!(
        !text.contains("created_at"),
        "times are not exported: {text}"
    );

    let (target, _target_dir) = fresh_store().await;
    let summary = import(&offline(&target), &text).await.expect("the import");
    assert_eq!(
        summary,
        Summary {
            created: 3,
            updated: 0,
            unchanged: 0
        }
    );
    assert_eq!(settings_of(&target).await, settings_of(&source).await);
    assert_eq!(export(&target).await.expect("the export"), text);
}

#[tokio::test]
async fn importing_twice_changes_nothing_the_second_time() {
    let (source, _source_dir) = fresh_store().await;
    seed(&source).await;
    let text = export(&source).await.expect("the export");
    let (target, _target_dir) = fresh_store().await;
    import(&offline(&target), &text)
        .await
        .expect("the first import");
    let before = target.all_monitors().await.expect("the store answers");

    let summary = import(&offline(&target), &text)
        .await
        .expect("the second import");
    assert_eq!(summary.to_string(), "created 0, updated 0, unchanged 3");
    assert_eq!(
        target.all_monitors().await.expect("the store answers"),
        before
    );
}

#[tokio::test]
async fn an_invalid_site_aborts_with_its_index_and_writes_nothing() {
    let (store, _dir) = fresh_store().await;
    let existing = Monitor::create(
        MonitorInput {
            name: Some("home".into()),
            ..MonitorInput::for_url("https://example.com/")
        },
        Utc::now(),
    )
    .expect("a valid monitor");
    store.insert_monitor(&existing).await.expect("the insert");
    let text = "\
version: 1
sites:
  - name: home
    url: https://example.com/
    interval_seconds: 30
  - url: https://new.example.com/
  - name: files
    url: ftp://files.example.com/
";
    let error = import(&offline(&store), text)
        .await
        .expect_err("an invalid site");
    assert!(
        matches!(error, ImportError::Invalid { index: 2, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "sites[2]: `url` must use http, https, tcp, tls, icmp or dns, not `ftp`"
    );
    assert_eq!(
        store.all_monitors().await.expect("the store answers"),
        [existing],
        "neither the update nor the creation before the invalid site is written"
    );
}

#[tokio::test]
async fn a_misspelt_field_is_named_with_its_site() {
    let (store, _dir) = fresh_store().await;
    let text =
        "- url: https://a.example.com/\n- url: https://b.example.com/\n  intervall_seconds: 5\n";
    let error = import(&offline(&store), text)
        .await
        .expect_err("an unknown field");
    let message = error.to_string();
    assert!(
        message.starts_with("sites[1]: unknown field `intervall_seconds`"),
        "{message}"
    );
    assert!(store
        .all_monitors()
        .await
        .expect("the store answers")
        .is_empty());
}

#[tokio::test]
async fn an_edited_interval_updates_the_existing_monitor() {
    let (store, _dir) = fresh_store().await;
    seed(&store).await;
    let before = store.all_monitors().await.expect("the store answers");
    let text = export(&store).await.expect("the export");
    assert_eq!(text.matches("interval_seconds: 60\n").count(), 1, "{text}");
    let edited = text.replace("interval_seconds: 60\n", "interval_seconds: 120\n");

    let summary = import(&offline(&store), &edited).await.expect("the import");
    assert_eq!(summary.to_string(), "created 0, updated 1, unchanged 2");
    let after = store.all_monitors().await.expect("the store answers");
    assert_eq!(after.len(), 3);
    let home = after
        .iter()
        .find(|m| m.name == "home")
        .expect("home is kept");
    let old_home = before
        .iter()
        .find(|m| m.name == "home")
        .expect("home was there");
    assert_eq!(home.id, old_home.id, "the monitor is updated, not replaced");
    assert_eq!(home.interval_seconds, 120);
    assert_eq!(home.keyword.as_deref(), Some("Welcome"));
    assert!(home.updated_at > old_home.updated_at);
}

#[tokio::test]
async fn a_bare_list_matches_by_name_then_by_url() {
    let (store, _dir) = fresh_store().await;
    seed(&store).await;
    let before = store.all_monitors().await.expect("the store answers");
    let text = "\
- name: home
  url: https://www.example.com/
  interval_seconds: 60
  keyword: Welcome
- name: health
  url: https://api.example.com/health
- url: https://brand-new.example.com/
";
    let summary = import(&offline(&store), text).await.expect("the import");
    assert_eq!(summary.to_string(), "created 1, updated 2, unchanged 0");
    let after = store.all_monitors().await.expect("the store answers");
    assert_eq!(after.len(), 4);
    let moved = after.iter().find(|m| m.id == before[0].id).expect("home");
    assert_eq!(moved.url, "https://www.example.com/");
    let renamed = after.iter().find(|m| m.id == before[1].id).expect("api");
    assert_eq!(renamed.name, "health");
    assert_eq!(
        renamed.method, "GET",
        "the file's settings replace the old ones"
    );
    assert_eq!(after[3].name, "brand-new.example.com");
}

#[tokio::test]
async fn export_then_import_keeps_every_check_type_and_the_push_token() {
    let (source, _source_dir) = fresh_store().await;
    let inputs: Vec<MonitorInput> = serde_json::from_value(serde_json::json!([
        {"url": "tcp://db.example.com:5432", "conditions": ["[RESPONSE_TIME] < 200"]},
        {"url": "tls://mail.example.com:465", "cert_expiry_alert_days": [30, 7]},
        {"url": "icmp://gateway.example.com", "packets": 5},
        {"url": "dns://1.1.1.1", "dns": {"query_name": "example.com", "query_type": "MX"}},
        {"type": "push", "name": "nightly backup", "push_grace_seconds": 600},
        {"url": "https://example.com/", "tls_skip_verify": true, "conditions": ["[BODY].ok == true"]}
    ]))
    .unwrap();
    for input in inputs {
        let monitor = Monitor::create(input, Utc::now()).expect("a valid monitor");
        source.insert_monitor(&monitor).await.unwrap();
    }
    let text = export(&source).await.unwrap();
    assert_eq!(
        text.matches("method:").count(),
        1,
        "HTTP settings stay off other types: {text}"
    );
    let push = source
        .all_monitors()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "nightly backup")
        .unwrap();
    let (target, _target_dir) = fresh_store().await;
    import(&offline(&target), &text).await.expect("the import");
    assert_eq!(settings_of(&target).await, settings_of(&source).await);
    let imported = target
        .find_monitor_by_url(&push.url)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(imported.push_url, push.push_url, "the push token survives");
    assert_eq!(export(&target).await.unwrap(), text);
}

/// Maintenance windows travel with the sites: exported after them, created on import when no
/// window has their title, updated when one has, and validated with the sites before anything
/// is written.
#[tokio::test]
async fn maintenance_windows_round_trip_and_are_matched_by_title() {
    use upwatch_app::yaml::import_all;
    use upwatch_core::maintenance::{Maintenance, MaintenanceInput};
    use upwatch_service::MaintenanceService;

    let (source, _source_dir) = fresh_store().await;
    seed(&source).await;
    let grouped = Monitor::create(
        MonitorInput {
            name: Some("checkout".into()),
            group: Some("Shop".into()),
            ..MonitorInput::for_url("https://shop.example.com/")
        },
        Utc::now(),
    )
    .expect("a valid monitor");
    source.insert_monitor(&grouped).await.expect("the insert");
    let windows: Vec<MaintenanceInput> = serde_json::from_value(serde_json::json!([
        {"title": "Shop upgrade", "description": "v2", "groups": ["Shop"],
         "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T12:00:00Z"},
        {"title": "Sunday backups", "all": true,
         "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "duration": "2h", "timezone": "Europe/Berlin"}
    ]))
    .unwrap();
    for input in windows {
        let window = Maintenance::create(input, Utc::now()).expect("a valid window");
        source
            .insert_maintenance(&window)
            .await
            .expect("the insert");
    }

    let text = export(&source).await.expect("the export");
    assert!(text.starts_with("version: 1\n"), "{text}");
    let (sites_at, windows_at) = (
        text.find("\nsites:").expect("sites"),
        text.find("\nmaintenances:").expect("maintenances"),
    );
    assert!(sites_at < windows_at, "windows come after sites: {text}");
    assert!(
        text.contains("rrule: FREQ=WEEKLY;BYDAY=SU;BYHOUR=2"),
        "{text}"
    );
    assert!(!text.contains("created_at"), "{text}");

    // Into a fresh installation: the group comes with its site.
    let (target, _target_dir) = fresh_store().await;
    let monitors = offline(&target);
    let maintenances = MaintenanceService::offline(Arc::new(target.clone()));
    let imported = import_all(&monitors, &maintenances, &text)
        .await
        .expect("the import");
    assert_eq!(
        imported.sites.to_string(),
        "created 4, updated 0, unchanged 0"
    );
    assert_eq!(
        imported.maintenances.to_string(),
        "created 2, updated 0, unchanged 0"
    );
    let inputs = |windows: Vec<Maintenance>| -> Vec<MaintenanceInput> {
        windows.iter().map(Maintenance::to_input).collect()
    };
    assert_eq!(
        inputs(target.list_maintenances().await.unwrap()),
        inputs(source.list_maintenances().await.unwrap())
    );
    assert_eq!(export(&target).await.expect("the export"), text);

    // Again: nothing changes.
    let before = target.list_maintenances().await.unwrap();
    let again = import_all(&monitors, &maintenances, &text)
        .await
        .expect("the second import");
    assert_eq!(
        again.maintenances.to_string(),
        "created 0, updated 0, unchanged 2"
    );
    assert_eq!(target.list_maintenances().await.unwrap(), before);

    // A changed duration updates the window with that title, keeping its id; a new title is a
    // new window. Without `version`, the document is read as version 1.
    let edited = text
        .replacen("version: 1\n", "", 1)
        .replace("duration: 2h", "duration: 3h")
        .replace("title: Shop upgrade", "title: Shop upgrade, part 2");
    let third = import_all(&monitors, &maintenances, &edited)
        .await
        .expect("the edited import");
    assert_eq!(
        third.maintenances.to_string(),
        "created 1, updated 1, unchanged 0"
    );
    let after = target.list_maintenances().await.unwrap();
    assert_eq!(after.len(), 3);
    let backups = after
        .iter()
        .find(|w| w.title == "Sunday backups")
        .expect("kept");
    let old_backups = before
        .iter()
        .find(|w| w.title == "Sunday backups")
        .expect("was there");
    assert_eq!(backups.id, old_backups.id, "updated, not replaced");
    assert_eq!(backups.to_input().duration.as_deref(), Some("3h"));

    // An invalid window aborts the import, naming it and its field, before any site is
    // written.
    let bad = edited
        .replace("interval_seconds: 60", "interval_seconds: 120")
        .replace("- Shop", "- Warehouse");
    let error = import_all(&monitors, &maintenances, &bad)
        .await
        .expect_err("a group no monitor has");
    assert!(
        matches!(error, ImportError::InvalidMaintenance { index: 0, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("maintenances[0]: `groups` names `Warehouse`"),
        "{message}"
    );
    assert!(
        !export(&target)
            .await
            .unwrap()
            .contains("interval_seconds: 120"),
        "no site was written"
    );
    assert_eq!(target.list_maintenances().await.unwrap(), after);
    let bad = edited.replace("duration: 3h", "duration: 8d");
    let error = import_all(&monitors, &maintenances, &bad)
        .await
        .expect_err("a duration longer than the period");
    assert!(
        error.to_string().starts_with("maintenances[1]: `duration`"),
        "{error}"
    );
}

/// Notifiers travel too, with their ids (which monitors name) and every secret as an
/// `${ENV_VAR}` reference: the file holds no secret, import fills the references from the
/// environment and refuses the whole file, naming the variable, when one is unset.
#[tokio::test]
async fn notifiers_round_trip_with_their_secrets_as_variables() {
    use upwatch_app::yaml::import_all;
    use upwatch_core::{ChannelOptions, Webhook, WebhookSource};
    use upwatch_service::MaintenanceService;

    const SLACK: &str = "https://hooks.slack.com/services/T0/B0/slack-secret-0123";
    const BOT: &str = "123456:telegram-secret-token";
    let (source, _source_dir) = fresh_store().await;
    seed(&source).await;
    let slack = Webhook {
        id: uuid::Uuid::now_v7(),
        name: "ops slack".into(),
        enabled: true,
        source: WebhookSource::Api,
        created_at: Utc::now(),
        kind: "slack".into(),
        settings: serde_json::json!({"webhook_url": SLACK}),
        options: ChannelOptions {
            default: true,
            ..ChannelOptions::default()
        },
        ..Webhook::default()
    };
    let telegram = Webhook {
        id: uuid::Uuid::now_v7(),
        name: "on-call".into(),
        kind: "telegram".into(),
        settings: serde_json::json!({"bot_token": BOT, "chat_id": "-100123"}),
        options: ChannelOptions {
            groups: vec!["Shop".into()],
            reminder_interval_seconds: Some(3600),
            ..ChannelOptions::default()
        },
        ..slack.clone()
    };
    let configured = Webhook {
        source: WebhookSource::Config,
        ..Webhook::discord(
            uuid::Uuid::now_v7(),
            "DISCORD_WEBHOOK_URL #1".into(),
            "https://discord.com/api/webhooks/1/discord-secret".into(),
            WebhookSource::Config,
        )
    };
    for c in [&slack, &telegram, &configured] {
        source.upsert_webhook(c).await.unwrap();
    }

    let text = export(&source).await.expect("the export");
    for secret in [
        SLACK,
        BOT,
        "slack-secret",
        "telegram-secret",
        "discord-secret",
    ] {
        assert!(!text.contains(secret), "the file holds `{secret}`: {text}");
    }
    assert!(
        text.contains("webhook_url: ${OPS_SLACK_WEBHOOK_URL}"),
        "{text}"
    );
    assert!(text.contains("bot_token: ${ON_CALL_BOT_TOKEN}"), "{text}");
    assert!(
        text.contains("chat_id:") && text.contains("-100123"),
        "not secret: {text}"
    );
    assert!(
        !text.contains("DISCORD_WEBHOOK_URL #1"),
        "configured channels stay out: {text}"
    );

    // Without the variables: refused, naming the first, and nothing written.
    let (target, _target_dir) = fresh_store().await;
    let monitors = offline(&target);
    let maintenances = MaintenanceService::offline(Arc::new(target.clone()));
    let error = import_all(&monitors, &maintenances, &text)
        .await
        .expect_err("an unset variable");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "notifiers[0]: `settings.webhook_url` names ${OPS_SLACK_WEBHOOK_URL}, which is not set"
        ),
        "{message}"
    );
    assert!(target.all_monitors().await.unwrap().is_empty());
    assert!(target.list_webhooks().await.unwrap().is_empty());

    // With them: the same channels, same ids, real secrets; again: unchanged.
    // SAFETY (edition 2021: safe): nextest runs each test in its own process.
    std::env::set_var("OPS_SLACK_WEBHOOK_URL", SLACK);
    std::env::set_var("ON_CALL_BOT_TOKEN", BOT);
    let imported = import_all(&monitors, &maintenances, &text)
        .await
        .expect("the import");
    assert_eq!(
        imported.notifiers.to_string(),
        "created 2, updated 0, unchanged 0"
    );
    let got = target.get_webhook(telegram.id).await.unwrap().unwrap();
    assert_eq!(got.settings, telegram.settings);
    assert_eq!(got.options, telegram.options);
    assert_eq!(
        target
            .get_webhook(slack.id)
            .await
            .unwrap()
            .unwrap()
            .settings["webhook_url"],
        SLACK
    );
    assert_eq!(export(&target).await.unwrap(), text);
    let again = import_all(&monitors, &maintenances, &text)
        .await
        .expect("the second import");
    assert_eq!(
        again.notifiers.to_string(),
        "created 0, updated 0, unchanged 2"
    );
    // A bad setting is refused with its field.
    let bad = text.replace("kind: telegram", "kind: carrier-pigeon");
    let error = import_all(&monitors, &maintenances, &bad)
        .await
        .expect_err("an unknown kind");
    assert!(
        error
            .to_string()
            .starts_with("notifiers[1]: `kind` must be one of"),
        "{error}"
    );
}
