//! The ingress's transcode requests waiting for their reply, by requestId:
//! bounded (beyond the cap, 4029), and an entry leaves when answered,
//! timed out or abandoned (the waiter's `Drop`).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::ServiceError;
use crate::events::TranscodeReplied;

/// Requests waiting for their reply.
#[derive(Debug)]
pub struct Pending {
    waiting: Mutex<HashMap<String, oneshot::Sender<TranscodeReplied>>>,
    cap: usize,
}

/// A registered wait; dropping it (answer, timeout, client gone) removes the entry.
#[derive(Debug)]
pub struct Waiter<'a> {
    pending: &'a Pending,
    id: String,
    pub rx: oneshot::Receiver<TranscodeReplied>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl Pending {
    pub fn new(cap: usize) -> Self {
        Pending {
            waiting: Mutex::new(HashMap::new()),
            cap,
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<TranscodeReplied>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for `id`; 4029 when `cap` requests are already waiting.
    pub fn register(&self, id: &str) -> Result<Waiter<'_>, ServiceError> {
        let (tx, rx) = oneshot::channel();
        let mut map = self.lock();
        if map.len() >= self.cap {
            return Err(ServiceError::RateLimited);
        }
        map.insert(id.to_string(), tx);
        Ok(Waiter {
            pending: self,
            id: id.to_string(),
            rx,
        })
    }

    /// Hand a reply to its waiter; false when nobody waits (late or foreign).
    pub fn complete(&self, reply: TranscodeReplied) -> bool {
        match self.lock().remove(&reply.request_id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_bounded_and_a_dropped_waiter_leaves_it() {
        let p = Pending::new(1);
        let w = p.register("a").unwrap();
        assert_eq!(
            p.register("b").unwrap_err().code(),
            crate::protocol::ErrCode::RateLimited
        );
        drop(w);
        assert!(p.is_empty());
        assert!(p.register("b").is_ok());
    }
}
