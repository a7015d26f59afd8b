//! Topic declarations and the deployment's topic names. Every
//! `topics/*.toml` is compiled in by `build.rs` (the directory is the
//! source of the list); a name is `AKM_TOPIC_PREFIX` + the base name.
//! Both backends refuse a topic that is not declared here.

use serde::Deserialize;

mod files {
    include!(concat!(env!("OUT_DIR"), "/topics.rs"));
}

/// One declared topic, as in its `topics/<name>.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicDecl {
    pub name: String,
    pub partitions: u32,
    pub replication: u16,
    pub retention_ms: i64,
    pub key: String,
    pub schema: String,
    /// Whether records hold personal data (sealed fields); a dead-letter
    /// topic that does keeps it at most `AKM_PII_DLQ_RETENTION_DAYS`.
    #[serde(default)]
    pub personal_data: bool,
    /// The consumer groups that must consume every record: retention on
    /// the embedded bus never trims past their committed offsets.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether the embedded bus keeps the topic on disk (the default). A
    /// topic declared `durable = false` lives in memory there: for the
    /// request-reply topics, whose records are worthless after their
    /// deadline. On Kafka every topic is a replicated log.
    #[serde(default = "durable_by_default")]
    pub durable: bool,
    /// A table, not a stream: Kafka keeps the latest record of each key
    /// (`cleanup.policy=compact`) and retention never removes it; the
    /// embedded bus keeps every record (no time-based trim).
    #[serde(default)]
    pub compacted: bool,
    /// On Kafka, the longest a consumer of this topic lets the broker hold
    /// a fetch (`fetch.wait.max.ms`), when its readers need no low latency
    /// (the statistics): fewer idle fetches than `AKM_KAFKA_FETCH_WAIT_MS`.
    #[serde(default)]
    pub fetch_wait_ms: Option<u64>,
}

fn durable_by_default() -> bool {
    true
}

/// A topic declaration that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("topics/{file} is not a valid topic declaration")]
pub struct DeclError {
    file: String,
    #[source]
    source: toml::de::Error,
}

/// The topics of the contract (SPEC §6) the code publishes to by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    TranscodeRequest,
    TranscodeReply,
    TradeReported,
    Trade,
    Notify,
    QrGrants,
    Reference,
    CallbackRequest,
    CallbackReply,
    CallbackState,
    TranscodeOutcome,
}

impl Topic {
    pub const ALL: [Topic; 11] = [
        Topic::TranscodeRequest,
        Topic::TranscodeReply,
        Topic::TradeReported,
        Topic::Trade,
        Topic::Notify,
        Topic::QrGrants,
        Topic::Reference,
        Topic::CallbackRequest,
        Topic::CallbackReply,
        Topic::CallbackState,
        Topic::TranscodeOutcome,
    ];

    pub fn base(self) -> &'static str {
        match self {
            Topic::TranscodeRequest => "akm.transcode.request",
            Topic::TranscodeReply => "akm.transcode.reply",
            Topic::TradeReported => "akm.trade.reported",
            Topic::Trade => "akm.trade",
            Topic::Notify => "akm.notify",
            Topic::QrGrants => "akm.qr.grants",
            Topic::Reference => "akm.reference",
            Topic::CallbackRequest => "akm.callback.request",
            Topic::CallbackReply => "akm.callback.reply",
            Topic::CallbackState => "akm.callback.state",
            Topic::TranscodeOutcome => "akm.transcode.outcome",
        }
    }
}

/// The topics written in the Confluent wire format when a schema
/// registry is configured (`AKM_SCHEMA_REGISTRY_URL`): what the province's
/// data team reads with registry-aware tools.
pub const CONFLUENT: &[Topic] = &[Topic::Trade];

/// What the schema registry said at start: each Confluent topic's schema
/// id (of the current schema), and every registry id whose schema this
/// build knows, with its fingerprint (for reading either framing).
#[derive(Debug, Default)]
pub struct Registered {
    pub ids: std::collections::HashMap<String, u32>,
    pub known: crate::events::SchemaIds,
}

/// The topic names and declarations of one deployment.
#[derive(Debug, Clone)]
pub struct Topics {
    // shared: a Bus (and so every worker) clones its Topics
    prefix: std::sync::Arc<str>,
    decls: std::sync::Arc<Vec<TopicDecl>>,
    registry: std::sync::Arc<Registered>,
}

impl Topics {
    /// Declarations from the compiled-in `topics/*.toml`, names prefixed.
    pub fn new(prefix: &str) -> Result<Self, DeclError> {
        let decls = files::FILES
            .iter()
            .map(|(file, text)| {
                toml::from_str(text).map_err(|source| DeclError {
                    file: (*file).to_string(),
                    source,
                })
            })
            .collect::<Result<Vec<TopicDecl>, _>>()?;
        Ok(Topics {
            prefix: prefix.into(),
            decls: std::sync::Arc::new(decls),
            registry: Default::default(),
        })
    }

    /// Write the Confluent topics in the Confluent wire format with these
    /// schema ids, and read the ids this build knows.
    pub fn with_registry(mut self, r: Registered) -> Self {
        self.registry = std::sync::Arc::new(r);
        self
    }

    /// The registry subject of a topic's values (`<topic>-value`).
    pub fn subject(&self, topic: Topic) -> String {
        format!("{}-value", self.name(topic))
    }

    /// The schema id `topic` is written with, when it is written in the
    /// Confluent wire format.
    pub fn confluent_id(&self, topic: Topic) -> Option<u32> {
        self.registry.ids.get(&self.name(topic)).copied()
    }

    /// The registry ids a reader understands.
    pub fn schema_ids(&self) -> &crate::events::SchemaIds {
        &self.registry.known
    }

    /// The deployment's prefix (`AKM_TOPIC_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Cap the retention of the dead-letter topics holding personal data
    /// at `days` (`AKM_PII_DLQ_RETENTION_DAYS`).
    pub fn cap_personal_dlq(mut self, days: u32) -> Self {
        let cap = i64::from(days) * 86_400_000;
        for d in std::sync::Arc::make_mut(&mut self.decls) {
            if d.personal_data && d.name.ends_with(".dlq") {
                d.retention_ms = d.retention_ms.min(cap);
            }
        }
        self
    }

    /// A consumer group id of this deployment: prefixed like the topics, so
    /// deployments sharing a cluster never share (and rebalance) a group.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The full name of a contract topic.
    pub fn name(&self, t: Topic) -> String {
        format!("{}{}", self.prefix, t.base())
    }

    /// The dead-letter topic of a contract topic.
    pub fn dlq(&self, t: Topic) -> String {
        format!("{}{}.dlq", self.prefix, t.base())
    }

    /// Every declared topic with its full name.
    pub fn declared(&self) -> Vec<TopicDecl> {
        self.decls
            .iter()
            .map(|d| TopicDecl {
                name: format!("{}{}", self.prefix, d.name),
                ..d.clone()
            })
            .collect()
    }

    /// The declaration of a full topic name; `None` when it is not declared.
    pub fn decl(&self, full: &str) -> Option<&TopicDecl> {
        let base = full.strip_prefix(&*self.prefix)?;
        self.decls.iter().find(|d| d.name == base)
    }

    /// Partitions of a declared topic (`None` when undeclared).
    pub fn partitions(&self, full: &str) -> Option<u32> {
        self.decl(full).map(|d| d.partitions.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_topic_and_its_dlq_is_declared() {
        let t = Topics::new("x.").unwrap();
        let names: Vec<String> = t.declared().into_iter().map(|d| d.name).collect();
        for topic in Topic::ALL {
            assert!(names.contains(&t.name(topic)), "{topic:?}");
        }
        assert!(names.contains(&t.dlq(Topic::TradeReported)));
        assert!(names.contains(&t.dlq(Topic::Notify)));
        assert_eq!(t.partitions("x.akm.trade"), Some(8));
        // the DLQs with personal data keep it 30 days; the others as declared
        let capped = t.clone().cap_personal_dlq(30);
        let kept = |n: &str| capped.decl(n).unwrap().retention_ms;
        assert_eq!(kept("x.akm.notify.dlq"), 30 * 86_400_000);
        assert_eq!(kept("x.akm.trade.reported.dlq"), 30 * 86_400_000);
        assert_eq!(
            kept("x.akm.transcode.request.dlq"),
            t.decl("x.akm.transcode.request.dlq").unwrap().retention_ms
        );
        assert_eq!(
            t.partitions("akm.trade"),
            None,
            "unprefixed is another deployment"
        );
        assert_eq!(t.partitions("x.akm.nope"), None);
        // groups are per deployment, like topics
        assert_eq!(t.group("akm-notifier"), "x.akm-notifier");
        assert_ne!(Topics::new("y.").unwrap().group("g"), t.group("g"));
        for d in t.declared() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&d.schema);
            assert!(
                path.exists(),
                "{} names missing schema {}",
                d.name,
                d.schema
            );
        }
    }

    /// The directory is the list: every file in topics/ is loaded, under the
    /// name its file carries.
    #[test]
    fn every_file_in_the_topics_directory_is_loaded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topics");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .map(|n| n.trim_end_matches(".toml").to_string())
            .collect();
        on_disk.sort();
        let mut loaded: Vec<String> = Topics::new("")
            .unwrap()
            .declared()
            .into_iter()
            .map(|d| d.name)
            .collect();
        loaded.sort();
        assert_eq!(loaded, on_disk);
    }
}
