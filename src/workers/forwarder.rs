//! The forwarder (city): consumes akm.trade.reported and calls the
//! province's callback, one attempt per turn. A transient failure (or a
//! configuration problem: 401, 403, 404) parks the record and retries
//! after the backoff or the province's `Retry-After`, without limit of
//! time and without holding the poll loop; a permanent refusal sends it to
//! the DLQ. The offset is committed after delivery or dead-lettering. The
//! province dedupes by (cityNo, targetType, tradeNo).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record, Topic};
use crate::clients::province::ProvinceClient;
use crate::clients::Delivery;
use crate::crypto::Keyring;
use crate::events::TradeReported;
use crate::workers::retry::Schedule;
use crate::workers::{consume_window, dead_letter, Flow, WorkerError};

/// What a forwarder needs.
#[derive(Debug, Clone)]
pub struct Forwarder {
    pub bus: Bus,
    pub province: ProvinceClient,
    pub schedule: Schedule,
    pub timeout: Duration,
    pub cancel: CancellationToken,
    /// Opens the report's sealed fields.
    pub keys: Arc<Keyring>,
    /// Records of a partition forwarded at once (`AKM_WORKER_WINDOW`).
    pub window: usize,
}

/// Run one forwarder group member until cancelled.
pub async fn run(f: Forwarder) {
    let (bus, cancel) = (f.bus.clone(), f.cancel.clone());
    let window = f.window;
    consume_window::<TradeReported, _, _>(
        bus,
        cancel,
        "akm-forwarder",
        None,
        window,
        |t, rec, attempt| {
            let f = f.clone();
            async move { f.forward(t, rec, attempt).await }
        },
    )
    .await
}

impl Forwarder {
    async fn forward(
        &self,
        sealed: TradeReported,
        rec: Record,
        attempt: u32,
    ) -> Result<Flow, WorkerError> {
        // The personal fields travel sealed; the province gets them over HTTP(S).
        let opened = (|| -> Result<TradeReported, crate::crypto::CryptoError> {
            Ok(TradeReported {
                name: self.keys.open(&sealed.name)?,
                idcard_no: self.keys.open(&sealed.idcard_no)?,
                target_id: self.keys.open(&sealed.target_id)?,
                ..sealed.clone()
            })
        })();
        let t = match opened {
            Ok(t) => t,
            Err(e) => {
                let reason = format!("sealed fields do not open: {e}");
                tracing::error!(trade_no = %sealed.trade_no, %reason, "trade report sent to DLQ");
                dead_letter(&self.bus, Topic::TradeReported, &rec, &reason).await?;
                return Ok(Flow::Commit);
            }
        };
        Ok(match self.province.callback(&t, self.timeout).await {
            Delivery::Done => {
                tracing::info!(trade_no = %t.trade_no, trace_id = %t.trace_id, "trade forwarded to province");
                Flow::Commit
            }
            Delivery::Retry { reason, after } => {
                let wait = after.unwrap_or_else(|| self.schedule.next(attempt));
                tracing::warn!(trade_no = %t.trade_no, tries = attempt + 1, %reason, wait_ms = wait.as_millis() as u64, "forwarding failed; retrying");
                Flow::RetryAfter(wait)
            }
            Delivery::Misconfigured { reason } => {
                let wait = self.schedule.next(attempt);
                tracing::error!(trade_no = %t.trade_no, tries = attempt + 1, %reason, wait_ms = wait.as_millis() as u64, "the province refuses this city's calls; retrying");
                Flow::RetryAfter(wait)
            }
            Delivery::Reject { reason } => {
                tracing::error!(trade_no = %t.trade_no, %reason, "province refused trade; sent to DLQ");
                dead_letter(&self.bus, Topic::TradeReported, &rec, &reason).await?;
                Flow::Commit
            }
        })
    }
}
