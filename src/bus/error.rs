//! The bus's error: keeps its source and says whether a retry may succeed.

use crate::durability::DurabilityError;

/// A failure of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The embedded log's storage failed (I/O): retriable.
    #[error("bus storage failed")]
    Storage(#[from] DurabilityError),
    /// sled failed on a log operation: retriable.
    #[error("bus storage failed")]
    Sled(#[from] sled::Error),
    /// The topic is not declared in `topics/` for this deployment.
    #[error("topic {0} is not declared")]
    UnknownTopic(String),
    /// Declared topics are missing on the cluster (run `akm topics apply`).
    #[error("missing on the Kafka cluster (run `akm topics apply`): {0}")]
    MissingTopics(String),
    /// The partition does not exist.
    #[error("partition {partition} of {topic} does not exist")]
    NoPartition { topic: String, partition: u32 },
    /// A stored record does not decode.
    #[error("record {0} is corrupt")]
    Corrupt(String),
    /// An event did not encode (a defect, never transient).
    #[error("event encoding failed")]
    Encode(#[from] crate::events::EventError),
    /// Kafka (rdkafka) failed during `op`.
    #[error("kafka {op} failed")]
    Kafka {
        op: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A blocking client task did not finish.
    #[error("kafka {op} task failed")]
    Task {
        op: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl BusError {
    pub(crate) fn kafka(op: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        move |source| BusError::Kafka { op, source }
    }

    /// Whether the same call may succeed later (storage hiccup, broker
    /// down, timeout). Not retriable: an undeclared topic, a missing
    /// partition, a corrupt record, an encoding defect, a client that could
    /// not be configured, or a record the broker will never take.
    pub fn is_retriable(&self) -> bool {
        use rdkafka::error::KafkaError as K;
        use rdkafka::types::RDKafkaErrorCode as C;
        match self {
            BusError::Storage(_) | BusError::Sled(_) | BusError::Task { .. } => true,
            BusError::UnknownTopic(_)
            | BusError::MissingTopics(_)
            | BusError::NoPartition { .. }
            | BusError::Corrupt(_)
            | BusError::Encode(_) => false,
            BusError::Kafka { source, .. } => match source {
                K::ClientConfig(..) | K::ClientCreation(_) | K::Subscription(_) => false,
                other => !matches!(
                    other.rdkafka_error_code(),
                    Some(
                        C::MessageSizeTooLarge
                            | C::InvalidMessage
                            | C::InvalidMessageSize
                            | C::TopicAuthorizationFailed
                            | C::ClusterAuthorizationFailed
                            | C::InvalidArgument
                            | C::UnknownTopic
                    )
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_is_said_per_cause_and_the_source_is_kept() {
        use std::error::Error as _;
        assert!(!BusError::UnknownTopic("x".into()).is_retriable());
        let e = BusError::Kafka {
            op: "publish",
            source: rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::MessageTimedOut,
            ),
        };
        assert!(e.is_retriable());
        assert!(e.source().is_some());
        let e = BusError::Kafka {
            op: "publish",
            source: rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge,
            ),
        };
        assert!(!e.is_retriable());
    }
}
