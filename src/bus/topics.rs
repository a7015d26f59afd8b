//! Topic declarations (`topics/*.toml`, compiled in) and the deployment's
//! topic names (`AKM_TOPIC_PREFIX` + base name).

use serde::Deserialize;

/// One declared topic, as in its `topics/<name>.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TopicDecl {
    pub name: String,
    pub partitions: u32,
    pub replication: u16,
    pub retention_ms: i64,
    pub key: String,
    pub schema: String,
}

const FILES: &[&str] = &[
    include_str!("../../topics/akm.transcode.request.toml"),
    include_str!("../../topics/akm.transcode.reply.toml"),
    include_str!("../../topics/akm.trade.reported.toml"),
    include_str!("../../topics/akm.trade.toml"),
    include_str!("../../topics/akm.notify.toml"),
    include_str!("../../topics/akm.trade.reported.dlq.toml"),
    include_str!("../../topics/akm.notify.dlq.toml"),
    include_str!("../../topics/akm.transcode.request.dlq.toml"),
];

/// The topics of the contract (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    TranscodeRequest,
    TranscodeReply,
    TradeReported,
    Trade,
    Notify,
}

impl Topic {
    pub fn base(self) -> &'static str {
        match self {
            Topic::TranscodeRequest => "akm.transcode.request",
            Topic::TranscodeReply => "akm.transcode.reply",
            Topic::TradeReported => "akm.trade.reported",
            Topic::Trade => "akm.trade",
            Topic::Notify => "akm.notify",
        }
    }
}

/// The topic names and declarations of one deployment.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
    decls: Vec<TopicDecl>,
}

impl Topics {
    /// Declarations from the compiled-in `topics/*.toml`, names prefixed.
    pub fn new(prefix: &str) -> Result<Self, toml::de::Error> {
        let decls = FILES
            .iter()
            .map(|f| toml::from_str(f))
            .collect::<Result<Vec<TopicDecl>, _>>()?;
        Ok(Topics {
            prefix: prefix.to_string(),
            decls,
        })
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

    /// Retention of a full topic name (7 days for an undeclared one).
    pub fn retention_ms(&self, full: &str) -> i64 {
        full.strip_prefix(&self.prefix)
            .and_then(|base| self.decls.iter().find(|d| d.name == base))
            .map_or(7 * 24 * 3600 * 1000, |d| d.retention_ms)
    }

    /// Partitions of a full topic name (1 for an undeclared one).
    pub fn partitions(&self, full: &str) -> u32 {
        full.strip_prefix(&self.prefix)
            .and_then(|base| self.decls.iter().find(|d| d.name == base))
            .map_or(1, |d| d.partitions.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_topic_and_its_dlq_is_declared() {
        let t = Topics::new("x.").unwrap();
        let names: Vec<String> = t.declared().into_iter().map(|d| d.name).collect();
        for topic in [
            Topic::TranscodeRequest,
            Topic::TranscodeReply,
            Topic::TradeReported,
            Topic::Trade,
            Topic::Notify,
        ] {
            assert!(names.contains(&t.name(topic)), "{topic:?}");
        }
        assert!(names.contains(&t.dlq(Topic::TradeReported)));
        assert_eq!(t.partitions("x.akm.trade"), 8);
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
}
