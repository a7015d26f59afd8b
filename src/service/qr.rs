//! QR issuing (亮码, province): a fresh token for a resident on file,
//! stored with what it grants until it expires. The sealed grant goes to
//! `akm.qr.grants` first, then into this instance's store: every other
//! province instance applies it from the topic (`workers/qr_replica.rs`),
//! so the token decodes wherever a terminal's request lands.

use std::time::Duration;

use serde::Serialize;

use super::ServiceError;
use crate::bus::Bus;
use crate::clock::SharedClock;
use crate::domain::resident::QrGrant;
use crate::domain::ParseError;
use crate::domain::{CityNo, IdcardNo, QrToken};
use crate::events::QrGranted;
use crate::store::Store;

/// A parsed request to issue a QR code.
#[derive(Debug, Clone)]
pub struct QrRequest {
    pub idcard_no: IdcardNo,
    pub city: CityNo,
    pub auth_type: String,
    pub auth_object: String,
    /// Lifetime; `None` takes the node's default.
    pub ttl: Option<Duration>,
    pub is_self: bool,
}

/// An issued code.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Issued {
    pub qr_code_url: String,
    pub expires_at: String,
}

/// The QR issuing service.
#[derive(Debug, Clone)]
pub struct QrIssuer {
    pub store: Store,
    pub bus: Bus,
    pub clock: SharedClock,
    pub default_ttl: Duration,
}

impl QrIssuer {
    /// Issue a token: published to every instance, then written here (not
    /// yet flushed: see [`QrIssuer::issue_durable`]).
    pub async fn issue(&self, r: &QrRequest) -> Result<Issued, ServiceError> {
        if self.store.resident(&r.idcard_no)?.is_none() {
            return Err(ParseError::malformed("idcardNo", "居民不存在").into());
        }
        let token = QrToken::generate();
        let ttl = r.ttl.unwrap_or(self.default_ttl);
        let expires_at = self.clock.now_ms() + ttl.as_millis() as i64;
        let grant = QrGrant {
            idcard_no: r.idcard_no.clone(),
            city_no: r.city.to_string(),
            auth_type: r.auth_type.clone(),
            auth_object: r.auth_object.clone(),
            is_self: r.is_self,
            expires_at,
        };
        let sealed = self.store.seal_qr(&grant)?;
        self.bus
            .send(&QrGranted {
                trace_id: uuid::Uuid::new_v4().simple().to_string(),
                token: token.as_str().to_string(),
                grant: sealed.clone(),
                expires_at,
            })
            .await?;
        self.store.put_sealed_qr(&token, &sealed)?;
        Ok(Issued {
            qr_code_url: token.url(&r.city),
            expires_at: beijing_time(expires_at),
        })
    }

    /// Issue a token and wait until it is on disk.
    pub async fn issue_durable(&self, r: &QrRequest) -> Result<Issued, ServiceError> {
        let issued = self.issue(r).await?;
        self.store.sync().await?;
        Ok(issued)
    }

    /// Remove expired grants; returns how many.
    pub fn sweep(&self) -> Result<usize, ServiceError> {
        Ok(self.store.sweep_qr(self.clock.now_ms())?)
    }
}

/// RFC 3339 in Beijing time (+08:00).
fn beijing_time(ms: i64) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match chrono::FixedOffset::east_opt(8 * 3600) {
        Some(tz) => utc.with_timezone(&tz).to_rfc3339(),
        None => utc.to_rfc3339(),
    }
}
