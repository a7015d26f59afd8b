//! The statistics (统计考核): per-day counts by kind (transcode or trade),
//! cityNo, targetType, sceneCode and outcome; and, per consumed topic
//! partition, the next offset to count. Both change in one transaction, so
//! a record delivered again (a consumer restarted before it committed) is
//! not counted twice.

use super::group::{Done, Trees, Wait, Write};
use super::{Store, StoreError};
use crate::domain::{CityPrefix, Day};
use serde::Serialize;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// Transcodes, by the errCode they were answered with.
    Transcode,
    /// Trades (callbacks the province accepted), by tradeState.
    Trade,
}

impl StatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatKind::Transcode => "transcode",
            StatKind::Trade => "trade",
        }
    }

    fn byte(self) -> u8 {
        match self {
            StatKind::Transcode => b't',
            StatKind::Trade => b'r',
        }
    }

    fn of_byte(b: u8) -> Option<Self> {
        match b {
            b't' => Some(StatKind::Transcode),
            b'r' => Some(StatKind::Trade),
            _ => None,
        }
    }
}

/// One counter's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsKey {
    pub day: Day,
    pub kind: StatKind,
    pub city_no: String,
    pub target_type: String,
    pub scene_code: String,
    pub outcome: String,
}

/// One counter, as the stats API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsRow {
    pub day: String,
    pub kind: &'static str,
    pub city_no: String,
    pub target_type: String,
    pub scene_code: String,
    pub outcome: String,
    pub count: u64,
}

/// A part of a key: no separator inside, at most 32 characters (a
/// tradeState is the card system's text).
fn part(s: &str) -> String {
    s.chars().filter(|c| *c != '\0').take(32).collect()
}

impl StatsKey {
    fn bytes(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(64);
        k.extend_from_slice(&self.day.number().to_be_bytes());
        k.push(self.kind.byte());
        for (i, p) in [
            &self.city_no,
            &self.target_type,
            &self.scene_code,
            &self.outcome,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                k.push(0);
            }
            k.extend_from_slice(part(p).as_bytes());
        }
        k
    }

    fn of_bytes(k: &[u8]) -> Option<Self> {
        let day = Day::from_number(u32::from_be_bytes(k.get(..4)?.try_into().ok()?))?;
        let kind = StatKind::of_byte(*k.get(4)?)?;
        let mut parts = k.get(5..)?.split(|b| *b == 0).map(String::from_utf8_lossy);
        let mut next = || parts.next().map(|p| p.into_owned());
        let key = StatsKey {
            day,
            kind,
            city_no: next()?,
            target_type: next()?,
            scene_code: next()?,
            outcome: next()?,
        };
        next().is_none().then_some(key)
    }
}

fn offset_key(topic: &str, partition: u32) -> Vec<u8> {
    let mut k = topic.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn number(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| v.as_ref().try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// What became of a count ([`Store::count_once`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Added, and its offset is the partition's newest counted.
    Added,
    /// That offset was counted before: nothing added.
    Before,
    /// An earlier record of the partition is still to be counted: nothing
    /// added; try again once it is.
    NotYet,
}

impl Store {
    /// Add `n` to `key` once for the record at `offset` of
    /// `topic`/`partition`. Each partition's counts go in offset order: the
    /// store keeps the offset after the newest counted, and a record below
    /// it was counted before. A record above it is counted only when
    /// `lowest` says no earlier record of the partition is in the caller's
    /// hands (the ones between were trimmed, or this is the first the
    /// group reads); otherwise it is [`Count::NotYet`].
    ///
    /// Writes from concurrent callers share one transaction (`group.rs`),
    /// so a consumer with a window of records costs one transaction per
    /// batch, not one per record.
    pub async fn count_once(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        lowest: bool,
        key: &StatsKey,
        n: u64,
    ) -> Result<Count, StoreError> {
        let (at, counter) = (offset_key(topic, partition), key.bytes());
        let write: Write = Box::new(move |t: &Trees<'_>| {
            let next = t.stats_offsets.get(&at)?.map(|v| number(Some(v)));
            if next.is_some_and(|next| next > offset) {
                return Ok(Done::Counted(Count::Before));
            }
            if next != Some(offset) && !lowest {
                return Ok(Done::Counted(Count::NotYet));
            }
            let sum = number(t.stats.get(&counter)?).saturating_add(n);
            t.stats.insert(counter.as_slice(), &sum.to_be_bytes())?;
            t.stats_offsets
                .insert(at.as_slice(), &(offset + 1).to_be_bytes())?;
            Ok(Done::Counted(Count::Added))
        });
        match self.noted(self.group.apply(write, Vec::new(), Wait::Committed).await)? {
            Done::Counted(counted) => Ok(counted),
            Done::Accepted(..) => Err(StoreError::Transaction("a trade answered a count".into())),
        }
    }

    /// The counters of the days `from`..=`to` whose cityNo starts with
    /// `city` (all when `None`), by day, then kind, then key.
    pub fn stats(
        &self,
        from: Day,
        to: Day,
        city: Option<&CityPrefix>,
    ) -> Result<Vec<StatsRow>, StoreError> {
        let (lo, hi) = (from.number().to_be_bytes(), (to.number() + 1).to_be_bytes());
        let mut rows = Vec::new();
        for item in self.stats.range(lo..hi) {
            let (k, v) = item?;
            let Some(key) = StatsKey::of_bytes(&k) else {
                tracing::error!("corrupt statistics key skipped");
                continue;
            };
            if city.is_some_and(|c| !c.covers(&key.city_no)) {
                continue;
            }
            rows.push(StatsRow {
                day: key.day.to_string(),
                kind: key.kind.as_str(),
                city_no: key.city_no,
                target_type: key.target_type,
                scene_code: key.scene_code,
                outcome: key.outcome,
                count: number(Some(v)),
            });
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(day: &str, kind: StatKind, city: &str, outcome: &str) -> StatsKey {
        StatsKey {
            day: Day::parse(day, "day").unwrap(),
            kind,
            city_no: city.into(),
            target_type: "3401002".into(),
            scene_code: String::new(),
            outcome: outcome.into(),
        }
    }

    #[tokio::test]
    async fn a_record_counts_once_however_often_it_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::for_tests(dir.path());
        let k = key("20261129", StatKind::Transcode, "340100000000", "200");
        let count = |p: u32, o: u64, lowest: bool, n: u64| {
            let (store, k) = (store.clone(), k.clone());
            async move { store.count_once("t", p, o, lowest, &k, n).await.unwrap() }
        };
        // the first record a group reads may be past offset 0 (trimmed)
        assert_eq!(count(0, 3, true, 1).await, Count::Added);
        assert_eq!(count(0, 4, false, 4).await, Count::Added);
        // delivered again after a restart: offsets 3 and 4 are counted
        assert_eq!(count(0, 3, true, 1).await, Count::Before);
        assert_eq!(count(0, 4, true, 4).await, Count::Before);
        // 6 before 5, which the caller still holds: not yet; then in order
        assert_eq!(count(0, 6, false, 2).await, Count::NotYet);
        assert_eq!(count(0, 5, true, 1).await, Count::Added);
        assert_eq!(count(0, 6, true, 2).await, Count::Added);
        // a gap the caller holds nothing below (trimmed records) counts
        assert_eq!(count(0, 9, true, 1).await, Count::Added);
        // another partition has offsets of its own, and its first record
        // waits while the caller holds an earlier one
        assert_eq!(count(1, 1, false, 1).await, Count::NotYet);
        assert_eq!(count(1, 0, true, 1).await, Count::Added);
        let day = Day::parse("20261129", "from").unwrap();
        let rows = store.stats(day, day, None).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].count, 10);
    }

    #[tokio::test]
    async fn counters_are_kept_per_day_kind_city_and_outcome_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::for_tests(dir.path());
        let keys = [
            key("20261128", StatKind::Transcode, "340100000000", "200"),
            key("20261129", StatKind::Transcode, "340100000000", "4003"),
            key("20261129", StatKind::Trade, "340100000000", "交易成功\0x"),
            key("20261129", StatKind::Transcode, "340200000000", "200"),
            key("20261130", StatKind::Trade, "340100000000", "200"),
        ];
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                store
                    .count_once("t", 0, i as u64, true, k, 1)
                    .await
                    .unwrap(),
                Count::Added
            );
        }
        let d = |s: &str| Day::parse(s, "d").unwrap();
        let hefei = CityPrefix::parse("3401", "cityNo").unwrap();
        let rows = store
            .stats(d("20261129"), d("20261129"), Some(&hefei))
            .unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.day.as_str(), r.kind, r.outcome.as_str(), r.count))
            .collect();
        assert_eq!(
            got,
            [
                ("20261129", "trade", "交易成功x", 1),
                ("20261129", "transcode", "4003", 1)
            ]
        );
        assert_eq!(
            store
                .stats(d("20261128"), d("20261130"), None)
                .unwrap()
                .len(),
            5
        );
        assert!(store
            .stats(d("20261201"), d("20261231"), None)
            .unwrap()
            .is_empty());
    }
}
