//! Residents, fused cards and QR grants (province only).

use super::{key2, Store, StoreError};
use crate::domain::resident::{FusedCard, QrGrant, Resident};
use crate::domain::{IdcardNo, QrToken, TargetType};

impl Store {
    pub fn put_resident(&self, r: &Resident) -> Result<(), StoreError> {
        self.residents
            .insert(self.id_key(r.idcard_no.expose()), self.seal(r)?)?;
        Ok(())
    }

    pub fn resident(&self, idcard_no: &IdcardNo) -> Result<Option<Resident>, StoreError> {
        self.residents
            .get(self.id_key(idcard_no.expose()))?
            .map(|v| self.unseal(&v))
            .transpose()
    }

    pub fn resident_count(&self) -> usize {
        self.residents.len()
    }

    pub fn put_card(
        &self,
        idcard_no: &IdcardNo,
        t: &TargetType,
        c: &FusedCard,
    ) -> Result<(), StoreError> {
        self.cards.insert(
            key2(&self.id_key(idcard_no.expose()), t.as_str()),
            self.seal(c)?,
        )?;
        Ok(())
    }

    pub fn card(
        &self,
        idcard_no: &IdcardNo,
        t: &TargetType,
    ) -> Result<Option<FusedCard>, StoreError> {
        self.cards
            .get(key2(&self.id_key(idcard_no.expose()), t.as_str()))?
            .map(|v| self.unseal(&v))
            .transpose()
    }

    /// A grant sealed as the store keeps it (and `akm.qr.grants` carries it).
    pub fn seal_qr(&self, g: &QrGrant) -> Result<String, StoreError> {
        Ok(String::from_utf8_lossy(&self.seal(g)?).into_owned())
    }

    /// Keep a sealed grant under `token`, if this node's keys open it
    /// (`Ok(false)` when they do not: a grant sealed under a key retired here).
    pub fn put_sealed_qr(&self, token: &QrToken, sealed: &str) -> Result<bool, StoreError> {
        if self.unseal::<QrGrant>(sealed.as_bytes()).is_err() {
            return Ok(false);
        }
        self.qrcodes
            .insert(token.as_str().as_bytes(), sealed.as_bytes())?;
        Ok(true)
    }

    /// The grant behind a token, if it exists and has not expired at `now_ms`.
    pub fn live_qr(&self, token: &QrToken, now_ms: i64) -> Result<Option<QrGrant>, StoreError> {
        let grant: Option<QrGrant> = self
            .qrcodes
            .get(token.as_str().as_bytes())?
            .map(|v| self.unseal(&v))
            .transpose()?;
        Ok(grant.filter(|g| g.expires_at > now_ms))
    }

    /// Delete grants expired before `now_ms`; returns how many.
    pub fn sweep_qr(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.qrcodes.iter() {
            let (k, v) = item?;
            let g: QrGrant = self.unseal(&v)?;
            if g.expires_at <= now_ms {
                self.qrcodes.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
