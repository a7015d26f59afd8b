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
    #[serde(deserialize_with = "text")]
    pub city_no: String,
    /// Province base URL a city calls (`AKM_PROVINCE_URL`); default: the province listener.
    pub province_url: Option<String>,
    /// `embedded` or `kafka` (`AKM_BUS`).
    pub bus: String,
    /// Kafka bootstrap servers (`AKM_KAFKA_BROKERS`).
    pub kafka_brokers: String,
    /// Prefix of every topic name (`AKM_TOPIC_PREFIX`).
    #[serde(deserialize_with = "text")]
    pub topic_prefix: String,
    /// Transcode request-reply deadline in ms (`AKM_TRANSCODE_TIMEOUT_MS`).
    pub transcode_timeout_ms: u64,
    /// QR token lifetime in seconds (`AKM_QR_TTL_SECONDS`).
    pub qr_ttl_seconds: u64,
    /// Seed demo data (`AKM_DEMO`); default: role `all` with no data yet.
    pub demo: Option<bool>,
    /// Bearer token required on `/admin/*` when set (`AKM_ADMIN_TOKEN`).
    #[serde(deserialize_with = "opt_text")]
    pub admin_token: Option<String>,
    /// Most transcode requests waiting for a reply per node (`AKM_MAX_PENDING`); more get 4029.
    pub max_pending: usize,
    /// Consumers per worker group in this process (`AKM_WORKERS`).
    pub workers: usize,
    /// Most transcode requests a node works on at once (`AKM_TRANSCODE_CONCURRENCY`).
    pub transcode_concurrency: usize,
    /// Kafka consumers' `fetch.wait.max.ms` (`AKM_KAFKA_FETCH_WAIT_MS`): consume latency on brokers that hold fetches.
    pub kafka_fetch_wait_ms: u64,
    /// Kafka producer's `message.timeout.ms` (`AKM_KAFKA_MESSAGE_TIMEOUT_MS`): how long a publish may take before it fails.
    pub kafka_message_timeout_ms: u64,
    /// Reply partition this ingress owns (`AKM_REPLY_PARTITION`); default: a random one.
    pub reply_partition: Option<u32>,
    /// Timeout of one outbound HTTP call to the province or push gateway, ms (`AKM_HTTP_TIMEOUT_MS`).
    pub http_timeout_ms: u64,
    /// Longest wait between two delivery retries, ms (`AKM_RETRY_MAX_MS`).
    pub retry_max_ms: u64,
}

/// A string setting that env or TOML may spell as a number (`AKM_CITY_NO=340100`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    S(String),
    U(u64),
    I(i64),
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        match t {
            Text::S(s) => s,
            Text::U(n) => n.to_string(),
            Text::I(n) => n.to_string(),
        }
    }
}

fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(String::from)
}

fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(d).map(|t| t.map(String::from))
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
            kafka_fetch_wait_ms: 10,
            kafka_message_timeout_ms: 30_000,
            reply_partition: None,
            retry_max_ms: 60_000,
        }
    }
}

/// A settings error: names the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("配置错误 (configuration error): {0}")]
pub struct ConfigError(String);

impl Settings {
    /// The Kafka connection settings.
    pub fn kafka_options(&self) -> crate::bus::KafkaOptions {
        crate::bus::KafkaOptions {
            brokers: self.kafka_brokers.clone(),
            fetch_wait_ms: self.kafka_fetch_wait_ms,
            message_timeout_ms: self.kafka_message_timeout_ms,
        }
    }

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

    /// Every setting of SPEC §8: (env name, file key, value, how to read it back).
    const ALL: &[(&str, &str, &str)] = &[
        ("AKM_DATA_DIR", "data_dir", "/srv/akm"),
        ("AKM_PROVINCE_LISTEN", "province_listen", "0.0.0.0:18080"),
        ("AKM_CITY_LISTEN", "city_listen", "0.0.0.0:18081"),
        ("AKM_SIM_CARD_LISTEN", "sim_card_listen", "0.0.0.0:18090"),
        ("AKM_SIM_PUSH_LISTEN", "sim_push_listen", "0.0.0.0:18091"),
        ("AKM_PUSH_URL", "push_url", "http://push.example/push"),
        ("AKM_CITY_NO", "city_no", "340200"),
        (
            "AKM_PROVINCE_URL",
            "province_url",
            "http://province.example",
        ),
        ("AKM_BUS", "bus", "kafka"),
        ("AKM_KAFKA_BROKERS", "kafka_brokers", "k1:9092,k2:9092"),
        ("AKM_TOPIC_PREFIX", "topic_prefix", "prod."),
        ("AKM_TRANSCODE_TIMEOUT_MS", "transcode_timeout_ms", "1500"),
        ("AKM_QR_TTL_SECONDS", "qr_ttl_seconds", "120"),
        ("AKM_DEMO", "demo", "false"),
    ];

    fn check(s: &Settings) {
        assert_eq!(s.data_dir, PathBuf::from("/srv/akm"));
        assert_eq!(s.province_listen, "0.0.0.0:18080");
        assert_eq!(s.city_listen, "0.0.0.0:18081");
        assert_eq!(s.sim_card_listen, "0.0.0.0:18090");
        assert_eq!(s.sim_push_listen, "0.0.0.0:18091");
        assert_eq!(s.push_url.as_deref(), Some("http://push.example/push"));
        assert_eq!(s.city_no, "340200");
        assert_eq!(s.province_url.as_deref(), Some("http://province.example"));
        assert_eq!(s.bus, "kafka");
        assert_eq!(s.kafka_brokers, "k1:9092,k2:9092");
        assert_eq!(s.topic_prefix, "prod.");
        assert_eq!(s.transcode_timeout_ms, 1500);
        assert_eq!(s.qr_ttl_seconds, 120);
        assert_eq!(s.demo, Some(false));
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn every_setting_works_by_env() {
        figment::Jail::expect_with(|jail| {
            for (env, _, v) in ALL {
                jail.set_env(env, v);
            }
            check(&Settings::load(None).map_err(|e| e.to_string())?);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn every_setting_works_by_file_and_env_wins() {
        figment::Jail::expect_with(|jail| {
            let mut file = String::new();
            for (_, key, v) in ALL {
                let quoted = if v.parse::<u64>().is_ok() || *v == "false" {
                    v.to_string()
                } else {
                    format!("{v:?}")
                };
                file.push_str(&format!("{key} = {quoted}\n"));
            }
            jail.create_file("akm.toml", &file)?;
            check(&Settings::load(Some(Path::new("akm.toml"))).map_err(|e| e.to_string())?);
            jail.set_env("AKM_QR_TTL_SECONDS", "30");
            assert_eq!(
                Settings::load(Some(Path::new("akm.toml")))
                    .map_err(|e| e.to_string())?
                    .qr_ttl_seconds,
                30
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn defaults_are_the_spec_s_and_bad_values_are_named() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s, Settings::default());
            assert_eq!(
                (s.province_listen.as_str(), s.city_listen.as_str()),
                ("127.0.0.1:8080", "127.0.0.1:8081")
            );
            assert_eq!(
                (s.transcode_timeout_ms, s.qr_ttl_seconds, s.city_no.as_str()),
                (3000, 300, "340100")
            );
            jail.set_env("AKM_BUS", "rabbit");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("AKM_BUS"), "{e}");
            jail.set_env("AKM_BUS", "embedded");
            jail.set_env("AKM_CITY_NO", "12");
            assert!(Settings::load(None)
                .unwrap_err()
                .to_string()
                .contains("AKM_CITY_NO"));
            assert!(Settings::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }
}
