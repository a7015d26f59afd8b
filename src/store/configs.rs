//! Transcode configurations (spec 7.5) keyed by belongarea + targetType,
//! with the city -> prefecture -> province fallback. Lookups are cached in
//! memory (`memo.rs`); every admin write clears the cache.

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
        self.config_cache.clear();
        Ok(())
    }

    /// The config for this city and type: exact city, then its prefecture,
    /// then the province.
    pub fn find_config(
        &self,
        city: &CityNo,
        t: &TargetType,
    ) -> Result<Option<TranscodeConfig>, StoreError> {
        self.config_cache
            .get_or((city.to_string(), t.to_string()), || {
                self.read_config(city, t)
            })
    }

    fn read_config(
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

#[cfg(test)]
mod tests {
    use crate::domain::resident::TranscodeConfig;
    use crate::domain::{CityNo, TargetType};
    use crate::store::Store;

    fn config(area: &str, url: &str) -> TranscodeConfig {
        TranscodeConfig {
            belongarea: area.into(),
            target_name: "合肥电子健康卡".into(),
            target_type: "3401002".into(),
            target_url: url.into(),
            scene_code: String::new(),
        }
    }

    /// A lookup answered from the cache (here: the prefecture's config for
    /// a district) is replaced at once by an admin write (the district's own).
    #[tokio::test]
    async fn an_admin_write_replaces_a_cached_lookup_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::for_tests(dir.path());
        let (district, t) = (
            CityNo::parse("340102").unwrap(),
            TargetType::parse("3401002").unwrap(),
        );
        assert_eq!(store.find_config(&district, &t).unwrap(), None);
        store
            .put_config(&config("340100000000", "http://a"))
            .unwrap();
        let found = |s: &Store| s.find_config(&district, &t).unwrap().map(|c| c.target_url);
        assert_eq!(
            found(&store).as_deref(),
            Some("http://a"),
            "a cached 'none' stayed"
        );
        assert_eq!(found(&store).as_deref(), Some("http://a"));
        store
            .put_config(&config("340102000000", "http://b"))
            .unwrap();
        assert_eq!(found(&store).as_deref(), Some("http://b"));
        store
            .put_config(&config("340102000000", "http://c"))
            .unwrap();
        assert_eq!(found(&store).as_deref(), Some("http://c"));
    }
}
