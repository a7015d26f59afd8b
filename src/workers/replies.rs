//! The listener on this ingress instance's reply partition: hands each
//! reply to its waiter in the pending map.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusConsumer, BusError, Topic};
use crate::events::{self, TranscodeReplied};
use crate::service::pending::Pending;

/// The partition is assigned (no group) from its current end before this
/// returns its future, so no reply published after start is missed.
pub async fn listen(
    bus: Bus,
    pending: Arc<Pending>,
    partition: u32,
    cancel: CancellationToken,
) -> Result<impl std::future::Future<Output = ()>, BusError> {
    let topic = bus.topics().name(Topic::TranscodeReply);
    let mut consumer = bus.assign(&topic, partition).await?;
    Ok(async move {
        loop {
            let r = tokio::select! {
                _ = cancel.cancelled() => return,
                r = consumer.next() => r,
            };
            match r {
                Ok(record) => match events::decode::<TranscodeReplied>(&record.payload) {
                    Ok(reply) => {
                        let id = reply.request_id.clone();
                        if !pending.complete(reply) {
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
