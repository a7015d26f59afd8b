//! Decode (spec 7.2): the resident behind a shown QR code. A source that
//! is local checks the target and scene here first; the province's decode
//! checks them itself, so a city only relays.

use std::time::Duration;

use super::sources::{ConfigSource, IdentitySource};
use super::ServiceError;
use crate::domain::resident::Identity;
use crate::domain::{CityNo, QrToken, SceneCode, TargetType};

/// The parsed fields common to decode and transcode.
#[derive(Debug, Clone)]
pub struct CodeQuery {
    pub city: CityNo,
    pub token: QrToken,
    pub target: TargetType,
    pub scene: Option<SceneCode>,
}

/// The decode service of a node.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub identity: IdentitySource,
    pub configs: ConfigSource,
    pub timeout: Duration,
}

impl Decoder {
    pub async fn decode(&self, q: &CodeQuery) -> Result<Identity, ServiceError> {
        if !self.identity.checks_target() {
            self.configs
                .check_target(&q.city, &q.target, q.scene, false, self.timeout)
                .await?;
        }
        let who = self.identity.identify(q, self.timeout).await?;
        tracing::info!(city = %q.city, target = %q.target, token = %q.token, idcard = %who.idcard_no, "decoded");
        Ok(who)
    }
}
