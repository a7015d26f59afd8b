//! Stream workers: each a loop over one consumer (or the outbox). Offsets
//! are committed only after the side effect; records that do not decode go
//! to the topic's DLQ. Workers receive the services they need, not a node.

pub mod forwarder;
pub mod notifier;
pub mod relay;
pub mod replies;
pub mod retry;
pub mod transcoder;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusConsumer, BusError, Channel, Message, Record, Topic};
use crate::events;

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
    bus.publish(m).await.map(|_| ())
}

/// Consume `E`'s topic in `group` until cancelled: decode each record
/// (undecodable -> DLQ), run `handle`, commit after it. `ready` is told
/// once the member first holds partitions.
pub async fn consume<E, F, Fut>(
    bus: Bus,
    cancel: CancellationToken,
    group: &str,
    ready: Option<tokio::sync::mpsc::Sender<()>>,
    handle: F,
) where
    E: Channel,
    F: Fn(E, Record) -> Fut,
    Fut: Future<Output = Result<Flow, WorkerError>>,
{
    let name = bus.topics().name(E::TOPIC);
    let mut consumer = loop {
        match bus.subscribe(&name, group).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, topic = %name, group, "subscribe failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    if let Some(tx) = ready {
        let mut assigned = consumer.assigned();
        tokio::spawn(async move {
            if assigned.wait_for(|a| *a).await.is_ok() {
                let _ = tx.send(()).await;
            }
        });
    }
    loop {
        let record = tokio::select! {
            _ = cancel.cancelled() => return,
            r = consumer.next() => r,
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, topic = %name, "consume failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let flow = match events::decode::<E>(&record.payload) {
            Ok(ev) => handle(ev, record.clone()).await,
            Err(e) => {
                tracing::error!(error = %e, topic = %name, offset = record.offset, "undecodable record to DLQ");
                dead_letter(&bus, E::TOPIC, &record, &format!("decode: {e}"))
                    .await
                    .map(|_| Flow::Commit)
                    .map_err(WorkerError::from)
            }
        };
        match flow {
            Ok(Flow::Commit) => {
                if let Err(e) = consumer.commit(&record) {
                    tracing::error!(error = %e, topic = %name, "commit failed");
                }
            }
            Ok(Flow::Stop) => return,
            Err(e) => {
                // The side effect could not be recorded (e.g. DLQ publish):
                // do not commit; re-read from the last commit.
                tracing::error!(error = %crate::service::chain(&e), topic = %name, "handler failed; record will be redelivered");
                drop(consumer);
                tokio::time::sleep(Duration::from_secs(1)).await;
                match bus.subscribe(&name, group).await {
                    Ok(c) => consumer = c,
                    Err(e) => {
                        tracing::error!(error = %e, "resubscribe failed");
                        return;
                    }
                }
            }
        }
    }
}
