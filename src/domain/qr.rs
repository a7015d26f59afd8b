//! The Ankang QR code: URL recognition and the token it carries.

use std::fmt;

use super::error::{FaultKind, ParseError};

fn not_ankang(reason: &str) -> ParseError {
    ParseError {
        field: "qrCodeUrl",
        kind: FaultKind::NotAnkangQr,
        reason: reason.to_string(),
    }
}

/// Every Ankang QR URL starts with this (spec chapter 6).
pub const QR_URL_PREFIX: &str = "https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm";
const TOKEN_PREFIX: &str = "akm:qrcode:";

/// A QR token, `akm:qrcode:` + 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QrToken(String);

impl QrToken {
    /// Parse a scanned QR URL and take its `id` parameter.
    pub fn from_url(url: &str) -> Result<Self, ParseError> {
        let rest = url
            .strip_prefix(QR_URL_PREFIX)
            .ok_or(not_ankang("地址前缀不符"))?;
        let query = match rest.split_once('?') {
            Some(("", q)) => q,
            _ => return Err(not_ankang("缺少参数")),
        };
        let id = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("id="))
            .ok_or(not_ankang("缺少id参数"))?;
        let id = id.replace("%3A", ":").replace("%3a", ":");
        Self::parse(&id).map_err(|_| not_ankang("id参数格式错误"))
    }

    /// Parse a bare token.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let hex = raw
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(not_ankang("id参数格式错误"))?;
        if hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(QrToken(raw.to_string()))
        } else {
            Err(not_ankang("id参数格式错误"))
        }
    }

    /// A fresh random token.
    pub fn generate() -> Self {
        QrToken(format!("{TOKEN_PREFIX}{}", uuid::Uuid::new_v4().simple()))
    }

    /// The URL a resident's phone shows for this token.
    pub fn url(&self, city: &crate::domain::CityNo) -> String {
        format!("{QR_URL_PREFIX}?isScan=1&id={}&cityNo={city}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QrToken {
    /// Tokens are bearer secrets for five minutes: only a prefix is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.0[..TOKEN_PREFIX.len() + 6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm?isScan=1&id=akm:qrcode:9ec1b6b993b74b8687b06db24ad36d1b&cityNo=340000000000";

    #[test]
    fn the_spec_sample_parses() {
        let t = QrToken::from_url(SAMPLE).unwrap();
        assert_eq!(t.as_str(), "akm:qrcode:9ec1b6b993b74b8687b06db24ad36d1b");
    }

    #[test]
    fn other_urls_are_not_ankang_codes() {
        for bad in [
            "https://example.com/?id=akm:qrcode:9ec1b6b993b74b8687b06db24ad36d1b",
            "1",
            "https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm?isScan=1",
            "https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm?id=akm:qrcode:9EC1B6B993B74B8687B06DB24AD36D1B",
            "https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm?id=akm:qrcode:9ec1",
        ] {
            let e = QrToken::from_url(bad).unwrap_err();
            assert_eq!(e.code().code(), "4002", "{bad}");
        }
    }

    #[test]
    fn generated_tokens_round_trip_through_their_url() {
        let t = QrToken::generate();
        let url = t.url(&crate::domain::CityNo::province());
        assert_eq!(QrToken::from_url(&url).unwrap(), t);
        assert!(!format!("{t}").contains(&t.as_str()[20..]));
    }
}
