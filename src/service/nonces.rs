//! The nonces a node has seen (SPEC §9: "the nonce not seen for this app
//! within that window"). A nonce is remembered until its request's
//! timestamp leaves the window (timestamp + 300 s), no longer: a replay
//! after that fails the window check anyway.
//!
//! Nonces are kept as keyed 64-bit hashes of (app, nonce), in one set per
//! slice of expiry time; a slice whose every entry has expired is dropped
//! whole. That costs 10 to 20 bytes per nonce (8 and a control byte, in a
//! hash table between 7/16 and 7/8 full) and no per-entry expiry queue:
//! at a sustained 7,000 signed requests per second, the 2.1 million nonces
//! of a window take 20 to 40 MiB.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Width of one expiry slice.
const SLICE_MS: i64 = 60_000;

/// A hasher for keys that are already keyed hashes: it passes them on.
#[derive(Debug, Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // only u64 keys are hashed here; fold anything else in
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Set = HashSet<u64, BuildHasherDefault<Prehashed>>;

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
    slices: BTreeMap<i64, Set>,
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
            self.len -= entry.remove().len();
        }
        if self.slices.values().any(|s| s.contains(&key)) {
            return Err(Refused::Replayed);
        }
        if self.len >= self.cap {
            return Err(Refused::Full);
        }
        let slice = (ts + self.window_ms).div_euclid(SLICE_MS);
        self.slices.entry(slice).or_default().insert(key);
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
