//! The error of every service: what went wrong, in domain terms, with its
//! cause kept as `#[source]`. Each variant decides its errCode and a
//! Chinese detail; `api/` renders the envelope from those once, and a
//! transcode reply carries the same pair across the bus.

use crate::bus::BusError;
use crate::clients::CallError;
use crate::domain::{CityNo, ParseError, SceneCode, TargetType, TradeNo};
use crate::events::EventError;
use crate::protocol::ErrCode;
use crate::store::StoreError;

/// A failure of a service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A field did not parse (at the edge, or again after crossing the bus).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The QR token is unknown or expired (4003).
    #[error("QR token unknown or expired")]
    QrExpired,
    /// The resident has not switched universal authorization on (4004).
    #[error("no universal authorization")]
    NoUniversalAuth,
    /// No transcode configuration for this city and type (4005).
    #[error("no transcode config for {city} {target}")]
    NoConfig { city: CityNo, target: TargetType },
    /// The target type is neither in the spec's rules nor configured (4008).
    #[error("unknown target type {0}")]
    UnknownTarget(TargetType),
    /// The target does not serve the scene (4008).
    #[error("target {target_name} does not serve scene {scene}")]
    SceneNotServed {
        target_name: String,
        scene: SceneCode,
        served: String,
    },
    /// The tradeNo was received before with other content (4007).
    #[error("tradeNo {0} received before with other content")]
    TradeConflict(TradeNo),
    /// Too many requests: transcodes waiting, or the app's rate (4029).
    #[error("too many requests")]
    RateLimited,
    /// Missing or bad credentials (4010).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Timestamp outside the window, or a replayed nonce (4011).
    #[error("replayed or stale: {0}")]
    Replayed(&'static str),
    /// The caller may not use this service, city or target type (4013).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The card system failed or refused (5001; 5004 when it timed out).
    #[error("card system call failed")]
    CardSystem(#[source] CallError),
    /// The province failed (5002; 5004 when it timed out).
    #[error("province call failed")]
    Province(#[source] CallError),
    /// The deadline passed before an answer (5004).
    #[error("deadline passed: {0}")]
    Deadline(&'static str),
    /// An error another node answered (the province's 4xxx, a transcode
    /// reply), passed on with its code and detail.
    #[error("remote error {code}: {detail}")]
    Remote { code: ErrCode, detail: String },
    /// The local store failed (5000).
    #[error("store failed")]
    Store(#[from] StoreError),
    /// The bus failed (5000).
    #[error("bus failed")]
    Bus(#[from] BusError),
    /// An event did not encode or decode (5000).
    #[error("event codec failed")]
    Event(#[from] EventError),
    /// The node cannot store durably now: disk space below the watermark
    /// (5003; nothing was accepted).
    #[error("storage unavailable: {0}")]
    Unavailable(&'static str),
    /// This instance is still restoring its state from the bus (5003;
    /// nothing was taken: another instance or a retry serves it).
    #[error("restoring: {0}")]
    Restoring(&'static str),
    /// A sealed field did not open (5000: a key is missing or wrong).
    #[error("sealed field")]
    Sealed(#[source] crate::crypto::CryptoError),
}

/// The detail of a failed call. A card system's own words are not passed
/// on (they would be stored on the reply topic): only its code.
fn call_detail(party: &str, e: &CallError, relay_text: bool) -> String {
    match e {
        CallError::Refused { code, .. } if !relay_text => format!("{party}返回错误码{code}"),
        CallError::Timeout(_) => format!("{party}未在时限内响应"),
        CallError::Unreachable(_) => format!("无法连接{party}"),
        CallError::BadAnswer { status, .. } => format!("{party}应答格式错误（HTTP {status}）"),
        CallError::Refused { code, msg } => format!("{msg}（{code}）"),
        CallError::NoData => format!("{party}应答缺少data"),
        CallError::TooLarge => format!("{party}应答超过256KB上限"),
    }
}

impl ServiceError {
    /// The spec's code.
    pub fn code(&self) -> ErrCode {
        use ServiceError::*;
        match self {
            Parse(e) => e.code(),
            QrExpired => ErrCode::QrExpired,
            NoUniversalAuth => ErrCode::NoUniversalAuth,
            NoConfig { .. } => ErrCode::NoConfig,
            UnknownTarget(_) | SceneNotServed { .. } => ErrCode::UnknownCode,
            TradeConflict(_) => ErrCode::TradeConflict,
            RateLimited => ErrCode::RateLimited,
            Unauthorized(_) => ErrCode::Unauthorized,
            Replayed(_) => ErrCode::Replayed,
            Forbidden(_) => ErrCode::Forbidden,
            CardSystem(CallError::Timeout(_)) | Province(CallError::Timeout(_)) | Deadline(_) => {
                ErrCode::Timeout
            }
            CardSystem(_) => ErrCode::CardSystem,
            Province(_) => ErrCode::Province,
            Remote { code, .. } => *code,
            Unavailable(_) | Restoring(_) => ErrCode::Unavailable,
            // a write or flush that failed or timed out: nothing was
            // accepted, the caller retries
            Store(StoreError::Durability(_) | StoreError::Sled(_) | StoreError::Transaction(_)) => {
                ErrCode::Unavailable
            }
            Store(_) | Bus(_) | Event(_) | Sealed(_) => ErrCode::Internal,
        }
    }

    /// The Chinese detail, without the code's own prefix (see
    /// [`ErrCode::render`]); empty where the default text says it all.
    pub fn detail(&self) -> String {
        use ServiceError::*;
        match self {
            Parse(e) => e.message(),
            NoConfig { city, target } => format!("未找到地市{city}目标码类型{target}的转码配置"),
            UnknownTarget(t) => format!("字段targetType未知：{t}"),
            SceneNotServed {
                target_name,
                scene,
                served,
            } => format!(
                "目标码{target_name}不适用于场景sceneCode={scene}（{}），适用场景：{served}",
                scene.name()
            ),
            TradeConflict(no) => format!("交易流水号tradeNo={no}已接收且内容不一致"),
            CardSystem(e) => call_detail("卡管系统", e, false),
            Province(e) => call_detail("省级安康码平台", e, true),
            Deadline(what) => (*what).to_string(),
            Unavailable(why) => format!("暂时无法持久保存（{why}），未受理，请稍后重试"),
            Restoring(what) => format!("本实例正在从总线恢复{what}，未受理，请稍后重试"),
            Unauthorized(why) => format!("认证失败：{why}"),
            Replayed(why) => format!("请求已过期或重复提交：{why}"),
            Forbidden(why) => why.clone(),
            Remote { detail, .. } => detail.clone(),
            QrExpired | NoUniversalAuth | RateLimited | Store(_) | Bus(_) | Event(_)
            | Sealed(_) => String::new(),
        }
    }

    /// The `errMsg` a caller sees.
    pub fn message(&self) -> String {
        self.code().render(&self.detail())
    }

    /// An error from another node's envelope or reply: a known code keeps
    /// its code and detail; anything else is the province's fault (5002).
    pub fn remote(code: &str, detail: String) -> Self {
        match ErrCode::parse(code) {
            Some(code) if code != ErrCode::Ok => ServiceError::Remote { code, detail },
            _ => ServiceError::Remote {
                code: ErrCode::Province,
                detail: format!("未知的错误码{code}：{detail}"),
            },
        }
    }
}

/// The error chain of `e` on one line, for logs (`a: b: c`).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_codes_are_prefixed_once_and_internal_text_is_hidden() {
        let e = ServiceError::CardSystem(CallError::Refused {
            code: "5000".into(),
            msg: "卡管系统内部错误".into(),
        });
        assert_eq!(e.code(), ErrCode::CardSystem);
        // crossing the bus: the reply carries (code, detail); rendering again
        // gives the same text, with the prefix once
        let relayed = ServiceError::remote(e.code().code(), e.detail());
        assert_eq!(relayed.message(), e.message());
        assert_eq!(relayed.message().matches("卡管系统生码失败").count(), 1);
        let store = ServiceError::Store(StoreError::WrongKey("disk on fire".into()));
        assert_eq!(store.message(), "系统内部错误");
        // a write that failed: nothing accepted, retry later
        let full = ServiceError::Store(StoreError::Transaction("no space".into()));
        assert_eq!(
            (full.code(), full.code().status()),
            (ErrCode::Unavailable, 503)
        );
        assert!(chain(&store).contains("disk on fire"));
    }

    #[test]
    fn unknown_remote_codes_become_5002() {
        assert_eq!(
            ServiceError::remote("9999", "x".into()).code(),
            ErrCode::Province
        );
        assert_eq!(
            ServiceError::remote("4004", String::new()).code(),
            ErrCode::NoUniversalAuth
        );
    }
}
