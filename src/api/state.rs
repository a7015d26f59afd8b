//! What the handlers of a node hold: the node's services, chosen at start.

use crate::config::Secret;
use crate::service::admin::Admin;
use crate::service::decode::Decoder;
use crate::service::qr::QrIssuer;
use crate::service::sources::ConfigSource;
use crate::service::trade::TradeDesk;
use crate::service::transcode::TranscodeIngress;

/// The services every node answers (SPEC §7.2–7.5, configs, health).
#[derive(Debug)]
pub struct NodeApi {
    /// `province` or `city`, for `/health`.
    pub role: &'static str,
    pub decoder: Decoder,
    pub configs: ConfigSource,
    pub trades: TradeDesk,
    pub transcode: TranscodeIngress,
    pub admin: Admin,
}

/// The province's own admin services: residents, cards, QR issuing.
#[derive(Debug)]
pub struct ProvinceApi {
    pub admin: Admin,
    pub qr: QrIssuer,
}

/// The admin guard's token (`AKM_ADMIN_TOKEN`); `None` leaves admin open.
#[derive(Debug, Clone)]
pub struct AdminToken(pub Option<Secret>);
