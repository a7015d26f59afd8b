//! The one error type of the platform's services and its mapping to the
//! spec's envelope (SPEC §4): every failure a caller can see is a variant
//! here, with its `errCode`, HTTP status and Chinese `errMsg`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::envelope::Envelope;

/// A failure answered to a caller in the spec's envelope.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 4001: a required field is missing (names the field).
    #[error("缺少必填字段：{0}")]
    MissingField(&'static str),
    /// 4001: a field is present but malformed (names the field and why).
    #[error("字段{field}格式错误：{reason}")]
    BadField { field: &'static str, reason: String },
    /// 4001: the body is not a JSON object we can read.
    #[error("请求体格式错误：{0}")]
    BadBody(String),
    /// 4002: the qrCodeUrl is not an Ankang QR code.
    #[error("字段qrCodeUrl不是安康码二维码：{0}")]
    NotAnkangQr(&'static str),
    /// 4003: the QR token is unknown or expired.
    #[error("安康码二维码已失效或不存在，请刷新安康码后重试")]
    QrExpired,
    /// 4004: the resident has not switched universal authorization on.
    #[error("用户未开启通用授权，无法识读身份信息")]
    NoUniversalAuth,
    /// 4005: no transcode configuration for this city and target type.
    #[error("未找到地市{city}目标码类型{target}的转码配置")]
    NoConfig { city: String, target: String },
    /// 4006: the cityNo is not a valid division code of the province.
    #[error("字段cityNo无效：{0}")]
    BadCity(String),
    /// 4007: a tradeNo already received with different content.
    #[error("交易流水号tradeNo={0}已接收且内容不一致")]
    TradeConflict(String),
    /// 4008: an unknown targetType or sceneCode, or a scene the target does not serve.
    #[error("{0}")]
    UnknownCode(String),
    /// 4010: missing or bad credentials.
    #[error("认证失败：{0}")]
    Unauthorized(&'static str),
    /// 4011: timestamp outside the window, or nonce replayed.
    #[error("请求已过期或重复提交")]
    Replayed,
    /// 4013: the caller may not use this city or target type.
    #[error("无权访问该地市或目标码类型")]
    Forbidden,
    /// 4029: too many requests in flight.
    #[error("请求过于频繁，请稍后重试")]
    RateLimited,
    /// 5001: the card-management system failed or refused.
    #[error("卡管系统生码失败：{0}")]
    CardSystem(String),
    /// 5002: the province platform failed (seen from a city).
    #[error("省级安康码平台服务异常：{0}")]
    Province(String),
    /// 5004: no answer in time.
    #[error("处理超时：{0}")]
    Timeout(&'static str),
    /// A 4xxx error produced by another node (the province, a worker),
    /// answered with its code and text unchanged.
    #[error("{msg}")]
    Relayed { code: String, msg: String },
    /// 5000: an internal fault; the text is logged, never shown.
    #[error("系统内部错误")]
    Internal(String),
}

impl ApiError {
    /// Shorthand for a malformed field.
    pub fn bad(field: &'static str, reason: impl Into<String>) -> Self {
        ApiError::BadField {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for an internal error from any displayable cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// The spec's `errCode`.
    pub fn code(&self) -> &str {
        use ApiError::*;
        match self {
            Relayed { code, .. } => code,
            MissingField(_) | BadField { .. } | BadBody(_) => "4001",
            NotAnkangQr(_) => "4002",
            QrExpired => "4003",
            NoUniversalAuth => "4004",
            NoConfig { .. } => "4005",
            BadCity(_) => "4006",
            TradeConflict(_) => "4007",
            UnknownCode(_) => "4008",
            Unauthorized(_) => "4010",
            Replayed => "4011",
            Forbidden => "4013",
            RateLimited => "4029",
            CardSystem(_) => "5001",
            Province(_) => "5002",
            Timeout(_) => "5004",
            Internal(_) => "5000",
        }
    }

    /// The HTTP status that goes with the `errCode`.
    pub fn status(&self) -> StatusCode {
        status_of(self.code())
    }

    /// Rebuild an error received from another node (a reply event, the
    /// province's envelope) so it is answered with the same code and text.
    pub fn relayed(code: &str, msg: &str) -> Self {
        match code {
            "5001" => ApiError::CardSystem(msg.to_string()),
            "5002" => ApiError::Province(msg.to_string()),
            "5004" => ApiError::Timeout("卡管系统或省级平台未及时响应"),
            c if c.starts_with('4') && c.len() == 4 => ApiError::Relayed {
                code: c.to_string(),
                msg: msg.to_string(),
            },
            other => ApiError::Internal(format!("unexpected errCode {other}: {msg}")),
        }
    }
}

/// HTTP status for an `errCode` (SPEC §4 table).
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "200" => StatusCode::OK,
        "4003" | "4005" => StatusCode::NOT_FOUND,
        "4004" | "4013" => StatusCode::FORBIDDEN,
        "4007" => StatusCode::CONFLICT,
        "4010" | "4011" => StatusCode::UNAUTHORIZED,
        "4029" => StatusCode::TOO_MANY_REQUESTS,
        "5001" | "5002" => StatusCode::BAD_GATEWAY,
        "5004" => StatusCode::GATEWAY_TIMEOUT,
        "5000" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        Envelope::<()>::error(self.code(), self.to_string()).into_response()
    }
}
