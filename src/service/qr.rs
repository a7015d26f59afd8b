//! QR issuing (亮码, province): a fresh token for a resident on file,
//! stored with what it grants until it expires.

use std::time::Duration;

use serde::Serialize;

use super::ServiceError;
use crate::clock::SharedClock;
use crate::domain::resident::QrGrant;
use crate::domain::ParseError;
use crate::domain::{CityNo, IdcardNo, QrToken};
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
    pub clock: SharedClock,
    pub default_ttl: Duration,
}

impl QrIssuer {
    /// Issue a token (written, not yet flushed: see [`QrIssuer::issue_durable`]).
    pub fn issue(&self, r: &QrRequest) -> Result<Issued, ServiceError> {
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
        self.store.put_qr(&token, &grant)?;
        Ok(Issued {
            qr_code_url: token.url(&r.city),
            expires_at: beijing_time(expires_at),
        })
    }

    /// Issue a token and wait until it is on disk.
    pub async fn issue_durable(&self, r: &QrRequest) -> Result<Issued, ServiceError> {
        let issued = self.issue(r)?;
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
