//! A read-through cache of store lookups that writes invalidate: the
//! transcode configs and the apps, read on every request and written by
//! admin calls. A generation counter keeps a lookup that raced a write
//! from caching what it read before the write.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Entries kept at most before the cache starts over.
const ENTRIES: usize = 4096;

/// Cached answers of one lookup.
#[derive(Debug)]
pub(super) struct Memo<K, V> {
    generation: AtomicU64,
    entries: Mutex<HashMap<K, V>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn entries(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached answer for `key`, else `load`'s (then cached).
    pub fn get_or<E>(&self, key: K, load: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(hit) = self.entries().get(&key) {
            return Ok(hit.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let found = load()?;
        let mut entries = self.entries();
        if self.generation.load(Ordering::Acquire) == generation {
            if entries.len() >= ENTRIES {
                entries.clear();
            }
            entries.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Forget every answer: call after each write to what `load` reads.
    pub fn clear(&self) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_that_raced_a_write_is_not_cached() {
        let memo: Memo<&str, u32> = Memo::default();
        let got = memo.get_or("k", || {
            memo.clear(); // a write lands while the lookup reads
            Ok::<_, ()>(1)
        });
        assert_eq!(got, Ok(1));
        assert_eq!(
            memo.get_or("k", || Ok::<_, ()>(2)),
            Ok(2),
            "the stale read was cached"
        );
        assert_eq!(
            memo.get_or("k", || Ok::<_, ()>(3)),
            Ok(2),
            "a fresh read was not cached"
        );
        memo.clear();
        assert_eq!(memo.get_or("k", || Ok::<_, ()>(4)), Ok(4));
    }
}
