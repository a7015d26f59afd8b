//! Group commit: many concurrent writers wait for one sled flush instead of
//! each forcing its own fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::StoreError;

/// Batches durability requests into as few flushes as possible.
#[derive(Debug)]
pub struct Flusher {
    requested: AtomicU64,
    done: watch::Sender<u64>,
    wake: Notify,
}

impl Flusher {
    /// Start the flushing task for `db` (it lives as long as the runtime).
    pub fn start(db: sled::Db) -> Arc<Self> {
        let (done, _) = watch::channel(0);
        let me = Arc::new(Flusher {
            requested: AtomicU64::new(0),
            done,
            wake: Notify::new(),
        });
        let task = me.clone();
        tokio::spawn(async move {
            loop {
                task.wake.notified().await;
                // Every ticket taken so far was taken after its write, so one
                // flush covers all of them.
                let target = task.requested.load(Ordering::Acquire);
                loop {
                    match db.flush_async().await {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::error!(error = %e, "sled flush failed; retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                task.done.send_replace(target);
            }
        });
        me
    }

    /// Wait until every write made before this call is flushed to disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut rx = self.done.subscribe();
        self.wake.notify_one();
        rx.wait_for(|done| *done >= ticket)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Transaction("flusher stopped".into()))
    }
}
