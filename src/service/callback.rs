//! Callback (spec 7.4), the ingress half: any instance takes the HTTP
//! call, publishes a `CallbackRequested` keyed by the idempotency key
//! (cityNo/targetType/tradeNo) and waits for the answer of the instance
//! that owns the key's partition (`workers/callbacks.rs`, deciding with
//! [`super::trade::TradeDesk`]). So whichever instances saw the earlier
//! reports, one owner decides new, duplicate or 4007.
//!
//! The request goes to an explicit partition, a stable hash of the key,
//! so every instance (and the changelog) agrees on it without the bus's
//! partitioner. When the bus does not take the request within half the
//! deadline (a broker outage), this instance decides locally instead,
//! against what it holds, and the acceptance waits in its outbox with the
//! events: card systems keep getting 2xx during an outage. The request
//! says so (`deadlineMs` is that moment): an owner takes it only before,
//! so a request the bus delivers late is not decided twice (DESIGN.md says
//! what that costs across instances).

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::pending::Pending;
use super::trade::{Outcome, TradeDesk, TradeReport};
use super::ServiceError;
use crate::bus::Bus;
use crate::clock::SharedClock;
use crate::crypto::Keyring;
use crate::domain::{CityNo, IdcardNo, PersonName, TargetId, TargetType, TradeNo, TradeTime};
use crate::events::{CallbackReplied, CallbackRequested};
use crate::protocol::ErrCode;

/// The ingress half, one per node.
#[derive(Debug)]
pub struct CallbackIngress {
    pub bus: Bus,
    pub pending: Arc<Pending<CallbackReplied>>,
    /// This instance's partition of `akm.callback.reply`.
    pub reply_partition: u32,
    /// This node on a shared bus (`province` or `city-<cityNo>`).
    pub node_id: String,
    pub timeout: Duration,
    pub clock: SharedClock,
    /// Seals the report's personal fields for the trip.
    pub keys: Arc<Keyring>,
    /// Partitions of `akm.callback.request` (and of the changelog).
    pub partitions: u32,
    /// Decides here when the bus refuses the request.
    pub desk: TradeDesk,
}

/// The partition of an idempotency key: a stable hash (the first four
/// bytes of its SHA-256), the same on every instance and build.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let h = Sha256::digest(key.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % partitions.max(1)
}

impl CallbackIngress {
    /// Hand the report to its owner and wait for the decision.
    pub async fn accept(&self, t: &TradeReport, trace: &str) -> Result<Outcome, ServiceError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let publish_by = tokio::time::Instant::now() + self.timeout / 2;
        let request_id = uuid::Uuid::new_v4().to_string();
        let ev = CallbackRequested {
            request_id: request_id.clone(),
            trace_id: trace.into(),
            deadline_ms: self.clock.now_ms() + (self.timeout / 2).as_millis() as i64,
            reply_partition: self.reply_partition as i32,
            node: self.node_id.clone(),
            trade_key: t.key_text(),
            city_no: t.city.to_string(),
            name: self.keys.seal(t.name.expose()),
            idcard_no: self.keys.seal(t.idcard_no.expose()),
            target_type: t.target.to_string(),
            target_id: self.keys.seal(t.target_id.as_str()),
            trade_time: t.time.compact(),
            trade_no: t.trade_no.to_string(),
            msg: t.msg.clone(),
            trade_state: t.state.clone(),
        };
        let partition = partition_of(&ev.trade_key, self.partitions);
        let mut waiter = self.pending.register(&request_id)?;
        let message = self.bus.message(&ev)?.to_partition(partition);
        let published = match tokio::time::timeout_at(publish_by, self.bus.publish(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(super::chain(&e)),
            Err(_) => Err("not published within half the deadline".to_string()),
        };
        if let Err(why) = published {
            // the bus is down: no owner can be asked (and none takes the
            // request after deadlineMs), so this instance decides
            tracing::warn!(trade_no = %t.trade_no, trace_id = trace, %why, "callback request not published; deciding here");
            drop(waiter);
            return self.desk.decide_here(t, trace, partition).await;
        }
        let reply = match tokio::time::timeout_at(deadline, &mut waiter.rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err(ServiceError::Deadline("回传应答通道已关闭")),
            Err(_) => {
                tracing::warn!(request_id, trace_id = trace, trade_no = %t.trade_no, "callback not decided in time");
                return Err(ServiceError::Deadline("回传未在时限内受理"));
            }
        };
        if reply.err_code != ErrCode::Ok.code() {
            return Err(ServiceError::remote(&reply.err_code, reply.detail));
        }
        Ok(if reply.duplicate {
            Outcome::Duplicate
        } else {
            Outcome::New
        })
    }
}

/// The report a request carries, its sealed fields opened and every field
/// parsed again (the owner trusts no wire).
pub fn open(keys: &Keyring, ev: &CallbackRequested) -> Result<TradeReport, ServiceError> {
    let sealed = |s: &str| keys.open(s).map_err(ServiceError::Sealed);
    Ok(TradeReport {
        city: CityNo::parse(&ev.city_no)?,
        name: PersonName::parse(&sealed(&ev.name)?)?,
        idcard_no: IdcardNo::parse(&sealed(&ev.idcard_no)?)?,
        target: TargetType::parse(&ev.target_type)?,
        target_id: TargetId::parse(&sealed(&ev.target_id)?)?,
        time: TradeTime::parse(&ev.trade_time)?,
        trade_no: TradeNo::parse(&ev.trade_no)?,
        msg: ev.msg.clone(),
        state: ev.trade_state.clone(),
    })
}

/// The answer to `ev`: the decision, or the error's code and detail.
pub fn reply(ev: &CallbackRequested, decided: &Result<Outcome, ServiceError>) -> CallbackReplied {
    let (err_code, detail, duplicate) = match decided {
        Ok(o) => (
            ErrCode::Ok.code().to_string(),
            String::new(),
            *o == Outcome::Duplicate,
        ),
        Err(e) => {
            let code = e.code();
            if code.status() >= 500 {
                tracing::warn!(request_id = %ev.request_id, trace_id = %ev.trace_id, code = code.code(), cause = %super::chain(e), "callback not accepted");
            }
            // an internal error's detail stays in this instance's log
            let detail = if code == ErrCode::Internal {
                String::new()
            } else {
                e.detail()
            };
            (code.code().to_string(), detail, false)
        }
    };
    CallbackReplied {
        request_id: ev.request_id.clone(),
        trace_id: ev.trace_id.clone(),
        reply_partition: ev.reply_partition,
        err_code,
        detail,
        duplicate,
    }
}
