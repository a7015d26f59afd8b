//! sceneCode (appendix 8.2): the 16 scenes a target card may serve.

use std::fmt;

use super::error::ParseError;

/// The scene dictionary: code, name, category.
pub const SCENES: &[(&str, &str, &str)] = &[
    ("01001", "药店购药", "医药类"),
    ("01002", "医院挂号", "医药类"),
    ("01003", "医院取药", "医药类"),
    ("01004", "医院领报告", "医药类"),
    ("01005", "医保缴费", "医药类"),
    ("01006", "医院门诊就诊", "医药类"),
    ("02001", "食堂就餐", "生活类"),
    ("02002", "图书借阅", "生活类"),
    ("02003", "单位内乘车", "生活类"),
    ("03001", "校园就餐", "教育类"),
    ("03002", "校园购物", "教育类"),
    ("03003", "校园乘车", "教育类"),
    ("04001", "一码通办", "政务服务类"),
    ("04002", "大厅取号", "政务服务类"),
    ("04003", "免费wifi", "政务服务类"),
    ("04004", "自助办事", "政务服务类"),
];

/// One of the 16 scene codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SceneCode(&'static str);

impl SceneCode {
    /// Parse a scene code: 5 digits (else 4001) and in the dictionary (else 4008).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() != 5 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::malformed("sceneCode", "应为5位数字，例如01001"));
        }
        SCENES
            .iter()
            .find(|(c, _, _)| *c == raw)
            .map(|(c, _, _)| SceneCode(c))
            .ok_or_else(|| ParseError::unknown("sceneCode", raw))
    }

    /// Parse a comma-separated list (the config's `sceneCode`); empty means all scenes.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, ParseError> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect()
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    pub fn name(&self) -> &'static str {
        SCENES
            .iter()
            .find(|(c, _, _)| *c == self.0)
            .map(|(_, n, _)| *n)
            .unwrap_or_default()
    }
}

impl fmt::Display for SceneCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_sixteen_parse_and_others_do_not() {
        for (c, n, _) in SCENES {
            assert_eq!(SceneCode::parse(c).unwrap().name(), *n);
        }
        assert_eq!(SCENES.len(), 16);
        assert_eq!(SceneCode::parse("01007").unwrap_err().code().code(), "4008");
        assert_eq!(SceneCode::parse("0567").unwrap_err().code().code(), "4001");
    }

    #[test]
    fn lists_are_comma_separated() {
        let l = SceneCode::parse_list("01001, 01002,").unwrap();
        assert_eq!(l.len(), 2);
        assert!(SceneCode::parse_list("").unwrap().is_empty());
        assert!(SceneCode::parse_list("01001,9").is_err());
    }
}
