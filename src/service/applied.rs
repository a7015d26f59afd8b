//! A replica's progress through its topic (`akm.reference`,
//! `akm.callback.state`): what `/readyz` reports, and what a writer or an
//! owner waits on to read its own writes and everything before them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::bus::{Bus, BusError, Topic};

/// How far one of this instance's replicas has applied its topic: per
/// partition, the next offset it will apply.
#[derive(Debug, Clone, Default)]
pub struct Applied(Arc<watch::Sender<HashMap<u32, u64>>>);

impl Applied {
    /// The replica applied the record at `offset` of `partition`.
    pub fn advance(&self, partition: u32, offset: u64) {
        self.0.send_modify(|m| {
            let next = m.entry(partition).or_insert(0);
            *next = (*next).max(offset + 1);
        });
    }

    /// Per partition, the next offset the replica will apply (what it has
    /// restored and followed so far).
    pub fn progress(&self) -> HashMap<u32, u64> {
        self.0.borrow().clone()
    }

    /// Wait until the record at `offset` of `partition` is applied.
    pub async fn reached(&self, partition: u32, offset: u64) -> bool {
        let mut rx = self.0.subscribe();
        let reached = rx
            .wait_for(|m| m.get(&partition).is_some_and(|n| *n > offset))
            .await
            .is_ok();
        reached
    }
}

/// Wait until `applied` has passed everything on `topic`'s `partitions`
/// that was published before this call (their end offsets now), at most
/// `wait`; whether it got there.
pub async fn caught_up(
    bus: &Bus,
    topic: Topic,
    partitions: &[u32],
    applied: &Applied,
    wait: std::time::Duration,
) -> Result<bool, BusError> {
    let name = bus.topics().name(topic);
    let mut ends = Vec::with_capacity(partitions.len());
    for &p in partitions {
        ends.push((p, bus.end_offset(&name, p).await?));
    }
    let all = async {
        for (p, end) in ends {
            if end > 0 && !applied.reached(p, end - 1).await {
                return false;
            }
        }
        true
    };
    Ok(tokio::time::timeout(wait, all).await.unwrap_or(false))
}

/// Whether this instance has restored its state (reference data, the
/// callbacks' state) from the bus since it started: until then `/readyz`
/// answers 503 and the business services 5003.
#[derive(Debug, Clone)]
pub struct Restore(Arc<watch::Sender<bool>>);

impl Default for Restore {
    fn default() -> Self {
        Restore(Arc::new(watch::channel(false).0))
    }
}

impl Restore {
    /// Restored: the instance takes work.
    pub fn finish(&self) {
        self.0.send_replace(true);
    }

    pub fn is_done(&self) -> bool {
        *self.0.borrow()
    }

    /// 5003 while restoring.
    pub fn check(&self) -> Result<(), crate::service::ServiceError> {
        if self.is_done() {
            Ok(())
        } else {
            Err(crate::service::ServiceError::Restoring(
                "参考数据与回传状态",
            ))
        }
    }

    /// Wait until restored.
    pub async fn done(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }
}
