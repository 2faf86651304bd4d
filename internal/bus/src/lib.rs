//! The two streams of the pipeline, jobs and results: the [`Bus`] trait and its
//! implementations.
//!
//! Semantics follow Kafka's, so that the in-process bus and a broker behave alike:
//! - messages carry a key (the monitor id) and an opaque payload (JSON);
//! - each consumer *group* receives every message of a topic; the members of one group share
//!   them (each message goes to one member);
//! - a consumer acknowledges a message after its side effect is durable (at-least-once).
//!
//! Layout: this file has the trait (the port) and helpers; [`memory`] the in-process
//! implementation; `contract` (behind the `contract` feature, for drivers' tests) the behaviour
//! every implementation must show. The Kafka implementation is a driver of its own,
//! `upwatch-bus-kafka`, so that nothing that only needs the port builds librdkafka.

#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

pub use memory::InProcessBus;
pub use upwatch_core::check::DEFAULT_REGION;

/// The streams of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Due checks of one region, from the scheduler to that region's workers (on Kafka the
    /// topic `<jobs topic>.<region>`, `upwatch.jobs.eu-west`).
    Jobs(Arc<str>),
    /// Check results of every region, from the workers to the logger, cache updater and
    /// alerter.
    Results,
}

impl Topic {
    /// The jobs of `region`'s workers.
    pub fn jobs(region: &str) -> Topic {
        Topic::Jobs(Arc::from(region))
    }

    /// Short name for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Topic::Jobs(_) => "jobs",
            Topic::Results => "results",
        }
    }

    /// The region of a jobs topic.
    pub fn region(&self) -> Option<&str> {
        match self {
            Topic::Jobs(region) => Some(region),
            Topic::Results => None,
        }
    }
}

/// Consumer group names, one per role that reads a stream.
pub mod groups {
    /// The workers of the default region (`upwatch-workers`); see [`workers`].
    pub const WORKERS: &str = "upwatch-workers";

    /// The consumer group of `region`'s workers: `upwatch-workers`, or
    /// `upwatch-workers-<region>` for a region other than the default one.
    pub fn workers(region: &str) -> String {
        if region == upwatch_core::check::DEFAULT_REGION {
            WORKERS.to_string()
        } else {
            format!("{WORKERS}-{region}")
        }
    }

    pub const LOGGER: &str = "upwatch-logger";
    pub const CACHE: &str = "upwatch-cache";
    pub const ALERTER: &str = "upwatch-alerter";
}

/// What can go wrong on a bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker could not be reached or refused the operation; worth retrying.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The topic was closed for shutdown; nothing more can be published.
    #[error("topic {0} is closed")]
    Closed(&'static str),
    /// A payload could not be encoded or decoded.
    #[error("bad message: {0}")]
    Codec(#[from] serde_json::Error),
}

pub type BusResult<T> = Result<T, BusError>;

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub key: Uuid,
    pub payload: Bytes,
    /// Where the message sits in its stream (a Kafka partition; 0 in process).
    pub partition: i32,
    /// Its position in the partition; acknowledging it covers everything before it.
    pub offset: i64,
}

impl Message {
    /// Decodes the JSON payload.
    pub fn decode<T: DeserializeOwned>(&self) -> BusResult<T> {
        Ok(serde_json::from_slice(&self.payload)?)
    }
}

/// A topic-based message bus with consumer groups.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes one message. Returns once the bus has accepted it (for a broker: it is
    /// acknowledged); waits while the bus applies back-pressure.
    async fn publish(&self, topic: Topic, key: Uuid, payload: Bytes) -> BusResult<()>;

    /// Joins consumer group `group` on `topic`. Only messages published after the first member
    /// of a group joined are guaranteed to reach it (later members share the group's queue).
    async fn subscribe(&self, topic: Topic, group: &str) -> BusResult<Box<dyn Subscription>>;

    /// Ends a topic for shutdown: publishing fails with [`BusError::Closed`], and subscribers
    /// receive what is queued and then `None`. Brokers are shared by many processes, so for
    /// them this only stops this process's own consumers.
    async fn close(&self, topic: Topic);

    /// Whether the bus answers now (for a broker: it returned its metadata within a couple of
    /// seconds), for `/readyz`. The in-process bus always does.
    async fn ping(&self) -> BusResult<()> {
        Ok(())
    }

    /// How far group `group` is behind on each partition of `topic`: the partition's end
    /// offset minus the group's committed offset, by partition. `None` where the bus has no
    /// partitions to report (the in-process bus, whose queue depth is a metric of its own).
    async fn consumer_lag(
        &self,
        topic: Topic,
        group: &str,
    ) -> BusResult<Option<Vec<PartitionLag>>> {
        let _ = (topic, group);
        Ok(None)
    }
}

/// The consumer lag of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    /// Messages published to the partition and not yet committed by the group.
    pub lag: i64,
}

/// A member of a consumer group.
#[async_trait]
pub trait Subscription: Send {
    /// The next message, or `None` once the topic is closed and drained.
    async fn recv(&mut self) -> BusResult<Option<Message>>;
    /// Records that `message` is processed. Acknowledgements may come in any order; a bus
    /// resumes a group after the oldest message not yet acknowledged.
    async fn ack(&mut self, message: &Message) -> BusResult<()>;
}

/// Encodes `value` as JSON and publishes it.
pub async fn publish_json<T: Serialize + ?Sized>(
    bus: &dyn Bus,
    topic: Topic,
    key: Uuid,
    value: &T,
) -> BusResult<()> {
    let payload = Bytes::from(serde_json::to_vec(value)?);
    bus.publish(topic, key, payload).await
}
