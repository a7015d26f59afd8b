//! The stats consumer: every instance counts, in groups of its own
//! (`akm-stats-transcodes-<instance>`, `akm-stats-trades-<instance>`),
//! the transcodes its node answered (`akm.transcode.outcome`, each record
//! a tally of `count` answers) and, at the
//! province, the trades on `akm.trade`, per day (UTC+8), cityNo,
//! targetType, sceneCode and outcome. Each count and the record's offset
//! are written in one transaction (`store/stats.rs`), so a record
//! delivered again is not counted again; so each instance holds all of
//! its node's counts and any instance answers the stats query.

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record};
use crate::domain::Day;
use crate::events::{TradeRecorded, TranscodeAnswered};
use crate::store::{StatKind, StatsKey, Store};
use crate::workers::{consume, Flow, WorkerError};

/// What the stats consumer needs.
#[derive(Debug, Clone)]
pub struct Counter {
    pub bus: Bus,
    pub store: Store,
    /// `province` or `city-<cityNo>`: the node whose transcodes count here.
    pub node_id: String,
    /// This instance's id (stable for its data directory).
    pub instance: String,
    pub cancel: CancellationToken,
}

/// Count the node's transcode outcomes until cancelled.
pub async fn transcodes(c: Counter) {
    let group = format!("akm-stats-transcodes-{}", c.instance);
    let (bus, cancel) = (c.bus.clone(), c.cancel.clone());
    consume::<TranscodeAnswered, _, _>(bus, cancel, &group, None, |ev, rec, _| {
        let c = c.clone();
        async move { c.transcode(ev, &rec).await }
    })
    .await
}

/// Count the trades on `akm.trade` until cancelled (province).
pub async fn trades(c: Counter) {
    let group = format!("akm-stats-trades-{}", c.instance);
    let (bus, cancel) = (c.bus.clone(), c.cancel.clone());
    consume::<TradeRecorded, _, _>(bus, cancel, &group, None, |ev, rec, _| {
        let c = c.clone();
        async move { c.trade(ev, &rec).await }
    })
    .await
}

impl Counter {
    /// Count one transcode outcome (another node's, on a shared cluster,
    /// is not this node's to count).
    pub async fn transcode(
        &self,
        ev: TranscodeAnswered,
        rec: &Record,
    ) -> Result<Flow, WorkerError> {
        if ev.node != self.node_id {
            return Ok(Flow::Commit);
        }
        let key = StatsKey {
            day: Day::of_ms(ev.answered_at),
            kind: StatKind::Transcode,
            city_no: ev.city_no,
            target_type: ev.target_type,
            scene_code: ev.scene_code,
            outcome: ev.err_code,
        };
        // a version-1 record stands for one answer; a count below 1 is not
        // an answer
        match u64::try_from(ev.count) {
            Ok(n) if n > 0 => self.count(rec, &key, n).await,
            _ => {
                tracing::warn!(topic = %rec.topic, offset = rec.offset, count = ev.count, "transcode outcome with no answers skipped");
                Ok(Flow::Commit)
            }
        }
    }

    /// Count one trade, by its tradeState, on the day it was accepted.
    pub async fn trade(&self, ev: TradeRecorded, rec: &Record) -> Result<Flow, WorkerError> {
        let key = StatsKey {
            day: Day::of_ms(ev.recorded_at),
            kind: StatKind::Trade,
            city_no: ev.city_no,
            target_type: ev.target_type,
            scene_code: String::new(),
            outcome: ev.trade_state,
        };
        self.count(rec, &key, 1).await
    }

    /// Add `n` to `key` for `rec`. A store that refuses (a full disk)
    /// fails the handler: the consume loop tries the record again later.
    async fn count(&self, rec: &Record, key: &StatsKey, n: u64) -> Result<Flow, WorkerError> {
        self.store
            .count_once(&rec.topic, rec.partition, rec.offset, key, n)
            .await?;
        Ok(Flow::Commit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Topics;
    use crate::durability::Durable;

    fn record(partition: u32, offset: u64) -> Record {
        Record {
            topic: "akm.transcode.outcome".into(),
            partition,
            offset,
            timestamp_ms: 0,
            key: Vec::new(),
            headers: Vec::new(),
            payload: Vec::new(),
            assignment: 1,
        }
    }

    #[tokio::test]
    async fn a_record_delivered_again_is_not_counted_again() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = Store::for_tests(d1.path());
        let durable = Durable::open(d2.path()).unwrap();
        let bus =
            Bus::embedded(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        let c = Counter {
            bus,
            store: store.clone(),
            node_id: "city-340100000000".into(),
            instance: "i".into(),
            cancel: CancellationToken::new(),
        };
        // 2026-11-29T16:00Z: the 30th in China
        let ev = TranscodeAnswered {
            id: "a".into(),
            trace_id: "t".into(),
            answered_at: 1_795_968_000_000,
            node: c.node_id.clone(),
            city_no: "340100000000".into(),
            target_type: "3401002".into(),
            scene_code: "01002".into(),
            err_code: "200".into(),
            count: 3,
        };
        for (p, o) in [(0, 7), (0, 7), (1, 0), (0, 7), (1, 0)] {
            assert_eq!(
                c.transcode(ev.clone(), &record(p, o)).await.unwrap(),
                Flow::Commit
            );
        }
        // another node's outcome (a shared cluster) is not this node's
        let other = TranscodeAnswered {
            node: "province".into(),
            ..ev.clone()
        };
        c.transcode(other, &record(0, 8)).await.unwrap();
        let day = Day::parse("20261130", "day").unwrap();
        let rows = store.stats(day, day, None).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (
                rows[0].kind,
                rows[0].scene_code.as_str(),
                rows[0].outcome.as_str(),
                rows[0].count
            ),
            ("transcode", "01002", "200", 6)
        );
    }
}
