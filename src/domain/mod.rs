//! Parsed domain values (SPEC §3). Each newtype is built only by its
//! `parse`, so an invalid value cannot exist past the HTTP edge. Parsers
//! return [`ParseError`] (field, kind, reason); they know nothing of HTTP.

pub mod app;
pub mod city;
pub mod day;
pub mod error;
pub mod mask;
pub mod personal;
pub mod qr;
pub mod resident;
pub mod scene;
pub mod target;
pub mod trade;

pub use city::{CityNo, CityPrefix};
pub use day::Day;
pub use error::{bounded, FaultKind, ParseError};
pub use personal::{IdcardNo, PersonName, Phone};
pub use qr::QrToken;
pub use scene::SceneCode;
pub use target::TargetType;
pub use trade::{TargetId, TradeNo, TradeTime};
