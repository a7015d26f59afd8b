//! The bus contract: what every backend promises, written the way a Kafka
//! consumer contract is. The embedded sled log and Kafka both implement
//! these traits and the conformance suite (`tests/it/conformance.rs`) runs
//! the same scenarios against each.
//!
//! **Publishing.** [`BusBackend::publish`] resolves `Ok` only when the record
//! is durable: on Kafka, the delivery report of an idempotent `acks=all`
//! producer; on the embedded log, appended and flushed (group commit). The
//! partition is the message's explicit partition, else a hash of its key,
//! so records with one key keep their order. A topic that is not declared
//! in `topics/` is refused with [`BusError::UnknownTopic`].
//!
//! **An ambiguous failure.** A publish that fails with a retriable error
//! ([`BusError::is_retriable`]) may or may not have been written (a timeout
//! after the broker took it, say). Callers treat it as not published and
//! publish again; the record may then exist twice, and every consumer
//! dedupes by the event's key (tradeNo). A publish that fails with a
//! non-retriable error was not written.
//!
//! **Groups.** [`BusBackend::subscribe`] joins a consumer group: the topic's
//! partitions are split among the group's members; a member joining or
//! leaving rebalances the group, and every member restarts its partitions
//! at their committed offsets. A new group starts at the earliest offset.
//! Delivery is at-least-once: a record is delivered again until a member
//! commits it.
//!
//! **Commit after the side effect.** [`BusConsumer::commit`] marks a record
//! and everything before it in its partition as done for the group. Call it
//! only when the record's side effect is done (or the record is
//! dead-lettered); a crash before the commit means redelivery.
//!
//! **Ordering.** Within a partition, records are delivered in offset
//! order. Across partitions there is no order.
//!
//! **Pausing.** [`BusConsumer::pause`] stops delivery from one assigned
//! partition while [`BusConsumer::next`] keeps polling the others (and, on
//! Kafka, keeps the member in its group: waiting inside a handler longer
//! than `max.poll.interval.ms` gets a member evicted, pausing does not).
//! [`BusConsumer::resume`] delivers again from the first record not yet
//! delivered. A rebalance clears pauses.
//!
//! **Owned partitions.** [`BusBackend::assign`] reads one partition from its
//! current end with no group: never rebalanced, never committed (the reply
//! path of request-reply).

use std::future::Future;

use super::{BusError, Message, Position, Record};

/// A bus backend: publishing and handing out consumers.
pub trait BusBackend: Send + Sync {
    type Consumer: BusConsumer;

    /// Publish; resolves only when the record is durable.
    fn publish(&self, m: Message) -> impl Future<Output = Result<Position, BusError>> + Send;

    /// Join consumer group `group` (already prefixed) on `topic`.
    fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> impl Future<Output = Result<Self::Consumer, BusError>> + Send;

    /// Own `partition` of `topic` from `offset` (or its first record, if
    /// that is gone), without a group.
    fn assign_from(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> impl Future<Output = Result<Self::Consumer, BusError>> + Send;

    /// Own `partition` of `topic` from its current end, without a group.
    fn assign(
        &self,
        topic: &str,
        partition: u32,
    ) -> impl Future<Output = Result<Self::Consumer, BusError>> + Send;

    /// The next offset of each partition of `topic` (high watermarks).
    fn end_offsets(&self, topic: &str) -> impl Future<Output = Result<Vec<u64>, BusError>> + Send;

    /// The next offset of one partition of `topic` (its high watermark).
    fn end_offset(
        &self,
        topic: &str,
        partition: u32,
    ) -> impl Future<Output = Result<u64, BusError>> + Send;
}

/// A consumer handed out by a backend.
pub trait BusConsumer: Send {
    /// The next record of an assigned, unpaused partition (waits for one).
    fn next(&mut self) -> impl Future<Output = Result<Record, BusError>> + Send;

    /// Mark `record` and everything before it in its partition as done.
    fn commit(&mut self, record: &Record) -> Result<(), BusError>;

    /// The partitions this consumer holds now, sorted.
    fn owned(&self) -> Vec<u32>;

    /// Stop delivering `partition` until [`BusConsumer::resume`].
    fn pause(&mut self, partition: u32) -> Result<(), BusError>;

    /// Deliver `partition` again.
    fn resume(&mut self, partition: u32) -> Result<(), BusError>;

    /// Turns true once this member holds partitions.
    fn assigned(&self) -> tokio::sync::watch::Receiver<bool>;
}
