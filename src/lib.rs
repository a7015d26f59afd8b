//! Ankang code fusion transcoding platform (安康码融合转码平台).
//!
//! One binary: the province and city roles (axum ingress + stream workers
//! over a message bus), the simulators of the external parties, and the
//! CLI. [`start`] wires a role (or `all`) and returns its handles.

pub mod api;
pub mod bus;
pub mod clients;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod events;
pub mod node;
pub mod service;
pub mod sim;
pub mod startup;
pub mod store;
pub mod workers;

pub use startup::{start, Platform, Roles};
