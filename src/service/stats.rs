//! The statistics (统计考核): what a node writes for them (how each
//! transcode it answered went, as a `TranscodeAnswered` through its
//! outbox) and what it answers from them (`GET /admin/v1/stats`). The
//! counting itself is the stats consumer's (`workers/stats.rs`).

use std::sync::Arc;

use tokio::sync::Notify;

use super::decode::CodeQuery;
use super::outbox;
use super::trade::ACCEPTANCE;
use super::ServiceError;
use crate::bus::{channel, Topics};
use crate::clock::SharedClock;
use crate::domain::{CityPrefix, Day, ParseError};
use crate::events::TranscodeAnswered;
use crate::store::{StatsRow, Store};

/// The longest span one stats query may cover.
pub const MAX_DAYS: i64 = 366;

/// Writes how each transcode of this node was answered.
#[derive(Clone, Debug)]
pub struct Outcomes {
    pub store: Store,
    pub topics: Topics,
    pub relay: Arc<Notify>,
    pub clock: SharedClock,
    /// `province` or `city-<cityNo>`.
    pub node_id: String,
}

impl Outcomes {
    /// Queue the outcome of the transcode `q` (answered `err_code`) for
    /// the statistics. Never fails the request: a failure is logged.
    pub fn answered(&self, q: &CodeQuery, err_code: &str, trace: &str) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let event = TranscodeAnswered {
            id: id.clone(),
            trace_id: trace.to_string(),
            answered_at: self.clock.now_ms(),
            node: self.node_id.clone(),
            city_no: q.city.to_string(),
            target_type: q.target.to_string(),
            scene_code: q.scene.map(|s| s.to_string()).unwrap_or_default(),
            err_code: err_code.to_string(),
        };
        let queued = channel::message(&self.topics, &event)
            .map_err(ServiceError::from)
            .and_then(|m| {
                // the id as the acceptance: a restarted relay does not
                // publish it twice (workers/relay.rs)
                let m = m.header(ACCEPTANCE, id);
                Ok(self.store.outbox_put(&outbox::record(m))?)
            });
        match queued {
            Ok(_) => self.relay.notify_one(),
            Err(e) => {
                tracing::error!(error = %super::chain(&e), "transcode outcome not queued for the statistics")
            }
        }
    }
}

/// The days and cities a stats query asks for.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub from: Day,
    pub to: Day,
    pub city: Option<CityPrefix>,
}

impl StatsQuery {
    /// Parse the query's `from`, `to` (`YYYYMMDD`, both required, at most
    /// [`MAX_DAYS`] apart) and `cityNo` (a prefix, optional).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        city: Option<&str>,
    ) -> Result<Self, ParseError> {
        let day = |v: Option<&str>, field| match v.filter(|v| !v.is_empty()) {
            Some(v) => Day::parse(v, field),
            None => Err(ParseError::missing(field)),
        };
        let (from, to) = (day(from, "from")?, day(to, "to")?);
        let span = from.days_to(to);
        if span < 1 {
            return Err(ParseError::malformed("to", "不能早于from"));
        }
        if span > MAX_DAYS {
            return Err(ParseError::malformed(
                "to",
                format!("查询跨度不能超过{MAX_DAYS}天"),
            ));
        }
        let city = match city.filter(|c| !c.is_empty()) {
            Some(c) => Some(CityPrefix::parse(c, "cityNo")?),
            None => None,
        };
        Ok(StatsQuery { from, to, city })
    }
}

/// The counters a query asks for.
pub fn query(store: &Store, q: &StatsQuery) -> Result<Vec<StatsRow>, ServiceError> {
    Ok(store.stats(q.from, q.to, q.city.as_ref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_the_field_it_refuses() {
        let field = |from, to, city| StatsQuery::parse(from, to, city).unwrap_err().field;
        assert_eq!(field(None, Some("20261129"), None), "from");
        assert_eq!(field(Some("20261129"), None, None), "to");
        assert_eq!(field(Some("2026-11-29"), Some("20261129"), None), "from");
        assert_eq!(field(Some("20261129"), Some("20261128"), None), "to");
        assert_eq!(field(Some("20250101"), Some("20261129"), None), "to");
        assert_eq!(
            field(Some("20261129"), Some("20261129"), Some("35")),
            "cityNo"
        );
        assert_eq!(
            field(Some("20261129"), Some("20261129"), Some("34x")),
            "cityNo"
        );
        let q = StatsQuery::parse(Some("20261101"), Some("20261130"), Some("3401")).unwrap();
        assert_eq!(
            (q.from.to_string(), q.to.to_string()),
            ("20261101".into(), "20261130".into())
        );
        assert!(q.city.is_some_and(|c| c.covers("340104000000")));
    }
}
