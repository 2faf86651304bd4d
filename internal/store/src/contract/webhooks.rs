//! Notification destinations ([`WebhookStore`](crate::WebhookStore)).

use upwatch_core::{AlertKind, Webhook, WebhookSource};
use uuid::Uuid;

use crate::Store;

use super::*;

/// Webhooks are listed oldest first; an upsert updates name, URL and source but keeps
/// whether the webhook is enabled (and why not), and its creation time.
pub async fn webhooks_upsert_keeps_enabled(store: &dyn Store) {
    assert!(store.list_webhooks().await.unwrap().is_empty());
    let newer = webhook("newer", 20);
    let older = webhook("older", 10);
    store.upsert_webhook(&newer).await.unwrap();
    store.upsert_webhook(&older).await.unwrap();
    assert_eq!(
        store.get_webhook(newer.id).await.unwrap(),
        Some(newer.clone())
    );
    assert_eq!(store.get_webhook(Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(
        store.list_webhooks().await.unwrap(),
        vec![older.clone(), newer.clone()]
    );

    let reason = "the endpoint answered HTTP 404 (unknown webhook)";
    store.disable_webhook(older.id, reason).await.unwrap();
    let disabled = store.get_webhook(older.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some(reason));

    let again = Webhook {
        name: "renamed".into(),
        url: "http://127.0.0.1:9/hooks/moved".into(),
        settings: serde_json::json!({ "webhook_url": "http://127.0.0.1:9/hooks/moved" }),
        enabled: true,
        disabled_reason: None,
        source: WebhookSource::Config,
        created_at: t(99),
        ..older.clone()
    };
    store.upsert_webhook(&again).await.unwrap();
    let got = store.get_webhook(older.id).await.unwrap().unwrap();
    assert_eq!(got.name, "renamed");
    assert_eq!(got.url, again.url);
    assert_eq!(got.source, WebhookSource::Config);
    assert!(!got.enabled, "an upsert keeps a webhook disabled");
    assert_eq!(got.disabled_reason.as_deref(), Some(reason));
    assert_eq!(got.created_at, older.created_at);

    store
        .disable_webhook(Uuid::now_v7(), "whatever")
        .await
        .unwrap();
    assert!(store.delete_webhook(newer.id).await.unwrap());
    assert!(!store.delete_webhook(newer.id).await.unwrap());
    assert_eq!(store.list_webhooks().await.unwrap(), vec![got]);
}

/// Enabling a disabled webhook clears its reason and brings it back into new alerts, without
/// reviving the deliveries that failed while it was disabled.
pub async fn enable_webhook_resumes_alerts(store: &dyn Store) {
    let hook = webhook("revived", 1);
    let (m, _) = alerting_monitor(store, "http://127.0.0.1:111/", &[&hook]).await;
    store.disable_webhook(hook.id, "HTTP 404").await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);

    assert!(store.enable_webhook(hook.id).await.unwrap());
    let got = store.get_webhook(hook.id).await.unwrap().unwrap();
    assert!(got.enabled);
    assert_eq!(got.disabled_reason, None);
    assert_eq!(
        store.pending_deliveries().await.unwrap(),
        0,
        "failed deliveries stay failed"
    );
    assert!(store.enable_webhook(hook.id).await.unwrap(), "idempotent");
    assert!(!store.enable_webhook(Uuid::now_v7()).await.unwrap());

    store
        .apply_result(&result(&m, 20, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![hook.id]);
    let delivery = store.next_delivery(hook.id).await.unwrap().unwrap();
    assert_eq!(delivery.alert.kind, AlertKind::Recovery);
}

/// Disabling a webhook fails its pending deliveries and keeps it out of new alerts.
pub async fn disable_webhook_fails_pending(store: &dyn Store) {
    let dead = webhook("dead", 1);
    let alive = webhook("alive", 2);
    let (m, _) = alerting_monitor(store, "http://127.0.0.1:110/", &[&dead, &alive]).await;
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);

    store.disable_webhook(dead.id, "HTTP 404").await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![alive.id]);
    assert!(store.next_delivery(dead.id).await.unwrap().is_none());
    assert!(store.next_delivery(alive.id).await.unwrap().is_some());

    store
        .apply_result(&result(&m, 20, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.pending_deliveries().await.unwrap(),
        2,
        "only the enabled webhook"
    );
    assert!(store.next_delivery(dead.id).await.unwrap().is_none());
}

/// Deleting a webhook deletes its pending deliveries and nothing of other webhooks.
pub async fn delete_webhook_removes_pending(store: &dyn Store) {
    let gone = webhook("gone", 1);
    let kept = webhook("kept", 2);
    let (m, alert) = alerting_monitor(store, "http://127.0.0.1:120/", &[&gone, &kept]).await;
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);

    assert!(store.delete_webhook(gone.id).await.unwrap());
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![kept.id]);
    assert!(store.next_delivery(gone.id).await.unwrap().is_none());
    assert_eq!(
        store.next_delivery(kept.id).await.unwrap().unwrap().alert,
        alert
    );

    store
        .apply_result(&result(&m, 20, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);
}
