//! Callback (spec 7.4), the owner's half: decide a parsed trade report
//! once. A city turns it into a TradeReported event to forward; the
//! province into a TradeRecorded (analytics, pseudonymous) and a
//! Notification (resident). The instance owning the idempotency key's
//! partition decides (`service/callback.rs` brings it the report):
//! acceptance writes the idempotency record, the events (appended to
//! the embedded bus's partitions; on Kafka outbox records) and (on Kafka)
//! the changelog's outbox record in one transaction, waits for the flush
//! and, on Kafka, for the changelog record to be published, and only then
//! answers.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::outbox;
use super::sources::ConfigSource;
use super::state_log::StateLog;
use super::ServiceError;
use crate::bus::{channel, Topics};
use crate::clock::SharedClock;
use crate::domain::{CityNo, IdcardNo, PersonName, TargetId, TargetType, TradeNo, TradeTime};
use crate::events::{Notification, TradeRecorded, TradeReported};
use crate::store::{trade_key, Accepted, OutboxRecord, Store};

/// A parsed trade report.
#[derive(Debug, Clone)]
pub struct TradeReport {
    pub city: CityNo,
    pub name: PersonName,
    pub idcard_no: IdcardNo,
    pub target: TargetType,
    pub target_id: TargetId,
    pub time: TradeTime,
    pub trade_no: TradeNo,
    pub msg: String,
    pub state: String,
}

impl TradeReport {
    /// The idempotency key as text: `cityNo/targetType/tradeNo`.
    pub fn key_text(&self) -> String {
        format!("{}/{}/{}", self.city, self.target, self.trade_no)
    }

    /// Digest of the normalised content: equal reports have equal digests.
    pub fn digest(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        for part in [
            self.city.as_str(),
            self.name.expose(),
            self.idcard_no.expose(),
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

/// The outbox header naming the acceptance (trace id) a record belongs to.
pub const ACCEPTANCE: &str = "acceptance";
/// The outbox header naming the trade (`cityNo/targetType/tradeNo`).
pub const TRADE_KEY: &str = "tradeKey";

/// How acceptance went, for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    New,
    Duplicate,
}

/// Keyed hash (hex) that stands for a value on topics analytics read.
pub fn pseudonym(key: &[u8], purpose: &str, value: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What an accepted report becomes: chosen once at start by role.
#[derive(Debug, Clone)]
pub enum Emitter {
    /// A city forwards it: one TradeReported.
    City,
    /// The province records it for analytics and tells the resident.
    Province { subject_key: Vec<u8> },
}

/// Trade acceptance of one node.
#[derive(Debug, Clone)]
pub struct TradeDesk {
    pub store: Store,
    pub topics: Topics,
    pub configs: ConfigSource,
    pub emitter: Emitter,
    /// Wakes the outbox relay.
    pub relay: Arc<Notify>,
    pub clock: SharedClock,
    /// The changelog of the acceptances. When it is kept (Kafka: other
    /// instances may own this node's partitions), an acceptance is
    /// answered only once the relay has published it. On the embedded bus
    /// this instance owns every partition for good, and the flush is the
    /// answer's guarantee.
    pub state: StateLog,
}

/// How long an acceptance waits for its changelog record to be published
/// before it answers 5004 (the report is durable; a retry is a duplicate),
/// at most: less when its caller stops waiting sooner.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The owner's hold on one report: the key's partition, the assignment the
/// request came under, and when the instance that took the call stops
/// waiting (the owner's waits end before, so it answers 5004 itself).
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    pub partition: u32,
    pub assignment: u64,
    pub answer_by: tokio::time::Instant,
}

impl TradeDesk {
    /// The outbox records of an accepted report.
    fn records(&self, t: &TradeReport, trace: &str) -> Result<Vec<OutboxRecord>, ServiceError> {
        let now = self.clock.now_ms();
        // Personal fields travel sealed (field-level, SPEC §10).
        let keys = self.store.keys();
        let messages = match &self.emitter {
            Emitter::City => vec![channel::message(
                &self.topics,
                &TradeReported {
                    trace_id: trace.into(),
                    received_at: now,
                    city_no: t.city.to_string(),
                    name: keys.seal(t.name.expose()),
                    idcard_no: keys.seal(t.idcard_no.expose()),
                    target_type: t.target.to_string(),
                    target_id: keys.seal(t.target_id.as_str()),
                    trade_time: t.time.compact(),
                    trade_no: t.trade_no.to_string(),
                    msg: t.msg.clone(),
                    trade_state: t.state.clone(),
                },
            )?],
            Emitter::Province { subject_key } => {
                let target_name = self.configs.target_name(&t.city, &t.target);
                let recorded = TradeRecorded {
                    trace_id: trace.into(),
                    recorded_at: now,
                    subject_id: pseudonym(subject_key, "subject", t.idcard_no.expose()),
                    city_no: t.city.to_string(),
                    target_type: t.target.to_string(),
                    target_name: target_name.clone(),
                    target_ref: pseudonym(subject_key, "target", t.target_id.as_str()),
                    trade_time: t.time.compact(),
                    trade_no: t.trade_no.to_string(),
                    msg: t.msg.clone(),
                    trade_state: t.state.clone(),
                };
                let phone = self
                    .store
                    .resident(&t.idcard_no)?
                    .map(|r| r.user_phone.expose().to_string())
                    .unwrap_or_default();
                let note = Notification {
                    trace_id: trace.into(),
                    trade_no: t.trade_no.to_string(),
                    idcard_no: keys.seal(t.idcard_no.expose()),
                    user_phone: keys.seal(&phone),
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
                vec![
                    channel::message(&self.topics, &recorded)?,
                    channel::message(&self.topics, &note)?,
                ]
            }
        };
        Ok(messages.into_iter().map(outbox::record).collect())
    }

    /// Decide a report once, as the owner of `partition` (the key's
    /// request partition): new -> events durable (on the bus, or in the
    /// outbox) and the
    /// acceptance on the changelog; same content again -> duplicate; other
    /// content under the same tradeNo -> 4007.
    pub async fn decide(
        &self,
        t: &TradeReport,
        trace: &str,
        turn: Turn,
    ) -> Result<Outcome, ServiceError> {
        self.take(t, trace, turn.partition, Some(turn)).await
    }

    /// Decide a report here, without the bus (it refused the request): no
    /// catch-up, and the acceptance goes to the changelog when the bus is
    /// back (from the outbox, with the events).
    pub async fn decide_here(
        &self,
        t: &TradeReport,
        trace: &str,
        partition: u32,
    ) -> Result<Outcome, ServiceError> {
        self.take(t, trace, partition, None).await
    }

    /// Decide; `owner` is the turn of the partition's owner (None: this
    /// instance decides for itself during an outage).
    async fn take(
        &self,
        t: &TradeReport,
        trace: &str,
        partition: u32,
        owner: Option<Turn>,
    ) -> Result<Outcome, ServiceError> {
        if !self.configs.knows(&t.target)? {
            return Err(ServiceError::UnknownTarget(t.target.clone()));
        }
        if !self.store.space_ok() {
            return Err(ServiceError::Unavailable("磁盘可用空间低于下限"));
        }
        let key = trade_key(t.city.as_str(), t.target.as_str(), t.trade_no.as_str());
        if self.store.failed() {
            return Err(ServiceError::Unavailable("存储写入失败"));
        }
        // what an earlier owner of the partition accepted is here first; a
        // store whose flushes fail stalls the replica too, so then the
        // write below answers (5003, or it goes through and the store is
        // healthy again)
        if let Some(turn) = owner.filter(|_| self.store.healthy()) {
            if self.store.trade_acceptance(&key)?.is_none() {
                let left = turn
                    .answer_by
                    .saturating_duration_since(tokio::time::Instant::now());
                if let Err(e) = self.state.catch_up(partition, turn.assignment, left).await {
                    return Err(if self.store.healthy() {
                        e
                    } else {
                        ServiceError::Unavailable("存储写入失败")
                    });
                }
            }
        }
        let digest = t.digest();
        let now = self.clock.now_ms();
        let mut records = self.records(t, trace)?;
        if let Some(mut acceptance) = self.state.accepted(
            &t.key_text(),
            trace,
            self.store.keys().seal_bytes(&digest),
            now,
            partition,
        )? {
            acceptance.headers.push((ACCEPTANCE.into(), trace.into()));
            records.push(acceptance);
        }
        for r in &mut records {
            r.headers.push((TRADE_KEY.into(), t.key_text()));
            if !r.headers.iter().any(|(k, _)| k == ACCEPTANCE) {
                r.headers.push((ACCEPTANCE.into(), trace.into()));
            }
        }
        match self
            .store
            .accept_trade(&key, &digest, trace, &records, now)
            .await?
        {
            // answered once on disk (`accept_trade`)
            (Accepted::New, ids) => {
                // on the embedded bus the events are on their partitions
                // already (`store/inline.rs`): nothing for the relay
                if !ids.is_empty() {
                    self.relay.notify_one();
                }
                // answered once the acceptance is on the changelog and the
                // events on the bus: a retry at any instance, after any
                // rebalance, finds it
                if let Some(turn) = owner.filter(|_| self.state.kept) {
                    let until = turn
                        .answer_by
                        .min(tokio::time::Instant::now() + PUBLISH_WAIT);
                    for id in &ids {
                        let left = until.saturating_duration_since(tokio::time::Instant::now());
                        if !self.store.outbox_wait(*id, left).await {
                            // durable here, not yet out: a retry is a duplicate
                            return Err(if self.store.healthy() {
                                ServiceError::Deadline("回传已受理，但尚未发布，请重试")
                            } else {
                                ServiceError::Unavailable("存储写入失败")
                            });
                        }
                    }
                }
                tracing::info!(trade_no = %t.trade_no, city = %t.city, target = %t.target, trace_id = trace, "trade accepted");
                Ok(Outcome::New)
            }
            (Accepted::Duplicate, _) => {
                // on disk, like the first acceptance (which was flushed
                // with this batch or before it): the same guarantee before
                // the same answer
                tracing::info!(trade_no = %t.trade_no, "duplicate trade report ignored");
                Ok(Outcome::Duplicate)
            }
            (Accepted::Conflict, _) => Err(ServiceError::TradeConflict(t.trade_no.clone())),
        }
    }
}
