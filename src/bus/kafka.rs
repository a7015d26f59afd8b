//! The Kafka bus (rdkafka): an idempotent `acks=all` producer whose publish
//! resolves on the delivery report; group consumers with auto-commit off
//! that commit explicitly after the side effect; reply partitions owned by
//! manual assignment (no group, no rebalance). Also topic administration
//! (`akm topics apply`) and the start-up check that topics exist.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::contract::{BusBackend, BusConsumer};
use super::{BusError, Message, Position, Record, Topics};

/// Consumer context that reports when the group gave this member
/// partitions, and numbers each assignment ([`Record::assignment`]).
pub struct Assigned(tokio::sync::watch::Sender<bool>, Arc<AtomicU64>);

impl ClientContext for Assigned {}

impl ConsumerContext for Assigned {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            // Offsets are stored per record and committed in batches: hand
            // over what is done before the partitions go, so the next owner
            // starts after it.
            if let Err(e) = c.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "commit on revoke");
            }
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.1.store(super::new_assignment(), Ordering::Release);
                self.0.send_replace(tpl.count() > 0);
            }
            Rebalance::Revoke(_) => {
                self.1.store(super::new_assignment(), Ordering::Release);
                self.0.send_replace(false);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "consumer group rebalance failed"),
        }
    }
}

type Inner = StreamConsumer<Assigned>;

/// Connection settings of the Kafka bus.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    pub brokers: String,
    /// `fetch.wait.max.ms` of consumers: the consume latency on brokers that
    /// hold fetches (Tansu); low for the reply and worker consumers.
    pub fetch_wait_ms: u64,
    /// `message.timeout.ms`: how long publish may take before it fails.
    pub message_timeout_ms: u64,
    /// librdkafka properties passed through (security.protocol, sasl.*,
    /// ssl.*): `AKM_KAFKA_PROPERTIES` and the config file's `[kafka]` table.
    pub properties: Vec<(String, String)>,
}

/// Which kind of client a config is for: each gets only the passed-through
/// properties that apply to it (librdkafka warns about the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    Producer,
    Consumer,
    Admin,
}

/// Properties only consumers read.
const CONSUMER_ONLY: &[&str] = &[
    "group.",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "enable.auto.",
    "auto.commit.",
    "fetch.",
    "partition.assignment.strategy",
    "isolation.level",
    "queued.",
    "enable.partition.eof",
    "check.crcs",
];

/// Properties only producers read.
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "linger.ms",
    "batch.",
    "enable.idempotence",
    "message.timeout.ms",
    "compression.",
    "queue.buffering.",
    "partitioner",
    "transaction",
];

impl ClientKind {
    fn takes(self, key: &str) -> bool {
        let is = |list: &[&str]| list.iter().any(|p| key.starts_with(p));
        match self {
            ClientKind::Producer => !is(CONSUMER_ONLY),
            ClientKind::Consumer => !is(PRODUCER_ONLY),
            ClientKind::Admin => !is(CONSUMER_ONLY) && !is(PRODUCER_ONLY),
        }
    }
}

impl KafkaOptions {
    /// A client config with the brokers and the passed-through properties
    /// that apply to this kind of client.
    fn base(&self, kind: ClientKind) -> ClientConfig {
        self.pass_through(kind, self.brokers())
    }

    /// A config with only the brokers.
    fn brokers(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c
    }
}

impl KafkaOptions {
    /// A producer's config: idempotent, `acks=all`, a 2 ms linger; the
    /// passed-through properties win over these defaults (`linger.ms=0`
    /// for the lowest latency).
    fn producer_config(&self) -> ClientConfig {
        let mut c = self.brokers();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", self.message_timeout_ms.to_string());
        self.pass_through(ClientKind::Producer, c)
    }

    /// A group member's config; the passed-through properties win over
    /// these defaults.
    fn consumer_config(&self, group: &str, fetch_wait_ms: u64) -> ClientConfig {
        let mut c = self.brokers();
        c.set("group.id", group)
            // offsets are stored when a record is done (`commit`) and
            // committed by librdkafka every interval, on revoke and on
            // close: one commit request per interval, not per record
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", COMMIT_INTERVAL_MS)
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000");
        self.pass_through(ClientKind::Consumer, c)
    }

    /// `c` with the passed-through properties of its kind set over it.
    fn pass_through(&self, kind: ClientKind, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in self.properties.iter().filter(|(k, _)| kind.takes(k)) {
            c.set(k, v);
        }
        c
    }

    /// The Kafka settings of a node's configuration.
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        KafkaOptions {
            brokers: s.kafka_brokers.clone(),
            fetch_wait_ms: s.kafka_fetch_wait.as_millis() as u64,
            message_timeout_ms: s.kafka_message_timeout.as_millis() as u64,
            properties: s.kafka_config().unwrap_or_default(),
        }
    }
}

/// A producer shared by the node, and the means to make consumers.
pub struct KafkaBus {
    /// Replaced when it fails for good (see [`KafkaBus::renew`]).
    producer: std::sync::RwLock<FutureProducer>,
    /// When the producer was last replaced.
    renewed: std::sync::Mutex<Option<std::time::Instant>>,
    opts: KafkaOptions,
    topics: Topics,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.opts.brokers)
            .finish()
    }
}

fn task(op: &'static str) -> impl FnOnce(tokio::task::JoinError) -> BusError {
    move |source| BusError::Task { op, source }
}

const META_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a consumer commits the offsets it stored (passed-through
/// `auto.commit.interval.ms` wins). A crash redelivers at most this much
/// work, which the consumers' deduplication absorbs.
const COMMIT_INTERVAL_MS: &str = "1000";

impl KafkaBus {
    /// Create the producer (once, at start: an idempotent producer's first
    /// send waits for its producer id).
    pub async fn connect(opts: KafkaOptions, topics: Topics) -> Result<Arc<Self>, BusError> {
        let producer = Self::new_producer(&opts).await?;
        Ok(Arc::new(KafkaBus {
            producer: std::sync::RwLock::new(producer),
            renewed: std::sync::Mutex::new(None),
            opts,
            topics,
        }))
    }

    async fn new_producer(opts: &KafkaOptions) -> Result<FutureProducer, BusError> {
        let o = opts.clone();
        tokio::task::spawn_blocking(move || o.producer_config().create::<FutureProducer>())
            .await
            .map_err(task("create producer"))?
            .map_err(BusError::kafka("create producer"))
    }

    /// The node's producer now.
    fn producer(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replace a producer that failed: a fatal error, a record that timed
    /// out, or a broker that answers produce with an unknown error. An
    /// idempotent producer whose records timed out in flight bumps its
    /// epoch when the broker is back, which Tansu 0.6's sqlite engine does
    /// not survive (it panics and stops taking produce); a new producer
    /// starts with a new producer id instead. At most every 5 s; records
    /// still queued in the old one fail and their callers publish again
    /// (every publisher retries: the outbox relay, the workers).
    async fn renew(&self, cause: &rdkafka::error::KafkaError) {
        {
            let mut last = self.renewed.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        match Self::new_producer(&self.opts).await {
            Ok(p) => {
                tracing::warn!(error = %cause, "the Kafka producer failed for good; replaced it");
                *self.producer.write().unwrap_or_else(|p| p.into_inner()) = p;
            }
            Err(e) => tracing::error!(error = %e, "the Kafka producer could not be replaced"),
        }
    }

    async fn consumer(
        &self,
        group: &str,
        fetch_wait_ms: Option<u64>,
    ) -> Result<(Inner, tokio::sync::watch::Receiver<bool>, Arc<AtomicU64>), BusError> {
        let o = self.opts.clone();
        let fetch_wait = fetch_wait_ms
            .unwrap_or(o.fetch_wait_ms)
            .max(o.fetch_wait_ms);
        let group = group.to_string();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let assignment = Arc::new(AtomicU64::new(super::new_assignment()));
        let numbered = assignment.clone();
        tokio::task::spawn_blocking(move || {
            o.consumer_config(&group, fetch_wait)
                .create_with_context::<_, Inner>(Assigned(tx, numbered))
        })
        .await
        .map_err(task("create consumer"))?
        .map_err(BusError::kafka("create consumer"))
        .map(|c| (c, rx, assignment))
    }

    fn declared(&self, topic: &str) -> Result<(), BusError> {
        match self.topics.decl(topic) {
            Some(_) => Ok(()),
            None => Err(BusError::UnknownTopic(topic.to_string())),
        }
    }

    async fn publish_inner(&self, m: Message) -> Result<Position, BusError> {
        self.declared(&m.topic)?;
        let mut headers = OwnedHeaders::new();
        for (k, v) in &m.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec = FutureRecord::to(&m.topic)
            .key(&m.key)
            .payload(&m.payload)
            .headers(headers);
        if let Some(p) = m.partition {
            rec = rec.partition(p as i32);
        }
        let producer = self.producer();
        match producer
            .send(rec, Timeout::After(Duration::from_secs(5)))
            .await
        {
            Ok(d) => Ok(Position {
                partition: d.partition.max(0) as u32,
                offset: d.offset.max(0) as u64,
            }),
            Err((e, _)) => {
                use rdkafka::types::RDKafkaErrorCode::{MessageTimedOut, Unknown};
                let for_good = producer.client().fatal_error().is_some()
                    || matches!(e.rdkafka_error_code(), Some(MessageTimedOut | Unknown));
                if for_good {
                    self.renew(&e).await;
                }
                Err(BusError::kafka("publish")(e))
            }
        }
    }

    async fn subscribe_inner(&self, topic: &str, group: &str) -> Result<KafkaConsumer, BusError> {
        self.declared(topic)?;
        let wait = self.topics.decl(topic).and_then(|d| d.fetch_wait_ms);
        let (c, assigned, assignment) = self.consumer(group, wait).await?;
        c.subscribe(&[topic])
            .map_err(BusError::kafka("subscribe"))?;
        Ok(KafkaConsumer {
            consumer: c,
            topic: topic.to_string(),
            group: true,
            assigned,
            assignment,
        })
    }

    /// Own `partition` from its current end: the high watermark is read
    /// first and assigned explicitly, so every record published after this
    /// returns is seen.
    async fn assign_inner(
        &self,
        topic: &str,
        partition: u32,
        from: Option<u64>,
    ) -> Result<KafkaConsumer, BusError> {
        self.declared(topic)?;
        let (c, _, assignment) = self
            .consumer(
                &format!("akm-reply-{}", uuid::Uuid::new_v4().simple()),
                None,
            )
            .await?;
        let (low, high) = self.watermarks(topic, partition).await?;
        let at = from.map_or(high, |o| (o as i64).clamp(low, high));
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(at))
            .map_err(BusError::kafka("assign"))?;
        c.assign(&tpl).map_err(BusError::kafka("assign"))?;
        Ok(KafkaConsumer {
            consumer: c,
            topic: topic.to_string(),
            group: false,
            assigned: tokio::sync::watch::channel(true).1,
            assignment,
        })
    }

    async fn watermarks(&self, topic: &str, partition: u32) -> Result<(i64, i64), BusError> {
        let p = self.producer();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_watermarks(&topic, partition as i32, META_TIMEOUT)
        })
        .await
        .map_err(task("watermarks"))?
        .map_err(BusError::kafka("watermarks"))
    }

    /// Partition counts of the topics that exist on the cluster.
    async fn existing(&self) -> Result<Vec<(String, usize)>, BusError> {
        let p = self.producer();
        let md = tokio::task::spawn_blocking(move || p.client().fetch_metadata(None, META_TIMEOUT))
            .await
            .map_err(task("metadata"))?
            .map_err(BusError::kafka("metadata"))?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect())
    }

    async fn end_offsets_inner(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        self.declared(topic)?;
        let n = self
            .existing()
            .await?
            .into_iter()
            .find(|(name, _)| name == topic)
            .map(|(_, n)| n)
            .ok_or_else(|| BusError::UnknownTopic(topic.to_string()))?;
        let mut out = Vec::with_capacity(n);
        for p in 0..n {
            out.push(self.watermarks(topic, p as u32).await?.1.max(0) as u64);
        }
        Ok(out)
    }

    /// The declared topics missing from the cluster.
    pub async fn missing(&self) -> Result<Vec<String>, BusError> {
        let have: Vec<String> = self.existing().await?.into_iter().map(|(n, _)| n).collect();
        Ok(self
            .topics
            .declared()
            .into_iter()
            .map(|d| d.name)
            .filter(|n| !have.contains(n))
            .collect())
    }

    /// Create the declared topics, or grow their partitions; idempotent.
    /// Returns one line per topic saying what was done.
    pub async fn apply(&self) -> Result<Vec<String>, BusError> {
        let o = self.opts.clone();
        let admin = tokio::task::spawn_blocking(move || {
            o.base(ClientKind::Admin)
                .create::<AdminClient<DefaultClientContext>>()
        })
        .await
        .map_err(task("create admin"))?
        .map_err(BusError::kafka("create admin"))?;
        let brokers = {
            let p = self.producer();
            tokio::task::spawn_blocking(move || p.client().fetch_metadata(None, META_TIMEOUT))
                .await
                .map_err(task("metadata"))?
                .map_err(BusError::kafka("metadata"))?
                .brokers()
                .len()
                .max(1)
        };
        let existing = self.existing().await?;
        let decls = self.topics.declared();
        let retention: Vec<String> = decls.iter().map(|d| d.retention_ms.to_string()).collect();
        let new: Vec<NewTopic<'_>> = decls
            .iter()
            .zip(&retention)
            .filter(|(d, _)| !existing.iter().any(|(n, _)| *n == d.name))
            .map(|(d, r)| {
                let replication = i32::from(d.replication).min(brokers as i32).max(1);
                let t = NewTopic::new(
                    &d.name,
                    d.partitions as i32,
                    TopicReplication::Fixed(replication),
                )
                .set("retention.ms", r);
                if d.compacted {
                    t.set("cleanup.policy", "compact")
                } else {
                    t
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(META_TIMEOUT));
        let mut report = Vec::new();
        if !new.is_empty() {
            for r in admin
                .create_topics(new.iter(), &opts)
                .await
                .map_err(BusError::kafka("create topics"))?
            {
                match r {
                    Ok(name) => report.push(format!("created {name}")),
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        report.push(format!("exists {name}"))
                    }
                    Err((name, code)) => {
                        tracing::error!(topic = %name, %code, "topic creation failed");
                        return Err(BusError::Kafka {
                            op: "create topics",
                            source: rdkafka::error::KafkaError::AdminOp(code),
                        });
                    }
                }
            }
        }
        for d in &decls {
            if let Some((_, n)) = existing.iter().find(|(n, _)| *n == d.name) {
                if *n < d.partitions as usize {
                    let grow = NewPartitions::new(&d.name, d.partitions as usize);
                    match admin.create_partitions([&grow], &opts).await {
                        Ok(_) => {
                            report.push(format!("grew {} to {} partitions", d.name, d.partitions))
                        }
                        Err(e) => report.push(format!("could not grow {}: {e}", d.name)),
                    }
                } else {
                    report.push(format!("exists {}", d.name));
                }
            }
        }
        Ok(report)
    }
}

impl BusBackend for Arc<KafkaBus> {
    type Consumer = KafkaConsumer;

    async fn publish(&self, m: Message) -> Result<Position, BusError> {
        self.publish_inner(m).await
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<KafkaConsumer, BusError> {
        self.subscribe_inner(topic, group).await
    }

    async fn assign(&self, topic: &str, partition: u32) -> Result<KafkaConsumer, BusError> {
        self.assign_inner(topic, partition, None).await
    }

    async fn assign_from(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<KafkaConsumer, BusError> {
        self.assign_inner(topic, partition, Some(offset)).await
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        self.end_offsets_inner(topic).await
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, BusError> {
        self.declared(topic)?;
        Ok(self.watermarks(topic, partition).await?.1.max(0) as u64)
    }
}

/// A Kafka consumer handed out by the bus.
pub struct KafkaConsumer {
    consumer: Inner,
    topic: String,
    group: bool,
    assigned: tokio::sync::watch::Receiver<bool>,
    /// This member's current [`Record::assignment`] (set on rebalance).
    assignment: Arc<AtomicU64>,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("group", &self.group)
            .finish()
    }
}

impl KafkaConsumer {
    /// Becomes true when the group assigned this member partitions (the
    /// consumer must be polled, i.e. `next` awaited, for that to happen).
    fn partition_list(&self, partition: u32) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition as i32);
        tpl
    }
}

impl BusConsumer for KafkaConsumer {
    fn assigned(&self) -> tokio::sync::watch::Receiver<bool> {
        self.assigned.clone()
    }

    fn owned(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self
            .consumer
            .assignment()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| e.partition().max(0) as u32)
                    .collect()
            })
            .unwrap_or_default();
        p.sort_unstable();
        p
    }

    fn pause(&mut self, partition: u32) -> Result<(), BusError> {
        self.consumer
            .pause(&self.partition_list(partition))
            .map_err(BusError::kafka("pause"))
    }

    fn resume(&mut self, partition: u32) -> Result<(), BusError> {
        self.consumer
            .resume(&self.partition_list(partition))
            .map_err(BusError::kafka("resume"))
    }

    async fn next(&mut self) -> Result<Record, BusError> {
        let m = self
            .consumer
            .recv()
            .await
            .map_err(BusError::kafka("consume"))?;
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| {
                        (
                            x.key.to_string(),
                            String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Record {
            topic: m.topic().to_string(),
            partition: m.partition().max(0) as u32,
            offset: m.offset().max(0) as u64,
            timestamp_ms: m.timestamp().to_millis().unwrap_or_default(),
            key: m.key().unwrap_or_default().to_vec(),
            headers,
            payload: m.payload().unwrap_or_default().to_vec(),
            assignment: self.assignment.load(Ordering::Acquire),
        })
    }

    /// Store offset+1 for the record's partition and commit the stored
    /// offsets asynchronously; the last ones are committed synchronously
    /// when the consumer is dropped (shutdown, rebalance in tests).
    fn commit(&mut self, r: &Record) -> Result<(), BusError> {
        if !self.group {
            return Ok(());
        }
        // rd_kafka_offset_store stores offset + 1 itself (the next to read);
        // librdkafka commits what is stored (see COMMIT_INTERVAL_MS).
        self.consumer
            .store_offset(&r.topic, r.partition as i32, r.offset as i64)
            .map_err(BusError::kafka("store offset"))
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        if self.group {
            // Nothing stored yet is fine (NoOffset); anything else is logged.
            if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "final commit on close");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientKind, KafkaOptions};

    fn options(properties: &[(&str, &str)]) -> KafkaOptions {
        KafkaOptions {
            brokers: "127.0.0.1:9092".into(),
            fetch_wait_ms: 10,
            message_timeout_ms: 30_000,
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn passed_through_properties_win_over_the_clients_defaults() {
        let plain = options(&[]);
        assert_eq!(plain.producer_config().get("linger.ms"), Some("2"));
        assert_eq!(
            plain.consumer_config("g", 10).get("fetch.wait.max.ms"),
            Some("10")
        );
        let tuned = options(&[
            ("linger.ms", "0"),
            ("fetch.wait.max.ms", "3"),
            ("auto.commit.interval.ms", "200"),
        ]);
        let producer = tuned.producer_config();
        assert_eq!(producer.get("linger.ms"), Some("0"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("fetch.wait.max.ms"), None);
        let consumer = tuned.consumer_config("g", 10);
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("3"));
        assert_eq!(consumer.get("auto.commit.interval.ms"), Some("200"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(consumer.get("group.id"), Some("g"));
    }

    #[test]
    fn each_client_gets_the_properties_it_reads() {
        assert!(ClientKind::Consumer.takes("session.timeout.ms"));
        assert!(!ClientKind::Producer.takes("session.timeout.ms"));
        assert!(!ClientKind::Admin.takes("max.poll.interval.ms"));
        assert!(ClientKind::Producer.takes("linger.ms"));
        assert!(!ClientKind::Consumer.takes("linger.ms"));
        for shared in ["security.protocol", "sasl.mechanism", "ssl.ca.location"] {
            for kind in [
                ClientKind::Producer,
                ClientKind::Consumer,
                ClientKind::Admin,
            ] {
                assert!(kind.takes(shared), "{kind:?} {shared}");
            }
        }
    }
}
