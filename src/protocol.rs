//! The wire protocol every party shares (SPEC §4): the `errCode` table as an
//! enum (code, HTTP status, default text) and the serde-only response
//! envelope. The bottom of the module stack: it knows nothing of HTTP
//! frameworks, the bus or the store; `api/` holds the axum glue.

use serde::{Deserialize, Serialize};

/// One row of SPEC §4's error table (plus `200`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrCode {
    /// 200: success.
    Ok,
    /// 4001: a field is missing or malformed, or the body is not a JSON object.
    BadRequest,
    /// 4002: the qrCodeUrl is not an Ankang QR code.
    NotAnkangQr,
    /// 4003: the QR token is unknown or expired.
    QrExpired,
    /// 4004: the resident has not switched universal authorization on.
    NoUniversalAuth,
    /// 4005: no transcode configuration for this city and target type.
    NoConfig,
    /// 4006: the cityNo is not a division code of the province.
    BadCity,
    /// 4007: a tradeNo already received with different content.
    TradeConflict,
    /// 4008: an unknown targetType or sceneCode, or a scene the target does not serve.
    UnknownCode,
    /// 4010: missing or bad credentials.
    Unauthorized,
    /// 4011: timestamp outside the window, or nonce replayed.
    Replayed,
    /// 4013: the caller may not use this city or target type.
    Forbidden,
    /// 4029: too many requests.
    RateLimited,
    /// 5000: an internal fault (its cause is logged, never answered).
    Internal,
    /// 5001: the card-management system failed or refused.
    CardSystem,
    /// 5002: the province platform failed (seen from a city).
    Province,
    /// 5003: the node cannot store durably right now (disk full, store
    /// failure): nothing was accepted; retry later.
    Unavailable,
    /// 5004: no answer in time.
    Timeout,
}

/// Every code, for lookups and tests.
pub const ALL: &[ErrCode] = &[
    ErrCode::Ok,
    ErrCode::BadRequest,
    ErrCode::NotAnkangQr,
    ErrCode::QrExpired,
    ErrCode::NoUniversalAuth,
    ErrCode::NoConfig,
    ErrCode::BadCity,
    ErrCode::TradeConflict,
    ErrCode::UnknownCode,
    ErrCode::Unauthorized,
    ErrCode::Replayed,
    ErrCode::Forbidden,
    ErrCode::RateLimited,
    ErrCode::Internal,
    ErrCode::CardSystem,
    ErrCode::Province,
    ErrCode::Unavailable,
    ErrCode::Timeout,
];

impl ErrCode {
    /// The spec's `errCode` string.
    pub fn code(self) -> &'static str {
        use ErrCode::*;
        match self {
            Ok => "200",
            BadRequest => "4001",
            NotAnkangQr => "4002",
            QrExpired => "4003",
            NoUniversalAuth => "4004",
            NoConfig => "4005",
            BadCity => "4006",
            TradeConflict => "4007",
            UnknownCode => "4008",
            Unauthorized => "4010",
            Replayed => "4011",
            Forbidden => "4013",
            RateLimited => "4029",
            Internal => "5000",
            CardSystem => "5001",
            Province => "5002",
            Unavailable => "5003",
            Timeout => "5004",
        }
    }

    /// The HTTP status that goes with the code (also the envelope's `flag`).
    pub fn status(self) -> u16 {
        use ErrCode::*;
        match self {
            Ok => 200,
            QrExpired | NoConfig => 404,
            NoUniversalAuth | Forbidden => 403,
            TradeConflict => 409,
            Unauthorized | Replayed => 401,
            RateLimited => 429,
            Internal => 500,
            CardSystem | Province => 502,
            Unavailable => 503,
            Timeout => 504,
            BadRequest | NotAnkangQr | BadCity | UnknownCode => 400,
        }
    }

    /// The text answered when there is no detail.
    pub fn default_text(self) -> &'static str {
        use ErrCode::*;
        match self {
            Ok => "成功",
            BadRequest => "请求参数错误",
            NotAnkangQr => "不是安康码二维码",
            QrExpired => "安康码二维码已失效或不存在，请刷新安康码后重试",
            NoUniversalAuth => "用户未开启通用授权，无法识读身份信息",
            NoConfig => "未找到转码配置",
            BadCity => "字段cityNo无效",
            TradeConflict => "交易流水号tradeNo已接收且内容不一致",
            UnknownCode => "目标码类型或场景编码未知",
            Unauthorized => "认证失败",
            Replayed => "请求已过期或重复提交",
            Forbidden => "无权访问该地市或目标码类型",
            RateLimited => "请求过于频繁，请稍后重试",
            Internal => "系统内部错误",
            CardSystem => "卡管系统生码失败",
            Province => "省级安康码平台服务异常",
            Unavailable => "暂时无法持久保存，未受理，请稍后重试",
            Timeout => "处理超时",
        }
    }

    /// The `errMsg` for a detail. 5001, 5002 and 5004 wrap a cause, so
    /// their text is the default text, a colon and the detail; every other
    /// code's detail is the whole message. An empty detail gives the default
    /// text. 5000 never shows a detail.
    pub fn render(self, detail: &str) -> String {
        match self {
            ErrCode::Internal => self.default_text().to_string(),
            _ if detail.is_empty() => self.default_text().to_string(),
            ErrCode::CardSystem | ErrCode::Province | ErrCode::Timeout => {
                format!("{}：{detail}", self.default_text())
            }
            _ => detail.to_string(),
        }
    }

    /// The code for an `errCode` string, if the spec has it.
    pub fn parse(code: &str) -> Option<Self> {
        ALL.iter().copied().find(|c| c.code() == code)
    }
}

impl std::fmt::Display for ErrCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The response envelope of every service: `{"flag", "errCode", "errMsg",
/// "data"}`; `data` is omitted when there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub flag: String,
    #[serde(rename = "errCode")]
    pub err_code: String,
    #[serde(rename = "errMsg")]
    pub err_msg: String,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Envelope<T> {
    /// A success carrying `data`.
    pub fn ok(data: T, msg: impl Into<String>) -> Self {
        Envelope {
            flag: "200".into(),
            err_code: "200".into(),
            err_msg: msg.into(),
            data: Some(data),
        }
    }

    /// A failure; `flag` is the HTTP status of the code.
    pub fn error(code: ErrCode, msg: impl Into<String>) -> Self {
        Envelope {
            flag: code.status().to_string(),
            err_code: code.code().into(),
            err_msg: msg.into(),
            data: None,
        }
    }

    /// A success with no data.
    pub fn done(msg: impl Into<String>) -> Self {
        Envelope {
            flag: "200".into(),
            err_code: "200".into(),
            err_msg: msg.into(),
            data: None,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.err_code == "200"
    }

    /// The code of this envelope (`None` for a code the spec does not have).
    pub fn code(&self) -> Option<ErrCode> {
        ErrCode::parse(&self.err_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_statuses_follow_the_table() {
        for c in ALL {
            assert_eq!(ErrCode::parse(c.code()), Some(*c));
        }
        assert_eq!(ErrCode::parse("4009"), None);
        let s = |c: &str| ErrCode::parse(c).map(ErrCode::status);
        assert_eq!(
            [
                s("4001"),
                s("4003"),
                s("4004"),
                s("4007"),
                s("4011"),
                s("4029"),
                s("5001"),
                s("5004")
            ],
            [
                Some(400),
                Some(404),
                Some(403),
                Some(409),
                Some(401),
                Some(429),
                Some(502),
                Some(504)
            ]
        );
    }

    #[test]
    fn render_prefixes_only_wrapping_codes_and_hides_internal_text() {
        assert_eq!(
            ErrCode::CardSystem.render("无法连接卡管系统"),
            "卡管系统生码失败：无法连接卡管系统"
        );
        assert_eq!(
            ErrCode::UnknownCode.render("字段sceneCode未知：01009"),
            "字段sceneCode未知：01009"
        );
        assert_eq!(ErrCode::Internal.render("sled: disk full"), "系统内部错误");
        assert_eq!(
            ErrCode::QrExpired.render(""),
            ErrCode::QrExpired.default_text()
        );
    }

    #[test]
    fn envelopes_omit_absent_data_and_flag_is_the_status() {
        let e = Envelope::<()>::error(ErrCode::TradeConflict, "x");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"flag":"409","errCode":"4007","errMsg":"x"})
        );
        let back: Envelope<Vec<u8>> = serde_json::from_value(v).unwrap();
        assert_eq!(back.code(), Some(ErrCode::TradeConflict));
    }
}
