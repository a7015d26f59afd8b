//! What the services do, in domain types, apart from HTTP and the bus
//! mechanics: decode, both halves of transcode, trade acceptance, QR
//! issuing and the admin writes. Role differences are sources and emitters
//! chosen once at start (`sources.rs`, [`trade::Emitter`]).

pub mod admin;
pub mod answers;
pub mod applied;
pub mod apps;
pub mod callback;
pub mod decode;
mod error;
pub mod gate;
mod nonces;
pub mod outbox;
pub mod outcomes;
pub mod pending;
pub mod qr;
pub mod reference;
pub mod sources;
pub mod state_log;
pub mod stats;
pub mod trade;
pub mod transcode;

pub use error::{chain, ServiceError};
