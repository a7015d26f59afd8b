//! One role's runtime (province or city): its store, bus, HTTP client,
//! settings and the lookups both its ingress and its workers use.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::clients::province::ProvinceClient;
use crate::config::Settings;
use crate::domain::resident::TranscodeConfig;
use crate::domain::{CityNo, SceneCode, TargetType};
use crate::error::ApiError;
use crate::store::Store;
use crate::workers::replies::Pending;

/// Which side of the spec a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Province,
    City,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Province => "province",
            Role::City => "city",
        }
    }
}

/// Shared state of one role in this process.
#[derive(Debug)]
pub struct Node {
    pub role: Role,
    pub store: Store,
    pub bus: Bus,
    pub settings: Arc<Settings>,
    pub http: reqwest::Client,
    /// Transcode requests waiting for their reply.
    pub pending: Pending,
    /// The reply partition this ingress instance owns.
    pub reply_partition: u32,
    /// The province, for a city node.
    pub province: Option<ProvinceClient>,
    /// The city's own cityNo (city nodes).
    pub city_no: CityNo,
    /// Push gateway URL (province nodes).
    pub push_url: String,
    /// Key of the pseudonymous subject id (province nodes).
    pub subject_key: Vec<u8>,
    /// Wakes the outbox relay.
    pub relay: Arc<Notify>,
    pub cancel: CancellationToken,
}

impl Node {
    pub fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// This node's identity on a shared bus: `province` or `city-<cityNo>`.
    /// Transcode requests carry it, so only this node's workers take them.
    pub fn node_id(&self) -> String {
        match self.role {
            Role::Province => "province".into(),
            Role::City => format!("city-{}", self.city_no),
        }
    }

    /// Timeout of one outbound call that is not bounded by a deadline.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.http_timeout_ms)
    }

    /// The transcode config for a city and type: local (exact -> prefecture
    /// -> province), and for a city node then the province's.
    pub async fn find_config(
        &self,
        city: &CityNo,
        t: &TargetType,
        timeout: Duration,
    ) -> Result<Option<TranscodeConfig>, ApiError> {
        if let Some(c) = self.store.find_config(city, t)? {
            return Ok(Some(c));
        }
        match &self.province {
            Some(p) => p.config(city, t, timeout).await,
            None => Ok(None),
        }
    }

    /// Whether a target type is in the dictionary (the spec's rules or a
    /// configured type).
    pub fn knows(&self, t: &TargetType) -> Result<bool, ApiError> {
        Ok(t.builtin_name().is_some() || self.store.knows_target_type(t)?)
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
    ) -> Result<Option<TranscodeConfig>, ApiError> {
        let config = self.find_config(city, t, timeout).await?;
        if config.is_none() && !self.knows(t)? {
            return Err(ApiError::UnknownCode(format!("字段targetType未知：{t}")));
        }
        match (&config, scene) {
            (None, _) if need_config => Err(ApiError::NoConfig {
                city: city.to_string(),
                target: t.to_string(),
            }),
            (Some(c), Some(s)) if !c.serves(&s) => Err(ApiError::UnknownCode(format!(
                "目标码{}不适用于场景sceneCode={}（{}），适用场景：{}",
                c.target_name,
                s,
                s.name(),
                c.scene_code
            ))),
            _ => Ok(config),
        }
    }

    /// Target name for messages: the config's, else the dictionary's, else the code.
    pub fn target_name(&self, city: &CityNo, t: &TargetType) -> String {
        self.store
            .find_config(city, t)
            .ok()
            .flatten()
            .map(|c| c.target_name)
            .or_else(|| t.builtin_name())
            .unwrap_or_else(|| t.to_string())
    }
}
