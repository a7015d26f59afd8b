//! Settings: built-in defaults, then the config file (`--config`, TOML),
//! then `AKM_*` environment variables (SPEC §8). Every key of the file is
//! the lower-case env name without `AKM_` (`data_dir` <-> `AKM_DATA_DIR`).
//! Values are typed: the bus a [`BusKind`], durations [`Duration`]s, the
//! city a [`CityNo`], secrets a redacting [`Secret`]; a file key that is not
//! a setting is a start-up error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::domain::CityNo;

/// Which bus backend a node uses (`AKM_BUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// The sled-backed log in the node's data directory (one process).
    Embedded,
    /// A Kafka cluster (`AKM_KAFKA_BROKERS`).
    Kafka,
}

impl BusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BusKind::Embedded => "embedded",
            BusKind::Kafka => "kafka",
        }
    }
}

/// Whether callers must sign (`AKM_AUTH`): `on` unless a developer turns
/// it `off` on a machine of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    On,
    Off,
}

/// A secret setting: its `Debug` and `Display` never show the value, and
/// it serializes as `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Text")]
pub struct Secret(String);

impl Secret {
    pub fn new(v: impl Into<String>) -> Self {
        Secret(v.into())
    }

    /// The value, for the one place that compares or sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<Text> for Secret {
    fn from(t: Text) -> Self {
        Secret(t.into())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// sled's page cache per database, MiB (`AKM_CACHE_MB`). Its default is
/// 1 GiB, which a node under load fills (the benchmark peaked at 900 MiB).
/// sled's memory is several times this figure: at 16 MiB the benchmark
/// peaked at 285 MiB, at 8 MiB at 250 MiB, with callbacks as fast
/// (BENCHMARKS.md).
pub const CACHE_MB: u64 = 8;

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
    /// Schema registry, Confluent REST API (`AKM_SCHEMA_REGISTRY_URL`): when
    /// set, `akm.trade` is written in the Confluent wire format.
    pub schema_registry_url: Option<String>,
    /// The city's own cityNo (`AKM_CITY_NO`), 6 or 12 digits.
    #[serde(with = "city")]
    pub city_no: CityNo,
    /// Province base URL a city calls (`AKM_PROVINCE_URL`); default: the province listener.
    pub province_url: Option<String>,
    /// `embedded` or `kafka` (`AKM_BUS`).
    pub bus: BusKind,
    /// Kafka bootstrap servers (`AKM_KAFKA_BROKERS`).
    pub kafka_brokers: String,
    /// Prefix of every topic name (`AKM_TOPIC_PREFIX`).
    #[serde(deserialize_with = "text")]
    pub topic_prefix: String,
    /// Transcode request-reply deadline (`AKM_TRANSCODE_TIMEOUT_MS`).
    #[serde(rename = "transcode_timeout_ms", with = "millis")]
    pub transcode_timeout: Duration,
    /// Callback request-reply deadline: the owner of the trade's key
    /// decides and publishes within it (`AKM_CALLBACK_TIMEOUT_MS`).
    #[serde(rename = "callback_timeout_ms", with = "millis")]
    pub callback_timeout: Duration,
    /// QR token lifetime (`AKM_QR_TTL_SECONDS`).
    #[serde(rename = "qr_ttl_seconds", with = "seconds")]
    pub qr_ttl: Duration,
    /// Seed demo data (`AKM_DEMO`); default: role `all` with no data yet.
    pub demo: Option<bool>,
    /// Signed requests and scopes (`AKM_AUTH`); `off` is for local development only.
    pub auth: AuthMode,
    /// The bootstrap operator app (`AKM_ADMIN_APP_ID`); without it every admin call is 4010.
    pub admin_app_id: Option<String>,
    /// Its secret, at least 32 characters (`AKM_ADMIN_APP_SECRET`).
    pub admin_app_secret: Option<Secret>,
    /// The app a city signs its calls to the province with (`AKM_PROVINCE_APP_ID`).
    pub province_app_id: Option<String>,
    /// Its secret (`AKM_PROVINCE_APP_SECRET`).
    pub province_app_secret: Option<Secret>,
    /// Days audit records are kept (`AKM_AUDIT_RETENTION_DAYS`).
    pub audit_retention_days: u32,
    /// Hosts a config's targetUrl may name: `host`, `host:port` or `*.domain`, comma-separated (`AKM_CARD_HOSTS`); unset = any (with a warning).
    pub card_hosts: Option<String>,
    /// Time a client has to send its request headers (`AKM_HEADER_TIMEOUT_MS`).
    #[serde(rename = "header_timeout_ms", with = "millis")]
    pub header_timeout: Duration,
    /// Time a client has to send its request body (`AKM_BODY_TIMEOUT_MS`).
    #[serde(rename = "body_timeout_ms", with = "millis")]
    pub body_timeout: Duration,
    /// Longest time one request may take before 5004 (`AKM_REQUEST_TIMEOUT_MS`).
    #[serde(rename = "request_timeout_ms", with = "millis")]
    pub request_timeout: Duration,
    /// Most open connections per listener (`AKM_MAX_CONNECTIONS`); more wait to be accepted.
    pub max_connections: usize,
    /// Most requests in flight per service and node (`AKM_MAX_INFLIGHT`); more get 503/4029.
    pub max_inflight: usize,
    /// The data key, base64 (`AKM_DATA_KEY`): 32 bytes for AES-256-GCM, 16 for SM4-GCM.
    pub data_key: Option<Secret>,
    /// A file holding the data key, base64 (`AKM_DATA_KEY_FILE`).
    pub data_key_file: Option<PathBuf>,
    /// Older data keys that still open what they sealed, base64, comma-separated (`AKM_DATA_KEY_OLD`).
    pub data_key_old: Option<Secret>,
    /// `AES-256-GCM` or `SM4-GCM` (`AKM_DATA_CIPHER`).
    pub data_cipher: String,
    /// Key of the residents' pseudonyms on `akm.trade`, base64 of at least 32 bytes (`AKM_SUBJECT_KEY`); required for the province.
    pub subject_key: Option<Secret>,
    /// An extra CA certificate (PEM) for outbound HTTPS (`AKM_CA_FILE`).
    pub ca_file: Option<PathBuf>,
    /// librdkafka properties passed through, `key=value;key=value` (`AKM_KAFKA_PROPERTIES`).
    pub kafka_properties: Option<String>,
    /// librdkafka properties from the config file's `[kafka]` table.
    pub kafka: std::collections::BTreeMap<String, String>,
    /// Days the dead-letter topics holding personal data keep it (`AKM_PII_DLQ_RETENTION_DAYS`).
    pub pii_dlq_retention_days: u32,
    /// Free space (MB) below which new writes get 5003 (`AKM_MIN_FREE_MB`).
    pub min_free_mb: u64,
    /// sled's page cache per node database, MiB (`AKM_CACHE_MB`); sled's
    /// memory is several times this figure.
    pub cache_mb: u64,
    /// The longest wait for a flush before 5003 (`AKM_FLUSH_TIMEOUT_MS`).
    #[serde(rename = "flush_timeout_ms", with = "millis")]
    pub flush_timeout: Duration,
    /// The bound of a graceful shutdown (`AKM_SHUTDOWN_TIMEOUT_MS`).
    #[serde(rename = "shutdown_timeout_ms", with = "millis")]
    pub shutdown_timeout: Duration,
    /// Days idempotency records and delivered marks are kept (`AKM_IDEMPOTENCY_DAYS`).
    pub idempotency_days: u32,
    /// Most transcode requests waiting for a reply per node (`AKM_MAX_PENDING`); more get 4029.
    pub max_pending: usize,
    /// Consumers per worker group in this process (`AKM_WORKERS`).
    pub workers: usize,
    /// Records of one partition the forwarder and the notifier work on at
    /// once, committed in order (`AKM_WORKER_WINDOW`).
    pub worker_window: usize,
    /// Most transcode requests a node works on at once (`AKM_TRANSCODE_CONCURRENCY`).
    pub transcode_concurrency: usize,
    /// Kafka consumers' `fetch.wait.max.ms` (`AKM_KAFKA_FETCH_WAIT_MS`): consume latency on brokers that hold fetches.
    #[serde(rename = "kafka_fetch_wait_ms", with = "millis")]
    pub kafka_fetch_wait: Duration,
    /// Kafka producer's `message.timeout.ms` (`AKM_KAFKA_MESSAGE_TIMEOUT_MS`): how long a publish may take before it fails.
    #[serde(rename = "kafka_message_timeout_ms", with = "millis")]
    pub kafka_message_timeout: Duration,
    /// Reply partition this ingress owns (`AKM_REPLY_PARTITION`); default: a random one.
    pub reply_partition: Option<u32>,
    /// Timeout of one outbound HTTP call to the province or push gateway (`AKM_HTTP_TIMEOUT_MS`).
    #[serde(rename = "http_timeout_ms", with = "millis")]
    pub http_timeout: Duration,
    /// Longest wait between two delivery retries (`AKM_RETRY_MAX_MS`).
    #[serde(rename = "retry_max_ms", with = "millis")]
    pub retry_max: Duration,
    /// How long a city reuses the province's answer to its config query
    /// (`AKM_PROVINCE_CONFIG_TTL_MS`); 0 asks on every transcode.
    #[serde(rename = "province_config_ttl_ms", with = "millis")]
    pub province_config_ttl: Duration,
    /// How often a node writes its tallies of transcode answers for the
    /// statistics (`AKM_STATS_FLUSH_MS`).
    #[serde(rename = "stats_flush_ms", with = "millis")]
    pub stats_flush: Duration,
    /// How often a node writes its queued audit records, one stored value
    /// per 32 records (`AKM_AUDIT_WRITE_MS`).
    #[serde(rename = "audit_write_ms", with = "millis")]
    pub audit_write: Duration,
}

/// A string setting that env or TOML may spell as a number (`AKM_CITY_NO=340100`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Text {
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

/// A cityNo setting: parsed like the API's cityNo.
mod city {
    use super::{CityNo, Text};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &CityNo, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CityNo, D::Error> {
        let raw: String = Text::deserialize(d)?.into();
        CityNo::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A duration written as whole milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A duration written as whole seconds.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
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
            schema_registry_url: None,
            city_no: CityNo::hefei(),
            province_url: None,
            bus: BusKind::Embedded,
            kafka_brokers: "127.0.0.1:9092".into(),
            topic_prefix: String::new(),
            transcode_timeout: Duration::from_millis(3000),
            callback_timeout: Duration::from_millis(10_000),
            qr_ttl: Duration::from_secs(300),
            demo: None,
            auth: AuthMode::On,
            admin_app_id: None,
            admin_app_secret: None,
            province_app_id: None,
            province_app_secret: None,
            audit_retention_days: 180,
            card_hosts: None,
            header_timeout: Duration::from_millis(10_000),
            body_timeout: Duration::from_millis(10_000),
            request_timeout: Duration::from_millis(30_000),
            max_connections: 10_000,
            max_inflight: 1024,
            data_key: None,
            data_key_file: None,
            data_key_old: None,
            data_cipher: "AES-256-GCM".into(),
            subject_key: None,
            ca_file: None,
            kafka_properties: None,
            kafka: std::collections::BTreeMap::new(),
            pii_dlq_retention_days: 30,
            min_free_mb: 256,
            cache_mb: CACHE_MB,
            flush_timeout: Duration::from_millis(5000),
            shutdown_timeout: Duration::from_millis(20_000),
            idempotency_days: 400,
            max_pending: 10_000,
            workers: 1,
            worker_window: 16,
            transcode_concurrency: 256,
            http_timeout: Duration::from_millis(10_000),
            province_config_ttl: Duration::from_millis(10_000),
            stats_flush: Duration::from_millis(1_000),
            audit_write: Duration::from_millis(100),
            kafka_fetch_wait: Duration::from_millis(10),
            kafka_message_timeout: Duration::from_millis(30_000),
            reply_partition: None,
            retry_max: Duration::from_millis(60_000),
        }
    }
}

/// A settings error: names the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("配置错误 (configuration error): {0}")]
pub struct ConfigError(String);

impl Settings {
    /// The librdkafka properties passed through: the `[kafka]` table, then
    /// `AKM_KAFKA_PROPERTIES` (`key=value;key=value`), which wins.
    pub fn kafka_config(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut out: Vec<(String, String)> = self
            .kafka
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for pair in self.kafka_properties.as_deref().unwrap_or("").split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                ConfigError(format!(
                    "kafka_properties (AKM_KAFKA_PROPERTIES): {pair:?} is not key=value"
                ))
            })?;
            out.retain(|(x, _)| x != k.trim());
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(out)
    }

    /// Every key a config file may hold (the lower-case env names).
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(Settings::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Defaults <- `file` (if given) <- `AKM_*` env. A key the file has that
    /// is not a setting stops start-up, naming it.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(f) = file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| ConfigError(format!("config file {}: {e}", f.display())))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("config file {}: {e}", f.display())))?;
            let known = Settings::keys();
            let unknown: Vec<&String> = table.keys().filter(|k| !known.contains(k)).collect();
            if !unknown.is_empty() {
                return Err(ConfigError(format!(
                    "config file {} has unknown keys: {}",
                    f.display(),
                    unknown
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            fig = fig.merge(Toml::string(&text));
        }
        let known = Settings::keys();
        let s: Settings = fig
            .merge(Env::prefixed("AKM_").filter(move |k| known.iter().any(|n| k == n.as_str())))
            .extract()
            .map_err(|e| ConfigError(name_env(&e.to_string())))?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.transcode_timeout.is_zero() || self.qr_ttl.is_zero() {
            return Err(ConfigError(
                "transcode_timeout_ms (AKM_TRANSCODE_TIMEOUT_MS) and qr_ttl_seconds (AKM_QR_TTL_SECONDS) must be > 0".into(),
            ));
        }
        if self.workers == 0
            || self.worker_window == 0
            || self.max_pending == 0
            || self.transcode_concurrency == 0
        {
            return Err(ConfigError(
                "workers, worker_window, max_pending and transcode_concurrency must be > 0".into(),
            ));
        }
        if self.stats_flush.is_zero() || self.audit_write.is_zero() {
            return Err(ConfigError(
                "stats_flush_ms (AKM_STATS_FLUSH_MS) and audit_write_ms (AKM_AUDIT_WRITE_MS) must be > 0".into(),
            ));
        }
        if self.cache_mb == 0 {
            return Err(ConfigError("cache_mb (AKM_CACHE_MB) must be > 0".into()));
        }
        if self.max_connections == 0 || self.max_inflight == 0 {
            return Err(ConfigError("max_connections (AKM_MAX_CONNECTIONS) and max_inflight (AKM_MAX_INFLIGHT) must be > 0".into()));
        }
        if self.callback_timeout.is_zero() || self.request_timeout <= self.callback_timeout {
            return Err(ConfigError("callback_timeout_ms (AKM_CALLBACK_TIMEOUT_MS) must be > 0 and below request_timeout_ms (AKM_REQUEST_TIMEOUT_MS)".into()));
        }
        if self.request_timeout <= self.transcode_timeout {
            return Err(ConfigError("request_timeout_ms (AKM_REQUEST_TIMEOUT_MS) must exceed transcode_timeout_ms (AKM_TRANSCODE_TIMEOUT_MS)".into()));
        }
        match (&self.admin_app_id, &self.admin_app_secret) {
            (None, None) => {}
            (Some(id), Some(secret)) => {
                crate::domain::app::AppId::parse(id)
                    .map_err(|e| ConfigError(format!("admin_app_id (AKM_ADMIN_APP_ID): {e}")))?;
                if secret.expose().chars().count() < 32 {
                    return Err(ConfigError(
                        "admin_app_secret (AKM_ADMIN_APP_SECRET) must have at least 32 characters"
                            .into(),
                    ));
                }
            }
            _ => {
                return Err(ConfigError(
                    "AKM_ADMIN_APP_ID and AKM_ADMIN_APP_SECRET go together".into(),
                ))
            }
        }
        match (&self.province_app_id, &self.province_app_secret) {
            (None, None) | (Some(_), Some(_)) => {}
            _ => {
                return Err(ConfigError(
                    "AKM_PROVINCE_APP_ID and AKM_PROVINCE_APP_SECRET go together".into(),
                ))
            }
        }
        if crate::crypto::CipherKind::parse(&self.data_cipher).is_none() {
            return Err(ConfigError(format!(
                "data_cipher (AKM_DATA_CIPHER) must be AES-256-GCM or SM4-GCM, not {:?}",
                self.data_cipher
            )));
        }
        self.kafka_config()?;
        if let Some(id) = &self.province_app_id {
            crate::domain::app::AppId::parse(id)
                .map_err(|e| ConfigError(format!("province_app_id (AKM_PROVINCE_APP_ID): {e}")))?;
        }
        Ok(())
    }
}

/// Add the env name to a figment error that names a key (`for key "bus"`).
fn name_env(msg: &str) -> String {
    for key in Settings::keys() {
        let upper = key.to_uppercase();
        if msg.contains(&format!("\"{key}\"")) || msg.contains(&format!("\"{upper}\"")) {
            return format!("{msg} (AKM_{upper})");
        }
    }
    msg.to_string()
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
        (
            "AKM_SCHEMA_REGISTRY_URL",
            "schema_registry_url",
            "http://registry:8080/apis/ccompat/v7",
        ),
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
        ("AKM_CACHE_MB", "cache_mb", "64"),
    ];

    fn check(s: &Settings) {
        assert_eq!(s.data_dir, PathBuf::from("/srv/akm"));
        assert_eq!(s.province_listen, "0.0.0.0:18080");
        assert_eq!(s.city_listen, "0.0.0.0:18081");
        assert_eq!(s.sim_card_listen, "0.0.0.0:18090");
        assert_eq!(s.sim_push_listen, "0.0.0.0:18091");
        assert_eq!(s.push_url.as_deref(), Some("http://push.example/push"));
        assert_eq!(
            s.schema_registry_url.as_deref(),
            Some("http://registry:8080/apis/ccompat/v7")
        );
        assert_eq!(s.city_no.as_str(), "340200000000");
        assert_eq!(s.province_url.as_deref(), Some("http://province.example"));
        assert_eq!(s.bus, BusKind::Kafka);
        assert_eq!(s.kafka_brokers, "k1:9092,k2:9092");
        assert_eq!(s.topic_prefix, "prod.");
        assert_eq!(s.transcode_timeout, Duration::from_millis(1500));
        assert_eq!(s.qr_ttl, Duration::from_secs(120));
        assert_eq!(s.demo, Some(false));
        assert_eq!(s.cache_mb, 64);
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
                    .qr_ttl,
                Duration::from_secs(30)
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
                (s.transcode_timeout, s.qr_ttl, s.city_no.as_str()),
                (
                    Duration::from_millis(3000),
                    Duration::from_secs(300),
                    "340100000000"
                )
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
            jail.set_env("AKM_CITY_NO", "340100");
            jail.set_env("AKM_CACHE_MB", "0");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("AKM_CACHE_MB"), "{e}");
            jail.set_env("AKM_CACHE_MB", "8");
            assert_eq!(
                Settings::load(None).map_err(|e| e.to_string())?.auth,
                AuthMode::On,
                "signing is on by default"
            );
            jail.set_env("AKM_ADMIN_APP_ID", "ops");
            jail.set_env("AKM_ADMIN_APP_SECRET", "too-short");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(
                e.contains("AKM_ADMIN_APP_SECRET") && e.contains("32"),
                "{e}"
            );
            jail.set_env("AKM_ADMIN_APP_SECRET", "0123456789abcdef0123456789abcdef");
            assert!(Settings::load(None).is_ok());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn unknown_file_keys_stop_start_up_and_unknown_env_is_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("akm.toml", "data_dir = \"/x\"\nretry_max = 5\n")?;
            let e = Settings::load(Some(Path::new("akm.toml")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("unknown keys: retry_max"), "{e}");
            jail.set_env("AKM_TEST_BUS", "kafka"); // not a setting: left alone
            assert!(Settings::load(None).is_ok());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn kafka_properties_come_from_the_file_table_and_env_wins() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "akm.toml",
                "[kafka]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"/etc/ca.pem\"\n",
            )?;
            jail.set_env(
                "AKM_KAFKA_PROPERTIES",
                "security.protocol=SASL_SSL;sasl.mechanism=SCRAM-SHA-512",
            );
            let s = Settings::load(Some(Path::new("akm.toml"))).map_err(|e| e.to_string())?;
            let props = s.kafka_config().map_err(|e| e.to_string())?;
            assert!(props.contains(&("ssl.ca.location".into(), "/etc/ca.pem".into())));
            assert!(props.contains(&("security.protocol".into(), "SASL_SSL".into())));
            assert!(!props.contains(&("security.protocol".into(), "SSL".into())));
            jail.set_env("AKM_KAFKA_PROPERTIES", "novalue");
            assert!(Settings::load(None)
                .unwrap_err()
                .to_string()
                .contains("AKM_KAFKA_PROPERTIES"));
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings {
            admin_app_secret: Some(Secret::new("s3cret-token")),
            ..Settings::default()
        };
        let shown = format!("{s:?} {}", serde_json::to_string(&s).unwrap());
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert_eq!(
            s.admin_app_secret.as_ref().map(Secret::expose),
            Some("s3cret-token")
        );
    }
}
