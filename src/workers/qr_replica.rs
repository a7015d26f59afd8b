//! The QR replica (province): every province instance reads `akm.qr.grants`
//! in a group of its own (`akm-qr-replica-<instance>`, the instance id kept
//! in its data directory) and keeps each live grant in its store, so a
//! token issued at any instance decodes at this one. A new or wiped
//! instance starts its group at the topic's beginning and restores every
//! grant the topic still holds (a day); expired grants are skipped. The
//! grant stays sealed: the record is applied as it came, after a check
//! that this instance's keys open it.

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record};
use crate::clock::SharedClock;
use crate::domain::QrToken;
use crate::events::QrGranted;
use crate::store::Store;
use crate::workers::{consume, Flow, WorkerError};

/// What the replica needs.
#[derive(Debug, Clone)]
pub struct Replica {
    pub bus: Bus,
    pub store: Store,
    pub clock: SharedClock,
    /// This instance's id (stable for its data directory).
    pub instance: String,
    pub cancel: CancellationToken,
}

/// Run the replica until cancelled; `ready` is told when it holds its
/// partitions.
pub async fn run(r: Replica, ready: Option<tokio::sync::mpsc::Sender<()>>) {
    let group = format!("akm-qr-replica-{}", r.instance);
    let (bus, cancel) = (r.bus.clone(), r.cancel.clone());
    consume::<QrGranted, _, _>(bus, cancel, &group, ready, |g, rec, _| {
        let r = r.clone();
        async move { r.apply(g, rec) }
    })
    .await
}

impl Replica {
    fn apply(&self, g: QrGranted, rec: Record) -> Result<Flow, WorkerError> {
        if g.expires_at <= self.clock.now_ms() {
            return Ok(Flow::Commit); // nothing to decode any more
        }
        let Ok(token) = QrToken::parse(&g.token) else {
            tracing::error!(
                offset = rec.offset,
                partition = rec.partition,
                "QR grant with a malformed token skipped"
            );
            return Ok(Flow::Commit);
        };
        if !self.store.put_sealed_qr(&token, &g.grant)? {
            tracing::error!(trace_id = %g.trace_id, offset = rec.offset, "QR grant sealed under a key this instance does not hold; skipped");
        }
        Ok(Flow::Commit)
    }
}
