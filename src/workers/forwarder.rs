//! The forwarder (city): consumes akm.trade.reported and calls the
//! province's callback until it answers. Transient failures retry without
//! limit of time; a permanent refusal sends the event to the DLQ. The offset
//! is committed after either. The province dedupes by tradeNo.

use std::sync::Arc;

use crate::bus::{BusError, Record, Topic};
use crate::events::TradeReported;
use crate::node::Node;
use crate::workers::retry::{self, Ended};
use crate::workers::{consume, dead_letter, Flow};

/// Run one forwarder group member until cancelled.
pub async fn run(node: Arc<Node>) {
    consume::<TradeReported, _, _>(node, Topic::TradeReported, "akm-forwarder", None, forward).await
}

async fn forward(node: Arc<Node>, t: TradeReported, rec: Record) -> Result<Flow, BusError> {
    let Some(province) = node.province.clone() else {
        return Ok(Flow::Stop);
    };
    let max = std::time::Duration::from_millis(node.settings.retry_max_ms);
    let timeout = node.http_timeout();
    let what = format!("forward trade {}", t.trade_no);
    match retry::deliver(&node.cancel, max, &what, || province.callback(&t, timeout)).await {
        Ended::Delivered => {
            tracing::info!(trade_no = %t.trade_no, trace_id = %t.trace_id, "trade forwarded to province");
            Ok(Flow::Commit)
        }
        Ended::Rejected(reason) => {
            tracing::error!(trade_no = %t.trade_no, %reason, "province refused trade; sent to DLQ");
            dead_letter(&node, Topic::TradeReported, &rec, &reason).await?;
            Ok(Flow::Commit)
        }
        Ended::Cancelled => Ok(Flow::Stop),
    }
}
