//! `POST /api/v1/transcode` (spec 7.3): the synchronous request-reply
//! ingress. The parsed request goes on akm.transcode.request; the answer
//! comes back on this instance's reply partition, or the terminal gets
//! 5004 at the deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;

use super::envelope::Envelope;
use super::fields::Fields;
use crate::bus::{Message, Topic};
use crate::domain::resident::TargetCode;
use crate::error::ApiError;
use crate::events::{self, TranscodeRequested};
use crate::node::Node;
use crate::service::decode::CodeQuery;

pub async fn transcode(
    State(node): State<Arc<Node>>,
    f: Fields,
) -> Result<Envelope<Vec<TargetCode>>, ApiError> {
    let q = CodeQuery::parse(&f)?;
    let target_object = f.opt_json_string("targetObject")?.unwrap_or_default();
    let timeout = Duration::from_millis(node.settings.transcode_timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    let request_id = uuid::Uuid::new_v4().to_string();
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let ev = TranscodeRequested {
        request_id: request_id.clone(),
        trace_id: trace_id.clone(),
        deadline_ms: Node::now_ms() + timeout.as_millis() as i64,
        reply_partition: node.reply_partition as i32,
        city_no: q.city.to_string(),
        qr_token: q.token.as_str().to_string(),
        target_type: q.target.to_string(),
        scene_code: q.scene.map(|s| s.as_str().to_string()).unwrap_or_default(),
        target_object,
    };
    let mut waiter = node.pending.register(&request_id)?;
    let payload = events::encode(&ev).map_err(ApiError::internal)?;
    let m = Message::new(
        node.bus.topics().name(Topic::TranscodeRequest),
        request_id.as_bytes().to_vec(),
        payload,
    )
    .header("traceId", trace_id.clone())
    .header("node", node.node_id());
    tokio::time::timeout_at(deadline, node.bus.publish(m))
        .await
        .map_err(|_| ApiError::Timeout("转码请求排队超时"))?
        .map_err(ApiError::internal)?;
    let reply = match tokio::time::timeout_at(deadline, &mut waiter.rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => return Err(ApiError::internal("reply channel closed")),
        Err(_) => {
            tracing::warn!(request_id, trace_id, "transcode timed out");
            return Err(ApiError::Timeout("转码未在时限内完成"));
        }
    };
    if reply.err_code != "200" {
        return Err(ApiError::relayed(&reply.err_code, &reply.err_msg));
    }
    let codes = reply
        .codes
        .into_iter()
        .map(|c| TargetCode {
            target_qr_code: c.target_qr_code,
            target_id: c.target_id,
            target_object: c.target_object,
        })
        .collect();
    Ok(Envelope::ok(codes, reply.err_msg))
}
