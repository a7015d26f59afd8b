//! Ankang code fusion transcoding platform (安康码融合转码平台).
//!
//! One binary: the province and city roles (axum ingress + stream workers
//! over a message bus), the simulators of the external parties, and the
//! CLI. [`start`] wires a role (or `all`) and returns its handles.
//!
//! Modules from the top down; a module uses only modules below it (see
//! DESIGN.md, "Modules", and `tests/it/layers.rs`, which checks it):
//! `startup`, `demo` -> `api` -> `workers` -> `service` -> `clients` ->
//! `bus` -> `events` -> `store` -> `durability`, `frame` -> `domain` ->
//! `protocol`, `signing`, `crypto`, `config`, `clock`. `sim` stands beside, using only
//! `domain`.

pub mod alloc;
pub mod api;
pub mod bus;
pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod durability;
pub mod events;
pub mod frame;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod protocol;
pub mod service;
pub mod signing;
pub mod sim;
pub mod startup;
pub mod store;
pub mod trace;
pub mod workers;

pub use startup::{start, start_with_clock, Platform, Roles, RunningNode};
