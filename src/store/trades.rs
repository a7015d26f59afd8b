//! Trade idempotency ((cityNo, targetType, tradeNo) -> when, which
//! acceptance, and the sealed content digest) and the notifier's delivered
//! set, both kept `AKM_IDEMPOTENCY_DAYS` and then pruned. The idempotency
//! record and the trade's events (appended to the embedded bus's
//! partitions, or queued in the outbox) are written in one sled
//! transaction, so a trade is either accepted with all its events or not
//! at all, and never twice. The same entries arrive from the changelog
//! (`akm.callback.state`) when another instance accepted or delivered.

use super::group::{Done, Trees, Wait, Write};
use super::{key2, OutboxRecord, Store, StoreError};

/// What happened to a reported trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// First time: recorded and its events queued.
    New,
    /// Same key, same content: nothing new.
    Duplicate,
    /// Same key, different content.
    Conflict,
}

/// The idempotency key of a trade: (cityNo, targetType, tradeNo).
pub fn trade_key(city: &str, target: &str, trade_no: &str) -> Vec<u8> {
    let mut k = key2(city, target);
    k.push(0);
    k.extend_from_slice(trade_no.as_bytes());
    k
}

/// The trade key of its text form `cityNo/targetType/tradeNo` (the
/// changelog's and the request's); `None` when it has fewer parts.
pub fn trade_key_of(text: &str) -> Option<Vec<u8>> {
    let mut parts = text.splitn(3, '/');
    let (city, target, no) = (parts.next()?, parts.next()?, parts.next()?);
    Some(trade_key(city, target, no))
}

/// Marks the value layout that names its acceptance (older values are the
/// stamp and the sealed digest only; sealed text is never 0xFF).
const WITH_ACCEPTANCE: u8 = 0xFF;

/// An idempotency value: when, which acceptance (its trace id), the sealed
/// digest.
fn trade_value(now_ms: i64, acceptance: &str, sealed_digest: &str) -> Vec<u8> {
    let mut v = now_ms.to_be_bytes().to_vec();
    v.push(WITH_ACCEPTANCE);
    crate::frame::put(&mut v, acceptance.as_bytes());
    v.extend_from_slice(sealed_digest.as_bytes());
    v
}

/// The acceptance and the sealed digest of an idempotency value.
fn trade_parts(v: &[u8]) -> (String, &[u8]) {
    let rest = v.get(8..).unwrap_or_default();
    if rest.first() == Some(&WITH_ACCEPTANCE) {
        let mut r = crate::frame::Reader(&rest[1..]);
        if let Some(acceptance) = r.string() {
            return (acceptance, r.0);
        }
    }
    (String::new(), rest)
}

fn stamp_of(v: &[u8]) -> i64 {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(i64::MAX, i64::from_be_bytes)
}

impl Store {
    /// Record the trade under `key` with the `digest` of its content
    /// (sealed: the content holds personal data) as acceptance
    /// `acceptance`, and its `records`, atomically (in a group
    /// transaction, `group.rs`), and answer once that is on disk. A record
    /// whose topic lives in this database (the embedded bus) is appended
    /// to its partition in that transaction (`inline.rs`); the others go
    /// to the outbox, and a new acceptance answers their ids.
    pub async fn accept_trade(
        &self,
        key: &[u8],
        digest: &[u8],
        acceptance: &str,
        records: &[OutboxRecord],
        now_ms: i64,
    ) -> Result<(Accepted, Vec<u64>), StoreError> {
        let value = trade_value(now_ms, acceptance, &self.keys.seal_bytes(digest));
        let (keys, key, digest) = (self.keys.clone(), key.to_vec(), digest.to_vec());
        let mut inline = Vec::new();
        let mut queued = Vec::new();
        for r in records {
            match self
                .group
                .log()
                .and_then(|log| Some((log, log.slot(&r.topic, r.partition, &r.key)?)))
            {
                Some((log, slot)) => inline.push((slot, log.entry(&r.key, &r.headers, &r.payload))),
                None => queued.push(r.to_bytes()),
            }
        }
        let slots = inline.iter().map(|(s, _)| s.clone()).collect();
        let write: Write = Box::new(move |t: &Trees<'_>| {
            if let Some(seen) = t.trades.get(&key)? {
                let same = keys
                    .open_bytes(&String::from_utf8_lossy(trade_parts(&seen).1))
                    .is_ok_and(|d| d == digest);
                let decision = if same {
                    Accepted::Duplicate
                } else {
                    Accepted::Conflict
                };
                return Ok(Done::Accepted(decision, Vec::new()));
            }
            t.trades.insert(key.as_slice(), value.as_slice())?;
            for (slot, entry) in &inline {
                t.log.append(slot, entry)?;
            }
            let mut ids = Vec::with_capacity(queued.len());
            for r in &queued {
                let id = t.outbox.generate_id()?;
                t.outbox.insert(&id.to_be_bytes(), r.as_slice())?;
                ids.push(id);
            }
            Ok(Done::Accepted(Accepted::New, ids))
        });
        let accepted = match self.noted(self.group.apply(write, slots, Wait::Durable).await)? {
            Done::Accepted(a, ids) => (a, ids),
            Done::Counted(_) => {
                return Err(StoreError::Transaction("a count answered a trade".into()))
            }
        };
        if accepted.0 == Accepted::New {
            self.outbox_depth.fetch_add(
                accepted.1.len() as i64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        Ok(accepted)
    }

    /// Apply an acceptance read from the changelog (this instance's own,
    /// or another's): the latest record of a key wins.
    pub fn put_trade(
        &self,
        key: &[u8],
        at_ms: i64,
        acceptance: &str,
        sealed_digest: &str,
    ) -> Result<(), StoreError> {
        // the replica applying what this instance accepted itself (the
        // same acceptance, named by its id, at the same time): a read, not
        // a second write (the digest is sealed again, so its bytes differ)
        if !acceptance.is_empty() {
            if let Some(v) = self.trades.get(key)? {
                if stamp_of(&v) == at_ms && trade_parts(&v).0 == acceptance {
                    return Ok(());
                }
            }
        }
        let value = trade_value(at_ms, acceptance, sealed_digest);
        self.noted(self.trades.insert(key, value).map_err(StoreError::from))?;
        Ok(())
    }

    /// Which acceptance (its trace id) holds `key` here; empty for a value
    /// from before acceptances were named.
    pub fn trade_acceptance(&self, key: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self.trades.get(key)?.map(|v| trade_parts(&v).0))
    }

    /// Whether the resident was already told about this trade.
    pub fn is_delivered(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.delivered.contains_key(key)?)
    }

    /// Record that the resident was told about this trade (at `now_ms`,
    /// unless it was recorded before).
    pub fn mark_delivered(&self, key: &[u8], now_ms: i64) -> Result<(), StoreError> {
        // marked already (the replica applying this instance's own mark):
        // the first time stands
        if self.delivered.contains_key(key)? {
            return Ok(());
        }
        self.noted(
            self.delivered
                .insert(key, &now_ms.to_be_bytes())
                .map_err(StoreError::from),
        )?;
        Ok(())
    }

    /// Remove idempotency records and delivered marks written before
    /// `before_ms`; how many.
    pub fn prune_trades(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for tree in [&self.trades, &self.delivered] {
            for item in tree.iter() {
                let (k, v) = item?;
                if stamp_of(&v) < before_ms {
                    tree.remove(k)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_acceptance_is_named_and_the_changelog_can_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::for_tests(dir.path());
        let key = trade_key_of("340100/3401002/T-1").unwrap();
        assert_eq!(key, trade_key("340100", "3401002", "T-1"));
        let (first, ids) = s.accept_trade(&key, b"d1", "acc-a", &[], 1).await.unwrap();
        assert_eq!((first, ids.len()), (Accepted::New, 0));
        assert_eq!(s.trade_acceptance(&key).unwrap().as_deref(), Some("acc-a"));
        // the same content is a duplicate, other content a conflict
        assert_eq!(
            s.accept_trade(&key, b"d1", "acc-b", &[], 2)
                .await
                .unwrap()
                .0,
            Accepted::Duplicate
        );
        assert_eq!(
            s.accept_trade(&key, b"d2", "acc-b", &[], 2)
                .await
                .unwrap()
                .0,
            Accepted::Conflict
        );
        // another instance's acceptance from the changelog replaces it, and
        // decides what a repeat is
        s.put_trade(&key, 3, "acc-c", &s.keys().seal_bytes(b"d2"))
            .unwrap();
        assert_eq!(s.trade_acceptance(&key).unwrap().as_deref(), Some("acc-c"));
        // the same acceptance applied again (the replica reading this
        // instance's own changelog record) leaves the record as it is
        let before = s.trades.get(&key).unwrap();
        s.put_trade(&key, 3, "acc-c", &s.keys().seal_bytes(b"d2"))
            .unwrap();
        assert_eq!(s.trades.get(&key).unwrap(), before);
        assert_eq!(
            s.accept_trade(&key, b"d2", "acc-d", &[], 4)
                .await
                .unwrap()
                .0,
            Accepted::Duplicate
        );
        // a value from before acceptances were named still decides
        let old = trade_key_of("340100/3401002/T-OLD").unwrap();
        let mut v = 5i64.to_be_bytes().to_vec();
        v.extend_from_slice(s.keys().seal_bytes(b"d9").as_bytes());
        s.trades.insert(&old, v).unwrap();
        assert_eq!(s.trade_acceptance(&old).unwrap().as_deref(), Some(""));
        assert_eq!(
            s.accept_trade(&old, b"d9", "acc-e", &[], 6)
                .await
                .unwrap()
                .0,
            Accepted::Duplicate
        );
        assert!(trade_key_of("340100/3401002").is_none());
    }

    #[tokio::test]
    async fn a_delivered_mark_keeps_its_first_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::for_tests(dir.path());
        let key = trade_key("340100", "3401002", "T-2");
        assert!(!s.is_delivered(&key).unwrap());
        s.mark_delivered(&key, 10).unwrap();
        // the replica applying the same mark from the changelog later
        s.mark_delivered(&key, 20).unwrap();
        assert!(s.is_delivered(&key).unwrap());
        assert_eq!(stamp_of(&s.delivered.get(&key).unwrap().unwrap()), 10);
    }
}
