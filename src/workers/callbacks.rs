//! The callback owners: the instances of a role share one group on
//! `akm.callback.request` (`akm-callbacks-<node>`), so each partition, and
//! with it each idempotency key, has one owner at a time. The owner
//! decides each report (new, duplicate, 4007) against its store, which
//! holds what every earlier owner of the partition accepted (the
//! changelog, `service/state_log.rs`), and answers: straight to the waiter
//! when this instance's ingress took the call, else on the ingress's reply
//! partition (`service/answers.rs`). Like transcode requests, a request is committed when taken:
//! after a crash its caller times out and sends the report again, and the
//! next owner finds the acceptance if there was one.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{Bus, Record};
use crate::crypto::Keyring;
use crate::events::{CallbackReplied, CallbackRequested};
use crate::service::answers::Answers;
use crate::service::callback;
use crate::service::trade::{TradeDesk, Turn};
use crate::workers::{consume, Flow, WorkerError};

/// What an owner group member needs.
#[derive(Debug, Clone)]
pub struct Owner {
    pub bus: Bus,
    pub desk: TradeDesk,
    /// Where the answers go.
    pub answers: Answers<CallbackReplied>,
    /// This node on a shared bus; other nodes' requests are skipped.
    pub node_id: String,
    /// Opens the report's sealed fields.
    pub keys: Arc<Keyring>,
    pub limit: Arc<Semaphore>,
    pub cancel: CancellationToken,
}

/// Run one owner group member until cancelled; `ready` is told when it
/// first holds partitions.
pub async fn run(o: Owner, ready: Option<tokio::sync::mpsc::Sender<()>>) {
    let group = format!("akm-callbacks-{}", o.node_id);
    let (bus, cancel) = (o.bus.clone(), o.cancel.clone());
    consume::<CallbackRequested, _, _>(bus, cancel, &group, ready, |ev, rec, _| {
        let o = o.clone();
        async move { o.take(ev, rec).await }
    })
    .await
}

impl Owner {
    async fn take(self, ev: CallbackRequested, rec: Record) -> Result<Flow, WorkerError> {
        if rec.header("node").is_some_and(|n| n != self.node_id) {
            return Ok(Flow::Commit); // another node's request on a shared cluster
        }
        if self.desk.clock.now_ms() > ev.deadline_ms {
            // its ingress gave up on the bus and decided it itself
            tracing::info!(request_id = %ev.request_id, "callback request past its deadline skipped");
            return Ok(Flow::Commit);
        }
        let turn = Turn {
            partition: rec.partition,
            assignment: rec.assignment,
            answer_by: answer_by(self.desk.clock.now_ms(), ev.deadline_ms, rec.timestamp_ms),
        };
        let Ok(permit) = self.limit.clone().acquire_owned().await else {
            return Ok(Flow::Stop);
        };
        let span =
            tracing::info_span!("callback", trace_id = %ev.trace_id, request_id = %ev.request_id);
        tokio::spawn(
            async move {
                let _permit = permit;
                let decided = match callback::open(&self.keys, &ev) {
                    Ok(t) => self.desk.decide(&t, &ev.trace_id, turn).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = self.answers.answer(callback::reply(&ev, &decided)).await {
                    tracing::error!(request_id = %ev.request_id, error = %crate::service::chain(&e), "callback reply could not be published");
                }
            }
            .instrument(span),
        );
        Ok(Flow::Commit)
    }
}

/// When the owner must have answered a request published at `sent_ms`
/// whose ingress stops taking owners at `deadline_ms` (half its timeout)
/// and stops waiting at twice that: a fifth of the half earlier, left for
/// the reply's trip.
fn answer_by(now_ms: i64, deadline_ms: i64, sent_ms: i64) -> tokio::time::Instant {
    let half = (deadline_ms - sent_ms).max(0);
    let left = (deadline_ms + half - half / 5 - now_ms).max(0);
    tokio::time::Instant::now() + std::time::Duration::from_millis(left as u64)
}

#[cfg(test)]
mod tests {
    use super::answer_by;
    use std::time::Duration;

    #[test]
    fn an_owner_answers_before_its_ingress_stops_waiting() {
        // published at 0 with a 10 s timeout: deadlineMs 5 s, the ingress
        // waits until 10 s; taken at 1 s, the owner has until 9 s
        let now = tokio::time::Instant::now();
        let by = answer_by(1_000, 5_000, 0);
        let left = by - now;
        assert!(
            left >= Duration::from_millis(7_990) && left <= Duration::from_millis(8_010),
            "{left:?}"
        );
        // taken late: nothing left, never a negative wait
        assert!(answer_by(20_000, 5_000, 0) <= tokio::time::Instant::now());
        // a sender's clock ahead of the owner's: the half is not negative
        let by = answer_by(0, 5_000, 9_000);
        assert!(by - now <= Duration::from_millis(5_010));
    }
}
