//! The embedded bus: a durable partitioned log in sled trees, consumer
//! groups sharing partitions in-process, committed offsets in sled.
//! Publishing appends and then waits for the store's group-commit flush.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::message::{decode_entry, encode_entry};
use super::{BusError, Message, Position, Record, Topics};
use crate::store::{Flusher, Store};

#[derive(Debug)]
struct Partition {
    tree: sled::Tree,
    /// The next offset; the lock also orders appends so readers never see a gap fill in later.
    next: Mutex<u64>,
}

#[derive(Debug)]
struct TopicLog {
    name: String,
    partitions: Vec<Partition>,
    appended: Notify,
}

#[derive(Debug, Default)]
struct Group {
    members: Vec<u64>,
    generation: u64,
}

/// The sled-backed log shared by a node's publishers and consumers.
#[derive(Debug)]
pub struct EmbeddedBus {
    db: sled::Db,
    flusher: Arc<Flusher>,
    topics: Topics,
    logs: Mutex<HashMap<String, Arc<TopicLog>>>,
    offsets: sled::Tree,
    groups: Mutex<HashMap<(String, String), Group>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn partition_of(key: &[u8], n: u32) -> u32 {
    // FNV-1a: stable across runs and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(n.max(1))) as u32
}

impl EmbeddedBus {
    pub fn open(store: &Store, topics: Topics) -> Result<Arc<Self>, BusError> {
        let db = store.db().clone();
        Ok(Arc::new(EmbeddedBus {
            offsets: db.open_tree("bus.offsets")?,
            db,
            flusher: store.flusher().clone(),
            topics,
            logs: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        }))
    }

    fn log(&self, topic: &str) -> Result<Arc<TopicLog>, BusError> {
        let mut logs = lock(&self.logs);
        if let Some(l) = logs.get(topic) {
            return Ok(l.clone());
        }
        let n = self.topics.partitions(topic);
        let mut partitions = Vec::with_capacity(n as usize);
        for p in 0..n {
            let tree = self.db.open_tree(format!("bus.log.{topic}.{p}"))?;
            let next = match tree.last()? {
                Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])) + 1,
                None => 0,
            };
            partitions.push(Partition {
                tree,
                next: Mutex::new(next),
            });
        }
        let log = Arc::new(TopicLog {
            name: topic.to_string(),
            partitions,
            appended: Notify::new(),
        });
        logs.insert(topic.to_string(), log.clone());
        Ok(log)
    }

    pub async fn publish(&self, m: Message) -> Result<Position, BusError> {
        let log = self.log(&m.topic)?;
        let n = log.partitions.len() as u32;
        let p = match m.partition {
            Some(p) if p < n => p,
            Some(p) => return Err(BusError::UnknownTopic(format!("{}[{p}]", m.topic))),
            None => partition_of(&m.key, n),
        };
        let part = &log.partitions[p as usize];
        let entry = encode_entry(chrono::Utc::now().timestamp_millis(), &m);
        let offset = {
            let mut next = lock(&part.next);
            let offset = *next;
            part.tree.insert(offset.to_be_bytes(), entry)?;
            *next += 1;
            offset
        };
        self.flusher.sync().await?;
        log.appended.notify_waiters();
        Ok(Position {
            partition: p,
            offset,
        })
    }

    /// A group member (`group` set) or a fixed-partition reader from the end.
    pub fn subscribe(
        self: &Arc<Self>,
        topic: &str,
        group: Option<&str>,
        partition: Option<u32>,
    ) -> Result<EmbeddedConsumer, BusError> {
        let log = self.log(topic)?;
        let member = self.db.generate_id()?;
        let mut positions = HashMap::new();
        if let Some(g) = group {
            let mut groups = lock(&self.groups);
            let entry = groups
                .entry((topic.to_string(), g.to_string()))
                .or_default();
            entry.members.push(member);
            entry.generation += 1;
        } else {
            let p = partition.unwrap_or(0);
            let part = log
                .partitions
                .get(p as usize)
                .ok_or_else(|| BusError::UnknownTopic(format!("{topic}[{p}]")))?;
            positions.insert(p, *lock(&part.next));
        }
        log.appended.notify_waiters();
        Ok(EmbeddedConsumer {
            bus: self.clone(),
            log,
            group: group.map(str::to_string),
            member,
            generation: 0,
            positions,
            cursor: 0,
        })
    }

    /// Delete records older than their topic's retention (as of `now_ms`)
    /// from the front of every partition; returns how many. Consumers skip
    /// the gap, as Kafka consumers do after retention.
    pub fn trim(&self, now_ms: i64) -> Result<usize, BusError> {
        let logs: Vec<Arc<TopicLog>> = lock(&self.logs).values().cloned().collect();
        let mut removed = 0;
        for log in logs {
            let cutoff = now_ms - self.topics.retention_ms(&log.name);
            for part in &log.partitions {
                for item in part.tree.iter() {
                    let (k, v) = item?;
                    let ts = v
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(i64::MAX, i64::from_be_bytes);
                    if ts >= cutoff {
                        break;
                    }
                    part.tree.remove(k)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// The next offset of each partition (the high watermarks).
    pub fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        let log = self.log(topic)?;
        Ok(log.partitions.iter().map(|p| *lock(&p.next)).collect())
    }

    fn committed(&self, group: &str, topic: &str, p: u32) -> Result<u64, BusError> {
        Ok(self
            .offsets
            .get(offset_key(group, topic, p))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }
}

fn offset_key(group: &str, topic: &str, p: u32) -> String {
    format!("{group}\u{0}{topic}\u{0}{p}")
}

/// A consumer of the embedded bus.
#[derive(Debug)]
pub struct EmbeddedConsumer {
    bus: Arc<EmbeddedBus>,
    log: Arc<TopicLog>,
    group: Option<String>,
    member: u64,
    generation: u64,
    /// Assigned partitions and the next offset to read in each.
    positions: HashMap<u32, u64>,
    cursor: usize,
}

impl EmbeddedConsumer {
    /// Re-read the assignment when the group changed; positions restart at
    /// the committed offsets (records in flight may come again: at-least-once).
    fn rebalance(&mut self) -> Result<(), BusError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let (generation, members) = {
            let groups = lock(&self.bus.groups);
            match groups.get(&(self.log.name.clone(), group.clone())) {
                Some(g) => (g.generation, g.members.clone()),
                None => return Ok(()),
            }
        };
        if generation == self.generation {
            return Ok(());
        }
        let idx = members.iter().position(|m| *m == self.member).unwrap_or(0);
        let n = self.log.partitions.len();
        self.positions.clear();
        for p in (0..n).filter(|p| p % members.len().max(1) == idx) {
            let p = p as u32;
            let at = self.bus.committed(group, &self.log.name, p)?;
            self.positions.insert(p, at);
        }
        self.generation = generation;
        Ok(())
    }

    fn poll(&mut self) -> Result<Option<Record>, BusError> {
        let mut parts: Vec<u32> = self.positions.keys().copied().collect();
        parts.sort_unstable();
        let n = parts.len();
        for i in 0..n {
            let p = parts[(self.cursor + i) % n];
            let at = self.positions[&p];
            let tree = &self.log.partitions[p as usize].tree;
            // The first record at or after `at` (gaps are allowed: trimmed log).
            if let Some(item) = tree.range(at.to_be_bytes()..).next() {
                let (k, v) = item?;
                let offset = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8]));
                self.positions.insert(p, offset + 1);
                self.cursor = (self.cursor + i + 1) % n;
                return match decode_entry(&self.log.name, p, offset, &v) {
                    Some(r) => Ok(Some(r)),
                    None => Err(BusError::Storage(format!(
                        "{}[{p}]@{offset} is corrupt",
                        self.log.name
                    ))),
                };
            }
        }
        Ok(None)
    }

    pub async fn next(&mut self) -> Result<Record, BusError> {
        let log = self.log.clone();
        loop {
            let appended = log.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            self.rebalance()?;
            if let Some(r) = self.poll()? {
                return Ok(r);
            }
            tokio::select! {
                _ = appended => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    pub fn commit(&mut self, r: &Record) -> Result<(), BusError> {
        if let Some(group) = &self.group {
            self.bus.offsets.insert(
                offset_key(group, &r.topic, r.partition),
                &(r.offset + 1).to_be_bytes(),
            )?;
        }
        Ok(())
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        if let Some(group) = &self.group {
            let mut groups = lock(&self.bus.groups);
            if let Some(g) = groups.get_mut(&(self.log.name.clone(), group.clone())) {
                g.members.retain(|m| *m != self.member);
                g.generation += 1;
            }
            self.log.appended.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retention_trims_old_records_and_consumers_skip_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bus = EmbeddedBus::open(&store, Topics::new("").unwrap()).unwrap();
        let topic = "akm.trade.reported.dlq"; // one partition
        for i in 0..3u8 {
            bus.publish(Message::new(topic, vec![i], vec![i]))
                .await
                .unwrap();
        }
        let mut c = bus.subscribe(topic, Some("g"), None).unwrap();
        let first = c.next().await.unwrap();
        c.commit(&first).unwrap();
        assert_eq!(bus.trim(chrono::Utc::now().timestamp_millis()).unwrap(), 0);
        let far = chrono::Utc::now().timestamp_millis() + 400 * 24 * 3600 * 1000;
        assert_eq!(bus.trim(far).unwrap(), 3);
        bus.publish(Message::new(topic, vec![9], vec![9]))
            .await
            .unwrap();
        drop(c);
        let mut c = bus.subscribe(topic, Some("g"), None).unwrap();
        let next = c.next().await.unwrap();
        assert_eq!((next.offset, next.payload), (3, vec![9]));
        assert_eq!(bus.end_offsets(topic).unwrap(), vec![4]);
    }

    #[tokio::test]
    async fn a_group_shares_partitions_and_a_new_member_takes_over_uncommitted_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bus = EmbeddedBus::open(&store, Topics::new("").unwrap()).unwrap();
        let topic = "akm.trade"; // eight partitions
        for i in 0..32u8 {
            bus.publish(Message::new(topic, vec![i], vec![i]))
                .await
                .unwrap();
        }
        let mut a = bus.subscribe(topic, Some("g"), None).unwrap();
        let mut b = bus.subscribe(topic, Some("g"), None).unwrap();
        let (mut pa, mut pb) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for _ in 0..8 {
            pa.insert(a.next().await.unwrap().partition);
            pb.insert(b.next().await.unwrap().partition);
        }
        assert!(pa.is_disjoint(&pb), "{pa:?} {pb:?}");
        // b dies without committing: a gets b's partitions from the start
        drop(b);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..32 {
            let r = a.next().await.unwrap();
            a.commit(&r).unwrap();
            seen.insert(r.payload[0]);
        }
        assert_eq!(seen.len(), 32, "every record delivered at least once");
    }
}
