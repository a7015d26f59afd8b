//! The state replica: every instance reads `akm.callback.state` in a group
//! of its own (`akm-state-replica-<instance>`, the instance id kept in its
//! data directory) and applies its scope's acceptances and deliveries to
//! its store, in the topic's order. A new or wiped instance starts at the
//! beginning of the (compacted) topic and so restores every partition's
//! state; a running one follows it, so a partition moving here finds what
//! its last owner accepted (the owner still catches up on the partition
//! before it takes anything as new: `service/state_log.rs`).

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record};
use crate::events::StateChanged;
use crate::service::applied::Applied;
use crate::service::state_log::{ACCEPTED, DELIVERED};
use crate::store::{trade_key_of, Store};
use crate::workers::{consume, Flow, WorkerError};

/// What the replica needs.
#[derive(Debug, Clone)]
pub struct Replica {
    pub bus: Bus,
    pub store: Store,
    /// `province`, or `city-<cityNo>`: the state applied here.
    pub scope: String,
    /// This instance's id (stable for its data directory).
    pub instance: String,
    pub applied: Applied,
    pub cancel: CancellationToken,
}

/// Run the replica until cancelled.
pub async fn run(r: Replica) {
    let group = format!("akm-state-replica-{}", r.instance);
    let (bus, cancel) = (r.bus.clone(), r.cancel.clone());
    consume::<StateChanged, _, _>(bus, cancel, &group, None, |ev, rec, _| {
        let r = r.clone();
        async move { r.apply(ev, rec) }
    })
    .await
}

impl Replica {
    fn apply(&self, ev: StateChanged, rec: Record) -> Result<Flow, WorkerError> {
        if ev.scope == self.scope {
            match (ev.kind.as_str(), trade_key_of(&ev.trade_key)) {
                (ACCEPTED, Some(key)) => {
                    self.store
                        .put_trade(&key, ev.at, &ev.trace_id, &ev.digest)?
                }
                (DELIVERED, Some(key)) => self.store.mark_delivered(&key, ev.at)?,
                _ => {
                    tracing::error!(kind = %ev.kind, offset = rec.offset, partition = rec.partition, "state change not understood; skipped")
                }
            }
        }
        self.applied.advance(rec.partition, rec.offset);
        Ok(Flow::Commit)
    }
}
