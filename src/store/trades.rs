//! Trade idempotency ((cityNo, targetType, tradeNo) -> when, and the sealed
//! content digest) and the notifier's delivered set, both kept
//! `AKM_IDEMPOTENCY_DAYS` and then pruned. The idempotency record and the
//! trade's outbox records are written in one sled transaction, so a trade
//! is either accepted with all its events or not at all, and never twice.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

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

fn stamped(now_ms: i64, rest: &[u8]) -> Vec<u8> {
    let mut v = now_ms.to_be_bytes().to_vec();
    v.extend_from_slice(rest);
    v
}

fn stamp_of(v: &[u8]) -> i64 {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(i64::MAX, i64::from_be_bytes)
}

impl Store {
    /// Record the trade under `key` with the `digest` of its content
    /// (sealed: the content holds personal data) and queue `records`,
    /// atomically.
    pub fn accept_trade(
        &self,
        key: &[u8],
        digest: &[u8],
        records: &[OutboxRecord],
        now_ms: i64,
    ) -> Result<Accepted, StoreError> {
        let sealed = stamped(now_ms, self.keys.seal_bytes(digest).as_bytes());
        let keys = &self.keys;
        let result = (&self.trades, &self.outbox).transaction(|(trades, outbox)| {
            if let Some(seen) = trades.get(key)? {
                let same = seen.get(8..).is_some_and(|s| {
                    keys.open_bytes(&String::from_utf8_lossy(s))
                        .is_ok_and(|d| d == digest)
                });
                return Ok(if same {
                    Accepted::Duplicate
                } else {
                    Accepted::Conflict
                });
            }
            trades.insert(key, sealed.as_slice())?;
            for r in records {
                let id = outbox.generate_id()?;
                outbox.insert(&id.to_be_bytes(), r.to_bytes())?;
            }
            Ok::<_, ConflictableTransactionError<()>>(Accepted::New)
        });
        let accepted = self.noted(result.map_err(|e: TransactionError<()>| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => StoreError::Transaction("aborted".into()),
        }))?;
        if accepted == Accepted::New {
            self.outbox_depth
                .fetch_add(records.len() as i64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(accepted)
    }

    /// Whether the resident was already told about this trade.
    pub fn is_delivered(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.delivered.contains_key(key)?)
    }

    /// Record that the resident was told about this trade (at `now_ms`).
    pub fn mark_delivered(&self, key: &[u8], now_ms: i64) -> Result<(), StoreError> {
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
