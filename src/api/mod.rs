//! HTTP ingress (axum): the envelope, request parsing, one file per service,
//! the admin API, and the router of each role.

pub mod admin;
pub mod callback;
pub mod config_query;
pub mod decode;
pub mod envelope;
pub mod fields;
pub mod router;
pub mod transcode;
