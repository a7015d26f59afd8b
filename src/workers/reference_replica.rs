//! The reference replica: every instance reads `akm.reference` in a group
//! of its own (`akm-reference-replica-<instance>`, the instance id kept in
//! its data directory) and applies the changes of its scope to its store,
//! in the topic's order; an admin write at this instance waits for it
//! (`service/reference.rs`). A new or wiped instance starts its group at
//! the beginning of the (compacted) topic and so restores the scope's
//! residents, fused cards, configs and apps.

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record};
use crate::events::ReferenceChanged;
use crate::service::reference::{self, Applied};
use crate::service::ServiceError;
use crate::store::Store;
use crate::workers::{consume, Flow, WorkerError};

/// What the replica needs.
#[derive(Debug, Clone)]
pub struct Replica {
    pub bus: Bus,
    pub store: Store,
    /// `province`, or `city-<cityNo>`: the changes applied here.
    pub scope: String,
    /// This instance's id (stable for its data directory).
    pub instance: String,
    pub applied: Applied,
    pub cancel: CancellationToken,
}

/// Run the replica until cancelled.
pub async fn run(r: Replica) {
    let group = format!("akm-reference-replica-{}", r.instance);
    let (bus, cancel) = (r.bus.clone(), r.cancel.clone());
    consume::<ReferenceChanged, _, _>(bus, cancel, &group, None, |ev, rec, _| {
        let r = r.clone();
        async move { r.apply(ev, rec) }
    })
    .await
}

impl Replica {
    fn apply(&self, ev: ReferenceChanged, rec: Record) -> Result<Flow, WorkerError> {
        if ev.scope == self.scope {
            // a record that does not open (a key this instance lacks) or
            // does not apply (a bad field) is skipped: retrying cannot help
            let applied = match reference::open(&self.store, &ev) {
                Ok(change) => change.apply(&self.store),
                Err(e) => Err(e),
            };
            match applied {
                Ok(()) => {}
                Err(ServiceError::Store(e)) if !e.is_corrupt() => return Err(e.into()),
                Err(e) => {
                    tracing::error!(error = %crate::service::chain(&e), kind = %ev.kind, trace_id = %ev.trace_id, "reference change not applied here; skipped")
                }
            }
        }
        self.applied.advance(rec.partition, rec.offset);
        Ok(Flow::Commit)
    }
}
