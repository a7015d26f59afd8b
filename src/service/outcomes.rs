//! What a node writes for the statistics (统计考核): how its transcodes
//! were answered. Each answer is tallied in memory by day (UTC+8), cityNo,
//! targetType, sceneCode and errCode; every `AKM_STATS_FLUSH_MS` the
//! tallies go into the outbox as one `TranscodeAnswered` each, with its
//! `count` (so a transcode costs a map update, not an outbox record, a
//! publish and a count). The counting is the stats consumer's
//! (`workers/stats.rs`). A tally is written once more at shutdown; a
//! crash loses what was tallied since the last write, as an outbox record
//! not yet flushed would be lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::decode::CodeQuery;
use super::outbox;
use super::trade::ACCEPTANCE;
use super::ServiceError;
use crate::bus::{channel, Topics};
use crate::clock::SharedClock;
use crate::domain::{CityNo, Day, SceneCode, TargetType};
use crate::events::TranscodeAnswered;
use crate::store::Store;

/// The answers one tally counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TallyKey {
    day: Day,
    city: CityNo,
    target: TargetType,
    scene: Option<SceneCode>,
    err_code: String,
}

/// How many answers, and the last one's time and trace.
#[derive(Debug, Clone)]
struct Tallied {
    count: i64,
    last_at: i64,
    trace: String,
}

type Tallies = HashMap<TallyKey, Tallied>;

/// Tallies how each transcode of this node was answered, and writes the
/// tallies to the outbox.
#[derive(Clone, Debug)]
pub struct Outcomes {
    pub store: Store,
    pub topics: Topics,
    pub relay: Arc<Notify>,
    pub clock: SharedClock,
    /// `province` or `city-<cityNo>`.
    pub node_id: String,
    tallies: Arc<Mutex<Tallies>>,
}

impl Outcomes {
    pub fn new(
        store: Store,
        topics: Topics,
        relay: Arc<Notify>,
        clock: SharedClock,
        node_id: String,
    ) -> Self {
        Outcomes {
            store,
            topics,
            relay,
            clock,
            node_id,
            tallies: Arc::default(),
        }
    }

    fn tallies(&self) -> std::sync::MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tally the answer `err_code` to the transcode `q`. Never fails the
    /// request.
    pub fn answered(&self, q: &CodeQuery, err_code: &str, trace: String) {
        let at = self.clock.now_ms();
        let key = TallyKey {
            day: Day::of_ms(at),
            city: q.city.clone(),
            target: q.target.clone(),
            scene: q.scene,
            err_code: err_code.to_string(),
        };
        let mut tallies = self.tallies();
        let t = tallies.entry(key).or_insert_with(|| Tallied {
            count: 0,
            last_at: at,
            trace: String::new(),
        });
        t.count += 1;
        t.last_at = at;
        t.trace = trace;
    }

    /// Write every tally to the outbox (one `TranscodeAnswered` each) and
    /// wake the relay. A tally the outbox refuses (a full disk) is kept
    /// for the next write.
    pub fn write(&self) {
        let taken = std::mem::take(&mut *self.tallies());
        if taken.is_empty() {
            return;
        }
        let mut kept = Tallies::new();
        for (key, t) in taken {
            if let Err(e) = self.put(&key, &t) {
                tracing::warn!(error = %super::chain(&e), count = t.count, "transcode outcomes not queued for the statistics; kept for the next write");
                kept.insert(key, t);
            }
        }
        self.relay.notify_one();
        if !kept.is_empty() {
            let mut tallies = self.tallies();
            for (key, t) in kept {
                let now = tallies.entry(key).or_insert_with(|| Tallied {
                    count: 0,
                    ..t.clone()
                });
                now.count += t.count;
            }
        }
    }

    fn put(&self, key: &TallyKey, t: &Tallied) -> Result<u64, ServiceError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let event = TranscodeAnswered {
            id: id.clone(),
            trace_id: t.trace.clone(),
            answered_at: t.last_at,
            node: self.node_id.clone(),
            city_no: key.city.to_string(),
            target_type: key.target.to_string(),
            scene_code: key.scene.map(|s| s.to_string()).unwrap_or_default(),
            err_code: key.err_code.clone(),
            count: t.count,
        };
        // the id as the acceptance: a restarted relay does not publish it
        // twice (workers/relay.rs)
        let m = channel::message(&self.topics, &event)?.header(ACCEPTANCE, id);
        Ok(self.store.outbox_put(&outbox::record(m))?)
    }

    /// Write the tallies every `every` until cancelled, then once more.
    pub async fn run(self, every: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => self.write(),
            }
        }
        self.write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::domain::QrToken;

    fn outcomes(dir: &std::path::Path, clock: SharedClock) -> Outcomes {
        Outcomes::new(
            Store::for_tests(dir),
            Topics::new("").unwrap(),
            Arc::new(Notify::new()),
            clock,
            "city-340100000000".into(),
        )
    }

    fn query(city: &str, scene: Option<&str>) -> CodeQuery {
        CodeQuery {
            city: CityNo::parse(city).unwrap(),
            token: QrToken::parse(&format!("akm:qrcode:{}", "ab".repeat(16))).unwrap(),
            target: TargetType::parse("3401002").unwrap(),
            scene: scene.map(|s| SceneCode::parse(s).unwrap()),
        }
    }

    fn written(o: &Outcomes) -> Vec<TranscodeAnswered> {
        let mut out: Vec<TranscodeAnswered> = o
            .store
            .outbox_batch(100)
            .unwrap()
            .into_iter()
            .map(|e| crate::events::decode(&e.record.payload).unwrap())
            .collect();
        out.sort_by(|a, b| (&a.err_code, a.count).cmp(&(&b.err_code, b.count)));
        out
    }

    #[tokio::test]
    async fn answers_alike_are_written_as_one_record_with_their_count() {
        let dir = tempfile::tempdir().unwrap();
        let o = outcomes(dir.path(), crate::clock::system());
        let q = query("340100000000", Some("01002"));
        for i in 0..5 {
            o.answered(&q, "200", format!("t{i}"));
        }
        o.answered(&q, "4003", "t5".into());
        o.answered(&query("340100000000", None), "200", "t6".into());
        assert!(written(&o).is_empty(), "nothing is written before a write");
        o.write();
        let w = written(&o);
        let got: Vec<_> = w
            .iter()
            .map(|e| (e.scene_code.as_str(), e.err_code.as_str(), e.count))
            .collect();
        assert_eq!(
            got,
            [("", "200", 1), ("01002", "200", 5), ("01002", "4003", 1)]
        );
        let five = &w[1];
        assert_eq!(five.trace_id, "t4", "the last answer's trace");
        assert_eq!(five.node, "city-340100000000");
        assert_ne!(w[0].id, w[1].id);
        // the tallies start again from zero
        o.write();
        assert_eq!(written(&o).len(), 3);
    }

    #[tokio::test]
    async fn answers_on_two_days_are_two_tallies() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::new();
        let o = outcomes(dir.path(), clock.clone());
        // to the last second of a day in China (UTC+8)
        let day_ms = 86_400_000;
        let into_day = (clock.now_ms() + 8 * 3_600_000).rem_euclid(day_ms);
        clock.advance_ms(day_ms - 1_000 - into_day);
        let q = query("340100000000", Some("01002"));
        o.answered(&q, "200", "a".into());
        clock.advance_ms(1_000);
        o.answered(&q, "200", "b".into());
        o.write();
        let days: Vec<_> = written(&o)
            .iter()
            .map(|e| (Day::of_ms(e.answered_at).to_string(), e.count))
            .collect();
        assert_eq!(days.len(), 2, "{days:?}");
        assert_ne!(days[0].0, days[1].0, "{days:?}");
        assert_eq!((days[0].1, days[1].1), (1, 1));
    }
}
