//! The notifier (province): consumes akm.notify and pushes each message to
//! the push gateway once, one attempt per turn, with `Idempotency-Key:
//! <tradeNo>`. Delivered tradeNos are recorded (flushed) before the offset
//! is committed, so a redelivered message is not pushed again. If the
//! record of a delivery cannot be written, the push is remembered in memory
//! and only the record is retried: never a re-push in a loop. Transient
//! failures park the record and retry; refusals go to the DLQ. The
//! delivered mark also goes to the changelog (`akm.callback.state`), so
//! the instance a partition of `akm.notify` moves to knows what was
//! pushed; a push that still repeats (a crash between the push and its
//! mark) carries the same `Idempotency-Key`.
//!
//! The members of this process claim a trade before pushing it: when a
//! rebalance hands a partition to another member while the first is still
//! pushing one of its records (the group forming at start-up does this),
//! the second waits for the first's outcome instead of pushing it too.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record, Topic};
use crate::clients::{push, Delivery};
use crate::clock::SharedClock;
use crate::crypto::Keyring;
use crate::domain::mask;
use crate::events::Notification;
use crate::service::state_log::StateLog;
use crate::service::ServiceError;
use crate::store::{trade_key, Store};
use crate::workers::retry::Schedule;
use crate::workers::{consume_window, dead_letter, Flow, WorkerError};

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
    /// Trades (their idempotency keys: cityNo, targetType, tradeNo) pushed,
    /// but whose delivered record is not written yet.
    pub unrecorded: Arc<Mutex<HashSet<Vec<u8>>>>,
    /// Records of a partition pushed at once (`AKM_WORKER_WINDOW`).
    pub window: usize,
    /// Trades a member of this process is pushing right now.
    pub pushing: Arc<Mutex<HashSet<Vec<u8>>>>,
    /// The changelog the delivered marks go to.
    pub state: StateLog,
}

/// A claim on pushing one trade, released when dropped.
struct Claim {
    set: Arc<Mutex<HashSet<Vec<u8>>>>,
    key: Vec<u8>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// Claim `key` in `set`, unless another member holds it.
fn claim(set: &Arc<Mutex<HashSet<Vec<u8>>>>, key: &[u8]) -> Option<Claim> {
    let mut held = set.lock().unwrap_or_else(|p| p.into_inner());
    held.insert(key.to_vec()).then(|| Claim {
        set: set.clone(),
        key: key.to_vec(),
    })
}

/// How long a member waits for another member's push of the same trade.
const CLAIMED_WAIT: Duration = Duration::from_millis(50);

/// Run one notifier group member until cancelled.
pub async fn run(n: Notifier) {
    let (bus, cancel) = (n.bus.clone(), n.cancel.clone());
    let window = n.window;
    consume_window::<Notification, _, _>(
        bus,
        cancel,
        "akm-notifier",
        None,
        window,
        |ev, rec, attempt| {
            let n = n.clone();
            async move { n.notify(ev, rec, attempt).await }
        },
    )
    .await
}

impl Notifier {
    fn unrecorded(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        self.unrecorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write the delivered record; on failure keep the push in memory and
    /// wait for the store.
    async fn record(&self, n: &Notification, key: Vec<u8>, attempt: u32) -> Flow {
        let trade_no = n.trade_no.as_str();
        let now = self.clock.now_ms();
        let written = match self.store.mark_delivered(&key, now) {
            Ok(()) => self.store.sync().await.map_err(ServiceError::from),
            Err(e) => Err(e.into()),
        };
        let written = match written {
            Ok(()) => {
                let trade = format!("{}/{}/{}", n.city_no, n.target_type, n.trade_no);
                self.state.delivered(&trade, &n.trace_id, now).await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                self.unrecorded().remove(&key);
                Flow::Commit
            }
            Err(e) => {
                self.unrecorded().insert(key);
                let wait = self.schedule.next(attempt);
                tracing::error!(trade_no, error = %crate::service::chain(&e), wait_ms = wait.as_millis() as u64, "pushed, but the delivery cannot be recorded; waiting for the store and the bus (no re-push)");
                Flow::RetryAfter(wait)
            }
        }
    }

    async fn notify(
        &self,
        sealed: Notification,
        rec: Record,
        attempt: u32,
    ) -> Result<Flow, WorkerError> {
        let key = trade_key(&sealed.city_no, &sealed.target_type, &sealed.trade_no);
        if self.unrecorded().contains(&key) {
            return Ok(self.record(&sealed, key, attempt).await);
        }
        let Some(_claim) = claim(&self.pushing, &key) else {
            // another member is pushing it: its outcome decides
            return Ok(Flow::RetryAfter(CLAIMED_WAIT));
        };
        if self.store.is_delivered(&key)? {
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
        let started = std::time::Instant::now();
        let pushed = push::push(&self.http, &self.push_url, &n, self.timeout).await;
        self.bus.metrics().outbound(
            crate::metrics::Party::PushGateway,
            pushed.outcome(),
            started.elapsed(),
        );
        Ok(match pushed {
            Delivery::Done => {
                tracing::info!(trade_no = %n.trade_no, to = %mask::id(&n.idcard_no), trace_id = %n.trace_id, "resident notified");
                self.record(&n, key, 0).await
            }
            Delivery::Retry { reason, after } => {
                let wait = after.unwrap_or_else(|| self.schedule.next(attempt));
                tracing::warn!(trade_no = %n.trade_no, tries = attempt + 1, %reason, wait_ms = wait.as_millis() as u64, "push failed; retrying");
                Flow::RetryAfter(wait)
            }
            Delivery::Misconfigured { reason } => {
                let wait = self.schedule.next(attempt);
                tracing::error!(trade_no = %n.trade_no, tries = attempt + 1, %reason, wait_ms = wait.as_millis() as u64, "the push gateway refuses our calls (check AKM_PUSH_URL); retrying");
                Flow::RetryAfter(wait)
            }
            Delivery::Reject { reason } => {
                tracing::error!(trade_no = %n.trade_no, %reason, "push gateway refused; sent to DLQ");
                dead_letter(&self.bus, Topic::Notify, &rec, &reason).await?;
                Flow::Commit
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_trade_is_not_claimed_again_until_released() {
        let set = Arc::default();
        let first = claim(&set, b"k1");
        assert!(first.is_some());
        assert!(claim(&set, b"k1").is_none(), "two members push one trade");
        assert!(claim(&set, b"k2").is_some(), "another trade waits");
        drop(first);
        assert!(claim(&set, b"k1").is_some(), "a released claim stays held");
    }
}
