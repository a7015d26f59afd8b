//! HTTP ingress (axum only): the listener and its limits, the edge
//! (signatures, kinds, in-flight caps, timeouts), extractors that parse each
//! service's request into domain types and check the caller's scopes, the envelope glue, and the routers
//! of each role. The one module that knows axum; nothing below imports it.

pub mod admin;
mod dashboard;
mod docs;
pub mod edge;
mod error;
pub mod fields;
pub mod openapi;
pub mod requests;
pub mod router;
pub mod server;
pub mod services;
pub mod state;

pub use error::ApiError;
pub use requests::{parse_body, Body, FromFields};
