//! Role differences as sources chosen once at start. The identity behind a
//! QR token comes from the local store (province) or the province's decode
//! over HTTP (city); a transcode config comes from the local store
//! (province) or the local store then the province (city).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::decode::CodeQuery;
use super::ServiceError;
use crate::clients::province::ProvinceClient;
use crate::clock::SharedClock;
use crate::domain::resident::{Identity, TranscodeConfig};
use crate::domain::{CityNo, SceneCode, TargetType};
use crate::store::Store;

/// Where identities come from.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// The province's own residents and QR grants.
    Local { store: Store, clock: SharedClock },
    /// The province's decode (a city). The province checks target and scene.
    Province(ProvinceClient),
}

impl IdentitySource {
    /// Whether this source checks the target and scene itself.
    pub fn checks_target(&self) -> bool {
        matches!(self, IdentitySource::Province(_))
    }

    /// The identity for a query.
    pub async fn identify(
        &self,
        q: &CodeQuery,
        timeout: Duration,
    ) -> Result<Identity, ServiceError> {
        match self {
            IdentitySource::Province(p) => p
                .decode(&q.city, &q.token, &q.target, q.scene, timeout)
                .await
                .map_err(province_error),
            IdentitySource::Local { store, clock } => identify_local(store, clock.now_ms(), q),
        }
    }
}

/// The province's answer, seen from a city: its 4xxx come back as they are
/// (with its text), anything else is a province failure (5002/5004).
pub fn province_error(e: crate::clients::CallError) -> ServiceError {
    match e {
        crate::clients::CallError::Refused { code, msg } if code.starts_with('4') => {
            ServiceError::remote(&code, msg)
        }
        other => ServiceError::Province(other),
    }
}

fn identify_local(store: &Store, now_ms: i64, q: &CodeQuery) -> Result<Identity, ServiceError> {
    let grant = store
        .live_qr(&q.token, now_ms)?
        .ok_or(ServiceError::QrExpired)?;
    let resident = store
        .resident(&grant.idcard_no)?
        .ok_or(ServiceError::QrExpired)?;
    if !resident.universal_auth {
        return Err(ServiceError::NoUniversalAuth);
    }
    let card = store.card(&resident.idcard_no, &q.target)?;
    let (target_id, target_object) = card
        .map(|c| (c.target_id, c.target_object))
        .unwrap_or_default();
    Ok(Identity {
        name: resident.name,
        idcard_no: resident.idcard_no,
        user_phone: resident.user_phone,
        is_self: if grant.is_self { "1" } else { "0" }.into(),
        auth_type: grant.auth_type,
        auth_object: grant.auth_object,
        health_level: resident.health_level,
        data_source: resident.data_source,
        target_type: q.target.to_string(),
        target_id,
        target_object,
    })
}

/// Where transcode configs come from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// The node's own configs (province).
    Local(Store),
    /// The node's own configs, then the province's config query (city),
    /// whose answers are reused for a while.
    LocalThenProvince(Store, ProvinceClient, Arc<ProvinceAnswers>),
}

/// The province's answers to a city's config query, each reused until its
/// time to live runs out (`AKM_PROVINCE_CONFIG_TTL_MS`). A config the
/// province changes is seen at the city within that time; a config of the
/// city's own wins at once (it is looked up first).
#[derive(Debug)]
pub struct ProvinceAnswers {
    ttl_ms: i64,
    clock: SharedClock,
    entries: Mutex<Answers>,
}

/// (city, type) -> when the province answered (ms), and its answer.
type Answers = HashMap<(CityNo, TargetType), (i64, Option<TranscodeConfig>)>;

/// Answers kept at most before the cache starts over.
const ANSWERS: usize = 4096;

impl ProvinceAnswers {
    pub fn new(ttl: Duration, clock: SharedClock) -> Self {
        ProvinceAnswers {
            ttl_ms: ttl.as_millis() as i64,
            clock,
            entries: Mutex::default(),
        }
    }

    fn fresh(&self, at_ms: i64) -> bool {
        self.clock.now_ms() - at_ms < self.ttl_ms
    }

    fn entries(&self) -> MutexGuard<'_, Answers> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &(CityNo, TargetType)) -> Option<Option<TranscodeConfig>> {
        self.entries()
            .get(key)
            .filter(|(at, _)| self.fresh(*at))
            .map(|(_, c)| c.clone())
    }

    fn put(&self, key: (CityNo, TargetType), answer: Option<TranscodeConfig>) {
        if self.ttl_ms <= 0 {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= ANSWERS {
            entries.retain(|_, (at, _)| self.fresh(*at));
            if entries.len() >= ANSWERS {
                entries.clear();
            }
        }
        entries.insert(key, (self.clock.now_ms(), answer));
    }
}

impl ConfigSource {
    fn store(&self) -> &Store {
        match self {
            ConfigSource::Local(s) | ConfigSource::LocalThenProvince(s, _, _) => s,
        }
    }

    /// The config for a city and type: local (exact -> prefecture ->
    /// province), then the province's.
    pub async fn find(
        &self,
        city: &CityNo,
        t: &TargetType,
        timeout: Duration,
    ) -> Result<Option<TranscodeConfig>, ServiceError> {
        if let Some(c) = self.store().find_config(city, t)? {
            return Ok(Some(c));
        }
        match self {
            ConfigSource::Local(_) => Ok(None),
            ConfigSource::LocalThenProvince(_, p, answers) => {
                let key = (city.clone(), t.clone());
                if let Some(answer) = answers.get(&key) {
                    return Ok(answer);
                }
                let answer = p.config(city, t, timeout).await.map_err(province_error)?;
                answers.put(key, answer.clone());
                Ok(answer)
            }
        }
    }

    /// Whether a target type is in the dictionary (the spec's rules or a
    /// configured type).
    pub fn knows(&self, t: &TargetType) -> Result<bool, ServiceError> {
        Ok(t.builtin_name().is_some() || self.store().knows_target_type(t)?)
    }

    /// Check the type is known and the scene served; `need_config` makes a
    /// missing config a 4005. Returns the config when there is one.
    pub async fn check_target(
        &self,
        city: &CityNo,
        t: &TargetType,
        scene: Option<SceneCode>,
        need_config: bool,
        timeout: Duration,
    ) -> Result<Option<TranscodeConfig>, ServiceError> {
        let config = self.find(city, t, timeout).await?;
        if config.is_none() && !self.knows(t)? {
            return Err(ServiceError::UnknownTarget(t.clone()));
        }
        match (&config, scene) {
            (None, _) if need_config => Err(ServiceError::NoConfig {
                city: city.clone(),
                target: t.clone(),
            }),
            (Some(c), Some(s)) if !c.serves(&s) => Err(ServiceError::SceneNotServed {
                target_name: c.target_name.clone(),
                scene: s,
                served: c.scene_code.clone(),
            }),
            _ => Ok(config),
        }
    }

    /// Target name for messages: the local config's, else the dictionary's, else the code.
    pub fn target_name(&self, city: &CityNo, t: &TargetType) -> String {
        self.store()
            .find_config(city, t)
            .ok()
            .flatten()
            .map(|c| c.target_name)
            .or_else(|| t.builtin_name())
            .unwrap_or_else(|| t.to_string())
    }
}

/// A parsed config query (spec 7.5).
#[derive(Debug, Clone)]
pub struct ConfigQuery {
    pub city: CityNo,
    pub target: TargetType,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_province_answer_is_reused_until_its_time_to_live_runs_out() {
        let clock = crate::clock::ManualClock::new();
        let answers = ProvinceAnswers::new(Duration::from_secs(10), clock.clone());
        let key = (
            CityNo::parse("340100").unwrap(),
            TargetType::parse("3401002").unwrap(),
        );
        assert_eq!(answers.get(&key), None);
        answers.put(key.clone(), None);
        assert_eq!(
            answers.get(&key),
            Some(None),
            "the answer 'none' is kept too"
        );
        clock.advance_ms(9_999);
        assert!(answers.get(&key).is_some());
        clock.advance_ms(1);
        assert_eq!(answers.get(&key), None, "kept past its time to live");

        let never = ProvinceAnswers::new(Duration::ZERO, clock);
        never.put(key.clone(), None);
        assert_eq!(never.get(&key), None, "a TTL of 0 still cached");
    }
}
