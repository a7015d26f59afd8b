//! Stream workers: each a loop over one consumer (or the outbox). Offsets
//! are committed only after the side effect; records that do not decode go
//! to the topic's DLQ. Workers receive the services they need, not a node.

pub mod forwarder;
pub mod notifier;
pub mod relay;
pub mod replies;
pub mod retry;
pub mod supervise;
pub mod transcoder;

use std::collections::BTreeMap;
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
    /// Not yet: try the same record again after this long. Its partition is
    /// paused meanwhile (the consumer keeps polling, so a Kafka member stays
    /// in its group), and the records behind it wait in order.
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
    bus.publish(m).await.map(|_| ())
}

/// A partition whose head record waits for a retry, with what arrived behind it.
#[derive(Debug)]
struct Parked {
    queue: std::collections::VecDeque<Record>,
    due: tokio::time::Instant,
    /// Attempts of the head record so far.
    attempts: u32,
}

/// Consume `E`'s topic in `group` until cancelled: decode each record
/// (undecodable -> DLQ), run `handle(event, record, attempt)`, commit after
/// it. A handler that must wait answers [`Flow::RetryAfter`]: the record is
/// parked and its partition paused, never slept on inside the poll loop.
/// `ready` is told once the member first holds partitions.
pub async fn consume<E, F, Fut>(
    bus: Bus,
    cancel: CancellationToken,
    group: &str,
    ready: Option<tokio::sync::mpsc::Sender<()>>,
    handle: F,
) where
    E: Channel,
    F: Fn(E, Record, u32) -> Fut,
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
    let mut parked: BTreeMap<u32, Parked> = BTreeMap::new();
    loop {
        let next_due = parked.values().map(|p| p.due).min();
        let (record, attempt) = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sleep_until(next_due) => {
                // the earliest parked head is due: try it again
                let Some((&p, _)) = parked.iter().min_by_key(|(_, k)| k.due) else { continue };
                let Some(head) = parked.get(&p).and_then(|k| k.queue.front().cloned()) else {
                    parked.remove(&p);
                    continue;
                };
                let attempts = parked.get(&p).map_or(0, |k| k.attempts);
                (head, attempts)
            }
            r = consumer.next() => match r {
                Ok(r) => {
                    if let Some(k) = parked.get_mut(&r.partition) {
                        // behind a parked record (a fetch already under way,
                        // or a rebalance replaying it): keep order, drop repeats
                        if k.queue.back().is_none_or(|last| r.offset > last.offset) {
                            k.queue.push_back(r);
                        }
                        continue;
                    }
                    (r, 0)
                }
                Err(e) => {
                    tracing::error!(error = %e, topic = %name, "consume failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let p = record.partition;
        let flow = match events::decode::<E>(&record.payload) {
            Ok(ev) => handle(ev, record.clone(), attempt).await,
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
                if let Some(k) = parked.get_mut(&p) {
                    k.queue.pop_front();
                    k.attempts = 0;
                    if k.queue.is_empty() {
                        parked.remove(&p);
                        if let Err(e) = consumer.resume(p) {
                            tracing::error!(error = %e, topic = %name, partition = p, "resume failed");
                        }
                    } else {
                        // the next one behind it goes at once
                        k.due = tokio::time::Instant::now();
                    }
                }
            }
            Ok(Flow::RetryAfter(wait)) => {
                let due = tokio::time::Instant::now() + wait;
                match parked.get_mut(&p) {
                    Some(k) => {
                        k.due = due;
                        k.attempts = attempt + 1;
                    }
                    None => {
                        if let Err(e) = consumer.pause(p) {
                            tracing::error!(error = %e, topic = %name, partition = p, "pause failed");
                        }
                        parked.insert(
                            p,
                            Parked {
                                queue: std::collections::VecDeque::from([record]),
                                due,
                                attempts: attempt + 1,
                            },
                        );
                    }
                }
            }
            Ok(Flow::Stop) => return,
            Err(e) => {
                // The side effect could not be recorded (the store, a DLQ
                // publish): do not commit; wait, then re-read from the last
                // commit. Never re-run the side effect at once.
                tracing::error!(error = %crate::service::chain(&e), topic = %name, "handler failed; record will be redelivered");
                drop(consumer);
                parked.clear();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
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

/// Sleep until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
