//! The listeners on this ingress instance's reply partitions (transcode
//! and callback answers): each opens a reply (`Answer::from_wire`) and
//! hands it to its waiter in the pending map.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusConsumer, BusError, Channel};
use crate::crypto::Keyring;
use crate::events;
use crate::service::pending::{Answer, Pending};

/// The partition is assigned (no group) from its current end before this
/// returns its future, so no reply published after start is missed.
pub async fn listen<R: Answer>(
    bus: Bus,
    pending: Arc<Pending<R>>,
    partition: u32,
    keys: Arc<Keyring>,
    cancel: CancellationToken,
) -> Result<impl std::future::Future<Output = ()>, BusError> {
    let topic = bus.topics().name(R::Wire::TOPIC);
    let mut consumer = bus.assign(&topic, partition).await?;
    Ok(async move {
        loop {
            let r = tokio::select! {
                _ = cancel.cancelled() => return,
                r = consumer.next() => r,
            };
            match r {
                Ok(record) => match events::decode::<R::Wire>(&record.payload) {
                    Ok(wire) => {
                        let reply = R::from_wire(wire, &keys);
                        let id = reply.request_id().to_string();
                        if !pending.complete(reply) {
                            tracing::debug!(request_id = %id, %topic, "late reply dropped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, %topic, "undecodable reply dropped"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "reply listener failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    })
}
