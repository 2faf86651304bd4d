//! The delivery outbox ([`Outbox`](crate::Outbox)).

use chrono::{Duration, Utc};

use crate::Store;

use super::*;

/// Each webhook's deliveries go out oldest first, independently of other webhooks; the next
/// delivery is returned even when its retry time is in the future; a retry counts an attempt,
/// and sent or failed deliveries are no longer pending.
pub async fn outbox_delivers_in_order(store: &dyn Store) {
    let w = webhook("w", 1);
    let x = webhook("x", 2);
    store.upsert_webhook(&w).await.unwrap();
    store.upsert_webhook(&x).await.unwrap();
    let m = monitor("http://127.0.0.1:130/");
    store.insert_monitor(&m).await.unwrap();
    assert!(store.next_delivery(w.id).await.unwrap().is_none());
    assert!(store.webhooks_with_pending().await.unwrap().is_empty());

    let mut alerts = Vec::new();
    for (at, up) in [(10, false), (20, true), (30, false)] {
        alerts.push(
            store
                .apply_result(&result(&m, at, up))
                .await
                .unwrap()
                .expect("a transition"),
        );
    }
    assert_eq!(store.pending_deliveries().await.unwrap(), 6);

    let first = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(first.alert, alerts[0]);
    assert_eq!(first.webhook, w);
    assert_eq!(first.attempts, 0);
    assert!(
        first.next_attempt_at <= Utc::now(),
        "a new delivery is due at once"
    );

    let retry_at = now_ms() + Duration::hours(1);
    store
        .delivery_retry(first.id, retry_at, "HTTP 503")
        .await
        .unwrap();
    let again = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(again.id, first.id, "a retried delivery stays first in line");
    assert_eq!(again.attempts, 1);
    assert_eq!(again.next_attempt_at, retry_at);
    assert_eq!(store.pending_deliveries().await.unwrap(), 6);

    store.delivery_sent(first.id).await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 5);
    let second = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(second.alert, alerts[1]);
    assert_eq!(
        store.next_delivery(x.id).await.unwrap().unwrap().alert,
        alerts[0],
        "another webhook keeps its own order"
    );

    store.delivery_failed(second.id, "HTTP 400").await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 4);
    let third = store.next_delivery(w.id).await.unwrap().unwrap();
    assert_eq!(third.alert, alerts[2]);
    store.delivery_sent(third.id).await.unwrap();
    assert!(store.next_delivery(w.id).await.unwrap().is_none());
    assert_eq!(store.webhooks_with_pending().await.unwrap(), vec![x.id]);
    assert_eq!(store.pending_deliveries().await.unwrap(), 3);

    // A retry of a delivery that is done does not bring it back.
    store
        .delivery_retry(second.id, retry_at, "late")
        .await
        .unwrap();
    assert!(store.next_delivery(w.id).await.unwrap().is_none());

    while let Some(d) = store.next_delivery(x.id).await.unwrap() {
        store.delivery_sent(d.id).await.unwrap();
    }
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
    assert!(store.webhooks_with_pending().await.unwrap().is_empty());
}

// --- History at scale: rollups, incidents, retention ---
