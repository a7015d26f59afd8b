//! Request-reply for transcode: the map of requests waiting for a reply
//! (bounded; an entry leaves when answered, timed out or abandoned) and the
//! listener on this instance's reply partition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::bus::Topic;
use crate::error::ApiError;
use crate::events::{self, TranscodeReplied};
use crate::node::Node;

/// Requests waiting for their reply, by requestId.
#[derive(Debug)]
pub struct Pending {
    waiting: Mutex<HashMap<String, oneshot::Sender<TranscodeReplied>>>,
    cap: usize,
}

/// A registered wait; dropping it (answer, timeout, client gone) removes the entry.
#[derive(Debug)]
pub struct Waiter<'a> {
    pending: &'a Pending,
    id: String,
    pub rx: oneshot::Receiver<TranscodeReplied>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl Pending {
    pub fn new(cap: usize) -> Self {
        Pending {
            waiting: Mutex::new(HashMap::new()),
            cap,
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<TranscodeReplied>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for `id`; 4029 when `cap` requests are already waiting.
    pub fn register(&self, id: &str) -> Result<Waiter<'_>, ApiError> {
        let (tx, rx) = oneshot::channel();
        let mut map = self.lock();
        if map.len() >= self.cap {
            return Err(ApiError::RateLimited);
        }
        map.insert(id.to_string(), tx);
        Ok(Waiter {
            pending: self,
            id: id.to_string(),
            rx,
        })
    }

    /// Hand a reply to its waiter; false when nobody waits (late or foreign).
    pub fn complete(&self, reply: TranscodeReplied) -> bool {
        match self.lock().remove(&reply.request_id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Listen on this instance's reply partition and wake waiters. The
/// partition is assigned (no group) from its current end before this
/// returns its future, so no reply published after start is missed.
pub async fn listen(
    node: Arc<Node>,
) -> Result<impl std::future::Future<Output = ()>, crate::bus::BusError> {
    let topic = node.bus.topics().name(Topic::TranscodeReply);
    let mut consumer = node.bus.assign(&topic, node.reply_partition).await?;
    Ok(async move {
        loop {
            let r = tokio::select! {
                _ = node.cancel.cancelled() => return,
                r = consumer.next() => r,
            };
            match r {
                Ok(record) => match events::decode::<TranscodeReplied>(&record.payload) {
                    Ok(reply) => {
                        let id = reply.request_id.clone();
                        if !node.pending.complete(reply) {
                            tracing::debug!(request_id = %id, "late transcode reply dropped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "undecodable transcode reply dropped"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "reply listener failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    })
}
