//! Events appended in the acceptance's own transaction. When the bus's
//! partitions live in this store's sled database (the embedded bus), a
//! group transaction writes an accepted trade's events straight into
//! their partitions' trees, beside the idempotency record, instead of
//! queueing them in the outbox for the relay: one write per event rather
//! than three (outbox insert, topic append, outbox removal), and no relay
//! turn between acceptance and consumers.
//!
//! The store owns the transaction; the bus owns its partitions. [`TxLog`]
//! is what the bus offers the store (it implements it; the store only
//! knows the trait): where a record goes, its stored form, and the
//! partitions locked against other appends while the transaction runs, so
//! offsets stay contiguous and readers never see a gap filled later.

use std::cell::RefCell;

use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use sled::IVec;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub topic: String,
    pub partition: u32,
}

/// A partition held for a transaction: its tree and the offset its next
/// record takes.
#[derive(Debug)]
pub struct Locked<'a> {
    pub tree: &'a sled::Tree,
    pub next: u64,
}

/// What a transaction appended to each of its slots (in the slots' order),
/// once committed.
pub type Appended = Vec<Vec<IVec>>;

/// A log whose partitions are trees of this store's database.
pub trait TxLog: Send + Sync + std::fmt::Debug {
    /// The slot of a record of `topic` (its explicit `partition`, or its
    /// key's), when it is appended in a store transaction; `None` when the
    /// topic is not kept in this database (unknown, or in memory).
    fn slot(&self, topic: &str, partition: Option<u32>, key: &[u8]) -> Option<Slot>;

    /// A record's stored form, appended now.
    fn entry(&self, key: &[u8], headers: &[(String, String)], payload: &[u8]) -> IVec;

    /// Hold `slots` (sorted, distinct) against every other append and run
    /// `tx` with them, in that order. When it answers what it appended,
    /// those records are committed: they become the partitions' newest.
    fn append_within(
        &self,
        slots: &[Slot],
        tx: &mut dyn FnMut(&[Locked<'_>]) -> Option<Appended>,
    ) -> Result<(), sled::Error>;

    /// Tell the readers of `slots` that records arrived (after the flush,
    /// as a publish does).
    fn wake(&self, slots: &[Slot]);
}

/// The appends of one run of a group transaction.
pub(super) struct Appends<'a> {
    slots: &'a [Slot],
    trees: &'a [TransactionalTree],
    next: Vec<u64>,
    added: RefCell<Appended>,
}

impl<'a> Appends<'a> {
    pub(super) fn new(
        slots: &'a [Slot],
        trees: &'a [TransactionalTree],
        locked: &[Locked<'_>],
    ) -> Self {
        Appends {
            slots,
            trees,
            next: locked.iter().map(|l| l.next).collect(),
            added: RefCell::new(vec![Vec::new(); slots.len()]),
        }
    }

    /// Append `entry` to `slot` (one this batch holds); its offset.
    pub(super) fn append(
        &self,
        slot: &Slot,
        entry: &IVec,
    ) -> Result<u64, UnabortableTransactionError> {
        let held = self.slots.binary_search(slot).ok();
        let (Some(i), Some(tree)) = (held, held.and_then(|i| self.trees.get(i))) else {
            return Err(UnabortableTransactionError::Storage(
                sled::Error::ReportableBug(format!(
                    "{}/{} is not held by this batch",
                    slot.topic, slot.partition
                )),
            ));
        };
        let mut added = self.added.borrow_mut();
        let offset = self.next[i] + added[i].len() as u64;
        tree.insert(&offset.to_be_bytes(), entry.clone())?;
        added[i].push(entry.clone());
        Ok(offset)
    }

    /// What was appended, per slot.
    pub(super) fn into_appended(self) -> Appended {
        self.added.into_inner()
    }
}
