//! Trade idempotency (tradeNo -> content digest) and the notifier's
//! delivered set. The idempotency record and the trade's outbox records
//! are written in one sled transaction, so a trade is either accepted with
//! all its events or not at all, and never twice.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{OutboxRecord, Store, StoreError};

/// What happened to a reported trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// First time: recorded and its events queued.
    New,
    /// Same tradeNo, same content: nothing new.
    Duplicate,
    /// Same tradeNo, different content.
    Conflict,
}

impl Store {
    /// Record `trade_no` with the `digest` of its content (sealed: the
    /// content holds personal data) and queue `records`, atomically.
    pub fn accept_trade(
        &self,
        trade_no: &str,
        digest: &[u8],
        records: &[OutboxRecord],
    ) -> Result<Accepted, StoreError> {
        let sealed = self.keys.seal_bytes(digest);
        let keys = &self.keys;
        let result = (&self.trades, &self.outbox).transaction(|(trades, outbox)| {
            if let Some(seen) = trades.get(trade_no.as_bytes())? {
                let same = keys
                    .open_bytes(&String::from_utf8_lossy(&seen))
                    .is_ok_and(|d| d == digest);
                return Ok(if same {
                    Accepted::Duplicate
                } else {
                    Accepted::Conflict
                });
            }
            trades.insert(trade_no.as_bytes(), sealed.as_bytes())?;
            for r in records {
                let id = outbox.generate_id()?;
                outbox.insert(&id.to_be_bytes(), r.to_bytes())?;
            }
            Ok::<_, ConflictableTransactionError<()>>(Accepted::New)
        });
        result.map_err(|e: TransactionError<()>| StoreError::Transaction(format!("{e:?}")))
    }

    /// Whether the resident was already told about this trade.
    pub fn is_delivered(&self, trade_no: &str) -> Result<bool, StoreError> {
        Ok(self.delivered.contains_key(trade_no.as_bytes())?)
    }

    /// Record that the resident was told about this trade (at `now_ms`).
    pub fn mark_delivered(&self, trade_no: &str, now_ms: i64) -> Result<(), StoreError> {
        self.delivered
            .insert(trade_no.as_bytes(), &now_ms.to_be_bytes())?;
        Ok(())
    }
}
