//! The response envelope of every service (SPEC §4):
//! `{"flag", "errCode", "errMsg", "data"}`.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::status_of;

/// The envelope; `data` is omitted when there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub flag: String,
    #[serde(rename = "errCode")]
    pub err_code: String,
    #[serde(rename = "errMsg")]
    pub err_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
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
    pub fn error(code: &str, msg: impl Into<String>) -> Self {
        Envelope {
            flag: status_of(code).as_u16().to_string(),
            err_code: code.into(),
            err_msg: msg.into(),
            data: None,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.err_code == "200"
    }
}

impl Envelope<()> {
    /// A success with no data.
    pub fn done(msg: impl Into<String>) -> Self {
        Envelope {
            flag: "200".into(),
            err_code: "200".into(),
            err_msg: msg.into(),
            data: None,
        }
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        (status_of(&self.err_code), Json(self)).into_response()
    }
}
