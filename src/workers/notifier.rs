//! The notifier (province): consumes akm.notify and pushes each message to
//! the push gateway once. Delivered tradeNos are recorded in sled (flushed)
//! before the offset is committed, so a redelivered message is not pushed
//! again; transient failures retry with backoff, refusals go to the DLQ.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record, Topic};
use crate::clients::push;
use crate::clock::SharedClock;
use crate::crypto::Keyring;
use crate::domain::mask;
use crate::events::Notification;
use crate::store::Store;
use crate::workers::retry::{self, Ended, Schedule};
use crate::workers::{consume, dead_letter, Flow, WorkerError};

/// What a notifier needs.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub bus: Bus,
    pub store: Store,
    pub http: reqwest::Client,
    pub push_url: String,
    pub schedule: Schedule,
    pub timeout: Duration,
    pub clock: SharedClock,
    pub cancel: CancellationToken,
    /// Opens the notification's sealed fields.
    pub keys: Arc<Keyring>,
}

/// Run one notifier group member until cancelled.
pub async fn run(n: Notifier) {
    let (bus, cancel) = (n.bus.clone(), n.cancel.clone());
    consume::<Notification, _, _>(bus, cancel, "akm-notifier", None, |ev, rec| {
        let n = n.clone();
        async move { n.notify(ev, rec).await }
    })
    .await
}

impl Notifier {
    async fn notify(&self, sealed: Notification, rec: Record) -> Result<Flow, WorkerError> {
        if self.store.is_delivered(&sealed.trade_no)? {
            return Ok(Flow::Commit);
        }
        // The personal fields travel sealed; the push gateway gets them in the clear.
        let opened = (|| -> Result<Notification, crate::crypto::CryptoError> {
            Ok(Notification {
                idcard_no: self.keys.open(&sealed.idcard_no)?,
                user_phone: self.keys.open(&sealed.user_phone)?,
                ..sealed.clone()
            })
        })();
        let n = match opened {
            Ok(n) => n,
            Err(e) => {
                let reason = format!("sealed fields do not open: {e}");
                tracing::error!(trade_no = %sealed.trade_no, %reason, "notification sent to DLQ");
                dead_letter(&self.bus, Topic::Notify, &rec, &reason).await?;
                return Ok(Flow::Commit);
            }
        };
        let what = format!("push trade {}", n.trade_no);
        match retry::deliver(&self.cancel, self.schedule, &what, || {
            push::push(&self.http, &self.push_url, &n, self.timeout)
        })
        .await
        {
            Ended::Delivered => {
                self.store
                    .mark_delivered(&n.trade_no, self.clock.now_ms())?;
                self.store.sync().await?;
                tracing::info!(trade_no = %n.trade_no, to = %mask::id(&n.idcard_no), trace_id = %n.trace_id, "resident notified");
                Ok(Flow::Commit)
            }
            Ended::Rejected(reason) => {
                tracing::error!(trade_no = %n.trade_no, %reason, "push gateway refused; sent to DLQ");
                dead_letter(&self.bus, Topic::Notify, &rec, &reason).await?;
                Ok(Flow::Commit)
            }
            Ended::Cancelled => Ok(Flow::Stop),
        }
    }
}
