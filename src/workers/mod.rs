//! Stream workers: each a loop over one consumer (or the outbox). Offsets
//! are committed only after the side effect; records that do not decode go
//! to the topic's DLQ. Workers receive the services they need, not a node.

pub mod callbacks;
mod consume;
pub mod forwarder;
pub mod notifier;
pub mod qr_replica;
pub mod reference_replica;
pub mod relay;
pub mod replies;
pub mod retry;
pub mod state_replica;
pub mod stats;
pub mod supervise;
pub mod transcoder;

use std::time::Duration;

pub use consume::{consume, consume_window};

use crate::bus::{Bus, BusError, Message, Record, Topic};

/// Why a handler could not finish a record (it is then not committed).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Publishing (a DLQ record) failed.
    #[error("bus")]
    Bus(#[from] BusError),
    /// The local store failed (the delivered set).
    #[error("store")]
    Store(#[from] crate::store::StoreError),
}

/// What a handler decided about a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Done with it (or dead-lettered): commit.
    Commit,
    /// Not yet: try the same record again after this long. It keeps its
    /// place in the window, nothing after it is committed meanwhile, and a
    /// partition whose window is full is paused (the consumer keeps polling,
    /// so a Kafka member stays in its group).
    RetryAfter(Duration),
    /// Shutting down before the side effect: do not commit; it comes again.
    Stop,
}

/// Send a record to `topic`'s DLQ with the reason.
pub async fn dead_letter(
    bus: &Bus,
    topic: Topic,
    r: &Record,
    reason: &str,
) -> Result<(), BusError> {
    let mut m = Message::new(bus.topics().dlq(topic), r.key.clone(), r.payload.clone());
    m.headers = r.headers.clone();
    let m = m.header("dlqReason", reason).header(
        "dlqSource",
        format!("{}[{}]@{}", r.topic, r.partition, r.offset),
    );
    bus.publish(m).await?;
    bus.metrics().dead_letter(&r.topic);
    Ok(())
}
