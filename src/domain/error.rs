//! The error of every domain parser: which field, what kind of fault (it
//! decides the spec's errCode) and why, in Chinese. Parsers know nothing of
//! HTTP; `api/` maps this to the envelope once.

use crate::protocol::ErrCode;

/// What kind of fault a field has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Missing, the wrong type or the wrong shape (4001).
    Malformed,
    /// Not an Ankang QR code URL (4002).
    NotAnkangQr,
    /// Not a division code of the province (4006).
    BadCity,
    /// Well formed but not in the dictionary (4008).
    Unknown,
}

/// A field that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ParseError {
    /// The field's name on the wire (`cityNo`, `qrCodeUrl`, …).
    pub field: &'static str,
    pub kind: FaultKind,
    /// Why, in Chinese (for `Unknown`: the value that is not known).
    pub reason: String,
}

impl ParseError {
    pub fn malformed(field: &'static str, reason: impl Into<String>) -> Self {
        ParseError {
            field,
            kind: FaultKind::Malformed,
            reason: reason.into(),
        }
    }

    pub fn missing(field: &'static str) -> Self {
        Self::malformed(field, "缺少必填字段")
    }

    pub fn unknown(field: &'static str, value: impl Into<String>) -> Self {
        ParseError {
            field,
            kind: FaultKind::Unknown,
            reason: value.into(),
        }
    }

    /// The same fault reported under another field name, as a 4001 (a
    /// cityNo rule reused for `belongarea`, say).
    pub fn as_field(self, field: &'static str) -> Self {
        ParseError::malformed(field, self.message())
    }

    /// The spec's code for this fault.
    pub fn code(&self) -> ErrCode {
        match self.kind {
            FaultKind::Malformed => ErrCode::BadRequest,
            FaultKind::NotAnkangQr => ErrCode::NotAnkangQr,
            FaultKind::BadCity => ErrCode::BadCity,
            FaultKind::Unknown => ErrCode::UnknownCode,
        }
    }

    /// The Chinese message, naming the field.
    pub fn message(&self) -> String {
        let (f, r) = (self.field, &self.reason);
        match self.kind {
            FaultKind::Malformed if r == "缺少必填字段" => format!("缺少必填字段：{f}"),
            FaultKind::Malformed => format!("字段{f}格式错误：{r}"),
            FaultKind::NotAnkangQr => format!("字段{f}不是安康码二维码：{r}"),
            FaultKind::BadCity => format!("字段{f}无效：{r}"),
            FaultKind::Unknown => format!("字段{f}未知：{r}"),
        }
    }
}

/// A free-text field: at most `max` characters, no control characters.
pub fn bounded(field: &'static str, v: &str, max: usize) -> Result<String, ParseError> {
    if v.chars().count() > max {
        Err(ParseError::malformed(
            field,
            format!("长度不能超过{max}个字符"),
        ))
    } else if v.chars().any(char::is_control) {
        Err(ParseError::malformed(field, "不能包含控制字符"))
    } else {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_kinds_pick_the_code() {
        let e = ParseError::malformed("tradeNo", "太长");
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            (ErrCode::BadRequest, "字段tradeNo格式错误：太长")
        );
        assert_eq!(
            ParseError::missing("name").to_string(),
            "缺少必填字段：name"
        );
        assert_eq!(
            ParseError::unknown("sceneCode", "01009").code(),
            ErrCode::UnknownCode
        );
        assert!(bounded("msg", "a\u{7}", 10).is_err());
        assert!(bounded("msg", &"字".repeat(11), 10).is_err());
    }
}
