//! Settings: built-in defaults, then the config file (`--config`, TOML),
//! then `AKM_*` environment variables (SPEC §8). Every key of the file is
//! the lower-case env name without `AKM_` (`data_dir` <-> `AKM_DATA_DIR`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Every setting of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// sled data directory (`AKM_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Province listener (`AKM_PROVINCE_LISTEN`).
    pub province_listen: String,
    /// City listener (`AKM_CITY_LISTEN`).
    pub city_listen: String,
    /// Card-system simulator listener, role `all` (`AKM_SIM_CARD_LISTEN`).
    pub sim_card_listen: String,
    /// Push-gateway simulator listener, role `all` (`AKM_SIM_PUSH_LISTEN`).
    pub sim_push_listen: String,
    /// Push gateway the notifier calls (`AKM_PUSH_URL`); default: the simulator.
    pub push_url: Option<String>,
    /// The city's own cityNo (`AKM_CITY_NO`).
    pub city_no: String,
    /// Province base URL a city calls (`AKM_PROVINCE_URL`); default: the province listener.
    pub province_url: Option<String>,
    /// `embedded` or `kafka` (`AKM_BUS`).
    pub bus: String,
    /// Kafka bootstrap servers (`AKM_KAFKA_BROKERS`).
    pub kafka_brokers: String,
    /// Prefix of every topic name (`AKM_TOPIC_PREFIX`).
    pub topic_prefix: String,
    /// Transcode request-reply deadline in ms (`AKM_TRANSCODE_TIMEOUT_MS`).
    pub transcode_timeout_ms: u64,
    /// QR token lifetime in seconds (`AKM_QR_TTL_SECONDS`).
    pub qr_ttl_seconds: u64,
    /// Seed demo data (`AKM_DEMO`); default: role `all` with no data yet.
    pub demo: Option<bool>,
    /// Bearer token required on `/admin/*` when set (`AKM_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Most transcode requests waiting for a reply per node (`AKM_MAX_PENDING`); more get 4029.
    pub max_pending: usize,
    /// Consumers per worker group in this process (`AKM_WORKERS`).
    pub workers: usize,
    /// Most transcode requests a node works on at once (`AKM_TRANSCODE_CONCURRENCY`).
    pub transcode_concurrency: usize,
    /// Timeout of one outbound HTTP call to the province or push gateway, ms (`AKM_HTTP_TIMEOUT_MS`).
    pub http_timeout_ms: u64,
    /// Longest wait between two delivery retries, ms (`AKM_RETRY_MAX_MS`).
    pub retry_max_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./data"),
            province_listen: "127.0.0.1:8080".into(),
            city_listen: "127.0.0.1:8081".into(),
            sim_card_listen: "127.0.0.1:8090".into(),
            sim_push_listen: "127.0.0.1:8091".into(),
            push_url: None,
            city_no: "340100".into(),
            province_url: None,
            bus: "embedded".into(),
            kafka_brokers: "127.0.0.1:9092".into(),
            topic_prefix: String::new(),
            transcode_timeout_ms: 3000,
            qr_ttl_seconds: 300,
            demo: None,
            admin_token: None,
            max_pending: 10_000,
            workers: 4,
            transcode_concurrency: 256,
            http_timeout_ms: 10_000,
            retry_max_ms: 60_000,
        }
    }
}

/// A settings error: names the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("配置错误 (configuration error): {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Defaults <- `file` (if given) <- `AKM_*` env.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError(format!(
                    "config file {} not found",
                    f.display()
                )));
            }
            fig = fig.merge(Toml::file(f));
        }
        let s: Settings = fig
            .merge(Env::prefixed("AKM_"))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.bus.as_str(), "embedded" | "kafka") {
            return Err(ConfigError(format!(
                "bus (AKM_BUS) must be embedded or kafka, not {:?}",
                self.bus
            )));
        }
        crate::domain::CityNo::parse(&self.city_no)
            .map_err(|e| ConfigError(format!("city_no (AKM_CITY_NO): {e}")))?;
        if self.transcode_timeout_ms == 0 || self.qr_ttl_seconds == 0 {
            return Err(ConfigError(
                "transcode_timeout_ms and qr_ttl_seconds must be > 0".into(),
            ));
        }
        if self.workers == 0 || self.max_pending == 0 || self.transcode_concurrency == 0 {
            return Err(ConfigError(
                "workers, max_pending and transcode_concurrency must be > 0".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "akm.toml",
                "city_listen = \"0.0.0.0:9000\"\nqr_ttl_seconds = 60\n",
            )?;
            jail.set_env("AKM_QR_TTL_SECONDS", "30");
            jail.set_env("AKM_TOPIC_PREFIX", "prod.");
            let s = Settings::load(Some(Path::new("akm.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.city_listen, "0.0.0.0:9000");
            assert_eq!(s.qr_ttl_seconds, 30);
            assert_eq!(s.topic_prefix, "prod.");
            assert_eq!(s.province_listen, "127.0.0.1:8080");
            jail.set_env("AKM_BUS", "rabbit");
            assert!(Settings::load(None).is_err());
            Ok(())
        });
    }
}
