//! The outbox relay: publishes outbox records to the bus and removes them.
//! Runs whenever a record is added, and every second to drain what a bus
//! outage left behind.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::service::outbox;
use crate::store::Store;

/// Drain the outbox until cancelled.
pub async fn run(store: Store, bus: Bus, wake: Arc<Notify>, cancel: CancellationToken) {
    loop {
        let mut failed = false;
        loop {
            let batch = match store.outbox_batch(256) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "outbox read failed");
                    failed = true;
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            let results = futures::future::join_all(
                batch
                    .iter()
                    .map(|e| bus.publish(outbox::message(e.record.clone()))),
            )
            .await;
            for (entry, result) in batch.iter().zip(results) {
                match result {
                    Ok(_) => {
                        if !failed {
                            if let Err(e) = store.outbox_remove(entry.id) {
                                // published; it goes again later, and the
                                // consumers drop the repeat
                                tracing::error!(error = %e, "outbox remove failed; will retry");
                                failed = true;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, topic = %entry.record.topic, "publish from outbox failed; will retry");
                        failed = true;
                    }
                }
            }
            if failed {
                break;
            }
        }
        let wait = if failed {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
