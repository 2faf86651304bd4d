//! The Kafka bus against a real Kafka-protocol broker (nisshi, started by `deploy/test.sh`, which
//! exports its address as `UPWATCH_TEST_KAFKA_BROKERS`). Each test uses its own topics and its
//! own consumer group prefix, so the tests can share one broker and run in parallel.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use upwatch_bus::{contract, Bus, BusError, Message, Subscription, Topic};
use upwatch_bus_kafka::{KafkaBus, KafkaConfig};
use uuid::Uuid;

/// Generous: joining a group and rebalancing take seconds.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long one member is polled before the next one gets its turn.
const TURN: Duration = Duration::from_millis(200);
const PARTITIONS: i32 = 3;

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The broker of the test run; panics when there is none, so that no test passes silently.
fn brokers() -> String {
    let brokers = std::env::var("UPWATCH_TEST_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "UPWATCH_TEST_KAFKA_BROKERS is not set: run `bash deploy/test.sh`, which starts a \
             nisshi broker and exports its address"
        )
    });
    for broker in brokers.split(',') {
        let host = broker.trim().rsplit_once(':').map_or("", |(host, _)| host);
        assert!(
            matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
            "UPWATCH_TEST_KAFKA_BROKERS must name loopback brokers only, got {broker:?}"
        );
    }
    brokers
}

/// A configuration with fresh topics and a fresh group prefix.
fn fresh_config() -> KafkaConfig {
    init_logs();
    let id = Uuid::new_v4().simple().to_string();
    KafkaConfig {
        brokers: brokers(),
        jobs_topic: format!("upwatch.jobs.{id}"),
        regions: vec!["default".to_string(), "a".to_string(), "b".to_string()],
        results_topic: format!("upwatch.results.{id}"),
        partitions: PARTITIONS,
        replication: 1,
        group_prefix: format!("test-{id}-"),
        client_id: "upwatch-test".to_string(),
        properties: Vec::new(),
    }
}

async fn connect(config: &KafkaConfig) -> KafkaBus {
    KafkaBus::connect(config.clone())
        .await
        .expect("connect to the test broker")
}

async fn fresh_bus() -> KafkaBus {
    connect(&fresh_config()).await
}

/// The next message, within the deadline.
async fn next(sub: &mut dyn Subscription) -> Message {
    tokio::time::timeout(DEADLINE, sub.recv())
        .await
        .expect("a message within the deadline")
        .expect("recv")
        .expect("topic open")
}

/// A message if one arrives within one turn.
async fn poll(sub: &mut dyn Subscription) -> Option<Message> {
    match tokio::time::timeout(TURN, sub.recv()).await {
        Err(_elapsed) => None,
        Ok(received) => Some(received.expect("recv").expect("topic open")),
    }
}

fn number(message: &Message) -> u32 {
    std::str::from_utf8(&message.payload)
        .expect("utf-8 payload")
        .parse()
        .expect("numeric payload")
}

async fn publish_number(bus: &KafkaBus, topic: Topic, key: Uuid, n: u32) {
    bus.publish(topic, key, Bytes::from(n.to_string()))
        .await
        .expect("publish");
}

#[tokio::test]
async fn contract_every_group_gets_every_message() {
    contract::every_group_gets_every_message(&fresh_bus().await).await;
}

#[tokio::test]
async fn contract_members_of_a_group_share_messages() {
    contract::members_of_a_group_share_messages(&fresh_bus().await).await;
}

#[tokio::test]
async fn contract_each_region_gets_only_its_jobs() {
    contract::each_region_gets_only_its_jobs(&fresh_bus().await).await;
}

#[tokio::test]
async fn contract_one_key_keeps_its_order() {
    contract::one_key_keeps_its_order(&fresh_bus().await).await;
}

#[tokio::test]
async fn contract_an_empty_payload_arrives_empty() {
    contract::an_empty_payload_arrives_empty(&fresh_bus().await).await;
}

#[tokio::test]
async fn contract_close_ends_the_topic() {
    contract::close_ends_the_topic(&fresh_bus().await).await;
}

/// Acks 1..=10 except 5 (in reverse order, as a worker pool finishing out of order would), closes,
/// and restarts: the new member resumes at 5 (at-least-once), never at the acked 1..=4.
#[tokio::test]
async fn out_of_order_acks_resume_at_the_oldest_unacked_message() {
    let config = fresh_config();
    let bus = connect(&config).await;
    let mut sub = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    // One key: all ten share a partition, in order.
    let key = Uuid::now_v7();
    for n in 1..=10 {
        publish_number(&bus, Topic::jobs("default"), key, n).await;
    }
    let mut received = Vec::new();
    for _ in 1..=10 {
        received.push(next(sub.as_mut()).await);
    }
    assert_eq!(
        received.iter().map(number).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    for message in received.iter().rev().filter(|m| number(m) != 5) {
        sub.ack(message).await.expect("ack");
    }
    bus.close(Topic::jobs("default")).await;
    assert!(sub.recv().await.unwrap().is_none(), "closed after close");
    // `close` committed synchronously, while this member is still in the group: the group
    // resumes at message 5.
    let five = &received[4];
    assert_eq!(
        committed_offset(&config, "workers", five.partition).await,
        Some(five.offset)
    );
    drop(sub);

    let restarted = connect(&config).await;
    let mut sub = restarted
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    publish_number(&restarted, Topic::jobs("default"), key, 11).await;
    let mut got = Vec::new();
    while got.last() != Some(&11) {
        let message = next(sub.as_mut()).await;
        sub.ack(&message).await.expect("ack");
        got.push(number(&message));
    }
    assert_eq!(got, (5..=11).collect::<Vec<_>>());
}

/// The offset committed by `group` (unprefixed) on the jobs topic's `partition`, if any.
async fn committed_offset(config: &KafkaConfig, group: &str, partition: i32) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", config.group_id(group))
        .create()
        .expect("offset query consumer");
    let jobs = config.topic_name(&Topic::jobs("default"));
    let mut list = TopicPartitionList::new();
    list.add_partition(&jobs, partition);
    let committed = tokio::task::spawn_blocking(move || consumer.committed_offsets(list, DEADLINE))
        .await
        .expect("offset query task")
        .expect("committed offsets");
    let element = committed
        .find_partition(&jobs, partition)
        .expect("the queried partition");
    match element.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// `count` random keys. With 40 or more, every one of the three partitions gets some of them
/// with overwhelming probability (the tests check it rather than assume it).
fn random_keys(count: usize) -> Vec<Uuid> {
    (0..count).map(|_| Uuid::new_v4()).collect()
}

/// Receives until every key of `wanted` has arrived; returns everything received (acked).
async fn receive_all(sub: &mut dyn Subscription, wanted: &HashSet<Uuid>) -> Vec<Message> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    while !wanted.is_subset(&seen) {
        assert!(
            Instant::now() < deadline,
            "only {} of {} arrived",
            wanted.intersection(&seen).count(),
            wanted.len()
        );
        if let Some(message) = poll(sub).await {
            sub.ack(&message).await.expect("ack");
            seen.insert(message.key);
            all.push(message);
        }
    }
    all
}

/// Acked messages are committed on close: a re-subscribed member of the group gets only what
/// was published afterwards.
#[tokio::test]
async fn committed_offsets_survive_close_and_resubscribe() {
    let config = fresh_config();
    let bus = connect(&config).await;
    let mut sub = bus.subscribe(Topic::Results, "logger").await.unwrap();
    let first: Vec<Uuid> = random_keys(12);
    for (n, key) in first.iter().enumerate() {
        publish_number(&bus, Topic::Results, *key, n as u32).await;
    }
    let received = receive_all(sub.as_mut(), &first.iter().copied().collect()).await;
    assert_eq!(received.len(), first.len(), "no duplicates in one session");
    bus.close(Topic::Results).await;
    drop(sub);

    let restarted = connect(&config).await;
    let mut sub = restarted.subscribe(Topic::Results, "logger").await.unwrap();
    // Sentinels on every partition: a redelivered message would arrive before its partition's
    // sentinel, so once all sentinels are in, nothing old can still come.
    let sentinels = random_keys(40);
    for key in &sentinels {
        publish_number(&restarted, Topic::Results, *key, 1000).await;
    }
    let sentinel_set: HashSet<Uuid> = sentinels.iter().copied().collect();
    let received = receive_all(sub.as_mut(), &sentinel_set).await;
    let partitions: BTreeSet<i32> = received.iter().map(|m| m.partition).collect();
    assert_eq!(
        partitions,
        (0..PARTITIONS).collect(),
        "the sentinels cover every partition"
    );
    let old: Vec<&Message> = received
        .iter()
        .filter(|m| !sentinel_set.contains(&m.key))
        .collect();
    assert!(old.is_empty(), "acked messages were redelivered: {old:?}");
}

/// A member that goes away without `close` loses its partitions to the surviving member, which
/// then receives everything published afterwards.
#[tokio::test]
async fn a_dropped_members_partitions_move_to_the_survivor() {
    let bus = fresh_bus().await;
    let mut doomed = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();
    let mut survivor = bus
        .subscribe(Topic::jobs("default"), "workers")
        .await
        .unwrap();

    // Both members must own partitions before one goes: publish until each received something.
    let deadline = Instant::now() + DEADLINE;
    let (mut doomed_got, mut survivor_got) = (0, 0);
    while doomed_got == 0 || survivor_got == 0 {
        assert!(
            Instant::now() < deadline,
            "both members did not get partitions (doomed {doomed_got}, survivor {survivor_got})"
        );
        for _ in 0..PARTITIONS {
            publish_number(&bus, Topic::jobs("default"), Uuid::new_v4(), 0).await;
        }
        for (sub, got) in [
            (&mut doomed, &mut doomed_got),
            (&mut survivor, &mut survivor_got),
        ] {
            while let Some(message) = poll(sub.as_mut()).await {
                sub.ack(&message).await.expect("ack");
                *got += 1;
            }
        }
    }
    drop(doomed);

    let after = random_keys(45);
    for key in &after {
        publish_number(&bus, Topic::jobs("default"), *key, 1).await;
    }
    let after_set: HashSet<Uuid> = after.iter().copied().collect();
    let received = receive_all(survivor.as_mut(), &after_set).await;
    let partitions: BTreeSet<i32> = received
        .iter()
        .filter(|m| after_set.contains(&m.key))
        .map(|m| m.partition)
        .collect();
    assert_eq!(
        partitions,
        (0..PARTITIONS).collect(),
        "the survivor consumes every partition"
    );
}

/// A record with a key that is not a uuid and no payload (written by another producer) arrives
/// with the nil key and an empty payload.
#[tokio::test]
async fn a_foreign_key_and_a_missing_payload_are_tolerated() {
    let config = fresh_config();
    let bus = connect(&config).await;
    let mut sub = bus.subscribe(Topic::Results, "alerter").await.unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .expect("raw producer");
    producer
        .send(
            FutureRecord::<str, [u8]>::to(&config.results_topic).key("not-a-uuid"),
            DEADLINE,
        )
        .await
        .expect("raw publish");
    let key = Uuid::now_v7();
    bus.publish(Topic::Results, key, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let message = next(sub.as_mut()).await;
        sub.ack(&message).await.unwrap();
        got.push((message.key, message.payload));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            (Uuid::nil(), Bytes::new()),
            (key, Bytes::from_static(b"{}"))
        ]
    );
}

/// Publishing to a closed topic fails with `Closed`; the broker is not involved.
#[tokio::test]
async fn publishing_to_a_closed_topic_is_refused() {
    let bus = fresh_bus().await;
    bus.close(Topic::Results).await;
    let result = bus
        .publish(Topic::Results, Uuid::now_v7(), Bytes::new())
        .await;
    assert!(
        matches!(result, Err(BusError::Closed("results"))),
        "{result:?}"
    );
}

/// `connect` gives up on a port where no broker listens, with `Unavailable`, in bounded time.
#[tokio::test]
async fn connect_without_a_broker_is_unavailable() {
    init_logs();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = KafkaConfig {
        brokers: format!("127.0.0.1:{port}"),
        ..KafkaConfig::default()
    };
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), KafkaBus::connect(config))
        .await
        .expect("connect gives up by itself");
    let elapsed = started.elapsed();
    match result {
        Err(BusError::Unavailable(reason)) => {
            assert!(reason.contains(&port.to_string()), "{reason}")
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(15),
        "connect took {elapsed:?}"
    );
}

/// The consumer lag the watchdog reads: per partition, what was published and not yet
/// committed by the group; it falls to zero once the group has acknowledged everything (the
/// acknowledged offsets are committed in the background).
#[tokio::test]
async fn consumer_lag_counts_what_the_group_has_not_committed() {
    let bus = fresh_bus().await;
    let mut sub = bus
        .subscribe(Topic::jobs("default"), "lagging")
        .await
        .unwrap();
    for i in 0..30 {
        bus.publish(
            Topic::jobs("default"),
            Uuid::new_v4(),
            Bytes::from(format!("job {i}")),
        )
        .await
        .unwrap();
    }
    let lag = bus
        .consumer_lag(Topic::jobs("default"), "lagging")
        .await
        .unwrap()
        .expect("kafka reports partitions");
    let partitions: BTreeSet<i32> = lag.iter().map(|l| l.partition).collect();
    assert_eq!(partitions, (0..PARTITIONS).collect());
    assert_eq!(lag.iter().map(|l| l.lag).sum::<i64>(), 30, "{lag:?}");
    // A group that never consumed is behind by everything too.
    let never = bus
        .consumer_lag(Topic::jobs("default"), "absent")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(never.iter().map(|l| l.lag).sum::<i64>(), 30, "{never:?}");

    for _ in 0..30 {
        let message = next(sub.as_mut()).await;
        sub.ack(&message).await.unwrap();
    }
    let started = Instant::now();
    loop {
        let lag = bus
            .consumer_lag(Topic::jobs("default"), "lagging")
            .await
            .unwrap()
            .unwrap();
        if lag.iter().all(|l| l.lag == 0) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "still behind: {lag:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
