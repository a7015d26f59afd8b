//! The embedded bus: a partitioned log in sled trees, consumer groups
//! sharing partitions in-process, committed offsets in sled (written in
//! batches, `offsets.rs`). Publishing
//! appends and then waits for the node's group-commit flush. A topic
//! declared `durable = false` lives in memory instead (`partition.rs`):
//! no write, no fsync, offsets and commits in memory, gone on restart.
//! Retention trims every declared topic once a minute while the bus lives.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::contract::{BusBackend, BusConsumer};
use super::message::{decode_entry, encode_entry};
use super::offsets::Offsets;
use super::partition::Partition;
use super::{BusError, Message, Position, Record, Topics};
use crate::clock::SharedClock;
use crate::durability::Durable;

#[derive(Debug)]
struct TopicLog {
    name: String,
    retention_ms: i64,
    /// The consumer groups (full ids) retention must wait for.
    groups: Vec<String>,
    partitions: Vec<Partition>,
    /// Per partition, the consumers reading it: an append wakes only them.
    readers: Vec<Mutex<Vec<Weak<Notify>>>>,
    /// Every consumer of the topic: a group change wakes them all.
    consumers: Mutex<Vec<Weak<Notify>>>,
    /// Bumped on every group change of this topic: a consumer whose last
    /// look is older reads its group's assignment again.
    changes: std::sync::atomic::AtomicU64,
}

impl TopicLog {
    fn wake(list: &Mutex<Vec<Weak<Notify>>>) {
        let mut list = lock(list);
        list.retain(|w| match w.upgrade() {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        });
    }

    /// A group of this topic changed: every consumer looks again.
    fn changed(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self::wake(&self.consumers);
    }

    /// `wake` reads exactly `partitions` from now on.
    fn read_by(&self, wake: &Arc<Notify>, partitions: impl Iterator<Item = u32>) {
        let mine = |w: &Weak<Notify>| std::ptr::eq(w.as_ptr(), Arc::as_ptr(wake));
        for list in &self.readers {
            lock(list).retain(|w| !mine(w));
        }
        for p in partitions {
            if let Some(list) = self.readers.get(p as usize) {
                lock(list).push(Arc::downgrade(wake));
            }
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    members: Vec<u64>,
    generation: u64,
}

/// The sled-backed log shared by a node's publishers and consumers.
#[derive(Debug)]
pub struct EmbeddedBus {
    durable: Durable,
    clock: SharedClock,
    topics: Topics,
    logs: Mutex<HashMap<String, Arc<TopicLog>>>,
    /// Committed offsets of durable partitions (written in batches).
    offsets: Offsets,
    /// The next offset of each durable partition, stored before retention
    /// trims it (a partition it emptied goes on from there).
    next_offsets: sled::Tree,
    groups: Mutex<HashMap<(String, String), Group>>,
    held: std::sync::atomic::AtomicU64,
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

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

impl EmbeddedBus {
    /// Open the log in `durable` and start its retention task, which ends
    /// when the bus is dropped.
    pub fn open(
        durable: &Durable,
        topics: Topics,
        clock: SharedClock,
    ) -> Result<Arc<Self>, BusError> {
        let bus = Arc::new(EmbeddedBus {
            offsets: Offsets::new(durable.tree("bus.offsets")?),
            next_offsets: durable.tree("bus.next")?,
            held: std::sync::atomic::AtomicU64::new(0),
            durable: durable.clone(),
            clock,
            topics,
            logs: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        });
        tokio::spawn(retention(Arc::downgrade(&bus)));
        Ok(bus)
    }

    fn log(&self, topic: &str) -> Result<Arc<TopicLog>, BusError> {
        let decl = self
            .topics
            .decl(topic)
            .ok_or_else(|| BusError::UnknownTopic(topic.to_string()))?;
        let mut logs = lock(&self.logs);
        if let Some(l) = logs.get(topic) {
            return Ok(l.clone());
        }
        let n = decl.partitions.max(1);
        let mut partitions = Vec::with_capacity(n as usize);
        for p in 0..n {
            if !decl.durable {
                partitions.push(Partition::memory());
                continue;
            }
            let tree = self.durable.tree(&format!("bus.log.{topic}.{p}"))?;
            let stored = self
                .next_offsets
                .get(next_key(topic, p))?
                .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            partitions.push(Partition::durable(tree, stored)?);
        }
        let log = Arc::new(TopicLog {
            name: topic.to_string(),
            retention_ms: decl.retention_ms,
            groups: decl.groups.iter().map(|g| self.topics.group(g)).collect(),
            readers: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            partitions,
            consumers: Mutex::new(Vec::new()),
            changes: std::sync::atomic::AtomicU64::new(0),
        });
        logs.insert(topic.to_string(), log.clone());
        Ok(log)
    }

    /// Delete records older than their topic's retention (as of `now_ms`)
    /// from the front of every partition of every declared topic; returns
    /// how many. Never past the lowest committed offset of the groups the
    /// topic file names: a record those groups have not consumed is kept,
    /// counted ([`EmbeddedBus::held`]) and logged as an error. Consumers
    /// skip the gap, as Kafka consumers do after retention.
    pub fn trim(&self, now_ms: i64) -> Result<usize, BusError> {
        let mut removed = 0;
        let mut held = 0u64;
        for decl in self.topics.declared() {
            if decl.compacted {
                continue; // a table: every record stays
            }
            let log = self.log(&decl.name)?;
            let cutoff = now_ms - log.retention_ms;
            for (p, part) in log.partitions.iter().enumerate() {
                let p = p as u32;
                let mut floor = u64::MAX;
                for g in &log.groups {
                    floor = floor.min(self.committed(g, &log, p)?);
                }
                if part.is_durable() {
                    // offsets never go back, though this trim may empty it
                    self.next_offsets
                        .insert(next_key(&log.name, p), &part.next_offset().to_be_bytes())?;
                }
                let (gone, kept) = part.trim(cutoff, floor)?;
                removed += gone;
                held += kept;
            }
        }
        if held > 0 {
            tracing::error!(
                records = held,
                "records past retention are not consumed yet; kept"
            );
        }
        self.held.store(held, std::sync::atomic::Ordering::Relaxed);
        Ok(removed)
    }

    /// Write the committed offsets held in memory (before a final flush).
    pub fn write_offsets(&self) -> Result<(), BusError> {
        self.offsets.write()
    }

    /// Records past their retention that the last trim kept because their
    /// groups have not consumed them.
    pub fn held(&self) -> u64 {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn committed(&self, group: &str, log: &TopicLog, p: u32) -> Result<u64, BusError> {
        if let Some(at) = log
            .partitions
            .get(p as usize)
            .and_then(|part| part.committed_in_memory(group))
        {
            return Ok(at);
        }
        self.offsets.get(offset_key(group, &log.name, p).as_bytes())
    }

    fn consumer(
        self: &Arc<Self>,
        log: Arc<TopicLog>,
        group: Option<String>,
        positions: HashMap<u32, u64>,
    ) -> Result<EmbeddedConsumer, BusError> {
        let wake = Arc::new(Notify::new());
        lock(&log.consumers).push(Arc::downgrade(&wake));
        log.read_by(&wake, positions.keys().copied());
        Ok(EmbeddedConsumer {
            bus: self.clone(),
            log,
            group,
            member: self.durable.generate_id()?,
            generation: 0,
            assignment: super::new_assignment(),
            seen_changes: None,
            wake,
            positions,
            paused: HashSet::new(),
            cursor: 0,
        })
    }
}

async fn retention(bus: Weak<EmbeddedBus>) {
    loop {
        tokio::time::sleep(RETENTION_EVERY).await;
        let Some(bus) = bus.upgrade() else { return };
        match bus.trim(bus.clock.now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "records past retention removed"),
            Err(e) => tracing::error!(error = %e, "retention trim failed"),
        }
    }
}

impl BusBackend for Arc<EmbeddedBus> {
    type Consumer = EmbeddedConsumer;

    async fn publish(&self, m: Message) -> Result<Position, BusError> {
        let log = self.log(&m.topic)?;
        let n = log.partitions.len() as u32;
        let p = match m.partition {
            Some(p) if p < n => p,
            Some(p) => {
                return Err(BusError::NoPartition {
                    topic: m.topic,
                    partition: p,
                })
            }
            None => partition_of(&m.key, n),
        };
        let part = &log.partitions[p as usize];
        let entry = encode_entry(self.clock.now_ms(), &m);
        let offset = part.append(entry)?;
        if part.is_durable() {
            self.durable.sync().await?;
        }
        if let Some(readers) = log.readers.get(p as usize) {
            TopicLog::wake(readers);
        }
        Ok(Position {
            partition: p,
            offset,
        })
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<EmbeddedConsumer, BusError> {
        let log = self.log(topic)?;
        let c = self.consumer(log.clone(), Some(group.to_string()), HashMap::new())?;
        {
            let mut groups = lock(&self.groups);
            let entry = groups
                .entry((topic.to_string(), group.to_string()))
                .or_default();
            entry.members.push(c.member);
            entry.generation += 1;
        }
        log.changed();
        Ok(c)
    }

    async fn assign(&self, topic: &str, partition: u32) -> Result<EmbeddedConsumer, BusError> {
        let log = self.log(topic)?;
        let at = log
            .partitions
            .get(partition as usize)
            .map(Partition::next_offset)
            .ok_or_else(|| BusError::NoPartition {
                topic: topic.to_string(),
                partition,
            })?;
        self.consumer(log, None, HashMap::from([(partition, at)]))
    }

    async fn assign_from(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<EmbeddedConsumer, BusError> {
        let log = self.log(topic)?;
        let p = log
            .partitions
            .get(partition as usize)
            .ok_or_else(|| BusError::NoPartition {
                topic: topic.to_string(),
                partition,
            })?;
        let at = offset.min(p.next_offset());
        self.consumer(log, None, HashMap::from([(partition, at)]))
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        let log = self.log(topic)?;
        Ok(log.partitions.iter().map(Partition::next_offset).collect())
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, BusError> {
        let log = self.log(topic)?;
        log.partitions
            .get(partition as usize)
            .map(Partition::next_offset)
            .ok_or_else(|| BusError::NoPartition {
                topic: topic.to_string(),
                partition,
            })
    }
}

fn next_key(topic: &str, p: u32) -> String {
    format!("{topic}\u{0}{p}")
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
    /// This member's current [`Record::assignment`].
    assignment: u64,
    /// The topic's change count this member last looked at.
    seen_changes: Option<u64>,
    /// Woken when a partition it reads gets a record, or its group changes.
    wake: Arc<Notify>,
    /// Assigned partitions and the next offset to read in each.
    positions: HashMap<u32, u64>,
    paused: HashSet<u32>,
    cursor: usize,
}

impl EmbeddedConsumer {
    /// Re-read the assignment when the group changed; positions restart at
    /// the committed offsets (records in flight may come again: at-least-once)
    /// and pauses are cleared.
    fn rebalance(&mut self) -> Result<(), BusError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let changes = self.log.changes.load(std::sync::atomic::Ordering::Acquire);
        if self.seen_changes == Some(changes) {
            return Ok(());
        }
        self.seen_changes = Some(changes);
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
        self.paused.clear();
        for p in (0..n).filter(|p| p % members.len().max(1) == idx) {
            let p = p as u32;
            let at = self.bus.committed(group, &self.log, p)?;
            self.positions.insert(p, at);
        }
        self.log.read_by(&self.wake, self.positions.keys().copied());
        self.generation = generation;
        self.assignment = super::new_assignment();
        Ok(())
    }

    fn poll(&mut self) -> Result<Option<Record>, BusError> {
        let mut parts: Vec<u32> = self
            .positions
            .keys()
            .copied()
            .filter(|p| !self.paused.contains(p))
            .collect();
        parts.sort_unstable();
        let n = parts.len();
        for i in 0..n {
            let p = parts[(self.cursor + i) % n];
            let at = self.positions[&p];
            let name = &self.log.name;
            let read = |offset, v: &[u8]| (offset, decode_entry(name, p, offset, v));
            if let Some((offset, record)) = self.log.partitions[p as usize].first_from(at, read)? {
                self.positions.insert(p, offset + 1);
                self.cursor = (self.cursor + i + 1) % n;
                let assignment = self.assignment;
                return record
                    .map(|r| Some(Record { assignment, ..r }))
                    .ok_or_else(|| BusError::Corrupt(format!("{name}[{p}]@{offset}")));
            }
        }
        Ok(None)
    }
}

impl BusConsumer for EmbeddedConsumer {
    async fn next(&mut self) -> Result<Record, BusError> {
        loop {
            self.rebalance()?;
            if let Some(r) = self.poll()? {
                return Ok(r);
            }
            // an append or a group change since the poll left a permit:
            // no wake-up is lost
            let wake = self.wake.clone();
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    fn owned(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self.positions.keys().copied().collect();
        p.sort_unstable();
        p
    }

    fn commit(&mut self, r: &Record) -> Result<(), BusError> {
        if let Some(group) = &self.group {
            let in_memory = self
                .log
                .partitions
                .get(r.partition as usize)
                .is_some_and(|part| part.commit_in_memory(group, r.offset + 1));
            if !in_memory {
                let key = offset_key(group, &r.topic, r.partition);
                self.bus.offsets.commit(key.into_bytes(), r.offset + 1)?;
            }
        }
        Ok(())
    }

    fn pause(&mut self, partition: u32) -> Result<(), BusError> {
        self.paused.insert(partition);
        Ok(())
    }

    fn resume(&mut self, partition: u32) -> Result<(), BusError> {
        self.paused.remove(&partition);
        self.wake.notify_one();
        Ok(())
    }

    fn assigned(&self) -> tokio::sync::watch::Receiver<bool> {
        tokio::sync::watch::channel(true).1
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
            self.log.changed();
        }
    }
}

#[path = "embedded_inline.rs"]
mod inline;

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
