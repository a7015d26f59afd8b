//! cityNo: the administrative division code, always stored as 12 digits.

use std::fmt;

use super::error::{FaultKind, ParseError};

/// The province this deployment serves (Anhui): every cityNo starts with it.
pub const PROVINCE_PREFIX: &str = "34";

/// A 12-digit division code inside the province.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CityNo(String);

impl CityNo {
    /// Parse a 6- or 12-digit code; 6 digits are right-padded with `000000` (v1.3).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bad = |reason: String| ParseError {
            field: "cityNo",
            kind: FaultKind::BadCity,
            reason,
        };
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("{raw}只能包含数字")));
        }
        let full = match raw.len() {
            6 => format!("{raw}000000"),
            12 => raw.to_string(),
            n => return Err(bad(format!("长度应为6位或12位，实际为{n}位"))),
        };
        if !full.starts_with(PROVINCE_PREFIX) {
            return Err(bad(format!("{raw}不属于本省（应以{PROVINCE_PREFIX}开头）")));
        }
        Ok(CityNo(full))
    }

    /// The whole province, `340000000000`.
    pub fn province() -> Self {
        CityNo(format!("{PROVINCE_PREFIX}0000000000"))
    }

    /// Hefei, `340100000000` (the default city of a city node).
    pub fn hefei() -> Self {
        CityNo(format!("{PROVINCE_PREFIX}0100000000"))
    }

    /// The prefecture this code belongs to: first 4 digits then zeros.
    pub fn prefecture(&self) -> Self {
        CityNo(format!("{}00000000", &self.0[..4]))
    }

    /// The lookup chain for configuration: exact code, prefecture, province.
    pub fn fallback_chain(&self) -> Vec<CityNo> {
        let mut chain = vec![self.clone()];
        for next in [self.prefecture(), CityNo::province()] {
            if chain.last() != Some(&next) {
                chain.push(next);
            }
        }
        chain
    }

    /// The 4-digit region (e.g. `3401`).
    pub fn region(&self) -> &str {
        &self.0[..4]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A cityNo prefix inside the province: 1 to 12 digits, the start of some
/// 12-digit code (`34`, `3401`, `340104000000`); an app's scope or a
/// statistics filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CityPrefix(String);

impl CityPrefix {
    /// Parse `raw`; a fault names `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, ParseError> {
        let ok = (1..=12).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_digit())
            && (raw.starts_with(PROVINCE_PREFIX) || PROVINCE_PREFIX.starts_with(raw));
        if !ok {
            return Err(ParseError::malformed(
                field,
                format!("{raw}不是本省的地市编码前缀"),
            ));
        }
        Ok(CityPrefix(raw.to_string()))
    }

    /// Whether the 12-digit `city` starts with it.
    pub fn covers(&self, city: &str) -> bool {
        city.starts_with(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CityNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digits_are_padded_to_twelve() {
        assert_eq!(CityNo::parse("340100").unwrap().as_str(), "340100000000");
        assert_eq!(
            CityNo::parse("340104001000").unwrap().as_str(),
            "340104001000"
        );
    }

    #[test]
    fn bad_lengths_letters_and_other_provinces_are_rejected() {
        for bad in ["34010", "3401000", "3401000000001", "34010a", "", "320100"] {
            assert!(CityNo::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn fallback_goes_city_prefecture_province() {
        let c = CityNo::parse("340104001000").unwrap();
        let chain: Vec<String> = c.fallback_chain().iter().map(|c| c.to_string()).collect();
        assert_eq!(chain, ["340104001000", "340100000000", "340000000000"]);
        let p = CityNo::province();
        assert_eq!(p.fallback_chain().len(), 1);
    }
}
