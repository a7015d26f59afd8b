//! What the handlers of a node hold: the node's services, chosen at start.

use std::sync::Arc;

use crate::clients::Alerts;
use crate::service::admin::Admin;
use crate::service::applied::Restore;
use crate::service::apps::Apps;
use crate::service::callback::CallbackIngress;
use crate::service::decode::Decoder;
use crate::service::gate::Gate;
use crate::service::qr::QrIssuer;
use crate::service::sources::ConfigSource;
use crate::service::state_log::StateLog;
use crate::service::transcode::TranscodeIngress;

/// The services every node answers (SPEC §7.2–7.5, configs, health).
#[derive(Debug)]
pub struct NodeApi {
    /// `province` or `city`, for `/health`.
    pub role: &'static str,
    pub decoder: Decoder,
    pub configs: ConfigSource,
    pub callbacks: CallbackIngress,
    /// The callbacks' changelog (its replica's progress, for `/readyz`).
    pub state: StateLog,
    /// Until restored: `/readyz` 503, the services 5003.
    pub restore: Restore,
    pub transcode: TranscodeIngress,
    /// The dashboard's operator sessions.
    pub dashboard: super::dashboard::Sessions,
    /// How each transcode was answered, for the statistics.
    pub outcomes: crate::service::outcomes::Outcomes,
    pub admin: Admin,
    pub apps: Apps,
    pub gate: Arc<Gate>,
    /// Problems an operator must act on (shown by `/readyz`).
    pub alerts: Alerts,
    /// Supervised tasks that are down now (shown by `/readyz`).
    pub tasks: crate::workers::supervise::TaskHealth,
}

/// The province's own admin services: residents, cards, QR issuing.
#[derive(Debug)]
pub struct ProvinceApi {
    pub admin: Admin,
    pub qr: QrIssuer,
}
