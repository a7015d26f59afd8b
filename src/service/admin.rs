//! The admin services (SPEC §7): residents and their fused cards
//! (province) and transcode configs (both roles). Each write is flushed
//! before it is answered.

use super::ServiceError;
use crate::domain::resident::{FusedCard, Resident, TranscodeConfig};
use crate::domain::ParseError;
use crate::domain::{mask, TargetType};
use crate::store::Store;

/// Writes of the admin API.
#[derive(Debug, Clone)]
pub struct Admin {
    pub store: Store,
}

impl Admin {
    pub async fn put_resident(&self, r: &Resident) -> Result<(), ServiceError> {
        self.store.put_resident(r)?;
        self.store.sync().await?;
        tracing::info!(idcard = %mask::id(&r.idcard_no), "resident saved");
        Ok(())
    }

    pub async fn put_card(
        &self,
        idcard: &str,
        target: &TargetType,
        card: &FusedCard,
    ) -> Result<(), ServiceError> {
        if self.store.resident(idcard)?.is_none() {
            return Err(ParseError::malformed("idcardNo", "居民不存在，请先创建居民").into());
        }
        self.store.put_card(idcard, target, card)?;
        self.store.sync().await?;
        Ok(())
    }

    pub async fn put_config(&self, c: &TranscodeConfig) -> Result<(), ServiceError> {
        self.store.put_config(c)?;
        self.store.sync().await?;
        Ok(())
    }
}
