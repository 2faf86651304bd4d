//! The in-process bus of the embedded mode.
//!
//! Each consumer group of a topic has a bounded queue; publishing puts the message in every
//! group's queue and waits while one is full, so a slow consumer slows producers (back-pressure)
//! instead of losing messages. Members of one group share its queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
#[cfg(test)]
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{Bus, BusError, BusResult, Message, Subscription, Topic};

/// An in-process [`Bus`] with bounded per-group queues.
#[derive(Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    topics: Mutex<HashMap<Topic, TopicState>>,
    next_offset: AtomicI64,
}

#[derive(Default)]
struct TopicState {
    closed: bool,
    groups: HashMap<String, Group>,
}

struct Group {
    /// Dropped when the topic closes, so that receivers end once the queue is drained.
    sender: Option<mpsc::Sender<Message>>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Message>>>,
}

impl InProcessBus {
    /// A bus whose group queues hold at most `capacity` messages each.
    pub fn new(capacity: usize) -> Self {
        InProcessBus {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                topics: Mutex::new(HashMap::new()),
                next_offset: AtomicI64::new(0),
            }),
        }
    }

    /// Messages waiting in the queue of `group` on `topic` (for the queue-depth gauge).
    pub fn depth(&self, topic: Topic, group: &str) -> usize {
        let topics = self.inner.topics.lock().expect("bus lock");
        topics
            .get(&topic)
            .and_then(|t| t.groups.get(group))
            .and_then(|g| g.sender.as_ref())
            .map(|s| self.inner.capacity - s.capacity())
            .unwrap_or(0)
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, topic: Topic, key: Uuid, payload: Bytes) -> BusResult<()> {
        let senders: Vec<mpsc::Sender<Message>> = {
            let topics = self.inner.topics.lock().expect("bus lock");
            match topics.get(&topic) {
                Some(t) if t.closed => return Err(BusError::Closed(topic.as_str())),
                Some(t) => t.groups.values().filter_map(|g| g.sender.clone()).collect(),
                None => Vec::new(),
            }
        };
        if senders.is_empty() {
            tracing::debug!(topic = topic.as_str(), "published with no consumer group");
        }
        let message = Message {
            key,
            payload,
            partition: 0,
            offset: self.inner.next_offset.fetch_add(1, Ordering::Relaxed),
        };
        for sender in senders {
            sender
                .send(message.clone())
                .await
                .map_err(|_| BusError::Closed(topic.as_str()))?;
        }
        Ok(())
    }

    async fn subscribe(&self, topic: Topic, group: &str) -> BusResult<Box<dyn Subscription>> {
        let mut topics = self.inner.topics.lock().expect("bus lock");
        let state = topics.entry(topic.clone()).or_default();
        if state.closed {
            return Err(BusError::Closed(topic.as_str()));
        }
        let capacity = self.inner.capacity;
        let group = state.groups.entry(group.to_string()).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(capacity);
            Group {
                sender: Some(sender),
                receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
            }
        });
        Ok(Box::new(InProcessSubscription {
            receiver: group.receiver.clone(),
        }))
    }

    async fn close(&self, topic: Topic) {
        let mut topics = self.inner.topics.lock().expect("bus lock");
        let state = topics.entry(topic).or_default();
        state.closed = true;
        // Dropping the senders lets queued messages drain, then `recv` returns `None`.
        for group in state.groups.values_mut() {
            group.sender = None;
        }
    }
}

struct InProcessSubscription {
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Message>>>,
}

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn recv(&mut self) -> BusResult<Option<Message>> {
        Ok(self.receiver.lock().await.recv().await)
    }

    async fn ack(&mut self, _message: &Message) -> BusResult<()> {
        // Messages live only in memory: once received there is nothing to commit.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[tokio::test]
    async fn contract_every_group_gets_every_message() {
        contract::every_group_gets_every_message(&InProcessBus::new(64)).await;
    }

    #[tokio::test]
    async fn contract_members_of_a_group_share_messages() {
        contract::members_of_a_group_share_messages(&InProcessBus::new(64)).await;
    }

    #[tokio::test]
    async fn contract_one_key_keeps_its_order() {
        contract::one_key_keeps_its_order(&InProcessBus::new(64)).await;
    }

    #[tokio::test]
    async fn contract_each_region_gets_only_its_jobs() {
        contract::each_region_gets_only_its_jobs(&InProcessBus::new(64)).await;
    }

    #[tokio::test]
    async fn contract_an_empty_payload_arrives_empty() {
        contract::an_empty_payload_arrives_empty(&InProcessBus::new(64)).await;
    }

    #[tokio::test]
    async fn contract_close_ends_the_topic() {
        contract::close_ends_the_topic(&InProcessBus::new(64)).await;
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let bus = InProcessBus::new(8);
        let mut sub = bus.subscribe(Topic::jobs("default"), "g").await.unwrap();
        bus.publish(
            Topic::jobs("default"),
            Uuid::nil(),
            Bytes::from_static(b"1"),
        )
        .await
        .unwrap();
        bus.close(Topic::jobs("default")).await;
        assert!(matches!(
            bus.publish(Topic::jobs("default"), Uuid::nil(), Bytes::new())
                .await,
            Err(BusError::Closed("jobs"))
        ));
        assert_eq!(&sub.recv().await.unwrap().unwrap().payload[..], b"1");
        assert!(sub.recv().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn close_wakes_a_waiting_member() {
        let bus = InProcessBus::new(8);
        let mut sub = bus.subscribe(Topic::Results, "g").await.unwrap();
        let waiting = tokio::spawn(async move { sub.recv().await.unwrap() });
        tokio::task::yield_now().await;
        bus.close(Topic::Results).await;
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(got.is_none());
    }

    #[tokio::test]
    async fn a_full_queue_applies_back_pressure_without_loss() {
        let bus = InProcessBus::new(2);
        let mut sub = bus.subscribe(Topic::jobs("default"), "g").await.unwrap();
        for _ in 0..2 {
            bus.publish(Topic::jobs("default"), Uuid::nil(), Bytes::new())
                .await
                .unwrap();
        }
        assert_eq!(bus.depth(Topic::jobs("default"), "g"), 2);
        let producer = {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.publish(
                    Topic::jobs("default"),
                    Uuid::nil(),
                    Bytes::from_static(b"3"),
                )
                .await
            })
        };
        tokio::task::yield_now().await;
        assert!(
            !producer.is_finished(),
            "publish waits while the queue is full"
        );
        for _ in 0..3 {
            sub.recv().await.unwrap().unwrap();
        }
        producer.await.unwrap().unwrap();
    }
}
