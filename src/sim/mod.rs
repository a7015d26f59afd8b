//! Simulators of the external parties, as real HTTP servers: a card
//! system (generate target code), a push gateway and a schema registry. Used by role `all`,
//! the demo, `akm sim` and the tests.

pub mod card;
pub mod push;
pub mod registry;

pub use card::CardSim;
pub use push::PushSim;
pub use registry::RegistrySim;
