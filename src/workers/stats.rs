//! The stats consumer: every instance counts, in groups of its own
//! (`akm-stats-transcodes-<instance>`, `akm-stats-trades-<instance>`),
//! the transcodes its node answered (`akm.transcode.outcome`, each record
//! a tally of `count` answers) and, at the
//! province, the trades on `akm.trade`, per day (UTC+8), cityNo,
//! targetType, sceneCode and outcome. Each count and the record's offset
//! are written in one transaction (`store/stats.rs`), so a record
//! delivered again is not counted again; so each instance holds all of
//! its node's counts and any instance answers the stats query.
//!
//! Each consumer takes a window of [`WINDOW`] records a partition, so the
//! counts of one window share a transaction: a transaction seals sled's
//! log buffer, and one per trade cost about a sixth of the callbacks'
//! rate (BENCHMARKS.md, sixth session). A partition's counts still go in
//! offset order: the consumer notes each record it takes, in offset
//! order, and a record is counted past the stored offset only when no
//! earlier record of its partition is still in hand ([`Count::NotYet`]
//! otherwise, and it is tried again shortly).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Record};
use crate::domain::Day;
use crate::events::{TradeRecorded, TranscodeAnswered};
use crate::store::{Count, StatKind, StatsKey, Store};
use crate::workers::{consume_window, Flow, WorkerError};

/// Records of a partition counted at once.
pub const WINDOW: usize = 64;

/// How long a record whose predecessor is still being counted waits.
const NOT_YET_WAIT: Duration = Duration::from_millis(5);

/// The offsets held, by topic and partition.
type ByPartition = HashMap<(String, u32), BTreeSet<u64>>;

/// The records a consumer holds, by topic and partition: taken, not yet
/// counted (or skipped).
#[derive(Debug, Clone, Default)]
pub struct Held(Arc<Mutex<ByPartition>>);

impl Held {
    fn with<T>(&self, f: impl FnOnce(&mut ByPartition) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Note a record as taken (in offset order: the consume loop starts a
    /// partition's records in order).
    fn take(&self, rec: &Record) {
        self.with(|m| {
            m.entry((rec.topic.clone(), rec.partition))
                .or_default()
                .insert(rec.offset);
        });
    }

    /// Whether no earlier record of `rec`'s partition is held.
    fn lowest(&self, rec: &Record) -> bool {
        self.with(|m| {
            m.get(&(rec.topic.clone(), rec.partition))
                .and_then(|held| held.first())
                .is_none_or(|first| *first >= rec.offset)
        })
    }

    /// `rec` is done with.
    fn release(&self, rec: &Record) {
        self.with(|m| {
            if let Some(held) = m.get_mut(&(rec.topic.clone(), rec.partition)) {
                held.remove(&rec.offset);
            }
        });
    }
}

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
    /// The records in hand, so each partition counts in offset order.
    pub held: Held,
}

/// Count the node's transcode outcomes until cancelled.
pub async fn transcodes(c: Counter) {
    let group = format!("akm-stats-transcodes-{}", c.instance);
    let (bus, cancel) = (c.bus.clone(), c.cancel.clone());
    consume_window::<TranscodeAnswered, _, _>(bus, cancel, &group, None, WINDOW, |ev, rec, _| {
        // noted when taken, in offset order
        c.held.take(&rec);
        let c = c.clone();
        async move { c.transcode(ev, &rec).await }
    })
    .await
}

/// Count the trades on `akm.trade` until cancelled (province).
pub async fn trades(c: Counter) {
    let group = format!("akm-stats-trades-{}", c.instance);
    let (bus, cancel) = (c.bus.clone(), c.cancel.clone());
    consume_window::<TradeRecorded, _, _>(bus, cancel, &group, None, WINDOW, |ev, rec, _| {
        c.held.take(&rec);
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
            self.held.release(rec);
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
                self.held.release(rec);
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
    /// fails the handler: the consume loop tries the record again later,
    /// and it stays held meanwhile, so nothing after it is counted first.
    async fn count(&self, rec: &Record, key: &StatsKey, n: u64) -> Result<Flow, WorkerError> {
        let lowest = self.held.lowest(rec);
        match self
            .store
            .count_once(&rec.topic, rec.partition, rec.offset, lowest, key, n)
            .await?
        {
            Count::Added | Count::Before => {
                self.held.release(rec);
                Ok(Flow::Commit)
            }
            Count::NotYet => Ok(Flow::RetryAfter(NOT_YET_WAIT)),
        }
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
            held: Held::default(),
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partitions_trades_are_counted_once_each_in_shared_transactions() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = Store::for_tests(d1.path());
        let durable = Durable::open(d2.path()).unwrap();
        let bus =
            Bus::embedded(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        // one resident: every trade on one partition, as in the benchmark
        const N: u64 = 400;
        for i in 0..N {
            bus.send(&TradeRecorded {
                trace_id: format!("t{i}"),
                recorded_at: 1_795_968_000_000,
                subject_id: "s".into(),
                city_no: "340100000000".into(),
                target_type: "3401002".into(),
                target_name: String::new(),
                target_ref: String::new(),
                trade_time: "20261130120000".into(),
                trade_no: format!("T-{i}"),
                msg: String::new(),
                trade_state: "1".into(),
            })
            .await
            .unwrap();
        }
        let before = store.transactions();
        let c = Counter {
            bus,
            store: store.clone(),
            node_id: "province".into(),
            instance: "i".into(),
            cancel: CancellationToken::new(),
            held: Held::default(),
        };
        let cancel = c.cancel.clone();
        let task = tokio::spawn(trades(c.clone()));
        let day = Day::parse("20261130", "day").unwrap();
        let counted = || {
            store
                .stats(day, day, None)
                .unwrap()
                .iter()
                .map(|r| r.count)
                .sum::<u64>()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while counted() < N && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(counted(), N, "each trade once");
        let transactions = store.transactions() - before;
        assert!(
            transactions <= N / 4,
            "{transactions} transactions for {N} trades of one partition"
        );
        assert!(
            c.held.0.lock().unwrap().values().all(BTreeSet::is_empty),
            "nothing left in hand"
        );
    }
}
