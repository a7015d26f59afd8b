//! The outbox relay: publishes outbox entries to the bus and removes them.
//! Runs whenever an entry is added, and every second to drain what a bus
//! outage left behind.

use std::sync::Arc;
use std::time::Duration;

use crate::node::Node;

/// Drain the outbox until cancelled.
pub async fn run(node: Arc<Node>) {
    loop {
        let mut failed = false;
        loop {
            let batch = match node.store.outbox_batch(256) {
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
                batch.iter().map(|e| node.bus.publish(e.message.clone())),
            )
            .await;
            for (entry, result) in batch.iter().zip(results) {
                match result {
                    Ok(_) => {
                        if let Err(e) = node.store.outbox_remove(entry.id) {
                            tracing::error!(error = %e, "outbox remove failed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, topic = %entry.message.topic, "publish from outbox failed; will retry");
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
            _ = node.cancel.cancelled() => return,
            _ = node.relay.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
