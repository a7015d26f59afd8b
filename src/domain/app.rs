//! Callers (SPEC §9): an app's id, kind and scopes, parsed; whether a kind
//! may call a service, and whether scopes cover a cityNo and targetType.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::ParseError;
use super::{CityNo, TargetType};

/// An appId: 1–64 of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppId(String);

impl AppId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(AppId(raw.to_string()))
        } else {
            Err(ParseError::malformed(
                "appId",
                "应为1至64位字母、数字、点、下划线或连字符",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AppId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        AppId::parse(&s)
    }
}

impl From<AppId> for String {
    fn from(a: AppId) -> String {
        a.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an app is, which decides what it may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppKind {
    Terminal,
    CardSystem,
    City,
    Operator,
}

impl AppKind {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "terminal" => Ok(AppKind::Terminal),
            "card-system" => Ok(AppKind::CardSystem),
            "city" => Ok(AppKind::City),
            "operator" => Ok(AppKind::Operator),
            _ => Err(ParseError::malformed(
                "kind",
                "应为terminal、card-system、city或operator",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Terminal => "terminal",
            AppKind::CardSystem => "card-system",
            AppKind::City => "city",
            AppKind::Operator => "operator",
        }
    }

    /// Whether this kind may call `service`.
    pub fn may_call(self, service: Service) -> bool {
        use Service::*;
        match self {
            AppKind::Terminal => matches!(service, Transcode | ConfigQuery),
            AppKind::CardSystem => matches!(service, Decode | Callback | ConfigQuery),
            AppKind::City => matches!(service, Decode | Transcode | Callback | ConfigQuery),
            AppKind::Operator => matches!(service, Admin),
        }
    }
}

/// What a request asks for, for kinds, audit and in-flight limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Decode,
    Transcode,
    Callback,
    ConfigQuery,
    Admin,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Decode => "decode",
            Service::Transcode => "transcode",
            Service::Callback => "callback",
            Service::ConfigQuery => "transcode-config",
            Service::Admin => "admin",
        }
    }
}

/// An app's scopes: cityNo prefixes and target types; empty lists allow any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scopes {
    pub city_nos: Vec<String>,
    pub target_types: Vec<String>,
}

impl Scopes {
    /// Parse the lists: each prefix 1 to 12 digits inside the province,
    /// each target type 7 digits.
    pub fn parse(city_nos: &[String], target_types: &[String]) -> Result<Self, ParseError> {
        for c in city_nos {
            super::city::CityPrefix::parse(c, "cityNos")?;
        }
        for t in target_types {
            TargetType::parse(t).map_err(|e| e.as_field("targetTypes"))?;
        }
        Ok(Scopes {
            city_nos: city_nos.to_vec(),
            target_types: target_types.to_vec(),
        })
    }

    /// Whether the scopes cover this cityNo (12-digit form) and target type.
    pub fn allows(&self, city: Option<&CityNo>, target: Option<&TargetType>) -> bool {
        let city_ok = match city {
            None => true,
            Some(c) => {
                self.city_nos.is_empty()
                    || self
                        .city_nos
                        .iter()
                        .any(|p| c.as_str().starts_with(p.as_str()))
            }
        };
        let target_ok = match target {
            None => true,
            Some(t) => {
                self.target_types.is_empty() || self.target_types.iter().any(|x| x == t.as_str())
            }
        };
        city_ok && target_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_call_what_the_table_says() {
        assert!(AppKind::Terminal.may_call(Service::Transcode));
        assert!(!AppKind::Terminal.may_call(Service::Decode));
        assert!(AppKind::CardSystem.may_call(Service::Callback));
        assert!(!AppKind::CardSystem.may_call(Service::Transcode));
        assert!(AppKind::City.may_call(Service::Decode));
        assert!(!AppKind::City.may_call(Service::Admin));
        assert!(
            AppKind::Operator.may_call(Service::Admin)
                && !AppKind::Operator.may_call(Service::Decode)
        );
    }

    #[test]
    fn scopes_are_prefixes_and_lists() {
        let s = Scopes::parse(&["3401".into()], &["3401002".into()]).unwrap();
        let hefei = CityNo::parse("340104").unwrap();
        let wuhu = CityNo::parse("340200").unwrap();
        let t = TargetType::parse("3401002").unwrap();
        let other = TargetType::parse("3400001").unwrap();
        assert!(s.allows(Some(&hefei), Some(&t)));
        assert!(!s.allows(Some(&wuhu), Some(&t)));
        assert!(!s.allows(Some(&hefei), Some(&other)));
        assert!(Scopes::default().allows(Some(&wuhu), Some(&other)));
        assert!(Scopes::parse(&["3201".into()], &[]).is_err());
        assert!(Scopes::parse(&[], &["34".into()]).is_err());
    }
}
