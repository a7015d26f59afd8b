//! The push gateway (SPEC §5): one POST per resident message; any 2xx is delivered.

use std::time::Duration;

use serde::Serialize;

use super::{deliver, Delivery};
use crate::events::Notification;

/// Body of the push call.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRequest<'a> {
    pub idcard_no: &'a str,
    pub user_phone: &'a str,
    pub title: &'a str,
    pub content: &'a str,
    pub trade_no: &'a str,
    pub city_no: &'a str,
    pub target_type: &'a str,
    pub trade_state: &'a str,
    pub trade_time: &'a str,
}

/// Push one notification.
pub async fn push(
    http: &reqwest::Client,
    url: &str,
    n: &Notification,
    timeout: Duration,
) -> Delivery {
    let body = PushRequest {
        idcard_no: &n.idcard_no,
        user_phone: &n.user_phone,
        title: &n.title,
        content: &n.content,
        trade_no: &n.trade_no,
        city_no: &n.city_no,
        target_type: &n.target_type,
        trade_state: &n.trade_state,
        trade_time: &n.trade_time,
    };
    // The gateway drops a second push with the same key (after a crash
    // between the push and its record).
    crate::trace::within(
        n.trace_id.clone(),
        deliver(
            http,
            url,
            &body,
            timeout,
            None,
            &[("Idempotency-Key", &n.trade_no)],
        ),
    )
    .await
}
