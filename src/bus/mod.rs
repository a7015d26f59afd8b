//! The message bus: the contract ([`BusBackend`], [`BusConsumer`], see
//! `contract.rs` for the promises), two backends that implement it (the
//! embedded sled log for one node, Kafka for many), the [`Bus`] facade
//! that only dispatches to them, and typed channels ([`Channel`]) so an
//! event's topic, key, partition and trace header come from its type.

pub mod channel;
mod contract;
mod embedded;
mod error;
pub mod kafka;
mod message;
mod offsets;
mod partition;
pub mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use channel::Channel;
pub use contract::{BusBackend, BusConsumer};
pub use embedded::{EmbeddedBus, EmbeddedConsumer};
pub use error::BusError;
pub use kafka::{KafkaBus, KafkaConsumer, KafkaOptions};
pub use message::{new_assignment, Message, Record};
pub use topics::{Registered, Topic, Topics, CONFLUENT};

use crate::clock::SharedClock;
use crate::durability::Durable;

/// Where a published record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Clone)]
enum Backends {
    Embedded(Arc<EmbeddedBus>),
    Kafka(Arc<KafkaBus>),
}

/// The bus a node publishes to and consumes from. Cheap to clone. It only
/// dispatches to the backend; backend-only operations (Kafka's topic
/// administration, the embedded log's retention) live on the backends.
#[derive(Debug, Clone)]
pub struct Bus {
    backend: Backends,
    topics: Topics,
    /// The partitions this process's group members hold (`/readyz`).
    owned: Owned,
    /// The node's metrics (retries, DLQ records, consumer lag).
    metrics: crate::metrics::Metrics,
}

/// The partitions each group member of a process holds, by
/// `<topic> <group>` and member, and how far it is in each.
#[derive(Debug, Clone, Default)]
pub struct Owned(
    Arc<std::sync::Mutex<Holdings>>,
    Arc<std::sync::Mutex<Positions>>,
);

/// By `<topic> <group>`, each member's partitions.
type Holdings = BTreeMap<String, BTreeMap<u64, Vec<u32>>>;

/// By `(topic, group, partition)`, the next offset not yet done.
type Positions = BTreeMap<(String, String, u32), u64>;

impl Owned {
    fn map(&self) -> std::sync::MutexGuard<'_, Holdings> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn positions_map(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.1.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything before `next` on `partition` is done by `group`'s member
    /// here (reported every second by the consume loop).
    pub fn position(&self, topic: &str, group: &str, partition: u32, next: u64) {
        self.positions_map()
            .insert((topic.to_string(), group.to_string(), partition), next);
    }

    /// `(topic, group, partition, next offset not done)` of every partition
    /// this process's members hold now, where known.
    pub fn positions(&self) -> Vec<(String, String, u32, u64)> {
        let held = self.snapshot();
        self.positions_map()
            .iter()
            .filter(|((t, g, p), _)| {
                held.get(&format!("{t} {g}"))
                    .is_some_and(|ps| ps.contains(p))
            })
            .map(|((t, g, p), next)| (t.clone(), g.clone(), *p, *next))
            .collect()
    }

    /// Member `member` of `group` on `topic` holds `partitions` (none: it left).
    pub fn report(&self, topic: &str, group: &str, member: u64, partitions: Vec<u32>) {
        let mut m = self.map();
        let key = format!("{topic} {group}");
        let members = m.entry(key.clone()).or_default();
        if partitions.is_empty() {
            members.remove(&member);
        } else {
            members.insert(member, partitions);
        }
        if members.is_empty() {
            m.remove(&key);
        }
    }

    /// By `<topic> <group>`, the partitions this process holds, sorted.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u32>> {
        self.map()
            .iter()
            .map(|(k, members)| {
                let mut all: Vec<u32> = members.values().flatten().copied().collect();
                all.sort_unstable();
                (k.clone(), all)
            })
            .collect()
    }
}

impl Bus {
    /// The embedded bus on the node's database (its retention task runs
    /// while the bus lives).
    pub fn embedded(
        durable: &Durable,
        topics: Topics,
        clock: SharedClock,
    ) -> Result<Self, BusError> {
        let bus = EmbeddedBus::open(durable, topics.clone(), clock)?;
        Ok(Bus {
            backend: Backends::Embedded(bus),
            topics,
            owned: Owned::default(),
            metrics: Default::default(),
        })
    }

    /// The Kafka bus. Fails, naming them, when declared topics are missing
    /// (create them with `akm topics apply`).
    pub async fn kafka(opts: KafkaOptions, topics: Topics) -> Result<Self, BusError> {
        let bus = KafkaBus::connect(opts, topics.clone()).await?;
        let missing = bus.missing().await?;
        if !missing.is_empty() {
            return Err(BusError::MissingTopics(missing.join(", ")));
        }
        Ok(Bus {
            backend: Backends::Kafka(bus),
            topics,
            owned: Owned::default(),
            metrics: Default::default(),
        })
    }

    /// Which backend this is (`embedded` or `kafka`).
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backends::Embedded(_) => "embedded",
            Backends::Kafka(_) => "kafka",
        }
    }

    /// The bus as a log the store's transactions append to, when its
    /// partitions live in the store's database (the embedded bus).
    pub fn tx_log(&self) -> Option<Arc<dyn crate::store::TxLog>> {
        match &self.backend {
            Backends::Embedded(b) => Some(b.clone()),
            Backends::Kafka(_) => None,
        }
    }

    /// The partitions this process's group members hold.
    pub fn owned(&self) -> &Owned {
        &self.owned
    }

    /// This bus reporting to `metrics` (the node's).
    pub fn instrumented(self, metrics: crate::metrics::Metrics) -> Self {
        Bus { metrics, ..self }
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The topic names of this deployment.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Publish; resolves only when the record is durable.
    pub async fn publish(&self, message: Message) -> Result<Position, BusError> {
        match &self.backend {
            Backends::Embedded(b) => b.publish(message).await,
            Backends::Kafka(b) => b.publish(message).await,
        }
    }

    /// The message for an event: its topic, key, partition and headers come
    /// from its [`Channel`].
    pub fn message<E: Channel>(&self, event: &E) -> Result<Message, BusError> {
        channel::message(&self.topics, event)
    }

    /// Write the committed offsets the embedded bus holds in memory (at
    /// shutdown, before the final flush); Kafka's client commits its own
    /// when its consumers close.
    pub fn write_offsets(&self) -> Result<(), BusError> {
        match &self.backend {
            Backends::Embedded(b) => b.write_offsets(),
            Backends::Kafka(_) => Ok(()),
        }
    }

    /// Publish an event on its channel.
    pub async fn send<E: Channel>(&self, event: &E) -> Result<Position, BusError> {
        self.publish(self.message(event)?).await
    }

    /// Join consumer group `group` (prefixed with the deployment's topic
    /// prefix) on `topic`.
    pub async fn subscribe(&self, topic: &str, group: &str) -> Result<Consumer, BusError> {
        let group = &self.topics.group(group);
        match &self.backend {
            Backends::Embedded(b) => Ok(Consumer::Embedded(b.subscribe(topic, group).await?)),
            Backends::Kafka(b) => Ok(Consumer::Kafka(b.subscribe(topic, group).await?)),
        }
    }

    /// Own `partition` of `topic` from `offset`, without a group (reading
    /// a partition's tail back).
    pub async fn assign_from(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<Consumer, BusError> {
        match &self.backend {
            Backends::Embedded(b) => Ok(Consumer::Embedded(
                b.assign_from(topic, partition, offset).await?,
            )),
            Backends::Kafka(b) => Ok(Consumer::Kafka(
                b.assign_from(topic, partition, offset).await?,
            )),
        }
    }

    /// Own `partition` of `topic` without a group (reply path).
    pub async fn assign(&self, topic: &str, partition: u32) -> Result<Consumer, BusError> {
        match &self.backend {
            Backends::Embedded(b) => Ok(Consumer::Embedded(b.assign(topic, partition).await?)),
            Backends::Kafka(b) => Ok(Consumer::Kafka(b.assign(topic, partition).await?)),
        }
    }

    /// The next offset of each partition of `topic` (high watermarks).
    pub async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        match &self.backend {
            Backends::Embedded(b) => b.end_offsets(topic).await,
            Backends::Kafka(b) => b.end_offsets(topic).await,
        }
    }

    /// The next offset of one partition of `topic` (its high watermark).
    pub async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, BusError> {
        match &self.backend {
            Backends::Embedded(b) => b.end_offset(topic, partition).await,
            Backends::Kafka(b) => b.end_offset(topic, partition).await,
        }
    }

    /// How many records `topic` holds in all (sum of high watermarks).
    pub async fn count(&self, topic: &str) -> Result<u64, BusError> {
        Ok(self.end_offsets(topic).await?.iter().sum())
    }

    /// How many partitions a declared topic has.
    pub fn partitions(&self, topic: &str) -> Result<u32, BusError> {
        self.topics
            .partitions(topic)
            .ok_or_else(|| BusError::UnknownTopic(topic.to_string()))
    }
}

/// A consumer handed out by [`Bus::subscribe`] or [`Bus::assign`]; it only
/// dispatches to the backend's consumer.
#[derive(Debug)]
pub enum Consumer {
    Embedded(EmbeddedConsumer),
    Kafka(KafkaConsumer),
}

impl BusConsumer for Consumer {
    async fn next(&mut self) -> Result<Record, BusError> {
        match self {
            Consumer::Embedded(c) => c.next().await,
            Consumer::Kafka(c) => c.next().await,
        }
    }

    fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        match self {
            Consumer::Embedded(c) => c.commit(record),
            Consumer::Kafka(c) => c.commit(record),
        }
    }

    fn pause(&mut self, partition: u32) -> Result<(), BusError> {
        match self {
            Consumer::Embedded(c) => c.pause(partition),
            Consumer::Kafka(c) => c.pause(partition),
        }
    }

    fn resume(&mut self, partition: u32) -> Result<(), BusError> {
        match self {
            Consumer::Embedded(c) => c.resume(partition),
            Consumer::Kafka(c) => c.resume(partition),
        }
    }

    fn assigned(&self) -> tokio::sync::watch::Receiver<bool> {
        match self {
            Consumer::Embedded(c) => c.assigned(),
            Consumer::Kafka(c) => c.assigned(),
        }
    }

    fn owned(&self) -> Vec<u32> {
        match self {
            Consumer::Embedded(c) => c.owned(),
            Consumer::Kafka(c) => c.owned(),
        }
    }
}
