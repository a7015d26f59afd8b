//! HTTP ingress (axum): the envelope, request parsing, one file per service,
//! the admin API, and the router of each role.

pub mod envelope;
