//! The node's Prometheus metrics (`GET /metrics`, OpenMetrics text). One
//! [`Metrics`] per node, with its own registry: role `all` runs two nodes
//! in one process, so nothing here is global. What happens is counted
//! where it happens (the edge, the outbound clients, the consume loop, the
//! flusher); what is a level (pending transcodes, outbox depth and age,
//! consumer lag) is set from its owner when scraped ([`Levels`]).
//!
//! Labels never carry personal data: services, errCodes, parties, topics,
//! groups, partitions, and the app ids of refused callers, and only of
//! apps the node knows (any other is `unknown`, so a stranger cannot grow
//! the label set).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    err_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartyLabels {
    party: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    app: String,
    err_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    topic: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
    partition: u32,
}

/// Seconds, from 0.5 ms to about 16 s.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// An outbound party (`province`, `card_system`, `push_gateway`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Province,
    CardSystem,
    PushGateway,
}

impl Party {
    fn as_str(self) -> &'static str {
        match self {
            Party::Province => "province",
            Party::CardSystem => "card_system",
            Party::PushGateway => "push_gateway",
        }
    }
}

/// What a scrape reads from the node's owners of levels.
#[derive(Debug, Clone, Default)]
pub struct Levels {
    /// Transcodes waiting for their reply.
    pub pending_transcodes: i64,
    /// Records in the outbox, and the age of the oldest.
    pub outbox_depth: i64,
    pub outbox_oldest: Duration,
    /// `(group, topic, partition, lag)` of this node's group members.
    pub lag: Vec<(String, String, u32, i64)>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms<ServiceLabel>,
    outbound: Histograms<PartyLabels>,
    refusals: Family<RefusalLabels, Counter>,
    retries: Family<TopicLabel, Counter>,
    dead_letters: Family<TopicLabel, Counter>,
    answers: Family<AnswerLabels, Counter>,
    flush: Histogram,
    pending: Gauge,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    lag: Family<LagLabels, Gauge>,
}

/// One node's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("akm");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by service and errCode",
            requests.clone(),
        );
        let latency = Histograms::<ServiceLabel>::new_with_constructor(seconds as fn() -> _);
        registry.register_with_unit(
            "request_duration",
            "Time to answer a request, by service",
            Unit::Seconds,
            latency.clone(),
        );
        let outbound = Histograms::<PartyLabels>::new_with_constructor(seconds as fn() -> _);
        registry.register_with_unit(
            "outbound_duration",
            "Time of calls to other parties, by party and outcome (ok, refused, failed)",
            Unit::Seconds,
            outbound.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests refused for their signature, time window, nonce or rate limit, by app",
            refusals.clone(),
        );
        let retries = Family::<TopicLabel, Counter>::default();
        registry.register(
            "retries",
            "Records whose handler asked to be tried again later, by topic",
            retries.clone(),
        );
        let dead_letters = Family::<TopicLabel, Counter>::default();
        registry.register(
            "dead_letters",
            "Records sent to their topic's DLQ, by topic",
            dead_letters.clone(),
        );
        let answers = Family::<AnswerLabels, Counter>::default();
        registry.register(
            "answers",
            "Answers of this node's workers to request-reply requests, by reply topic and route (direct: to a waiter in this instance; topic: published for another instance)",
            answers.clone(),
        );
        let flush = seconds();
        registry.register_with_unit(
            "flush_duration",
            "Time of a group-commit flush of the node's store",
            Unit::Seconds,
            flush.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "pending_transcodes",
            "Transcodes waiting for their reply",
            pending.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Records in the outbox, not yet on the bus",
            outbox_depth.clone(),
        );
        let outbox_oldest = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "outbox_oldest_age",
            "Age of the oldest record in the outbox",
            Unit::Seconds,
            outbox_oldest.clone(),
        );
        let lag = Family::<LagLabels, Gauge>::default();
        registry.register(
            "consumer_lag",
            "Records on a partition not yet done by this node's group member",
            lag.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            requests,
            latency,
            outbound,
            refusals,
            retries,
            dead_letters,
            answers,
            flush,
            pending,
            outbox_depth,
            outbox_oldest,
            lag,
        }))
    }

    /// A request to `service` was answered `err_code` after `took`.
    pub fn request(&self, service: &str, err_code: &str, took: Duration) {
        let service = service.to_string();
        self.0
            .requests
            .get_or_create(&RequestLabels {
                service: service.clone(),
                err_code: err_code.to_string(),
            })
            .inc();
        self.0
            .latency
            .get_or_create(&ServiceLabel { service })
            .observe(took.as_secs_f64());
    }

    /// A refused request (4010, 4011, 4029) of `app` (`unknown` unless the
    /// node knows the app).
    pub fn refusal(&self, app: &str, err_code: &str) {
        self.0
            .refusals
            .get_or_create(&RefusalLabels {
                app: app.to_string(),
                err_code: err_code.to_string(),
            })
            .inc();
    }

    /// A call to `party` ended `outcome` after `took`.
    pub fn outbound(&self, party: Party, outcome: &str, took: Duration) {
        self.0
            .outbound
            .get_or_create(&PartyLabels {
                party: party.as_str().to_string(),
                outcome: outcome.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A record of `topic` will be tried again later.
    pub fn retry(&self, topic: &str) {
        self.0
            .retries
            .get_or_create(&TopicLabel {
                topic: topic.to_string(),
            })
            .inc();
    }

    /// A worker answered a request meant for reply topic `topic` by
    /// `route` (`direct` or `topic`).
    pub fn answer(&self, topic: &str, route: &str) {
        self.0
            .answers
            .get_or_create(&AnswerLabels {
                topic: topic.to_string(),
                route: route.to_string(),
            })
            .inc();
    }

    /// A record of `topic` went to its DLQ.
    pub fn dead_letter(&self, topic: &str) {
        self.0
            .dead_letters
            .get_or_create(&TopicLabel {
                topic: topic.to_string(),
            })
            .inc();
    }

    /// A flush of the store took `took`.
    pub fn flushed(&self, took: Duration) {
        self.0.flush.observe(took.as_secs_f64());
    }

    /// The levels read at a scrape.
    pub fn set_levels(&self, l: &Levels) {
        self.0.pending.set(l.pending_transcodes);
        self.0.outbox_depth.set(l.outbox_depth);
        self.0.outbox_oldest.set(l.outbox_oldest.as_secs_f64());
        // a partition this node no longer holds is not lagging here
        self.0.lag.clear();
        for (group, topic, partition, lag) in &l.lag {
            self.0
                .lag
                .get_or_create(&LagLabels {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                })
                .set(*lag);
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // writing to a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_levels_appear_in_the_text() {
        let m = Metrics::new();
        m.request("callback", "200", Duration::from_millis(3));
        m.request("callback", "4007", Duration::from_millis(3));
        m.request("callback", "4007", Duration::from_millis(3));
        m.refusal("card-1", "4010");
        m.outbound(Party::Province, "ok", Duration::from_millis(12));
        m.retry("akm.notify");
        m.dead_letter("akm.trade");
        m.flushed(Duration::from_millis(2));
        m.set_levels(&Levels {
            pending_transcodes: 3,
            outbox_depth: 7,
            outbox_oldest: Duration::from_millis(1500),
            lag: vec![("akm-notifier".into(), "akm.notify".into(), 2, 41)],
        });
        let text = m.encode();
        for want in [
            r#"akm_requests_total{service="callback",err_code="4007"} 2"#,
            r#"akm_requests_total{service="callback",err_code="200"} 1"#,
            r#"akm_request_duration_seconds_count{service="callback"} 3"#,
            r#"akm_refusals_total{app="card-1",err_code="4010"} 1"#,
            r#"akm_outbound_duration_seconds_count{party="province",outcome="ok"} 1"#,
            r#"akm_retries_total{topic="akm.notify"} 1"#,
            r#"akm_dead_letters_total{topic="akm.trade"} 1"#,
            "akm_flush_duration_seconds_count 1",
            "akm_pending_transcodes 3",
            "akm_outbox_depth 7",
            "akm_outbox_oldest_age_seconds 1.5",
            r#"akm_consumer_lag{group="akm-notifier",topic="akm.notify",partition="2"} 41"#,
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        // a partition given up is not reported any more
        m.set_levels(&Levels::default());
        assert!(!m.encode().contains("akm_consumer_lag{"));
    }
}
