//! HTTP ingress (axum only): extractors that parse each service's request
//! into domain types, the admin guard, the envelope glue, and the routers
//! of each role. The one module that knows axum; nothing below imports it.

pub mod admin;
mod error;
pub mod fields;
pub mod requests;
pub mod router;
pub mod services;
pub mod state;

pub use error::ApiError;
pub use requests::{parse_body, Body, FromFields};
