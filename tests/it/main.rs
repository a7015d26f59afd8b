//! Integration tests: the platform's real HTTP listeners, its bus and
//! store, and the simulators as real HTTP servers.

mod bad_input;
mod child;
mod city;
mod cli;
mod compose;
mod conformance;
mod dashboard;
mod faults;
mod helpers;
mod kafka_only;
mod layers;
mod load;
mod observability;
mod openapi;
#[cfg(feature = "otlp")]
mod otlp;
mod persistence;
mod personal_data;
mod pipeline;
mod province;
mod registry;
mod replica;
mod scale;
mod security;
mod stats;
mod watchdog;
