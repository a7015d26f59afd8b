//! Residents, fused cards and QR grants (province only).

use super::{from_json, key2, to_json, Store, StoreError};
use crate::domain::resident::{FusedCard, QrGrant, Resident};
use crate::domain::{QrToken, TargetType};

impl Store {
    pub fn put_resident(&self, r: &Resident) -> Result<(), StoreError> {
        self.residents.insert(r.idcard_no.as_bytes(), to_json(r)?)?;
        Ok(())
    }

    pub fn resident(&self, idcard_no: &str) -> Result<Option<Resident>, StoreError> {
        self.residents
            .get(idcard_no.as_bytes())?
            .map(|v| from_json(&v))
            .transpose()
    }

    pub fn resident_count(&self) -> usize {
        self.residents.len()
    }

    pub fn put_card(
        &self,
        idcard_no: &str,
        t: &TargetType,
        c: &FusedCard,
    ) -> Result<(), StoreError> {
        self.cards
            .insert(key2(idcard_no, t.as_str()), to_json(c)?)?;
        Ok(())
    }

    pub fn card(&self, idcard_no: &str, t: &TargetType) -> Result<Option<FusedCard>, StoreError> {
        self.cards
            .get(key2(idcard_no, t.as_str()))?
            .map(|v| from_json(&v))
            .transpose()
    }

    pub fn put_qr(&self, token: &QrToken, g: &QrGrant) -> Result<(), StoreError> {
        self.qrcodes
            .insert(token.as_str().as_bytes(), to_json(g)?)?;
        Ok(())
    }

    /// The grant behind a token, if it exists and has not expired at `now_ms`.
    pub fn live_qr(&self, token: &QrToken, now_ms: i64) -> Result<Option<QrGrant>, StoreError> {
        let grant: Option<QrGrant> = self
            .qrcodes
            .get(token.as_str().as_bytes())?
            .map(|v| from_json(&v))
            .transpose()?;
        Ok(grant.filter(|g| g.expires_at > now_ms))
    }

    /// Delete grants expired before `now_ms`; returns how many.
    pub fn sweep_qr(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.qrcodes.iter() {
            let (k, v) = item?;
            let g: QrGrant = from_json(&v)?;
            if g.expires_at <= now_ms {
                self.qrcodes.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
