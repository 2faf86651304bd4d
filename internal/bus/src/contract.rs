//! The behaviour every [`Bus`] must show. Each implementation's tests call these functions
//! with a fresh bus (fresh topic names for a broker).

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

use crate::{Bus, BusError, Subscription, Topic};

const WAIT: Duration = Duration::from_secs(30);

async fn recv_n(sub: &mut dyn Subscription, n: usize) -> Vec<(Uuid, Bytes)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let message = tokio::time::timeout(WAIT, sub.recv())
            .await
            .expect("a message within the deadline")
            .expect("recv")
            .expect("topic open");
        sub.ack(&message).await.expect("ack");
        got.push((message.key, message.payload));
    }
    got
}

/// Every group receives every message, with its key and payload intact.
pub async fn every_group_gets_every_message(bus: &dyn Bus) {
    let mut a = bus.subscribe(Topic::Results, "contract-a").await.unwrap();
    let mut b = bus.subscribe(Topic::Results, "contract-b").await.unwrap();
    let sent: Vec<(Uuid, Bytes)> = (0..20)
        .map(|i| (Uuid::now_v7(), Bytes::from(format!("{{\"n\":{i}}}"))))
        .collect();
    for (key, payload) in &sent {
        bus.publish(Topic::Results, *key, payload.clone())
            .await
            .unwrap();
    }
    let want: HashSet<_> = sent.iter().cloned().collect();
    for sub in [&mut a, &mut b] {
        let got: HashSet<_> = recv_n(sub.as_mut(), sent.len()).await.into_iter().collect();
        assert_eq!(got, want);
    }
}

/// Each region's jobs reach that region's workers only (`Topic::Jobs` of regions `a` and `b`,
/// which the bus must serve).
pub async fn each_region_gets_only_its_jobs(bus: &dyn Bus) {
    let mut a = bus
        .subscribe(Topic::jobs("a"), &crate::groups::workers("a"))
        .await
        .unwrap();
    let mut b = bus
        .subscribe(Topic::jobs("b"), &crate::groups::workers("b"))
        .await
        .unwrap();
    let for_a: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    let for_b: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    for key in &for_a {
        bus.publish(Topic::jobs("a"), *key, Bytes::from_static(b"\"a\""))
            .await
            .unwrap();
    }
    for key in &for_b {
        bus.publish(Topic::jobs("b"), *key, Bytes::from_static(b"\"b\""))
            .await
            .unwrap();
    }
    let got_b = recv_n(b.as_mut(), for_b.len()).await;
    let got_a = recv_n(a.as_mut(), for_a.len()).await;
    assert!(got_a.iter().all(|(_, p)| &p[..] == b"\"a\""));
    assert!(got_b.iter().all(|(_, p)| &p[..] == b"\"b\""));
    let keys_a: HashSet<Uuid> = got_a.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys_a, for_a.into_iter().collect());
    // Nothing more waits for b: a's jobs never reach it.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), b.recv())
            .await
            .is_err(),
        "region b's workers got another region's job"
    );
}

/// Members of one group share its messages: each message reaches exactly one of them.
pub async fn members_of_a_group_share_messages(bus: &dyn Bus) {
    let mut first = bus
        .subscribe(Topic::jobs("default"), "contract-workers")
        .await
        .unwrap();
    let mut second = bus
        .subscribe(Topic::jobs("default"), "contract-workers")
        .await
        .unwrap();
    let keys: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();
    for key in &keys {
        bus.publish(Topic::jobs("default"), *key, Bytes::from_static(b"{}"))
            .await
            .unwrap();
    }
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < keys.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} arrived",
            seen.len(),
            keys.len()
        );
        for sub in [&mut first, &mut second] {
            if let Ok(Ok(Some(m))) =
                tokio::time::timeout(Duration::from_millis(200), sub.recv()).await
            {
                sub.ack(&m).await.unwrap();
                assert!(
                    seen.insert(m.key),
                    "a message reached two members of one group"
                );
            }
        }
    }
    assert_eq!(seen, keys.into_iter().collect());
}

/// Messages of one key arrive in the order they were published.
pub async fn one_key_keeps_its_order(bus: &dyn Bus) {
    let mut sub = bus
        .subscribe(Topic::Results, "contract-order")
        .await
        .unwrap();
    let key = Uuid::now_v7();
    for i in 0..50u32 {
        bus.publish(Topic::Results, key, Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    let got: Vec<u32> = recv_n(sub.as_mut(), 50)
        .await
        .into_iter()
        .map(|(_, p)| std::str::from_utf8(&p).unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

/// A message without payload arrives with an empty payload and its key.
pub async fn an_empty_payload_arrives_empty(bus: &dyn Bus) {
    let mut sub = bus
        .subscribe(Topic::Results, "contract-empty")
        .await
        .unwrap();
    let key = Uuid::now_v7();
    bus.publish(Topic::Results, key, Bytes::new())
        .await
        .unwrap();
    let got = recv_n(sub.as_mut(), 1).await;
    assert_eq!(got, vec![(key, Bytes::new())]);
}

/// Closing a topic ends its subscriptions (a waiting `recv` returns `None`) and makes publishing
/// and subscribing fail with `Closed`; the other topic is unaffected.
pub async fn close_ends_the_topic(bus: &dyn Bus) {
    let mut sub = bus
        .subscribe(Topic::jobs("default"), "contract-close")
        .await
        .unwrap();
    let waiting = tokio::spawn(async move { sub.recv().await });
    tokio::task::yield_now().await;
    bus.close(Topic::jobs("default")).await;
    let got = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("recv ends within the deadline after close")
        .expect("recv task")
        .expect("recv");
    assert!(got.is_none(), "recv after close returned a message");
    assert!(matches!(
        bus.publish(Topic::jobs("default"), Uuid::now_v7(), Bytes::new())
            .await,
        Err(BusError::Closed("jobs"))
    ));
    assert!(matches!(
        bus.subscribe(Topic::jobs("default"), "contract-close")
            .await,
        Err(BusError::Closed("jobs"))
    ));
    bus.publish(Topic::Results, Uuid::now_v7(), Bytes::new())
        .await
        .expect("the other topic stays open");
}
