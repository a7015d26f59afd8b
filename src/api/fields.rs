//! Reading request bodies: a JSON object of at most 64 KiB, and typed
//! access to its fields (missing, wrong type, aliases) with field errors.

use axum::body::Bytes;
use serde_json::{Map, Value};

use super::ApiError;
use crate::domain::ParseError;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// A request body that is a JSON object.
#[derive(Debug)]
pub struct Fields(Map<String, Value>);

impl Fields {
    pub fn from_bytes(bytes: &Bytes) -> Result<Self, ApiError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Fields(map)),
            Ok(_) => Err(ApiError::Body("应为JSON对象".into())),
            Err(_) => Err(ApiError::Body("不是合法的JSON".into())),
        }
    }

    fn lookup(&self, names: &[&'static str]) -> Option<(&'static str, &Value)> {
        names
            .iter()
            .find_map(|n| self.0.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
    }

    /// An optional string field, under its name or an alias (first wins).
    /// An empty string counts as absent.
    pub fn opt_any(&self, names: &[&'static str]) -> Result<Option<&str>, ParseError> {
        match self.lookup(names) {
            None => Ok(None),
            Some((_, Value::String(s))) if s.is_empty() => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s)),
            Some((name, _)) => Err(ParseError::malformed(name, "应为字符串")),
        }
    }

    /// A required string field, under its name or an alias.
    pub fn req_any(&self, names: &[&'static str]) -> Result<&str, ParseError> {
        self.opt_any(names)?
            .ok_or_else(|| ParseError::missing(names.first().copied().unwrap_or("?")))
    }

    pub fn opt(&self, name: &'static str) -> Result<Option<&str>, ParseError> {
        self.opt_any(&[name])
    }

    pub fn req(&self, name: &'static str) -> Result<&str, ParseError> {
        self.req_any(&[name])
    }

    /// Fail on the first of `names` that is missing, before any format check,
    /// so a caller learns every required field it forgot in order.
    pub fn require_all(&self, names: &[&[&'static str]]) -> Result<(), ParseError> {
        for n in names {
            self.req_any(n)?;
        }
        Ok(())
    }

    /// An optional boolean.
    pub fn opt_bool(&self, name: &'static str) -> Result<Option<bool>, ParseError> {
        match self.lookup(&[name]) {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((name, _)) => Err(ParseError::malformed(name, "应为布尔值true或false")),
        }
    }

    /// A required boolean.
    pub fn req_bool(&self, name: &'static str) -> Result<bool, ParseError> {
        self.opt_bool(name)?
            .ok_or_else(|| ParseError::missing(name))
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, name: &'static str) -> Result<Option<u64>, ParseError> {
        match self.lookup(&[name]) {
            None => Ok(None),
            Some((_, Value::Number(n))) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| ParseError::malformed(name, "应为非负整数")),
            Some((name, _)) => Err(ParseError::malformed(name, "应为非负整数")),
        }
    }

    /// An optional list of strings (absent = empty).
    pub fn opt_strings(&self, name: &'static str) -> Result<Vec<String>, ParseError> {
        match self.lookup(&[name]) {
            None => Ok(Vec::new()),
            Some((_, Value::Array(items))) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ParseError::malformed(name, "应为字符串数组"))
                })
                .collect(),
            Some((name, _)) => Err(ParseError::malformed(name, "应为字符串数组")),
        }
    }

    /// A JSON-string field that may also arrive as a JSON object/array
    /// (`targetObject`): returned as a JSON string, validated to parse.
    pub fn opt_json_string(&self, name: &'static str) -> Result<Option<String>, ParseError> {
        match self.lookup(&[name]) {
            None => Ok(None),
            Some((_, Value::String(s))) if s.is_empty() => Ok(None),
            Some((_, Value::String(s))) => serde_json::from_str::<Value>(s)
                .map(|_| Some(s.clone()))
                .map_err(|_| ParseError::malformed(name, "应为JSON字符串")),
            Some((_, v @ (Value::Object(_) | Value::Array(_)))) => Ok(Some(v.to_string())),
            Some((name, _)) => Err(ParseError::malformed(name, "应为JSON字符串")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Result<Fields, ApiError> {
        Fields::from_bytes(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert_eq!(f("{").unwrap_err().code().code(), "4001");
        assert_eq!(f("[1]").unwrap_err().code().code(), "4001");
        assert!(f("{}").is_ok());
    }

    #[test]
    fn fields_have_types_and_aliases() {
        let x = f(r#"{"cityNo": 340100, "senceCode": "01001", "a": "", "o": {"k":1}}"#).unwrap();
        let e = x.req("cityNo").unwrap_err();
        assert_eq!(e.code().code(), "4001");
        assert!(e.to_string().contains("cityNo"));
        assert_eq!(
            x.opt_any(&["sceneCode", "senceCode"]).unwrap(),
            Some("01001")
        );
        assert!(x
            .req("a")
            .unwrap_err()
            .to_string()
            .contains("缺少必填字段：a"));
        assert_eq!(
            x.opt_json_string("o").unwrap().as_deref(),
            Some(r#"{"k":1}"#)
        );
    }
}
