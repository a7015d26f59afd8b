//! What the services do, apart from HTTP and the bus: decode (identity),
//! trade acceptance (callback) and the transcode of one request.

pub mod decode;
pub mod trade;
pub mod transcode;
