//! The notifier (province): consumes akm.notify and pushes each message to
//! the push gateway once. Delivered tradeNos are recorded in sled (flushed)
//! before the offset is committed, so a redelivered message is not pushed
//! again; transient failures retry with backoff, refusals go to the DLQ.

use std::sync::Arc;

use crate::bus::{BusError, Record, Topic};
use crate::clients::push;
use crate::domain::mask;
use crate::events::Notification;
use crate::node::Node;
use crate::workers::retry::{self, Ended};
use crate::workers::{consume, dead_letter, Flow};

/// Run one notifier group member until cancelled.
pub async fn run(node: Arc<Node>) {
    consume::<Notification, _, _>(node, Topic::Notify, "akm-notifier", None, notify).await
}

async fn notify(node: Arc<Node>, n: Notification, rec: Record) -> Result<Flow, BusError> {
    if node.store.is_delivered(&n.trade_no)? {
        return Ok(Flow::Commit);
    }
    let max = std::time::Duration::from_millis(node.settings.retry_max_ms);
    let timeout = node.http_timeout();
    let what = format!("push trade {}", n.trade_no);
    match retry::deliver(&node.cancel, max, &what, || {
        push::push(&node.http, &node.push_url, &n, timeout)
    })
    .await
    {
        Ended::Delivered => {
            node.store.mark_delivered(&n.trade_no)?;
            node.store.sync().await?;
            tracing::info!(trade_no = %n.trade_no, to = %mask::id(&n.idcard_no), trace_id = %n.trace_id, "resident notified");
            Ok(Flow::Commit)
        }
        Ended::Rejected(reason) => {
            tracing::error!(trade_no = %n.trade_no, %reason, "push gateway refused; sent to DLQ");
            dead_letter(&node, Topic::Notify, &rec, &reason).await?;
            Ok(Flow::Commit)
        }
        Ended::Cancelled => Ok(Flow::Stop),
    }
}
