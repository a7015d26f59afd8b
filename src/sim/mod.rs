//! Simulators of the external parties, as real HTTP servers: a card
//! system (generate target code) and a push gateway. Used by role `all`,
//! the demo, `akm sim` and the tests.

pub mod card;
pub mod push;

pub use card::CardSim;
pub use push::PushSim;
