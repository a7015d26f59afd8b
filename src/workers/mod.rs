//! Stream workers: each a loop over one consumer (or the outbox), started
//! per role by `crate::run`. Offsets are committed only after the side
//! effect; records that do not decode go to the topic's DLQ.

pub mod forwarder;
pub mod notifier;
pub mod relay;
pub mod replies;
pub mod retry;
pub mod transcoder;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::{BusError, Message, Record, Topic};
use crate::events::{self, Event};
use crate::node::Node;

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
    node: &Node,
    topic: Topic,
    r: &Record,
    reason: &str,
) -> Result<(), BusError> {
    let mut m = Message::new(
        node.bus.topics().dlq(topic),
        r.key.clone(),
        r.payload.clone(),
    );
    m.headers = r.headers.clone();
    let m = m.header("dlqReason", reason).header(
        "dlqSource",
        format!("{}[{}]@{}", r.topic, r.partition, r.offset),
    );
    node.bus.publish(m).await.map(|_| ())
}

/// Consume `topic` in `group` until cancelled: decode each record as `E`
/// (undecodable -> DLQ), run `handle`, commit after it.
/// `ready` is told once the member first holds partitions.
pub async fn consume<E, F, Fut>(
    node: Arc<Node>,
    topic: Topic,
    group: &str,
    ready: Option<tokio::sync::mpsc::Sender<()>>,
    handle: F,
) where
    E: Event,
    F: Fn(Arc<Node>, E, Record) -> Fut,
    Fut: Future<Output = Result<Flow, BusError>>,
{
    let name = node.bus.topics().name(topic);
    let mut consumer = loop {
        match node.bus.subscribe(&name, group).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, topic = %name, group, "subscribe failed; retrying");
                tokio::select! {
                    _ = node.cancel.cancelled() => return,
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
            _ = node.cancel.cancelled() => return,
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
            Ok(ev) => handle(node.clone(), ev, record.clone()).await,
            Err(e) => {
                tracing::error!(error = %e, topic = %name, offset = record.offset, "undecodable record to DLQ");
                dead_letter(&node, topic, &record, &format!("decode: {e}"))
                    .await
                    .map(|_| Flow::Commit)
            }
        };
        match flow {
            Ok(Flow::Commit) => {
                if let Err(e) = consumer.commit(&record).await {
                    tracing::error!(error = %e, topic = %name, "commit failed");
                }
            }
            Ok(Flow::Stop) => return,
            Err(e) => {
                // The side effect could not be recorded (e.g. DLQ publish):
                // do not commit; re-read from the last commit.
                tracing::error!(error = %e, topic = %name, "handler failed; record will be redelivered");
                drop(consumer);
                tokio::time::sleep(Duration::from_secs(1)).await;
                match node.bus.subscribe(&name, group).await {
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
