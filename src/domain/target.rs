//! targetType (appendix 8.1): the target card's type code and the built-in
//! dictionary. Configured transcode configs extend the dictionary at run time.

use std::fmt;

use super::error::ParseError;

/// The prefectures of Anhui (4-digit region codes) with their names.
pub const REGIONS: &[(&str, &str)] = &[
    ("3401", "合肥"),
    ("3402", "芜湖"),
    ("3403", "蚌埠"),
    ("3404", "淮南"),
    ("3405", "马鞍山"),
    ("3406", "淮北"),
    ("3407", "铜陵"),
    ("3408", "安庆"),
    ("3410", "黄山"),
    ("3411", "滁州"),
    ("3412", "阜阳"),
    ("3413", "宿州"),
    ("3415", "六安"),
    ("3416", "亳州"),
    ("3417", "池州"),
    ("3418", "宣城"),
];

/// Province-wide fixed codes.
pub const FIXED: &[(&str, &str)] = &[
    ("3400001", "电子社保卡"),
    ("3400004", "一码通办"),
    ("3402050", "芜湖食堂就餐卡"),
];

/// A 7-digit target card type code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetType(String);

impl TargetType {
    /// Parse the shape: exactly 7 digits. Whether the type is known is a
    /// separate question ([`builtin_name`] or the configured dictionary).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() == 7 && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(TargetType(raw.to_string()))
        } else {
            Err(ParseError::malformed(
                "targetType",
                "应为7位数字，例如3404002",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name the spec's rules give this type, if they cover it.
    pub fn builtin_name(&self) -> Option<String> {
        if let Some((_, name)) = FIXED.iter().find(|(c, _)| *c == self.0) {
            return Some((*name).to_string());
        }
        let (region, kind) = self.0.split_at(4);
        let (_, place) = REGIONS.iter().find(|(r, _)| *r == region)?;
        match kind {
            "002" => Some(format!("{place}电子健康卡")),
            "003" => Some(format!("{place}医保电子凭证")),
            _ => None,
        }
    }

    /// Every type the spec's rules define (for demo data and docs).
    pub fn all_builtin() -> Vec<TargetType> {
        let mut all: Vec<TargetType> = FIXED
            .iter()
            .map(|(c, _)| TargetType((*c).to_string()))
            .collect();
        for (region, _) in REGIONS {
            all.push(TargetType(format!("{region}002")));
            all.push(TargetType(format!("{region}003")));
        }
        all
    }
}

impl fmt::Display for TargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_of_appendix_8_1() {
        let name = |s: &str| TargetType::parse(s).unwrap().builtin_name();
        assert_eq!(name("3404002").as_deref(), Some("淮南电子健康卡"));
        assert_eq!(name("3411003").as_deref(), Some("滁州医保电子凭证"));
        assert_eq!(name("3400001").as_deref(), Some("电子社保卡"));
        assert_eq!(name("3400004").as_deref(), Some("一码通办"));
        assert_eq!(name("3402050").as_deref(), Some("芜湖食堂就餐卡"));
        assert_eq!(name("3404009"), None);
        assert_eq!(name("3409002"), None);
    }

    #[test]
    fn shape_is_seven_digits() {
        for bad in ["340400", "34040022", "340400a", "", "1"] {
            assert_eq!(TargetType::parse(bad).unwrap_err().code().code(), "4001");
        }
    }
}
