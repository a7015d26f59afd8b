//! The ingress's requests (transcodes, callbacks) waiting for their reply, by requestId:
//! bounded (beyond the cap, 4029), and an entry leaves when answered,
//! timed out or abandoned (the waiter's `Drop`).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::ServiceError;
use crate::bus::Channel;
use crate::crypto::Keyring;
use crate::events::CallbackReplied;

/// A reply to a request of this ingress: as it is handed over within this
/// process, and as `Wire` on the reply topic when its waiter is another
/// instance. Whatever must be sealed on a topic is sealed in `to_wire`
/// only, so a reply that never leaves the process is never sealed.
pub trait Answer: Send + Sized + 'static {
    type Wire: Channel;
    fn request_id(&self) -> &str;
    /// The reply as it goes on the topic.
    fn to_wire(self, keys: &Keyring) -> Self::Wire;
    /// The reply as it came off the topic. What does not open becomes an
    /// internal error for its waiter (logged here, never shown).
    fn from_wire(wire: Self::Wire, keys: &Keyring) -> Self;
}

/// A callback's reply carries nothing sealed: the same on both sides.
impl Answer for CallbackReplied {
    type Wire = CallbackReplied;
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn to_wire(self, _: &Keyring) -> Self::Wire {
        self
    }
    fn from_wire(wire: Self::Wire, _: &Keyring) -> Self {
        wire
    }
}

/// Requests waiting for their reply.
#[derive(Debug)]
pub struct Pending<R> {
    waiting: Mutex<HashMap<String, oneshot::Sender<R>>>,
    cap: usize,
}

/// A registered wait; dropping it (answer, timeout, client gone) removes the entry.
#[derive(Debug)]
pub struct Waiter<'a, R: Answer> {
    pending: &'a Pending<R>,
    id: String,
    pub rx: oneshot::Receiver<R>,
}

impl<R: Answer> Drop for Waiter<'_, R> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl<R: Answer> Pending<R> {
    pub fn new(cap: usize) -> Self {
        Pending {
            waiting: Mutex::new(HashMap::new()),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<R>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for `id`; 4029 when `cap` requests are already waiting.
    pub fn register(&self, id: &str) -> Result<Waiter<'_, R>, ServiceError> {
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
    pub fn complete(&self, reply: R) -> bool {
        self.hand(reply).is_none()
    }

    /// Hand a reply to its waiter when the waiter is in this process;
    /// give it back when nobody here waits for it (its requester is
    /// another instance, or it timed out: the caller decides).
    pub fn hand(&self, reply: R) -> Option<R> {
        let tx = self.lock().remove(reply.request_id());
        match tx {
            // a waiter that has just given up drops it: nobody waits
            Some(tx) => {
                let _ = tx.send(reply);
                None
            }
            None => Some(reply),
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
        let p = Pending::<CallbackReplied>::new(1);
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
