//! Trade idempotency (tradeNo -> content digest), the outbox that carries
//! accepted trades' events to the bus, and the notifier's delivered set.
//! The idempotency record and the outbox entries are written in one sled
//! transaction, so a trade is either accepted with all its events or not
//! at all, and never twice.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{Store, StoreError};
use crate::bus::Message;

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

/// An outbox entry: a message waiting to be published, and its id.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub id: u64,
    pub message: Message,
}

impl Store {
    /// Record `trade_no` with `digest` and queue `messages`, atomically.
    pub fn accept_trade(
        &self,
        trade_no: &str,
        digest: &[u8],
        messages: &[Message],
    ) -> Result<Accepted, StoreError> {
        let result = (&self.trades, &self.outbox).transaction(|(trades, outbox)| {
            if let Some(seen) = trades.get(trade_no.as_bytes())? {
                return Ok(if seen.as_ref() == digest {
                    Accepted::Duplicate
                } else {
                    Accepted::Conflict
                });
            }
            trades.insert(trade_no.as_bytes(), digest)?;
            for m in messages {
                let id = outbox.generate_id()?;
                outbox.insert(&id.to_be_bytes(), m.to_bytes())?;
            }
            Ok::<_, ConflictableTransactionError<()>>(Accepted::New)
        });
        result.map_err(|e: TransactionError<()>| StoreError::Transaction(format!("{e:?}")))
    }

    /// Queue a message in the outbox (for publishing later).
    pub fn enqueue(&self, message: &Message) -> Result<(), StoreError> {
        let id = self.db.generate_id()?;
        self.outbox.insert(id.to_be_bytes(), message.to_bytes())?;
        Ok(())
    }

    /// The oldest `limit` outbox entries.
    pub fn outbox_batch(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.outbox.iter().take(limit) {
            let (k, v) = item?;
            let mut id = [0u8; 8];
            id.copy_from_slice(&k[..8.min(k.len())]);
            match Message::from_bytes(&v) {
                Some(message) => out.push(OutboxEntry {
                    id: u64::from_be_bytes(id),
                    message,
                }),
                None => {
                    tracing::error!(id = u64::from_be_bytes(id), "corrupt outbox entry dropped");
                    self.outbox.remove(k)?;
                }
            }
        }
        Ok(out)
    }

    /// Remove a published outbox entry.
    pub fn outbox_remove(&self, id: u64) -> Result<(), StoreError> {
        self.outbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Whether the resident was already told about this trade.
    pub fn is_delivered(&self, trade_no: &str) -> Result<bool, StoreError> {
        Ok(self.delivered.contains_key(trade_no.as_bytes())?)
    }

    /// Record that the resident was told about this trade.
    pub fn mark_delivered(&self, trade_no: &str) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.delivered
            .insert(trade_no.as_bytes(), &now.to_be_bytes())?;
        Ok(())
    }
}
