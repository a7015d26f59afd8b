//! Transcode (spec 7.3), both halves of the request-reply. The ingress
//! half registers a waiter, publishes `TranscodeRequested` and waits for
//! the reply until the deadline. The worker half runs one request (config
//! and scene check, identity, card system, all within the deadline) and
//! answers a `TranscodeAnswer` carrying the errCode and a detail; on the
//! reply topic it is a `TranscodeReplied` with the card ids sealed.

use std::sync::Arc;
use std::time::Duration;

use super::decode::CodeQuery;
use super::pending::{Answer, Pending};
use super::sources::{ConfigSource, IdentitySource};
use super::{chain, ServiceError};
use crate::bus::Bus;
use crate::clients::card::{self, GenerateRequest};
use crate::clock::SharedClock;
use crate::crypto::Keyring;
use crate::domain::resident::TargetCode;
use crate::domain::{CityNo, QrToken, SceneCode, TargetType};
use crate::events::{TargetCodeRec, TranscodeReplied, TranscodeRequested};
use crate::protocol::ErrCode;

/// A terminal's parsed transcode request.
#[derive(Debug, Clone)]
pub struct TranscodeInput {
    pub query: CodeQuery,
    /// `targetObject` as a JSON string; empty when not given.
    pub target_object: String,
}

/// A transcode's answer, as its waiter gets it: the codes in the clear.
/// It is sealed only to cross the reply topic (`Answer::to_wire`).
#[derive(Debug, Clone)]
pub struct TranscodeAnswer {
    pub request_id: String,
    pub trace_id: String,
    pub reply_partition: i32,
    /// The resident's pseudonym (for the audit); empty when not resolved.
    pub subject_id: String,
    pub err_code: String,
    pub detail: String,
    pub codes: Vec<TargetCode>,
}

impl Answer for TranscodeAnswer {
    type Wire = TranscodeReplied;

    fn request_id(&self) -> &str {
        &self.request_id
    }

    fn to_wire(self, keys: &Keyring) -> TranscodeReplied {
        TranscodeReplied {
            request_id: self.request_id,
            trace_id: self.trace_id,
            reply_partition: self.reply_partition,
            subject_id: self.subject_id,
            err_code: self.err_code,
            detail: self.detail,
            codes: self
                .codes
                .into_iter()
                .map(|c| TargetCodeRec {
                    target_qr_code: c.target_qr_code,
                    target_id: keys.seal(&c.target_id),
                    target_object: keys.seal(&c.target_object),
                })
                .collect(),
        }
    }

    fn from_wire(w: TranscodeReplied, keys: &Keyring) -> Self {
        let codes = w
            .codes
            .into_iter()
            .map(|c| {
                Ok(TargetCode {
                    target_qr_code: c.target_qr_code,
                    target_id: keys.open(&c.target_id)?,
                    target_object: keys.open(&c.target_object)?,
                })
            })
            .collect::<Result<Vec<_>, crate::crypto::CryptoError>>();
        let (err_code, detail, codes) = match codes {
            Ok(codes) => (w.err_code, w.detail, codes),
            Err(e) => {
                tracing::error!(request_id = %w.request_id, trace_id = %w.trace_id, error = %e, "a transcode reply's card ids do not open");
                (
                    ErrCode::Internal.code().to_string(),
                    String::new(),
                    Vec::new(),
                )
            }
        };
        TranscodeAnswer {
            request_id: w.request_id,
            trace_id: w.trace_id,
            reply_partition: w.reply_partition,
            subject_id: w.subject_id,
            err_code,
            detail,
            codes,
        }
    }
}

/// The ingress half, one per node.
#[derive(Debug)]
pub struct TranscodeIngress {
    pub bus: Bus,
    pub pending: Arc<Pending<TranscodeAnswer>>,
    /// The reply partition this instance owns.
    pub reply_partition: u32,
    /// This node on a shared bus (`province` or `city-<cityNo>`).
    pub node_id: String,
    pub timeout: Duration,
    pub clock: SharedClock,
}

impl TranscodeIngress {
    /// Publish the request and wait for its reply: the codes and the
    /// success text, or the error the worker answered; with the resident's
    /// pseudonym when the worker resolved one (for the audit).
    pub async fn transcode(
        &self,
        input: TranscodeInput,
    ) -> (Result<(Vec<TargetCode>, String), ServiceError>, String) {
        let mut subject = String::new();
        let r = self.exchange(input, &mut subject).await;
        (r, subject)
    }

    async fn exchange(
        &self,
        input: TranscodeInput,
        subject: &mut String,
    ) -> Result<(Vec<TargetCode>, String), ServiceError> {
        let q = input.query;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let request_id = uuid::Uuid::new_v4().to_string();
        let trace_id = crate::trace::current_or_new();
        let ev = TranscodeRequested {
            request_id: request_id.clone(),
            trace_id: trace_id.clone(),
            deadline_ms: self.clock.now_ms() + self.timeout.as_millis() as i64,
            reply_partition: self.reply_partition as i32,
            city_no: q.city.to_string(),
            qr_token: q.token.as_str().to_string(),
            target_type: q.target.to_string(),
            scene_code: q.scene.map(|s| s.as_str().to_string()).unwrap_or_default(),
            target_object: input.target_object,
            node: self.node_id.clone(),
        };
        let mut waiter = self.pending.register(&request_id)?;
        tokio::time::timeout_at(deadline, self.bus.send(&ev))
            .await
            .map_err(|_| ServiceError::Deadline("转码请求排队超时"))??;
        let reply = match tokio::time::timeout_at(deadline, &mut waiter.rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err(ServiceError::Deadline("转码应答通道已关闭")),
            Err(_) => {
                tracing::warn!(request_id, trace_id, "transcode timed out");
                return Err(ServiceError::Deadline("转码未在时限内完成"));
            }
        };
        *subject = reply.subject_id.clone();
        if reply.err_code != ErrCode::Ok.code() {
            return Err(ServiceError::remote(&reply.err_code, reply.detail));
        }
        Ok((reply.codes, reply.detail))
    }
}

/// The worker half, one per node.
#[derive(Debug, Clone)]
pub struct Transcoder {
    pub configs: ConfigSource,
    pub identity: IdentitySource,
    pub http: reqwest::Client,
    pub clock: SharedClock,
    /// Key of the residents' pseudonyms (the reply's subjectId, for the audit).
    pub subject_key: Vec<u8>,
    /// The node's metrics (the card system's latency).
    pub metrics: crate::metrics::Metrics,
}

impl Transcoder {
    fn remaining(&self, deadline_ms: i64) -> Result<Duration, ServiceError> {
        let left = deadline_ms - self.clock.now_ms();
        if left <= 0 {
            Err(ServiceError::Deadline("转码处理超时"))
        } else {
            Ok(Duration::from_millis(left as u64))
        }
    }

    /// Whether the request's deadline has passed.
    pub fn expired(&self, ev: &TranscodeRequested) -> bool {
        ev.deadline_ms <= self.clock.now_ms()
    }

    /// Run one request to its target codes; `subject` gets the resident's
    /// pseudonym once the identity is known.
    pub async fn run(
        &self,
        ev: &TranscodeRequested,
        subject: &mut String,
    ) -> Result<Vec<TargetCode>, ServiceError> {
        // The event was parsed at the ingress; parse again, since it crossed the bus.
        let q = CodeQuery {
            city: CityNo::parse(&ev.city_no)?,
            token: QrToken::parse(&ev.qr_token)?,
            target: TargetType::parse(&ev.target_type)?,
            scene: (!ev.scene_code.is_empty())
                .then(|| SceneCode::parse(&ev.scene_code))
                .transpose()?,
        };
        let config = self
            .configs
            .check_target(
                &q.city,
                &q.target,
                q.scene,
                true,
                self.remaining(ev.deadline_ms)?,
            )
            .await?
            .ok_or_else(|| ServiceError::NoConfig {
                city: q.city.clone(),
                target: q.target.clone(),
            })?;
        let who = self
            .identity
            .identify(&q, self.remaining(ev.deadline_ms)?)
            .await?;
        *subject = super::trade::pseudonym(&self.subject_key, "subject", who.idcard_no.expose());
        let req = GenerateRequest {
            city_no: q.city.as_str(),
            target_type: q.target.as_str(),
            scene_code: q.scene.map_or("", |s| s.as_str()),
            name: who.name.expose(),
            idcard_no: who.idcard_no.expose(),
            user_phone: who.user_phone.expose(),
            target_object: &ev.target_object,
        };
        let started = std::time::Instant::now();
        let codes = card::generate(
            &self.http,
            &config.target_url,
            &req,
            self.remaining(ev.deadline_ms)?,
        )
        .await;
        self.metrics.outbound(
            crate::metrics::Party::CardSystem,
            crate::clients::outcome_of(&codes),
            started.elapsed(),
        );
        codes.map_err(ServiceError::CardSystem)
    }

    /// Run one request and build its answer. A 5xxx is logged here with its
    /// cause; the answer carries only the code and the caller-safe detail.
    pub async fn reply(&self, ev: &TranscodeRequested) -> TranscodeAnswer {
        let mut subject_id = String::new();
        let (err_code, detail, codes) = match self.run(ev, &mut subject_id).await {
            Ok(codes) => {
                let text = if codes.is_empty() {
                    "用户未持有该目标卡码"
                } else {
                    "转码成功"
                };
                (ErrCode::Ok, text.to_string(), codes)
            }
            Err(e) => {
                let code = e.code();
                if code.status() >= 500 {
                    tracing::warn!(request_id = %ev.request_id, trace_id = %ev.trace_id, code = code.code(), cause = %chain(&e), "transcode failed");
                }
                let detail = if code == ErrCode::Internal {
                    String::new()
                } else {
                    e.detail()
                };
                (code, detail, Vec::new())
            }
        };
        TranscodeAnswer {
            request_id: ev.request_id.clone(),
            trace_id: ev.trace_id.clone(),
            reply_partition: ev.reply_partition,
            subject_id,
            err_code: err_code.code().to_string(),
            detail,
            codes,
        }
    }
}
