//! Transcode configurations (spec 7.5) keyed by belongarea + targetType,
//! with the city -> prefecture -> province fallback.

use super::{from_json, key2, to_json, Store, StoreError};
use crate::domain::resident::TranscodeConfig;
use crate::domain::{CityNo, TargetType};

impl Store {
    pub fn put_config(&self, c: &TranscodeConfig) -> Result<(), StoreError> {
        self.configs
            .insert(key2(&c.belongarea, &c.target_type), to_json(c)?)?;
        self.meta.insert(
            format!("targettype/{}", c.target_type),
            c.target_name.as_bytes(),
        )?;
        Ok(())
    }

    /// The config for this city and type: exact city, then its prefecture,
    /// then the province.
    pub fn find_config(
        &self,
        city: &CityNo,
        t: &TargetType,
    ) -> Result<Option<TranscodeConfig>, StoreError> {
        for area in city.fallback_chain() {
            if let Some(v) = self.configs.get(key2(area.as_str(), t.as_str()))? {
                return Ok(Some(from_json(&v)?));
            }
        }
        Ok(None)
    }

    /// Whether any config anywhere declares this target type (the dictionary
    /// extended by configuration).
    pub fn knows_target_type(&self, t: &TargetType) -> Result<bool, StoreError> {
        Ok(self.meta.contains_key(format!("targettype/{t}"))?)
    }
}
