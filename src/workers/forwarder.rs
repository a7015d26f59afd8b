//! The forwarder (city): consumes akm.trade.reported and calls the
//! province's callback until it answers. Transient failures retry without
//! limit of time; a permanent refusal sends the event to the DLQ. The offset
//! is committed after either. The province dedupes by tradeNo.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record, Topic};
use crate::clients::province::ProvinceClient;
use crate::crypto::Keyring;
use crate::events::TradeReported;
use crate::workers::retry::{self, Ended, Schedule};
use crate::workers::{consume, dead_letter, Flow, WorkerError};

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
}

/// Run one forwarder group member until cancelled.
pub async fn run(f: Forwarder) {
    let (bus, cancel) = (f.bus.clone(), f.cancel.clone());
    consume::<TradeReported, _, _>(bus, cancel, "akm-forwarder", None, |t, rec| {
        let f = f.clone();
        async move { f.forward(t, rec).await }
    })
    .await
}

impl Forwarder {
    async fn forward(&self, sealed: TradeReported, rec: Record) -> Result<Flow, WorkerError> {
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
        let what = format!("forward trade {}", t.trade_no);
        match retry::deliver(&self.cancel, self.schedule, &what, || {
            self.province.callback(&t, self.timeout)
        })
        .await
        {
            Ended::Delivered => {
                tracing::info!(trade_no = %t.trade_no, trace_id = %t.trace_id, "trade forwarded to province");
                Ok(Flow::Commit)
            }
            Ended::Rejected(reason) => {
                tracing::error!(trade_no = %t.trade_no, %reason, "province refused trade; sent to DLQ");
                dead_letter(&self.bus, Topic::TradeReported, &rec, &reason).await?;
                Ok(Flow::Commit)
            }
            Ended::Cancelled => Ok(Flow::Stop),
        }
    }
}
