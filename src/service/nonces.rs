//! The nonces a node has seen (SPEC §9: "the nonce not seen for this app
//! within that window"). A nonce is remembered until its request's
//! timestamp leaves the window (timestamp + 300 s), no longer: a replay
//! after that fails the window check anyway.
//!
//! Nonces are kept as keyed 64-bit hashes of (app, nonce), in one table per
//! slice of expiry time; a slice whose every entry has expired is dropped
//! whole, so there is no per-entry expiry queue. A table is open
//! addressing over bare 8-byte slots, up to 80 % full, and a new slice's
//! table is sized for as many nonces as the largest slice holds, so it
//! seldom grows (a slice out of turn, from a client's clock minutes off,
//! starts small). That is about 10 to 11 bytes a nonce; a standard hash set
//! took 10 to 20 (a control byte more, and a table between 7/16 and 7/8
//! full; 16.6 bytes on average over 4 million nonces). At a sustained
//! 15,000 transcodes a second, each signed twice (terminal to city, city to
//! province), a window holds 9 million nonces: about 90 MiB in tables,
//! against about 140 MiB in sets.

use std::collections::BTreeMap;

/// Width of one expiry slice.
const SLICE_MS: i64 = 60_000;

/// The fullest a table gets, in tenths.
const FULL_TENTHS: usize = 8;

/// A set of keyed hashes (even over `u64`): open addressing with linear
/// probing over bare slots, 0 marking an empty one.
#[derive(Debug)]
struct Table {
    slots: Vec<u64>,
    len: usize,
}

impl Table {
    /// A table that holds `expected` keys without growing.
    fn for_keys(expected: usize) -> Self {
        let size = (expected * 10 / FULL_TENTHS).max(64) + 1;
        Table {
            slots: vec![0; size],
            len: 0,
        }
    }

    /// 0 marks an empty slot: key 0 is stored as 1 (a 2^-64 chance of a
    /// false replay between the two).
    fn stored(key: u64) -> u64 {
        key.max(1)
    }

    /// The first slot of `key`'s probe: the keys are even, so their high
    /// bits scaled to the table spread them (any size, no power of two).
    fn home(&self, key: u64) -> usize {
        ((u128::from(key) * self.slots.len() as u128) >> 64) as usize
    }

    /// Whether `key` is in; where it would go if not.
    fn find(&self, key: u64) -> Result<usize, usize> {
        let n = self.slots.len();
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                0 => return Err(i),
                k if k == key => return Ok(i),
                _ => i = if i + 1 == n { 0 } else { i + 1 },
            }
        }
    }

    fn contains(&self, key: u64) -> bool {
        self.find(Self::stored(key)).is_ok()
    }

    /// Add `key` (not in the table).
    fn insert(&mut self, key: u64) {
        if (self.len + 1) * 10 > self.slots.len() * FULL_TENTHS {
            let mut bigger = Table::for_keys(self.len * 3 / 2);
            for &k in self.slots.iter().filter(|&&k| k != 0) {
                bigger.put(k);
            }
            *self = bigger;
        }
        self.put(Self::stored(key));
    }

    fn put(&mut self, stored: u64) {
        if let Err(i) = self.find(stored) {
            self.slots[i] = stored;
            self.len += 1;
        }
    }
}

/// Why a nonce was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Seen before within the window (4011).
    Replayed,
    /// `cap` nonces are remembered already (4029).
    Full,
}

/// Nonces seen within the window.
#[derive(Debug)]
pub struct Nonces {
    window_ms: i64,
    cap: usize,
    /// Sets by expiry slice (`(timestamp + window) / SLICE_MS`).
    slices: BTreeMap<i64, Table>,
    len: usize,
}

impl Nonces {
    /// Remember at most `cap` nonces of requests whose timestamps are
    /// within `window_ms` of the clock.
    pub fn new(window_ms: i64, cap: usize) -> Self {
        Nonces {
            window_ms,
            cap,
            slices: BTreeMap::new(),
            len: 0,
        }
    }

    /// Take `key`, the nonce of a request stamped `ts` that passed the
    /// window check at `now`; refuse it if it was seen within the window.
    pub fn take(&mut self, key: u64, ts: i64, now: i64) -> Result<(), Refused> {
        // slices whose last expiry is before now hold nothing a request
        // could still replay within the window
        while let Some(entry) = self.slices.first_entry() {
            if (entry.key() + 1) * SLICE_MS > now {
                break;
            }
            self.len -= entry.remove().len;
        }
        if self.slices.values().any(|s| s.contains(key)) {
            return Err(Refused::Replayed);
        }
        if self.len >= self.cap {
            return Err(Refused::Full);
        }
        let slice = (ts + self.window_ms).div_euclid(SLICE_MS);
        if !self.slices.contains_key(&slice) {
            // the next slice in time is sized like the largest (slices see
            // like rates); any other (a client's clock minutes off) starts
            // small, so skewed clocks cannot make many large tables
            let next_in_time = self
                .slices
                .last_key_value()
                .is_some_and(|(&newest, _)| slice == newest + 1);
            let expected = if next_in_time {
                self.slices.values().map(|t| t.len).max().unwrap_or(0)
            } else {
                0
            };
            self.slices.insert(slice, Table::for_keys(expected));
        }
        if let Some(table) = self.slices.get_mut(&slice) {
            table.insert(key);
        }
        self.len += 1;
        Ok(())
    }

    /// How many nonces are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 300_000;

    #[test]
    fn a_nonce_is_refused_again_while_its_timestamp_is_in_the_window() {
        let mut n = Nonces::new(W, 10);
        let t = 1_593_343_465_000;
        assert_eq!(n.take(7, t, t), Ok(()));
        assert_eq!(n.take(7, t, t + 1), Err(Refused::Replayed));
        // the same nonce under another timestamp is still a replay
        assert_eq!(n.take(7, t + W, t + W), Err(Refused::Replayed));
        assert_eq!(n.take(8, t, t + W), Ok(()));
        assert_eq!(n.len(), 2);
    }

    #[test]
    fn a_nonce_is_forgotten_once_its_timestamp_left_the_window() {
        let mut n = Nonces::new(W, 10);
        let t = 1_593_343_465_000;
        // stamped 200 s late (within the window): kept until t + 100 s + W
        assert_eq!(n.take(1, t - 200_000, t), Ok(()));
        // stamped 200 s early: kept until t + 500 s
        assert_eq!(n.take(2, t + 200_000, t), Ok(()));
        // both still remembered at the last moment their requests pass
        assert_eq!(n.take(1, t, t + 100_000), Err(Refused::Replayed));
        assert_eq!(n.take(2, t + 200_000, t + 500_000), Err(Refused::Replayed));
        // a slice later, the first is gone, the second still there
        let later = t - 200_000 + W + SLICE_MS;
        assert_eq!(n.take(3, later, later), Ok(()));
        assert_eq!(n.len(), 2, "the expired nonce is still kept");
        assert_eq!(n.take(2, later, later), Err(Refused::Replayed));
        // and long after, everything of before is gone
        let much_later = t + 2 * W + 2 * SLICE_MS;
        assert_eq!(n.take(4, much_later, much_later), Ok(()));
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn a_table_holds_what_a_set_holds_through_its_growth() {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let mut t = Table::for_keys(0);
        let mut set = std::collections::HashSet::new();
        let start = t.slots.len();
        // even keys, and the extremes (0 is stored as 1)
        let keys: Vec<u64> = (0..50_000)
            .map(|_| rng.gen())
            .chain([1, u64::MAX, 2, u64::MAX - 1])
            .collect();
        for k in keys {
            assert_eq!(t.contains(k), set.contains(&k), "{k} before");
            if !t.contains(k) {
                t.insert(k);
                set.insert(k);
            }
            assert!(t.contains(k), "{k} after");
        }
        assert_eq!(t.len, set.len());
        assert!(t.slots.len() > start, "it grew");
        assert!(
            t.len * 10 <= t.slots.len() * FULL_TENTHS,
            "at most 80 % full"
        );
        for _ in 0..50_000 {
            let k: u64 = rng.gen();
            assert_eq!(t.contains(k), set.contains(&k));
        }
        // a table sized for its keys never grows
        let mut sized = Table::for_keys(10_000);
        let size = sized.slots.len();
        for _ in 0..10_000 {
            sized.insert(rng.gen());
        }
        assert_eq!(sized.slots.len(), size);
    }

    #[test]
    fn the_next_slice_is_sized_like_the_largest_and_a_skewed_one_starts_small() {
        let mut n = Nonces::new(W, usize::MAX);
        let t = 1_593_343_465_000 / SLICE_MS * SLICE_MS;
        for k in 1..=10_000u64 {
            n.take(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), t, t).unwrap();
        }
        let first = (t + W) / SLICE_MS;
        // the minute after: a table for 10,000 from the start
        n.take(7, t + SLICE_MS, t + SLICE_MS).unwrap();
        assert!(n.slices[&(first + 1)].slots.len() >= 10_000 * 10 / FULL_TENTHS);
        // a clock four minutes ahead: a small table
        n.take(8, t + 4 * SLICE_MS, t + SLICE_MS).unwrap();
        assert!(n.slices[&(first + 4)].slots.len() < 100);
        assert_eq!(n.len(), 10_002);
    }

    #[test]
    fn beyond_the_cap_new_nonces_are_refused_until_old_ones_expire() {
        let mut n = Nonces::new(W, 2);
        let t = 1_593_343_465_000;
        assert_eq!(n.take(1, t, t), Ok(()));
        assert_eq!(n.take(2, t, t), Ok(()));
        assert_eq!(n.take(3, t, t), Err(Refused::Full));
        // a replay is still named a replay
        assert_eq!(n.take(1, t, t), Err(Refused::Replayed));
        let later = t + W + SLICE_MS;
        assert_eq!(n.take(3, later, later), Ok(()));
    }
}
