//! The message bus facade: publish durably, consume in groups with explicit
//! commits, and own reply partitions. Two backends with one semantics: the
//! embedded sled log (single node) and Kafka (multi-node, see DESIGN.md).

mod embedded;
pub mod kafka;
mod message;
pub mod topics;

use std::sync::Arc;

pub use embedded::{EmbeddedBus, EmbeddedConsumer};
pub use kafka::{KafkaBus, KafkaConsumer, KafkaOptions};
pub use message::{Message, Record};
pub use topics::{Topic, Topics};

/// A failure of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The storage under the bus failed.
    #[error("bus storage: {0}")]
    Storage(String),
    /// The topic is not declared for this deployment.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The backend is shut down or unreachable.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

impl From<sled::Error> for BusError {
    fn from(e: sled::Error) -> Self {
        BusError::Storage(e.to_string())
    }
}

impl From<crate::store::StoreError> for BusError {
    fn from(e: crate::store::StoreError) -> Self {
        BusError::Storage(e.to_string())
    }
}

/// Where a published record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Clone)]
enum Backend {
    Embedded(Arc<EmbeddedBus>),
    Kafka(Arc<KafkaBus>),
}

/// The bus a node publishes to and consumes from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bus {
    backend: Backend,
    topics: Topics,
}

impl Bus {
    /// The embedded bus on the node's sled database.
    pub fn embedded(store: &crate::store::Store, topics: Topics) -> Result<Self, BusError> {
        let bus = EmbeddedBus::open(store, topics.clone())?;
        Ok(Bus {
            backend: Backend::Embedded(bus),
            topics,
        })
    }

    /// The Kafka bus. Fails, naming them, when declared topics are missing
    /// (create them with `akm topics apply`).
    pub async fn kafka(opts: KafkaOptions, topics: Topics) -> Result<Self, BusError> {
        let bus = KafkaBus::connect(opts).await?;
        let missing = bus.missing(&topics).await?;
        if !missing.is_empty() {
            return Err(BusError::UnknownTopic(format!(
                "missing on the Kafka cluster (run `akm topics apply`): {}",
                missing.join(", ")
            )));
        }
        Ok(Bus {
            backend: Backend::Kafka(bus),
            topics,
        })
    }

    /// Which backend this is (`embedded` or `kafka`).
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Embedded(_) => "embedded",
            Backend::Kafka(_) => "kafka",
        }
    }

    /// The topic names of this deployment.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Publish; resolves only when the record is durable. The partition is
    /// `message.partition` when set, else the hash of the key.
    pub async fn publish(&self, message: Message) -> Result<Position, BusError> {
        match &self.backend {
            Backend::Embedded(b) => b.publish(message).await,
            Backend::Kafka(b) => b.publish(message).await,
        }
    }

    /// Join consumer group `group` (prefixed with the deployment's topic
    /// prefix) on `topic`: partitions are shared among the
    /// group's members; a new group starts at the earliest offset; delivery is
    /// at-least-once from the last committed offset.
    pub async fn subscribe(&self, topic: &str, group: &str) -> Result<Consumer, BusError> {
        let group = &self.topics.group(group);
        match &self.backend {
            Backend::Embedded(b) => {
                Ok(Consumer::Embedded(b.subscribe(topic, Some(group), None)?))
            }
            Backend::Kafka(b) => Ok(Consumer::Kafka(b.subscribe(topic, group).await?)),
        }
    }

    /// Own `partition` of `topic` without a group (reply path): reads from the
    /// current end, never rebalanced, never committed.
    pub async fn assign(&self, topic: &str, partition: u32) -> Result<Consumer, BusError> {
        match &self.backend {
            Backend::Embedded(b) => Ok(Consumer::Embedded(b.subscribe(
                topic,
                None,
                Some(partition),
            )?)),
            Backend::Kafka(b) => Ok(Consumer::Kafka(b.assign(topic, partition).await?)),
        }
    }

    /// Apply retention (the embedded log; Kafka brokers do their own).
    pub async fn trim(&self, now_ms: i64) -> Result<usize, BusError> {
        match &self.backend {
            Backend::Embedded(b) => b.trim(now_ms),
            Backend::Kafka(_) => Ok(0),
        }
    }

    /// The next offset of each partition of `topic` (high watermarks).
    pub async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        match &self.backend {
            Backend::Embedded(b) => b.end_offsets(topic),
            Backend::Kafka(b) => b.end_offsets(topic).await,
        }
    }

    /// How many records `topic` holds in all (sum of high watermarks).
    pub async fn count(&self, topic: &str) -> Result<u64, BusError> {
        Ok(self.end_offsets(topic).await?.iter().sum())
    }

    /// How many partitions `topic` has.
    pub fn partitions(&self, topic: &str) -> u32 {
        self.topics.partitions(topic)
    }
}

/// A consumer handed out by [`Bus::subscribe`] or [`Bus::assign`].
#[derive(Debug)]
pub enum Consumer {
    Embedded(EmbeddedConsumer),
    Kafka(KafkaConsumer),
}

impl Consumer {
    /// The next record (waits for one).
    pub async fn next(&mut self) -> Result<Record, BusError> {
        match self {
            Consumer::Embedded(c) => c.next().await,
            Consumer::Kafka(c) => c.next().await,
        }
    }

    /// Turns true once this member holds partitions (embedded: at once).
    pub fn assigned(&self) -> tokio::sync::watch::Receiver<bool> {
        match self {
            Consumer::Embedded(_) => tokio::sync::watch::channel(true).1,
            Consumer::Kafka(c) => c.assigned(),
        }
    }

    /// Commit: the group will not see `record` or anything before it in its
    /// partition again. Call only after the record's side effect is done.
    pub async fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        match self {
            Consumer::Embedded(c) => c.commit(record),
            Consumer::Kafka(c) => c.commit(record),
        }
    }
}
