//! The outbox: records waiting to be published, written in the same sled
//! transaction as the trade they belong to. The store keeps its own record
//! type (topic, explicit partition, key, headers, payload) in a compact
//! binary form; the relay turns it into a bus message.

use super::{Store, StoreError};
use crate::frame;

/// A record to publish later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub topic: String,
    /// Explicit partition; `None` lets the bus hash the key.
    pub partition: Option<u32>,
    pub key: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

/// The outbox's first key when last looked at, and since when.
pub(super) type Head = (Vec<u8>, std::time::Instant);

/// An outbox record and its id (for removal once published).
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub id: u64,
    pub record: OutboxRecord,
}

impl OutboxRecord {
    /// Binary form: topic, partition, key, headers, payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 64);
        frame::put(&mut out, self.topic.as_bytes());
        out.extend_from_slice(&self.partition.unwrap_or(u32::MAX).to_be_bytes());
        frame::put(&mut out, &self.key);
        frame::put_pairs(&mut out, &self.headers);
        frame::put(&mut out, &self.payload);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut r = frame::Reader(b);
        let topic = r.string()?;
        let p = r.u32()?;
        let key = r.chunk()?.to_vec();
        let headers = r.pairs()?;
        let payload = r.chunk()?.to_vec();
        Some(OutboxRecord {
            topic,
            partition: (p != u32::MAX).then_some(p),
            key,
            headers,
            payload,
        })
    }
}

impl Store {
    /// Queue one record on its own (not part of a trade); its id. Not
    /// flushed here: it is as durable as the next flush makes it.
    pub fn outbox_put(&self, record: &OutboxRecord) -> Result<u64, StoreError> {
        let id = self.durable.generate_id()?;
        self.noted(
            self.outbox
                .insert(id.to_be_bytes(), record.to_bytes())
                .map_err(StoreError::from),
        )?;
        self.outbox_depth
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(id)
    }

    /// The oldest `limit` outbox entries. A corrupt entry is logged and dropped.
    pub fn outbox_batch(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.outbox.iter().take(limit) {
            let (k, v) = item?;
            let mut id = [0u8; 8];
            id.copy_from_slice(&k[..8.min(k.len())]);
            let id = u64::from_be_bytes(id);
            match OutboxRecord::from_bytes(&v) {
                Some(record) => out.push(OutboxEntry { id, record }),
                None => {
                    tracing::error!(id, "corrupt outbox entry dropped");
                    self.outbox.remove(k)?;
                }
            }
        }
        Ok(out)
    }

    /// Remove a published outbox entry.
    pub fn outbox_remove(&self, id: u64) -> Result<(), StoreError> {
        if self
            .noted(
                self.outbox
                    .remove(id.to_be_bytes())
                    .map_err(StoreError::from),
            )?
            .is_some()
        {
            self.outbox_depth
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            self.outbox_removed.notify_waiters();
        }
        Ok(())
    }

    /// Wait (at most `within`) until outbox entry `id` is gone (published);
    /// whether it went. Gives up at once when the store fails writes (the
    /// relay cannot remove it then).
    pub async fn outbox_wait(&self, id: u64, within: std::time::Duration) -> bool {
        let gone = async {
            loop {
                let removed = self.outbox_removed.notified();
                tokio::pin!(removed);
                removed.as_mut().enable();
                match self.outbox.contains_key(id.to_be_bytes()) {
                    Ok(false) => return true,
                    Ok(true) if self.healthy() => {
                        let tick = tokio::time::sleep(std::time::Duration::from_millis(200));
                        tokio::select! {
                            _ = removed => {}
                            _ = tick => {}
                        }
                    }
                    _ => return false,
                }
            }
        };
        tokio::time::timeout(within, gone).await.unwrap_or(false)
    }

    /// How long the outbox's first record has been first, as far as this
    /// process has looked (every call looks): the age of the oldest record
    /// not yet published, zero when the outbox is empty. A record left from
    /// before a restart counts from the first look after it.
    pub fn outbox_head_age(&self) -> std::time::Duration {
        let head = match self.outbox.first() {
            Ok(Some((k, _))) => k.to_vec(),
            _ => Vec::new(),
        };
        let mut seen = self.outbox_head.lock().unwrap_or_else(|p| p.into_inner());
        if head.is_empty() {
            *seen = None;
            return std::time::Duration::ZERO;
        }
        match &*seen {
            Some((k, since)) if *k == head => since.elapsed(),
            _ => {
                *seen = Some((head, std::time::Instant::now()));
                std::time::Duration::ZERO
            }
        }
    }

    /// The outbox depth (a counter: O(1)).
    pub fn outbox_len(&self) -> usize {
        self.outbox_depth
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let r = OutboxRecord {
            topic: "t".into(),
            partition: Some(3),
            key: b"k".to_vec(),
            headers: vec![("traceId".into(), "abc".into())],
            payload: vec![1, 2, 3],
        };
        assert_eq!(OutboxRecord::from_bytes(&r.to_bytes()), Some(r.clone()));
        let hashed = OutboxRecord {
            partition: None,
            ..r
        };
        assert_eq!(OutboxRecord::from_bytes(&hashed.to_bytes()), Some(hashed));
        assert!(OutboxRecord::from_bytes(&[0, 0, 0, 9]).is_none());
    }
}
