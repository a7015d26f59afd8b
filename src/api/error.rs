//! The one place errors become the spec's envelope: [`ApiError`] (a body
//! that is not a JSON object, a field that did not parse, or a service's
//! error, refused credentials included) gets its errCode, HTTP status and
//! Chinese errMsg here. A 5xxx is logged with its cause chain; a 5000's
//! text is never answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::domain::ParseError;
use crate::protocol::{Envelope, ErrCode};
use crate::service::{chain, ServiceError};

/// A failure answered to a caller in the spec's envelope.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 4001: the body is not a JSON object we can read.
    #[error("request body: {0}")]
    Body(String),
    /// A field did not parse (4001, 4002, 4006 or 4008 by its kind).
    #[error(transparent)]
    Field(#[from] ParseError),
    /// What a service answered.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ApiError {
    pub fn code(&self) -> ErrCode {
        match self {
            ApiError::Body(_) => ErrCode::BadRequest,
            ApiError::Field(e) => e.code(),
            ApiError::Service(e) => e.code(),
        }
    }

    /// The Chinese `errMsg`.
    pub fn message(&self) -> String {
        match self {
            ApiError::Body(why) => format!("请求体格式错误：{why}"),
            ApiError::Field(e) => e.message(),
            ApiError::Service(e) => e.message(),
        }
    }
}

fn status(code: ErrCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        if code.status() >= 500 {
            tracing::error!(code = code.code(), cause = %chain(&self), "request failed");
        }
        Envelope::<()>::error(code, self.message()).into_response()
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        let code = ErrCode::parse(&self.err_code).unwrap_or(ErrCode::Internal);
        let mut response = (status(code), Json(self)).into_response();
        // for the edge's metrics
        response.extensions_mut().insert(code);
        response
    }
}
