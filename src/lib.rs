//! Ankang code fusion transcoding platform (安康码融合转码平台).

pub mod api;
pub mod bus;
pub mod domain;
pub mod error;
pub mod events;
pub mod store;
