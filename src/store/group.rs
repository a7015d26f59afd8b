//! Group transactions: the store's multi-tree writes (a trade's
//! acceptance with its events, a statistics count with its offset) are
//! applied in batches, every write queued while the previous batch
//! committed going into one sled transaction. A trade's events are
//! appended to the embedded bus's partitions in that transaction, which
//! holds those partitions while it runs (`inline.rs`), or queued in the
//! outbox (Kafka).
//!
//! Why: a sled transaction seals sled's IO buffer twice (before and after
//! its batch manifest), and every seal is a buffer written and synced by
//! sled's io pool, which wakes all of its idle threads. Under callbacks
//! that was the largest cost left (BENCHMARKS.md, "group transactions"):
//! one transaction per batch instead of one per write.
//!
//! Two lanes, each taking turns:
//! - [`Wait::Durable`] writes (acceptances) are answered only once their
//!   batch is flushed. The turn is held through the flush, so the writes
//!   that arrive meanwhile make the next batch: under load a batch is
//!   every acceptance of one flush, at no cost in latency (a write that
//!   arrives during a flush waits for the next one either way).
//! - [`Wait::Committed`] writes (counts) are answered once committed; the
//!   turn lets the tasks already running queue theirs first.
//!
//! Each write is a closure over the batch's trees. It runs in order after
//! the writes queued before it, so it sees their effects (two reports of
//! one trade in one batch: the second is the duplicate), and it may run
//! more than once (sled runs a transaction again after a conflict), so it
//! only reads and writes the trees it is given. A batch is atomic as a
//! whole: a storage error fails every write in it, and none is applied.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;
use tokio::sync::oneshot;

use super::inline::{Appended, Appends, Locked, Slot, TxLog};
use super::trades::Accepted;
use super::StoreError;
use crate::durability::Durable;

/// The trees a grouped write may touch.
pub(super) struct Trees<'a> {
    pub trades: &'a TransactionalTree,
    pub outbox: &'a TransactionalTree,
    pub stats: &'a TransactionalTree,
    pub stats_offsets: &'a TransactionalTree,
    /// The bus partitions this batch holds (`inline.rs`).
    pub log: &'a Appends<'a>,
}

/// What a grouped write answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Done {
    /// A trade's decision, and the ids of the outbox records it queued.
    Accepted(Accepted, Vec<u64>),
    /// What became of a count.
    Counted(super::stats::Count),
}

/// One grouped write: a closure over the batch's trees.
pub(super) type Write =
    Box<dyn Fn(&Trees<'_>) -> Result<Done, UnabortableTransactionError> + Send + Sync>;

/// A queued write, the partitions it appends to, and its waiter.
type Waiting = (Write, Vec<Slot>, oneshot::Sender<Result<Done, StoreError>>);

/// When a grouped write is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// Once its batch is committed.
    Committed,
    /// Once its batch is committed and flushed to disk.
    Durable,
}

/// One lane: its queue, and whose turn it is to commit it.
#[derive(Default)]
struct Lane {
    queue: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
}

/// The grouped writes of one store.
pub(super) struct Group {
    durable: Durable,
    trees: GroupTrees,
    committed: Lane,
    flushed: Lane,
    /// Transactions committed so far.
    batches: AtomicU64,
    /// The bus whose partitions live in this database (the embedded bus),
    /// once the node has opened it.
    log: OnceLock<Arc<dyn TxLog>>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("committed", &lock(&self.committed.queue).len())
            .field("flushed", &lock(&self.flushed.queue).len())
            .finish_non_exhaustive()
    }
}

/// The trees grouped writes touch.
pub(super) struct GroupTrees {
    pub trades: sled::Tree,
    pub outbox: sled::Tree,
    pub stats: sled::Tree,
    pub stats_offsets: sled::Tree,
}

impl Group {
    pub(super) fn new(durable: Durable, t: GroupTrees) -> Self {
        Group {
            durable,
            trees: t,
            committed: Lane::default(),
            flushed: Lane::default(),
            batches: AtomicU64::new(0),
            log: OnceLock::new(),
        }
    }

    /// Append events to `log`'s partitions in the batches' own
    /// transactions from now on (the first call wins).
    pub(super) fn append_to(&self, log: Arc<dyn TxLog>) {
        let _ = self.log.set(log);
    }

    /// The log events go to inline, if any.
    pub(super) fn log(&self) -> Option<&Arc<dyn TxLog>> {
        self.log.get()
    }

    /// Transactions committed so far.
    #[cfg(test)]
    pub(super) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Apply `write` in the next batch of its lane and answer what it
    /// answered, when `wait` says. A caller whose turn comes before its
    /// write was taken commits everything queued by then; one whose write
    /// another turn took just waits for its answer (not for a turn: the
    /// turn of the durable lane lasts a flush). The batch commits in a task
    /// of its own, so a caller that goes away (a client that hung up)
    /// cannot leave the others of its batch without an answer.
    /// `slots` are the partitions `write` appends to (`inline.rs`).
    pub(super) async fn apply(
        self: &Arc<Self>,
        write: Write,
        slots: Vec<Slot>,
        wait: Wait,
    ) -> Result<Done, StoreError> {
        let lane = match wait {
            Wait::Committed => &self.committed,
            Wait::Durable => &self.flushed,
        };
        let (tx, mut rx) = oneshot::channel();
        lock(&lane.queue).push((write, slots, tx));
        tokio::select! {
            biased;
            answer = &mut rx => return answered(answer),
            _turn = lane.turn.lock() => {
                if wait == Wait::Committed {
                    // let the tasks already running queue theirs
                    tokio::task::yield_now().await;
                }
                let batch = std::mem::take(&mut *lock(&lane.queue));
                if !batch.is_empty() {
                    let group = self.clone();
                    // a panic in a write's closure drops its batch's
                    // senders: every waiter gets an error
                    let _ = tokio::spawn(async move { group.commit(batch, wait).await }).await;
                }
            }
        }
        answered(rx.await)
    }

    /// One sled transaction for the whole batch, holding the bus
    /// partitions its writes append to; then (durable lane) a flush, and
    /// the partitions' readers are woken; each write's answer goes to its
    /// waiter.
    async fn commit(&self, batch: Vec<Waiting>, wait: Wait) {
        let mut writes = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        let mut slots = Vec::new();
        for (w, s, waiter) in batch {
            writes.push(w);
            slots.extend(s);
            waiters.push(waiter);
        }
        slots.sort_unstable();
        slots.dedup();
        self.batches.fetch_add(1, Ordering::Relaxed);
        let result = match (slots.is_empty(), self.log.get()) {
            (true, _) => self.transact(&writes, &[], &[]).map(|(done, _)| done),
            (false, Some(log)) => {
                let mut out = None;
                let held = log.append_within(&slots, &mut |locked| {
                    let r = self.transact(&writes, &slots, locked);
                    let (r, appended) = match r {
                        Ok((done, appended)) => (Ok(done), Some(appended)),
                        Err(e) => (Err(e), None),
                    };
                    out = Some(r);
                    appended
                });
                match (held, out) {
                    (Ok(()), Some(r)) => r,
                    (Err(e), _) => Err(e),
                    (Ok(()), None) => Err(sled::Error::ReportableBug(
                        "the log ran no transaction".into(),
                    )),
                }
            }
            (false, None) => Err(sled::Error::ReportableBug(
                "appends to a log that is not set".into(),
            )),
        };
        let answers: Vec<Result<Done, StoreError>> = match result {
            Ok(done) => match wait {
                Wait::Durable => match self.durable.sync().await {
                    Ok(()) => done.into_iter().map(Ok).collect(),
                    Err(e) => waiters.iter().map(|_| Err(e.clone().into())).collect(),
                },
                Wait::Committed => done.into_iter().map(Ok).collect(),
            },
            Err(e) => waiters
                .iter()
                .map(|_| Err(StoreError::Sled(e.clone())))
                .collect(),
        };
        if let (false, Some(log)) = (slots.is_empty(), self.log.get()) {
            log.wake(&slots);
        }
        for (waiter, answer) in waiters.into_iter().zip(answers) {
            let _ = waiter.send(answer);
        }
    }

    /// Run `writes` in one sled transaction over the store's trees and the
    /// `locked` partitions (`slots`, in order); their answers and what
    /// they appended.
    fn transact(
        &self,
        writes: &[Write],
        slots: &[Slot],
        locked: &[Locked<'_>],
    ) -> Result<(Vec<Done>, Appended), sled::Error> {
        let t = &self.trees;
        let mut trees = vec![&t.trades, &t.outbox, &t.stats, &t.stats_offsets];
        trees.extend(locked.iter().map(|l| l.tree));
        let result = trees.as_slice().transaction(|v: &Vec<TransactionalTree>| {
            let (own, partitions) = v.split_at(4.min(v.len()));
            let [trades, outbox, stats, stats_offsets] = own else {
                return Err(ConflictableTransactionError::Storage(
                    sled::Error::ReportableBug("a grouped transaction without its trees".into()),
                ));
            };
            let appends = Appends::new(slots, partitions, locked);
            let trees = Trees {
                trades,
                outbox,
                stats,
                stats_offsets,
                log: &appends,
            };
            let mut done = Vec::with_capacity(writes.len());
            for w in writes {
                done.push(w(&trees)?);
            }
            Ok::<_, ConflictableTransactionError<()>>((done, appends.into_appended()))
        });
        result.map_err(|e| match e {
            TransactionError::Storage(e) => e,
            TransactionError::Abort(()) => {
                sled::Error::ReportableBug("grouped transaction aborted".into())
            }
        })
    }
}

/// A waiter's answer; a dropped sender (its batch's turn was cancelled
/// before it answered) is an error, not a hang.
fn answered(
    r: Result<Result<Done, StoreError>, oneshot::error::RecvError>,
) -> Result<Done, StoreError> {
    r.unwrap_or_else(|_| Err(StoreError::Transaction("grouped write dropped".into())))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use crate::store::{trade_key, Accepted, OutboxRecord, Store};

    fn record(n: u32) -> OutboxRecord {
        OutboxRecord {
            topic: "akm.trade.reported".into(),
            key: format!("k{n}").into_bytes(),
            headers: Vec::new(),
            payload: vec![1, 2, 3],
            partition: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_acceptances_share_transactions_and_each_gets_its_answer() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::for_tests(dir.path());
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let key = trade_key("340100", "3401002", &format!("T{i}"));
                s.accept_trade(&key, b"d", &format!("acc-{i}"), &[record(i)], 1)
                    .await
                    .unwrap()
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            let (accepted, mut mine) = t.await.unwrap();
            assert_eq!(accepted, Accepted::New);
            assert_eq!(mine.len(), 1);
            ids.append(&mut mine);
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 64, "every acceptance queued its own record");
        assert_eq!(s.outbox_batch(100).unwrap().len(), 64);
        let batches = s.group.batches();
        assert!(batches < 64, "{batches} transactions for 64 acceptances");
    }

    #[tokio::test]
    async fn a_batch_sees_its_own_writes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::for_tests(dir.path());
        let (k1, k2) = (
            trade_key("340100", "3401002", "T-1"),
            trade_key("340100", "3401002", "T-2"),
        );
        // the first takes the turn alone; the three behind it queue while
        // it commits and go in the next batch, in order
        let r: Vec<_> = (1..=4).map(|n| [record(n)]).collect();
        let (a, b, c, d) = tokio::join!(
            s.accept_trade(&k1, b"d1", "acc-1", &r[0], 1),
            s.accept_trade(&k2, b"d2", "acc-2", &r[1], 1),
            s.accept_trade(&k2, b"d2", "acc-3", &r[2], 1),
            s.accept_trade(&k2, b"other", "acc-4", &r[3], 1),
        );
        assert_eq!(a.unwrap().0, Accepted::New);
        assert_eq!(b.unwrap().0, Accepted::New);
        let (dup, none) = c.unwrap();
        assert_eq!((dup, none.len()), (Accepted::Duplicate, 0));
        assert_eq!(d.unwrap().0, Accepted::Conflict);
        assert_eq!(s.group.batches(), 2);
        assert_eq!(s.trade_acceptance(&k2).unwrap().as_deref(), Some("acc-2"));
        assert_eq!(
            s.outbox_batch(100).unwrap().len(),
            2,
            "only the new ones queued"
        );
    }
}
