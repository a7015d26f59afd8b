//! The embedded bus's committed offsets of durable partitions, by
//! (group, topic, partition), in the sled tree `bus.offsets`. A commit is
//! kept in memory and written with the others in one batch at most every
//! [`WRITE_EVERY`] (and when the bus is dropped or asked to), as Kafka
//! consumers here store offsets and commit them once a second: one sled
//! write per record per group was a fifth of a callback's sled writes.
//! Reads see the newest commit. A crash loses the commits since the last
//! write, so those records come again: delivery is at-least-once, and
//! every consumer of a durable topic drops what it has done (DESIGN.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::BusError;

/// The longest a commit waits in memory for its write.
pub const WRITE_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct Offsets {
    tree: sled::Tree,
    pending: Mutex<Pending>,
}

#[derive(Debug)]
struct Pending {
    commits: HashMap<Vec<u8>, u64>,
    written: Instant,
}

impl Offsets {
    pub fn new(tree: sled::Tree) -> Self {
        Offsets {
            tree,
            pending: Mutex::new(Pending {
                commits: HashMap::new(),
                written: Instant::now(),
            }),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The committed next offset at `key` (0 before the first commit).
    pub fn get(&self, key: &[u8]) -> Result<u64, BusError> {
        if let Some(at) = self.pending().commits.get(key) {
            return Ok(*at);
        }
        Ok(self
            .tree
            .get(key)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Commit `next` at `key`; written with the others once
    /// [`WRITE_EVERY`] has passed since the last write.
    pub fn commit(&self, key: Vec<u8>, next: u64) -> Result<(), BusError> {
        let due = {
            let mut p = self.pending();
            p.commits.insert(key, next);
            p.written.elapsed() >= WRITE_EVERY
        };
        if due {
            self.write()?;
        }
        Ok(())
    }

    /// No commit, held or written.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pending().commits.is_empty() && self.tree.is_empty()
    }

    /// Write every commit held in memory, in one batch.
    pub fn write(&self) -> Result<(), BusError> {
        let mut p = self.pending();
        p.written = Instant::now();
        if p.commits.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in &p.commits {
            batch.insert(k.as_slice(), &v.to_be_bytes());
        }
        // under the lock: a later commit of the same key is not overtaken
        self.tree.apply_batch(batch)?;
        p.commits.clear();
        Ok(())
    }
}

impl Drop for Offsets {
    fn drop(&mut self) {
        if let Err(e) = self.write() {
            tracing::error!(error = %e, "committed offsets not written; those records come again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_read_at_once_and_written_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("o").unwrap();
        let o = Offsets::new(tree.clone());
        o.commit(b"g t 0".to_vec(), 5).unwrap();
        o.commit(b"g t 0".to_vec(), 6).unwrap();
        assert_eq!(o.get(b"g t 0").unwrap(), 6, "the newest commit is read");
        assert_eq!(o.get(b"g t 1").unwrap(), 0);
        assert!(tree.get(b"g t 0").unwrap().is_none(), "not written yet");
        std::thread::sleep(WRITE_EVERY);
        o.commit(b"g t 1".to_vec(), 2).unwrap();
        let stored = |k: &[u8]| {
            tree.get(k)
                .unwrap()
                .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap()))
        };
        assert_eq!((stored(b"g t 0"), stored(b"g t 1")), (Some(6), Some(2)));
        o.commit(b"g t 1".to_vec(), 3).unwrap();
        drop(o);
        assert_eq!(stored(b"g t 1"), Some(3), "written when dropped");
    }
}
