//! One partition of the embedded log: a sled tree for a durable topic, or a
//! bounded ring in memory for a topic declared `durable = false` (the
//! request-reply topics: at-most-once by design and worthless after their
//! deadline, so they need neither a disk write nor an fsync). A memory
//! partition keeps its groups' commits and drops what every committing
//! group has passed; the rest goes when it is full or past retention.
//!
//! A durable partition also keeps its newest entries (`TAIL_RECORDS`) in
//! memory, sharing their bytes with sled's: a consumer that keeps up reads
//! them there, without a range scan of the tree; one further behind reads
//! the tree.
//!
//! Entries are the compact form of `message.rs`; the first 8 bytes are the
//! append time (retention reads it).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::BusError;

/// Entries a memory partition keeps: the oldest go first when it is full
/// (a reader that far behind skips them, as after retention).
pub const MEMORY_RECORDS: usize = 4096;

/// The newest entries a durable partition keeps in memory for its readers.
pub const TAIL_RECORDS: usize = 32;

/// The records of one partition and its next offset.
#[derive(Debug)]
pub enum Partition {
    Durable {
        tree: sled::Tree,
        /// The next offset and the newest entries; the lock also orders
        /// appends so readers never see a gap fill in later.
        next: Mutex<Tail>,
    },
    Memory(Mutex<Ring>),
}

/// A memory partition: contiguous offsets from `base`, and the groups'
/// commits (in memory too: the topic is at-most-once).
#[derive(Debug, Default)]
pub struct Ring {
    base: u64,
    entries: VecDeque<Vec<u8>>,
    commits: HashMap<String, u64>,
}

/// A durable partition's next offset, and its entries just before it:
/// offsets `next - recent.len()` to `next - 1`, contiguous.
#[derive(Debug, Default)]
pub struct Tail {
    next: u64,
    recent: VecDeque<sled::IVec>,
}

impl Tail {
    fn base(&self) -> u64 {
        self.next - self.recent.len() as u64
    }

    /// The offset the next record takes.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// `entries` were written at `next`, `next + 1`, ...: they are the
    /// newest now.
    pub fn extend(&mut self, entries: Vec<sled::IVec>) {
        for entry in entries {
            self.next += 1;
            self.recent.push_back(entry);
        }
        while self.recent.len() > TAIL_RECORDS {
            self.recent.pop_front();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn offset_of(k: &[u8]) -> u64 {
    u64::from_be_bytes(k.try_into().unwrap_or([0; 8]))
}

/// The append time of an entry (`i64::MAX` if unreadable: never trimmed).
fn stamp(entry: &[u8]) -> i64 {
    entry
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(i64::MAX, i64::from_be_bytes)
}

impl Partition {
    /// A durable partition on `tree`, continuing at `stored_next` (a stored
    /// fact: retention may have emptied the tree, and offsets never go back).
    pub fn durable(tree: sled::Tree, stored_next: u64) -> Result<Self, BusError> {
        let after_last = tree.last()?.map_or(0, |(k, _)| offset_of(&k) + 1);
        Ok(Partition::Durable {
            tree,
            next: Mutex::new(Tail {
                next: stored_next.max(after_last),
                recent: VecDeque::new(),
            }),
        })
    }

    /// An empty memory partition.
    pub fn memory() -> Self {
        Partition::Memory(Mutex::new(Ring::default()))
    }

    /// A durable partition's tree and its tail, held: nothing else appends
    /// to it until the guard goes. `None` for a memory partition.
    pub fn hold(&self) -> Option<(&sled::Tree, MutexGuard<'_, Tail>)> {
        match self {
            Partition::Durable { tree, next } => Some((tree, lock(next))),
            Partition::Memory(_) => None,
        }
    }

    pub fn is_durable(&self) -> bool {
        matches!(self, Partition::Durable { .. })
    }

    /// Append `entry`; its offset.
    pub fn append(&self, entry: Vec<u8>) -> Result<u64, BusError> {
        match self {
            Partition::Durable { tree, next } => {
                let mut tail = lock(next);
                let offset = tail.next;
                // one copy of the bytes, shared by sled and the tail
                let entry = sled::IVec::from(entry);
                tree.insert(offset.to_be_bytes(), entry.clone())?;
                tail.extend(vec![entry]);
                Ok(offset)
            }
            Partition::Memory(ring) => {
                let mut ring = lock(ring);
                let offset = ring.base + ring.entries.len() as u64;
                ring.entries.push_back(entry);
                if ring.entries.len() > MEMORY_RECORDS {
                    ring.entries.pop_front();
                    ring.base += 1;
                }
                Ok(offset)
            }
        }
    }

    /// Record `group`'s commit (`next` is the offset it reads next) on a
    /// memory partition, and drop the entries every group that committed
    /// here has passed: nothing reads them again. Returns false for a
    /// durable partition, whose commits live in the bus's offsets tree.
    pub fn commit_in_memory(&self, group: &str, next: u64) -> bool {
        let Partition::Memory(ring) = self else {
            return false;
        };
        let mut ring = lock(ring);
        match ring.commits.get_mut(group) {
            Some(at) => *at = next,
            None => {
                ring.commits.insert(group.to_string(), next);
            }
        }
        let floor = ring.commits.values().copied().min().unwrap_or(0);
        while ring.base < floor && ring.entries.pop_front().is_some() {
            ring.base += 1;
        }
        true
    }

    /// `group`'s commit on a memory partition (0 before its first);
    /// `None` for a durable partition.
    pub fn committed_in_memory(&self, group: &str) -> Option<u64> {
        match self {
            Partition::Memory(ring) => Some(lock(ring).commits.get(group).copied().unwrap_or(0)),
            Partition::Durable { .. } => None,
        }
    }

    /// The next offset to be written.
    pub fn next_offset(&self) -> u64 {
        match self {
            Partition::Durable { next, .. } => lock(next).next,
            Partition::Memory(ring) => {
                let ring = lock(ring);
                ring.base + ring.entries.len() as u64
            }
        }
    }

    /// The first record at or after `at` (gaps are allowed: a trimmed log),
    /// given to `read` with its offset.
    pub fn first_from<T>(
        &self,
        at: u64,
        read: impl FnOnce(u64, &[u8]) -> T,
    ) -> Result<Option<T>, BusError> {
        match self {
            Partition::Durable { tree, next } => {
                let recent = {
                    let tail = lock(next);
                    if at >= tail.next {
                        return Ok(None);
                    }
                    at.checked_sub(tail.base())
                        .and_then(|i| tail.recent.get(i as usize).cloned())
                };
                if let Some(entry) = recent {
                    return Ok(Some(read(at, &entry)));
                }
                match tree.range(at.to_be_bytes()..).next() {
                    Some(item) => {
                        let (k, v) = item?;
                        Ok(Some(read(offset_of(&k), &v)))
                    }
                    None => Ok(None),
                }
            }
            Partition::Memory(ring) => {
                let ring = lock(ring);
                let offset = at.max(ring.base);
                Ok(ring
                    .entries
                    .get((offset - ring.base) as usize)
                    .map(|e| read(offset, e)))
            }
        }
    }

    /// Remove the records appended before `cutoff_ms` from the front, but
    /// (durable partitions) never at or past `floor`, the lowest offset a
    /// declared group has not committed. Returns (removed, held): held are
    /// the records past retention kept for a group.
    pub fn trim(&self, cutoff_ms: i64, floor: u64) -> Result<(usize, u64), BusError> {
        match self {
            Partition::Durable { tree, next } => {
                let mut removed = 0;
                // what is trimmed from the tree leaves the tail too
                let forget = |after: u64| {
                    let mut tail = lock(next);
                    while tail.base() <= after && tail.recent.pop_front().is_some() {}
                };
                for item in tree.iter() {
                    let (k, v) = item?;
                    if stamp(&v) >= cutoff_ms {
                        break;
                    }
                    if offset_of(&k) >= floor {
                        // past retention, but not consumed yet: keep it
                        let held = tree
                            .range(k.as_ref()..)
                            .values()
                            .filter_map(Result::ok)
                            .take_while(|v| stamp(v) < cutoff_ms)
                            .count() as u64;
                        return Ok((removed, held));
                    }
                    tree.remove(&k)?;
                    forget(offset_of(&k));
                    removed += 1;
                }
                Ok((removed, 0))
            }
            Partition::Memory(ring) => {
                let mut ring = lock(ring);
                let mut removed = 0;
                while ring.entries.front().is_some_and(|e| stamp(e) < cutoff_ms) {
                    ring.entries.pop_front();
                    ring.base += 1;
                    removed += 1;
                }
                Ok((removed, 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: i64, b: u8) -> Vec<u8> {
        let mut e = ts.to_be_bytes().to_vec();
        e.push(b);
        e
    }

    #[test]
    fn a_memory_partition_keeps_offsets_contiguous_and_drops_its_oldest_when_full() {
        let p = Partition::memory();
        for i in 0..(MEMORY_RECORDS as u64 + 10) {
            assert_eq!(p.append(entry(1, 0)).unwrap(), i);
        }
        assert_eq!(p.next_offset(), MEMORY_RECORDS as u64 + 10);
        // a reader far behind skips to the oldest kept record
        assert_eq!(p.first_from(0, |o, _| o).unwrap(), Some(10));
        assert_eq!(p.first_from(12, |o, _| o).unwrap(), Some(12));
        assert_eq!(p.first_from(p.next_offset(), |o, _| o).unwrap(), None);
    }

    #[test]
    fn a_memory_partition_drops_what_every_committing_group_has_passed() {
        let p = Partition::memory();
        for i in 0..10u8 {
            p.append(entry(1, i)).unwrap();
        }
        assert!(p.commit_in_memory("a", 4));
        assert_eq!(p.committed_in_memory("a"), Some(4));
        assert_eq!(p.committed_in_memory("b"), Some(0));
        // a's reader is past 0..3: they are gone, offsets stay
        assert_eq!(p.first_from(0, |o, e| (o, e[8])).unwrap(), Some((4, 4)));
        // a second group holds what it has not passed
        assert!(p.commit_in_memory("b", 2));
        assert!(p.commit_in_memory("a", 9));
        assert_eq!(p.first_from(0, |o, _| o).unwrap(), Some(4));
        assert!(p.commit_in_memory("b", 10));
        assert_eq!(p.first_from(0, |o, _| o).unwrap(), Some(9));
        assert_eq!(p.next_offset(), 10);
        assert_eq!(p.append(entry(1, 10)).unwrap(), 10);
        // a durable partition keeps its commits elsewhere
        let db = sled::Config::new().temporary(true).open().unwrap();
        let d = Partition::durable(db.open_tree("t").unwrap(), 0).unwrap();
        assert!(!d.commit_in_memory("a", 1));
        assert_eq!(d.committed_in_memory("a"), None);
    }

    #[test]
    fn a_durable_partition_reads_its_tail_and_its_tree_alike_and_trims_both() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let p = Partition::durable(tree.clone(), 0).unwrap();
        let n = TAIL_RECORDS as u64 * 2;
        for i in 0..n {
            // appended at time i; the byte after the stamp is the offset
            assert_eq!(p.append(entry(i as i64, i as u8)).unwrap(), i);
        }
        // every offset reads its own entry: the older from the tree, the
        // newer from the tail
        for at in 0..n {
            assert_eq!(
                p.first_from(at, |o, e| (o, e[8])).unwrap(),
                Some((at, at as u8))
            );
        }
        assert_eq!(p.first_from(n, |o, _| o).unwrap(), None);
        // the tail mirrors the tree: its bytes are the tree's
        let last = n - 1;
        assert_eq!(
            p.first_from(last, |_, e| e.to_vec()).unwrap(),
            tree.get(last.to_be_bytes()).unwrap().map(|v| v.to_vec())
        );
        // a trim into the tail removes from both: nothing trimmed reads back
        let cutoff = n as i64 - 3;
        assert_eq!(p.trim(cutoff, u64::MAX).unwrap(), ((n - 3) as usize, 0));
        for at in 0..n {
            assert_eq!(
                p.first_from(at, |o, _| o).unwrap(),
                Some(at.max(n - 3)),
                "read from {at}"
            );
        }
        // and appends go on after the trim
        assert_eq!(p.append(entry(n as i64, 0)).unwrap(), n);
        assert_eq!(p.first_from(n, |o, _| o).unwrap(), Some(n));
    }

    #[test]
    fn a_memory_partition_trims_by_time_only() {
        let p = Partition::memory();
        for (ts, b) in [(1, 1), (2, 2), (9, 3)] {
            p.append(entry(ts, b)).unwrap();
        }
        assert_eq!(p.trim(5, 0).unwrap(), (2, 0));
        assert_eq!(
            p.first_from(0, |o, e| (o, e[8])).unwrap(),
            Some((2, 3)),
            "offsets survive the trim"
        );
        assert_eq!(p.append(entry(10, 4)).unwrap(), 3);
    }
}
