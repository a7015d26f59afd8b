//! Trade report values (spec 7.4): tradeNo, tradeTime, targetId.

use std::fmt;

use chrono::NaiveDateTime;

use super::error::ParseError;

/// A trade serial number, 1..=49 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TradeNo(String);

impl TradeNo {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let n = raw.chars().count();
        if n == 0 || n >= 50 {
            return Err(ParseError::malformed(
                "tradeNo",
                format!("长度应小于50位，实际为{n}位"),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(ParseError::malformed("tradeNo", "不能包含控制字符"));
        }
        Ok(TradeNo(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TradeNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The target card's unique id, 1..=99 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetId(String);

impl TargetId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let n = raw.chars().count();
        if n == 0 || n >= 100 {
            return Err(ParseError::malformed(
                "targetId",
                format!("长度应小于100位，实际为{n}位"),
            ));
        }
        Ok(TargetId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A trade time, `yyyyMMddHHmmss`, a real date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeTime(NaiveDateTime);

impl TradeTime {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bad = || {
            ParseError::malformed(
                "tradeTime",
                "应为14位有效时间yyyyMMddHHmmss，例如20200628193425",
            )
        };
        if raw.len() != 14 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        NaiveDateTime::parse_from_str(raw, "%Y%m%d%H%M%S")
            .map(TradeTime)
            .map_err(|_| bad())
    }

    /// The wire form, `yyyyMMddHHmmss`.
    pub fn compact(&self) -> String {
        self.0.format("%Y%m%d%H%M%S").to_string()
    }

    /// The form residents read, `yyyy-MM-dd HH:mm:ss`.
    pub fn readable(&self) -> String {
        self.0.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_time_must_be_real() {
        let t = TradeTime::parse("20200628193425").unwrap();
        assert_eq!(t.readable(), "2020-06-28 19:34:25");
        assert_eq!(t.compact(), "20200628193425");
        for bad in [
            "20200230120000",
            "20201328193425",
            "2020062819342",
            "2020-06-28 19:3",
            "20200628253425",
        ] {
            assert_eq!(
                TradeTime::parse(bad).unwrap_err().code().code(),
                "4001",
                "{bad}"
            );
        }
    }

    #[test]
    fn lengths_are_strictly_below_the_limit() {
        assert!(TradeNo::parse(&"a".repeat(49)).is_ok());
        assert!(TradeNo::parse(&"a".repeat(50)).is_err());
        assert!(TradeNo::parse("").is_err());
        assert!(TargetId::parse(&"a".repeat(99)).is_ok());
        assert!(TargetId::parse(&"a".repeat(100)).is_err());
    }
}
