//! The transcoder: consumes akm.transcode.request, runs each request (at
//! most `transcode_concurrency` at once) and publishes the answer to the
//! requester's reply partition. A request is committed when taken: it is
//! worthless after its deadline, so it is never redone after a crash, and a
//! request whose deadline has passed is skipped.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::bus::{BusError, Message, Record, Topic};
use crate::events::{self, TargetCodeRec, TranscodeReplied, TranscodeRequested};
use crate::node::Node;
use crate::service::transcode;
use crate::workers::{consume, Flow};

/// Run the transcoder group member until cancelled; `ready` is told when
/// it first holds partitions.
pub async fn run(node: Arc<Node>, limit: Arc<Semaphore>, ready: tokio::sync::mpsc::Sender<()>) {
    // One group per node: on a shared cluster every node reads the topic and
    // takes only the requests its own ingress published (header `node`).
    let group = format!("akm-transcoder-{}", node.node_id());
    consume::<TranscodeRequested, _, _>(
        node,
        Topic::TranscodeRequest,
        &group,
        Some(ready),
        move |node, ev, rec| {
            let limit = limit.clone();
            async move { take(node, ev, rec, limit).await }
        },
    )
    .await
}

async fn take(
    node: Arc<Node>,
    ev: TranscodeRequested,
    rec: Record,
    limit: Arc<Semaphore>,
) -> Result<Flow, BusError> {
    if rec.header("node").is_some_and(|n| n != node.node_id()) {
        return Ok(Flow::Commit); // another node's request on a shared cluster
    }
    if ev.deadline_ms <= Node::now_ms() {
        tracing::info!(request_id = %ev.request_id, "transcode request past its deadline skipped");
        return Ok(Flow::Commit);
    }
    let Ok(permit) = limit.acquire_owned().await else {
        return Ok(Flow::Stop);
    };
    let span =
        tracing::info_span!("transcode", trace_id = %ev.trace_id, request_id = %ev.request_id);
    tokio::spawn(async move {
        let _permit = permit;
        let reply = match transcode::run(&node, &ev).await {
            Ok(codes) => TranscodeReplied {
                request_id: ev.request_id.clone(),
                trace_id: ev.trace_id.clone(),
                err_code: "200".into(),
                err_msg: if codes.is_empty() {
                    "用户未持有该目标卡码"
                } else {
                    "转码成功"
                }
                .into(),
                codes: codes
                    .into_iter()
                    .map(|c| TargetCodeRec {
                        target_qr_code: c.target_qr_code,
                        target_id: c.target_id,
                        target_object: c.target_object,
                    })
                    .collect(),
            },
            Err(e) => {
                if e.code().starts_with('5') {
                    tracing::warn!(request_id = %ev.request_id, code = e.code(), error = %e, "transcode failed");
                }
                TranscodeReplied {
                    request_id: ev.request_id.clone(),
                    trace_id: ev.trace_id.clone(),
                    err_code: e.code().to_string(),
                    err_msg: e.to_string(),
                    codes: Vec::new(),
                }
            }
        };
        if reply_to(&node, &ev, &reply).await.is_err() {
            tracing::error!(request_id = %ev.request_id, "transcode reply could not be published");
        }
    }.instrument(span));
    Ok(Flow::Commit)
}

async fn reply_to(
    node: &Node,
    ev: &TranscodeRequested,
    reply: &TranscodeReplied,
) -> Result<(), BusError> {
    if ev.deadline_ms <= Node::now_ms() {
        return Ok(()); // nobody waits any more
    }
    let payload = events::encode(reply).map_err(|e| BusError::Storage(e.to_string()))?;
    let m = Message::new(
        node.bus.topics().name(Topic::TranscodeReply),
        ev.request_id.as_bytes().to_vec(),
        payload,
    )
    .header("traceId", ev.trace_id.clone())
    .to_partition(ev.reply_partition.max(0) as u32);
    node.bus.publish(m).await.map(|_| ())
}
