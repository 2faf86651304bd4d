//! The Kafka driver of the [`Bus`] port, the bus of the distributed mode, built on librdkafka
//! (`rdkafka`).
//!
//! - One idempotent [`FutureProducer`] per bus publishes with `acks=all`; each message is keyed
//!   by its monitor id, so one monitor's messages share a partition and keep their order.
//!   `publish` waits for the delivery report; failures are logged and counted.
//! - Each subscription is its own group member (a [`StreamConsumer`]). Consumption is
//!   at-least-once: offsets are stored only when the caller acknowledges a message
//!   (`enable.auto.offset.store=false`) and committed by the auto-commit timer, on a rebalance,
//!   on close and when the member leaves.
//! - Acknowledgements may come out of order (a worker pool finishes jobs in any order): per
//!   partition the subscription tracks the offsets received but not yet acknowledged, and stores
//!   the smallest of them, so a restart resumes at the oldest unfinished message.
//! - Members send heartbeats every second with a 10 s session timeout, so the partitions of a
//!   member that dies without leaving move to the others within seconds of the expiry. The
//!   distributed tests verify this on nisshi 0.8.1 (`deploy/test.sh`); Apache Kafka's group
//!   protocol promises it. tansu 0.6.0 does not keep it: it notices the expiry but hands the
//!   survivors their previous assignment, so the dead member's partitions are orphaned until
//!   the next member joins. Do not use tansu.
//! - Consumers ask the broker to answer a fetch within [`FETCH_WAIT_MS`] (250 ms, half of
//!   librdkafka's default): at 2,400 checks/s on nisshi this took the due-to-stored p99 from
//!   1.0 s to 0.79 s for 7% more of a core in the broker (100 ms: 0.75 s for 24% more).
//!   `UPWATCH_KAFKA_PROPERTIES` may set another `fetch.wait.max.ms`.
//! - The partition assignment strategy is librdkafka's default, `range,roundrobin`; failover
//!   was verified with it, `range` and `roundrobin` only. `upwatch-config` refuses others unless
//!   allowed, and `connect` warns about them.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use upwatch_bus::{Bus, BusError, BusResult, Message, PartitionLag, Subscription, Topic};
use upwatch_config::{
    is_verified_assignment_strategy, ASSIGNMENT_STRATEGY_PROPERTY, VERIFIED_ASSIGNMENT_STRATEGIES,
};

/// How long the broker may hold a consumer's fetch while it has nothing new (librdkafka's
/// `fetch.wait.max.ms`; its default is 500). Every job and result waits for a fetch, so this
/// bounds part of the pipeline's delay; shorter costs the broker more fetches to answer.
pub const FETCH_WAIT_MS: &str = "250";

/// How long one request of [`Bus::consumer_lag`] may take.
const LAG_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `connect` waits for the brokers to answer, and for the topics to be created.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `/readyz` waits for the broker's metadata.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long librdkafka keeps trying to deliver one message before `publish` fails.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `close` waits for the synchronous commit of one member.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(15);
/// The `partition.assignment.strategy` of `properties` when it is not one of the verified
/// ones (`upwatch_config` owns the list and reads values as librdkafka does).
fn unverified_assignment_strategy(properties: &[(String, String)]) -> Option<&str> {
    properties
        .iter()
        .filter(|(key, _)| key == ASSIGNMENT_STRATEGY_PROPERTY)
        .map(|(_, value)| value.as_str())
        .find(|value| !is_verified_assignment_strategy(value))
}

/// Settings of a [`KafkaBus`].
#[derive(Clone)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma separated `host:port` pairs.
    pub brokers: String,
    /// The stem of the jobs topics: region `r`'s jobs go to `<jobs_topic>.<r>`
    /// (`upwatch.jobs.eu-west`).
    pub jobs_topic: String,
    /// The regions whose jobs topics `connect` creates (the scheduler's `UPWATCH_REGIONS` and
    /// the worker's own region).
    pub regions: Vec<String>,
    /// The topic of [`Topic::Results`].
    pub results_topic: String,
    /// Partitions of each topic when `connect` creates it.
    pub partitions: i32,
    /// Replication factor of each topic when `connect` creates it.
    pub replication: i32,
    /// Prepended to every consumer group name (to share one cluster between deployments).
    pub group_prefix: String,
    /// The `client.id` the brokers see.
    pub client_id: String,
    /// Extra librdkafka properties (SASL, TLS, ...) applied to the producer, the consumers and
    /// the admin client; they override the bus's own settings.
    pub properties: Vec<(String, String)>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".to_string(),
            jobs_topic: "upwatch.jobs".to_string(),
            regions: vec![upwatch_bus::DEFAULT_REGION.to_string()],
            results_topic: "upwatch.results".to_string(),
            partitions: 12,
            replication: 1,
            group_prefix: String::new(),
            client_id: "upwatch".to_string(),
            properties: Vec::new(),
        }
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret(key) { "<redacted>" } else { value };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("jobs_topic", &self.jobs_topic)
            .field("regions", &self.regions)
            .field("results_topic", &self.results_topic)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("group_prefix", &self.group_prefix)
            .field("client_id", &self.client_id)
            .field("properties", &properties)
            .finish()
    }
}

/// Whether a librdkafka property holds a credential that must never be logged.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "sasl.oauthbearer.config", "key.pem"]
        .iter()
        .any(|word| key.contains(word))
}

impl KafkaConfig {
    /// The Kafka topic that carries `topic`.
    pub fn topic_name(&self, topic: &Topic) -> String {
        match topic {
            Topic::Jobs(region) => format!("{}.{region}", self.jobs_topic),
            Topic::Results => self.results_topic.clone(),
        }
    }

    /// The consumer group id of the role group `group`.
    pub fn group_id(&self, group: &str) -> String {
        format!("{}{}", self.group_prefix, group)
    }

    /// The librdkafka settings shared by every client, with `own` settings in between the
    /// common ones and the user's `properties` (which win).
    fn client_config(&self, own: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("socket.connection.setup.timeout.ms", "10000");
        for (key, value) in own {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Forwards librdkafka's logs and client errors to `tracing`.
#[derive(Clone, Copy, Default)]
struct LogContext;

fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
    }
}

fn log_client_error(error: &KafkaError, reason: &str) {
    tracing::warn!(error = %error, reason, "kafka client error");
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

/// The lag probe's consumer never joins its group, so it needs no rebalance handling.
impl ConsumerContext for LogContext {}

/// A [`Bus`] on Kafka topics. Cloning shares the producer and the topic state.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    producer: FutureProducer<LogContext>,
    jobs: TopicState,
    results: TopicState,
    delivery_failures: AtomicU64,
}

/// This process's side of one topic.
#[derive(Default)]
struct TopicState {
    /// Cancelled by `close`: subscriptions end and publishing fails.
    closed: CancellationToken,
    /// The live members subscribed through this bus, committed by `close`.
    consumers: Mutex<Vec<Weak<GroupConsumer>>>,
}

type GroupConsumer = StreamConsumer<GroupContext>;

impl Inner {
    /// One state for every jobs topic: a process consumes the jobs of its own region only,
    /// and closing "the jobs" ends them all.
    fn state(&self, topic: &Topic) -> &TopicState {
        match topic {
            Topic::Jobs(_) => &self.jobs,
            Topic::Results => &self.results,
        }
    }
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Connects to the brokers and creates the two topics when they are missing.
    ///
    /// Fails with [`BusError::Unavailable`] when no broker answers within about ten seconds or
    /// the topics cannot be created.
    pub async fn connect(config: KafkaConfig) -> BusResult<KafkaBus> {
        if let Some(strategy) = unverified_assignment_strategy(&config.properties) {
            tracing::warn!(
                strategy,
                verified = ?VERIFIED_ASSIGNMENT_STRATEGIES,
                "UNVERIFIED partition.assignment.strategy: upwatch has not verified that consumer \
                 groups fail over with it (a killed member's partitions may never move to the \
                 others); use range, roundrobin or range,roundrobin (librdkafka's default)"
            );
        }
        let message_timeout = MESSAGE_TIMEOUT.as_millis().to_string();
        let producer: FutureProducer<LogContext> = config
            .client_config(&[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("message.timeout.ms", &message_timeout),
            ])
            .create_with_context(LogContext)
            .map_err(|e| {
                BusError::Unavailable(format!("invalid kafka producer configuration: {e}"))
            })?;

        // The producer connects lazily; asking for metadata proves that a broker answers.
        let probe = producer.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(None, CONNECT_TIMEOUT)
                .map(|m| m.brokers().len())
        })
        .await
        .map_err(|e| BusError::Unavailable(format!("kafka metadata probe failed: {e}")))?;
        let brokers = metadata.map_err(|e| {
            BusError::Unavailable(format!(
                "no kafka broker of {} answered within {} s: {e}",
                config.brokers,
                CONNECT_TIMEOUT.as_secs()
            ))
        })?;
        tracing::info!(
            brokers = %config.brokers,
            cluster_brokers = brokers,
            client_id = %config.client_id,
            "connected to kafka"
        );

        create_topics(&config).await?;

        Ok(KafkaBus {
            inner: Arc::new(Inner {
                config,
                producer,
                jobs: TopicState::default(),
                results: TopicState::default(),
                delivery_failures: AtomicU64::new(0),
            }),
        })
    }

    /// The settings this bus was connected with.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// Messages that librdkafka failed to deliver since `connect` (for a metric).
    pub fn delivery_failures(&self) -> u64 {
        self.inner.delivery_failures.load(Ordering::Relaxed)
    }
}

/// Creates the jobs and results topics; topics that already exist are left as they are.
async fn create_topics(config: &KafkaConfig) -> BusResult<()> {
    let admin: AdminClient<LogContext> = config
        .client_config(&[])
        .create_with_context(LogContext)
        .map_err(|e| BusError::Unavailable(format!("invalid kafka admin configuration: {e}")))?;
    let mut names: Vec<String> = config
        .regions
        .iter()
        .map(|region| config.topic_name(&Topic::jobs(region)))
        .collect();
    names.push(config.results_topic.clone());
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                config.partitions,
                TopicReplication::Fixed(config.replication),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(CONNECT_TIMEOUT))
        .request_timeout(Some(CONNECT_TIMEOUT));
    let results = tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(2),
        admin.create_topics(&topics, &options),
    )
    .await
    .map_err(|_| {
        BusError::Unavailable(format!(
            "kafka did not create the topics within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|e| BusError::Unavailable(format!("kafka refused to create the topics: {e}")))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(
                topic = %name,
                partitions = config.partitions,
                replication = config.replication,
                "created kafka topic"
            ),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "kafka topic exists")
            }
            Err((name, code)) => {
                return Err(BusError::Unavailable(format!(
                    "kafka refused to create topic {name}: {code}"
                )))
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, topic: Topic, key: Uuid, payload: Bytes) -> BusResult<()> {
        if self.inner.state(&topic).closed.is_cancelled() {
            return Err(BusError::Closed(topic.as_str()));
        }
        let name = self.inner.config.topic_name(&topic);
        let name = name.as_str();
        let mut buffer = Uuid::encode_buffer();
        let key_text: &str = key.hyphenated().encode_lower(&mut buffer);
        let record = FutureRecord::to(name).key(key_text).payload(&payload[..]);
        // The queue timeout bounds the wait while librdkafka's local queue is full
        // (back-pressure); the delivery itself is bounded by `message.timeout.ms`.
        match self.inner.producer.send(record, MESSAGE_TIMEOUT).await {
            Ok(delivery) => {
                tracing::trace!(
                    topic = name,
                    key = %key,
                    partition = delivery.partition,
                    offset = delivery.offset,
                    "published"
                );
                Ok(())
            }
            Err((error, _message)) => {
                let failures = self.inner.delivery_failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    topic = name,
                    key = %key,
                    error = %error,
                    failures,
                    "kafka delivery failed"
                );
                Err(BusError::Unavailable(format!(
                    "kafka did not accept the message on {name}: {error}"
                )))
            }
        }
    }

    async fn subscribe(&self, topic: Topic, group: &str) -> BusResult<Box<dyn Subscription>> {
        let state = self.inner.state(&topic);
        if state.closed.is_cancelled() {
            return Err(BusError::Closed(topic.as_str()));
        }
        let config = &self.inner.config;
        let name = config.topic_name(&topic);
        let group_id = config.group_id(group);
        let context = GroupContext {
            topic: name.clone(),
            group: group_id.clone(),
            tracking: Mutex::new(HashMap::new()),
        };
        let consumer: GroupConsumer = config
            .client_config(&[
                ("group.id", &group_id),
                ("enable.auto.commit", "true"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "1000"),
                ("fetch.wait.max.ms", FETCH_WAIT_MS),
            ])
            .create_with_context(context)
            .map_err(|e| {
                BusError::Unavailable(format!("invalid kafka consumer configuration: {e}"))
            })?;
        consumer.subscribe(&[&name]).map_err(|e| {
            BusError::Unavailable(format!("could not subscribe to kafka topic {name}: {e}"))
        })?;
        let consumer = Arc::new(consumer);
        {
            let mut consumers = state.consumers.lock().expect("consumer list lock");
            consumers.retain(|c| c.strong_count() > 0);
            consumers.push(Arc::downgrade(&consumer));
        }
        tracing::info!(topic = %name, group = %group_id, "subscribed to kafka topic");
        Ok(Box::new(KafkaSubscription {
            consumer: Some(consumer),
            topic: name,
            closed: state.closed.clone(),
        }))
    }

    /// Asks a broker for the results topic's metadata through the producer's connections.
    async fn ping(&self) -> BusResult<()> {
        let name = self.inner.config.topic_name(&Topic::Results);
        let producer = self.inner.producer.clone();
        let answered = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), PING_TIMEOUT)
                .map(|_| ())
        })
        .await;
        match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(BusError::Unavailable(format!(
                "the kafka broker did not answer within {} s: {error}",
                PING_TIMEOUT.as_secs()
            ))),
            Err(error) => Err(BusError::Unavailable(format!(
                "the kafka broker could not be asked: {error}"
            ))),
        }
    }

    /// Reads the group's committed offsets and each partition's end offset with a short-lived
    /// client of the group that never joins it (no rebalance is caused).
    async fn consumer_lag(
        &self,
        topic: Topic,
        group: &str,
    ) -> BusResult<Option<Vec<PartitionLag>>> {
        let config = &self.inner.config;
        let name = config.topic_name(&topic);
        let group_id = config.group_id(group);
        let client: BaseConsumer<LogContext> = config
            .client_config(&[("group.id", &group_id), ("enable.auto.commit", "false")])
            .create_with_context(LogContext)
            .map_err(|e| {
                BusError::Unavailable(format!("invalid kafka consumer configuration: {e}"))
            })?;
        let lag = tokio::task::spawn_blocking(move || -> KafkaResult<Vec<PartitionLag>> {
            let metadata = client.fetch_metadata(Some(&name), LAG_TIMEOUT)?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut wanted = TopicPartitionList::new();
            for partition in &partitions {
                wanted.add_partition(&name, *partition);
            }
            let committed = client.committed_offsets(wanted, LAG_TIMEOUT)?;
            let mut lag = Vec::with_capacity(partitions.len());
            for partition in partitions {
                let (low, high) = client.fetch_watermarks(&name, partition, LAG_TIMEOUT)?;
                let done = committed
                    .find_partition(&name, partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(at) => Some(at),
                        _ => None,
                    })
                    .unwrap_or(low);
                lag.push(PartitionLag {
                    partition,
                    lag: (high - done).max(0),
                });
            }
            Ok(lag)
        })
        .await
        .map_err(|e| BusError::Unavailable(format!("kafka lag probe failed: {e}")))?
        .map_err(|e| {
            BusError::Unavailable(format!("cannot read the consumer lag of {group_id}: {e}"))
        })?;
        Ok(Some(lag))
    }

    async fn close(&self, topic: Topic) {
        let state = self.inner.state(&topic);
        state.closed.cancel();
        let consumers: Vec<Arc<GroupConsumer>> = state
            .consumers
            .lock()
            .expect("consumer list lock")
            .drain(..)
            .filter_map(|c| c.upgrade())
            .collect();
        let name = self.inner.config.topic_name(&topic);
        for consumer in consumers {
            let group = consumer.context().group.clone();
            let commit = tokio::task::spawn_blocking(move || {
                consumer.commit_consumer_state(CommitMode::Sync)
            });
            match tokio::time::timeout(COMMIT_TIMEOUT, commit).await {
                Ok(Ok(Ok(()))) => {
                    tracing::info!(topic = %name, group = %group, "committed kafka offsets")
                }
                Ok(Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => {
                    tracing::debug!(topic = %name, group = %group, "no kafka offsets to commit")
                }
                Ok(Ok(Err(error))) => tracing::warn!(
                    topic = %name,
                    group = %group,
                    error = %error,
                    "could not commit kafka offsets on close"
                ),
                Ok(Err(error)) => tracing::warn!(
                    topic = %name,
                    group = %group,
                    error = %error,
                    "kafka commit task failed"
                ),
                Err(_) => tracing::warn!(
                    topic = %name,
                    group = %group,
                    "kafka commit on close timed out"
                ),
            }
        }
        tracing::info!(topic = %name, "closed kafka topic");
    }
}

/// The consumer context of one group member: logs, and forgets the acknowledgement tracking of
/// partitions taken away by a rebalance.
struct GroupContext {
    topic: String,
    group: String,
    tracking: Mutex<HashMap<i32, PartitionTracker>>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

impl GroupContext {
    /// Drops the tracking of the partitions of our topic in `list`.
    fn forget(&self, list: &TopicPartitionList) -> Vec<i32> {
        let mut tracking = self.tracking.lock().expect("tracking lock");
        let partitions: Vec<i32> = list
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect();
        for partition in &partitions {
            tracking.remove(partition);
        }
        partitions
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                // librdkafka commits the stored offsets of revoked partitions itself; messages
                // received but not acknowledged will be delivered again to the new owner.
                let partitions = self.forget(list);
                tracing::info!(
                    topic = %self.topic,
                    group = %self.group,
                    ?partitions,
                    "kafka partitions revoked"
                );
            }
            Rebalance::Assign(list) => {
                let partitions = self.forget(list);
                tracing::info!(
                    topic = %self.topic,
                    group = %self.group,
                    ?partitions,
                    "kafka partitions assigned"
                );
            }
            Rebalance::Error(error) => tracing::warn!(
                topic = %self.topic,
                group = %self.group,
                error = %error,
                "kafka rebalance failed"
            ),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(
                topic = %self.topic,
                group = %self.group,
                error = %error,
                "kafka offset commit failed"
            ),
        }
    }
}

/// The acknowledgement state of one assigned partition.
#[derive(Debug)]
struct PartitionTracker {
    /// Offsets received and not yet acknowledged.
    pending: BTreeSet<i64>,
    /// One past the last received offset.
    next: i64,
    /// The last offset handed to librdkafka to commit, if any.
    stored: Option<i64>,
}

impl PartitionTracker {
    fn new() -> Self {
        PartitionTracker {
            pending: BTreeSet::new(),
            next: 0,
            stored: None,
        }
    }

    fn received(&mut self, offset: i64) {
        self.pending.insert(offset);
        self.next = self.next.max(offset + 1);
    }

    /// Records the acknowledgement of `offset`; returns the offset to store (where consumption
    /// resumes) when it advances.
    fn acked(&mut self, offset: i64) -> Option<i64> {
        if !self.pending.remove(&offset) {
            return None;
        }
        let resume = self.pending.first().copied().unwrap_or(self.next);
        if self.stored.is_some_and(|stored| stored >= resume) {
            return None;
        }
        self.stored = Some(resume);
        Some(resume)
    }
}

/// One member of a consumer group on one topic.
struct KafkaSubscription {
    /// Always `Some` until dropped.
    consumer: Option<Arc<GroupConsumer>>,
    topic: String,
    closed: CancellationToken,
}

impl KafkaSubscription {
    fn consumer(&self) -> &Arc<GroupConsumer> {
        self.consumer.as_ref().expect("consumer present until drop")
    }

    /// Converts and tracks a received message.
    fn accept(&self, received: &BorrowedMessage<'_>) -> Message {
        let key = received
            .key()
            .and_then(|k| Uuid::try_parse_ascii(k).ok())
            .unwrap_or(Uuid::nil());
        let payload = received
            .payload()
            .map(Bytes::copy_from_slice)
            .unwrap_or_default();
        let message = Message {
            key,
            payload,
            partition: received.partition(),
            offset: received.offset(),
        };
        self.consumer()
            .context()
            .tracking
            .lock()
            .expect("tracking lock")
            .entry(message.partition)
            .or_insert_with(PartitionTracker::new)
            .received(message.offset);
        message
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn recv(&mut self) -> BusResult<Option<Message>> {
        if self.closed.is_cancelled() {
            return Ok(None);
        }
        let consumer = self.consumer().clone();
        tokio::select! {
            biased;
            _ = self.closed.cancelled() => Ok(None),
            received = consumer.recv() => match received {
                Ok(received) => Ok(Some(self.accept(&received))),
                Err(error) => {
                    tracing::warn!(
                        topic = %self.topic,
                        group = %consumer.context().group,
                        error = %error,
                        "kafka consume error"
                    );
                    Err(BusError::Unavailable(format!(
                        "kafka consume error on {}: {error}",
                        self.topic
                    )))
                }
            },
        }
    }

    async fn ack(&mut self, message: &Message) -> BusResult<()> {
        let consumer = self.consumer();
        let context = consumer.context();
        // The lock is held while storing so that a rebalance cannot interleave.
        let mut tracking = context.tracking.lock().expect("tracking lock");
        let Some(tracker) = tracking.get_mut(&message.partition) else {
            tracing::debug!(
                topic = %self.topic,
                group = %context.group,
                partition = message.partition,
                offset = message.offset,
                "ack for a partition no longer assigned"
            );
            return Ok(());
        };
        let Some(resume) = tracker.acked(message.offset) else {
            return Ok(());
        };
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, message.partition, Offset::Offset(resume))
            .map_err(|e| BusError::Unavailable(format!("bad kafka offset {resume}: {e}")))?;
        match consumer.store_offsets(&list) {
            Ok(()) => Ok(()),
            Err(KafkaError::StoreOffset(
                RDKafkaErrorCode::State | RDKafkaErrorCode::UnknownPartition,
            )) => {
                // The partition moved to another member in the meantime; it redelivers.
                tracing::debug!(
                    topic = %self.topic,
                    group = %context.group,
                    partition = message.partition,
                    "ack after the partition was revoked"
                );
                tracking.remove(&message.partition);
                Ok(())
            }
            Err(error) => Err(BusError::Unavailable(format!(
                "could not store kafka offset {resume} of {} partition {}: {error}",
                self.topic, message.partition
            ))),
        }
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        // Dropping a consumer leaves the group and commits, which blocks on the network: keep
        // that off the async worker threads when there is a runtime.
        if let Some(consumer) = self.consumer.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || drop(consumer));
                }
                Err(_) => drop(consumer),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_acks_store_one_past_each() {
        let mut t = PartitionTracker::new();
        for offset in 0..3 {
            t.received(offset);
        }
        assert_eq!(t.acked(0), Some(1));
        assert_eq!(t.acked(1), Some(2));
        assert_eq!(t.acked(2), Some(3));
    }

    #[test]
    fn out_of_order_acks_store_the_oldest_unacked() {
        let mut t = PartitionTracker::new();
        for offset in 10..15 {
            t.received(offset);
        }
        assert_eq!(t.acked(12), Some(10), "10 is still unacked");
        assert_eq!(t.acked(11), None, "the resume point did not move");
        assert_eq!(t.acked(10), Some(13));
        assert_eq!(t.acked(14), None);
        assert_eq!(t.acked(13), Some(15));
    }

    #[test]
    fn unknown_and_repeated_acks_store_nothing() {
        let mut t = PartitionTracker::new();
        t.received(5);
        assert_eq!(t.acked(4), None);
        assert_eq!(t.acked(5), Some(6));
        assert_eq!(t.acked(5), None);
    }

    #[test]
    fn only_unverified_assignment_strategies_are_reported() {
        let props = |values: &[&str]| -> Vec<(String, String)> {
            values
                .iter()
                .map(|v| ("partition.assignment.strategy".to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(unverified_assignment_strategy(&[]), None);
        for verified in ["range", "roundrobin", " range, roundrobin ,range"] {
            assert_eq!(unverified_assignment_strategy(&props(&[verified])), None);
        }
        assert_eq!(
            unverified_assignment_strategy(&props(&["range", "cooperative-sticky"])),
            Some("cooperative-sticky")
        );
    }

    #[test]
    fn secrets_are_redacted_from_debug() {
        let config = KafkaConfig {
            properties: vec![
                ("sasl.username".into(), "upwatch".into()),
                ("sasl.password".into(), "hunter2".into()),
            ],
            ..KafkaConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("upwatch"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
