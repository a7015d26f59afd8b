//! Callback (spec 7.4): parse a trade report, and accept it once. A city
//! turns it into a TradeReported event to forward; the province into a
//! TradeRecorded (analytics, pseudonymous) and a Notification (resident).
//! Acceptance writes the idempotency record and the events' outbox entries
//! in one transaction and waits for the flush before answering.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::api::fields::{bounded, Fields};
use crate::bus::{Message, Topic};
use crate::domain::{resident, CityNo, TargetId, TargetType, TradeNo, TradeTime};
use crate::error::ApiError;
use crate::events::{self, Notification, TradeRecorded, TradeReported};
use crate::node::{Node, Role};
use crate::store::Accepted;

/// A parsed trade report.
#[derive(Debug, Clone)]
pub struct TradeReport {
    pub city: CityNo,
    pub name: String,
    pub idcard_no: String,
    pub target: TargetType,
    pub target_id: TargetId,
    pub time: TradeTime,
    pub trade_no: TradeNo,
    pub msg: String,
    pub state: String,
}

/// How acceptance went, for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    New,
    Duplicate,
}

impl TradeReport {
    /// All nine fields are required; `tradeType` is an alias of `targetType`.
    pub fn parse(f: &Fields) -> Result<Self, ApiError> {
        const TARGET: &[&str] = &["targetType", "tradeType"];
        f.require_all(&[
            &["cityNo"],
            &["name"],
            &["idcardNo"],
            TARGET,
            &["targetId"],
            &["tradeTime"],
            &["tradeNo"],
            &["msg"],
            &["tradeState"],
        ])?;
        Ok(TradeReport {
            city: CityNo::parse(f.req("cityNo")?)?,
            name: bounded("name", f.req("name")?, 64)?.to_string(),
            idcard_no: resident::idcard_no(f.req("idcardNo")?)?,
            target: TargetType::parse(f.req_any(TARGET)?)?,
            target_id: TargetId::parse(f.req("targetId")?)?,
            time: TradeTime::parse(f.req("tradeTime")?)?,
            trade_no: TradeNo::parse(f.req("tradeNo")?)?,
            msg: bounded("msg", f.req("msg")?, 500)?.to_string(),
            state: bounded("tradeState", f.req("tradeState")?, 32)?.to_string(),
        })
    }

    /// Digest of the normalised content: equal reports have equal digests.
    pub fn digest(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        for part in [
            self.city.as_str(),
            &self.name,
            &self.idcard_no,
            self.target.as_str(),
            self.target_id.as_str(),
            &self.time.compact(),
            self.trade_no.as_str(),
            &self.msg,
            &self.state,
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        h.finalize().to_vec()
    }
}

/// Keyed hash (hex) that stands for a value on topics analytics read.
pub fn pseudonym(key: &[u8], purpose: &str, value: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn message(topic: String, key: &str, trace: &str, payload: Vec<u8>) -> Message {
    Message::new(topic, key.as_bytes().to_vec(), payload).header("traceId", trace)
}

/// The events a node emits for an accepted report.
fn events_for(node: &Node, t: &TradeReport, trace: &str) -> Result<Vec<Message>, ApiError> {
    let topics = node.bus.topics();
    let now = Node::now_ms();
    let enc = |e: events::EventError| ApiError::internal(e);
    match node.role {
        Role::City => {
            let ev = TradeReported {
                trace_id: trace.into(),
                received_at: now,
                city_no: t.city.to_string(),
                name: t.name.clone(),
                idcard_no: t.idcard_no.clone(),
                target_type: t.target.to_string(),
                target_id: t.target_id.as_str().into(),
                trade_time: t.time.compact(),
                trade_no: t.trade_no.to_string(),
                msg: t.msg.clone(),
                trade_state: t.state.clone(),
            };
            let payload = events::encode(&ev).map_err(enc)?;
            Ok(vec![message(
                topics.name(Topic::TradeReported),
                t.trade_no.as_str(),
                trace,
                payload,
            )])
        }
        Role::Province => {
            let target_name = node.target_name(&t.city, &t.target);
            let subject = pseudonym(&node.subject_key, "subject", &t.idcard_no);
            let recorded = TradeRecorded {
                trace_id: trace.into(),
                recorded_at: now,
                subject_id: subject.clone(),
                city_no: t.city.to_string(),
                target_type: t.target.to_string(),
                target_name: target_name.clone(),
                target_ref: pseudonym(&node.subject_key, "target", t.target_id.as_str()),
                trade_time: t.time.compact(),
                trade_no: t.trade_no.to_string(),
                msg: t.msg.clone(),
                trade_state: t.state.clone(),
            };
            let phone = node
                .store
                .resident(&t.idcard_no)?
                .map(|r| r.user_phone)
                .unwrap_or_default();
            let note = Notification {
                trace_id: trace.into(),
                trade_no: t.trade_no.to_string(),
                idcard_no: t.idcard_no.clone(),
                user_phone: phone,
                title: "安康码交易通知".into(),
                content: format!(
                    "您于{}使用安康码在{}完成交易：{}",
                    t.time.readable(),
                    target_name,
                    t.msg
                ),
                city_no: t.city.to_string(),
                target_type: t.target.to_string(),
                trade_state: t.state.clone(),
                trade_time: t.time.compact(),
            };
            Ok(vec![
                message(
                    topics.name(Topic::Trade),
                    &subject,
                    trace,
                    events::encode(&recorded).map_err(enc)?,
                ),
                message(
                    topics.name(Topic::Notify),
                    t.trade_no.as_str(),
                    trace,
                    events::encode(&note).map_err(enc)?,
                ),
            ])
        }
    }
}

/// Accept a report once: new -> events durable in the outbox; same content
/// again -> duplicate; other content under the same tradeNo -> 4007.
pub async fn accept(node: &Node, t: &TradeReport, trace: &str) -> Result<Outcome, ApiError> {
    if !node.knows(&t.target)? {
        return Err(ApiError::UnknownCode(format!(
            "字段targetType未知：{}",
            t.target
        )));
    }
    let messages = events_for(node, t, trace)?;
    match node
        .store
        .accept_trade(t.trade_no.as_str(), &t.digest(), &messages)?
    {
        Accepted::New => {
            node.store.sync().await?;
            node.relay.notify_one();
            tracing::info!(trade_no = %t.trade_no, city = %t.city, target = %t.target, "trade accepted");
            Ok(Outcome::New)
        }
        Accepted::Duplicate => {
            tracing::info!(trade_no = %t.trade_no, "duplicate trade report ignored");
            Ok(Outcome::Duplicate)
        }
        Accepted::Conflict => Err(ApiError::TradeConflict(t.trade_no.to_string())),
    }
}
