//! The transcoder: consumes akm.transcode.request, runs each request (at
//! most `transcode_concurrency` at once) and answers: straight to the
//! waiter when this instance's ingress took the request, else on the
//! requester's reply partition (`service/answers.rs`). A request is committed when taken: it is
//! worthless after its deadline, so it is never redone after a crash, and a
//! request whose deadline has passed is skipped.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{Bus, Record};
use crate::events::TranscodeRequested;
use crate::service::answers::Answers;
use crate::service::transcode::{TranscodeAnswer, Transcoder};
use crate::workers::{consume, Flow, WorkerError};

/// What a transcoder group member needs.
#[derive(Debug, Clone)]
pub struct Worker {
    pub bus: Bus,
    pub transcoder: Arc<Transcoder>,
    /// Where the answers go.
    pub answers: Answers<TranscodeAnswer>,
    /// This node on a shared bus; requests of other nodes are skipped.
    pub node_id: String,
    pub limit: Arc<Semaphore>,
    pub cancel: CancellationToken,
}

/// Run the transcoder group member until cancelled; `ready` is told when
/// it first holds partitions.
pub async fn run(w: Worker, ready: tokio::sync::mpsc::Sender<()>) {
    // One group per node: on a shared cluster every node reads the topic and
    // takes only the requests its own ingress published (header `node`).
    let group = format!("akm-transcoder-{}", w.node_id);
    let (bus, cancel) = (w.bus.clone(), w.cancel.clone());
    consume::<TranscodeRequested, _, _>(bus, cancel, &group, Some(ready), |ev, rec, _| {
        let w = w.clone();
        async move { w.take(ev, rec).await }
    })
    .await
}

impl Worker {
    async fn take(self, ev: TranscodeRequested, rec: Record) -> Result<Flow, WorkerError> {
        if rec.header("node").is_some_and(|n| n != self.node_id) {
            return Ok(Flow::Commit); // another node's request on a shared cluster
        }
        if self.transcoder.expired(&ev) {
            tracing::info!(request_id = %ev.request_id, "transcode request past its deadline skipped");
            return Ok(Flow::Commit);
        }
        let Ok(permit) = self.limit.clone().acquire_owned().await else {
            return Ok(Flow::Stop);
        };
        let span =
            tracing::info_span!("transcode", trace_id = %ev.trace_id, request_id = %ev.request_id);
        tokio::spawn(
            async move {
                let _permit = permit;
                // the province's decode and the card system continue the trace
                let reply =
                    crate::trace::within(ev.trace_id.clone(), self.transcoder.reply(&ev)).await;
                if self.transcoder.expired(&ev) {
                    return; // nobody waits any more
                }
                if let Err(e) = self.answers.answer(reply).await {
                    tracing::error!(request_id = %ev.request_id, error = %crate::service::chain(&e), "transcode reply could not be published");
                }
            }
            .instrument(span),
        );
        Ok(Flow::Commit)
    }
}
